/* The Hugging Face directory reader: config.json (+ generation and
 * preprocessor configs), then model.safetensors or the shards listed by
 * model.safetensors.index.json, each mapped once; tensors are zero-copy views
 * into the mappings. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_json.h"
#include "json.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

#define HF_MAX_JSON (64u << 20) /* side files and index are kilobytes; bound hostile ones */

/* Read an optional side file; *text is NULL when it does not exist. */
static int hf_read_optional(const char *dir, const char *name, char **path, char **text,
			    size_t *len, struct qvl_err *err)
{
	*text = NULL;
	*path = qvl_path_join(dir, name);
	if (!*path)
		return qvl_errf(err, -ENOMEM, "out of memory");
	if (access(*path, F_OK) < 0)
		return 0;
	return qvl_read_file(*path, HF_MAX_JSON, text, len, err);
}

static int hf_configs(struct qvl_model *m, const char *dir, struct qvl_err *err)
{
	char *path = NULL, *text = NULL;
	size_t len = 0;
	int rc;

	rc = hf_read_optional(dir, "config.json", &path, &text, &len, err);
	if (!rc && !text)
		rc = qvl_errf(err, -ENOENT, "%s: missing", path);
	if (!rc)
		rc = qvl_config_parse(&m->config, text, len, path, err);
	free(path);
	free(text);
	if (rc)
		return rc;

	qvl_gen_config_default(&m->gen, &m->config);
	rc = hf_read_optional(dir, "generation_config.json", &path, &text, &len, err);
	if (!rc && text)
		rc = qvl_gen_config_parse(&m->gen, &m->config, text, len, path, err);
	free(path);
	free(text);
	if (rc)
		return rc;

	qvl_preproc_config_default(&m->preproc, &m->config);
	rc = hf_read_optional(dir, "preprocessor_config.json", &path, &text, &len, err);
	if (!rc && text)
		rc = qvl_preproc_config_parse(&m->preproc, &m->config, text, len, path, err);
	free(path);
	free(text);
	if (rc)
		return rc;

	path = qvl_path_join(dir, "tokenizer.json");
	if (!path)
		return qvl_errf(err, -ENOMEM, "out of memory");
	if (access(path, R_OK) == 0)
		m->tokenizer_json_path = path;
	else
		free(path);
	return 0;
}

static int hf_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* With an index, name a tensor it assigns to `path` that the file lacks. */
static int hf_find_missing(const struct qvl_st_header *h, const char *path, char *const *want,
			   size_t nwant, struct qvl_err *err)
{
	char **have = malloc((h->n ? h->n : 1) * sizeof(*have));
	int rc = 0;

	if (!have)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	for (size_t i = 0; i < h->n; i++)
		have[i] = h->entries[i].name;
	qsort(have, h->n, sizeof(*have), hf_str_cmp);
	for (size_t i = 0; i < nwant && !rc; i++)
		if (!bsearch(&want[i], have, h->n, sizeof(*have), hf_str_cmp))
			rc = qvl_errf(err, -EBADMSG,
				      "%s: missing tensor '%s' (model.safetensors.index.json maps "
				      "it to this file)",
				      path, want[i]);
	free(have);
	return rc;
}

/* The format does not promise aligned tensors (the official writer's
 * alignment is a convention), but kernels load whole elements: give a
 * misaligned tensor an aligned copy owned by the model. */
static int hf_align_copy(struct qvl_model *m, struct qvl_tensor *t, const char *path,
			 struct qvl_err *err)
{
	void **owned = realloc(m->owned, (m->nowned + 1) * sizeof(*owned));
	void *buf;

	if (!owned)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	m->owned = owned;
	buf = aligned_alloc(64, (t->nbytes + 63) / 64 * 64);
	if (!buf)
		return qvl_errf(err, -ENOMEM, "%s: tensor '%s': out of memory for an aligned copy",
				path, t->name);
	memcpy(buf, t->data, t->nbytes);
	m->owned[m->nowned++] = buf;
	t->data = buf;
	return 0;
}

/* Map one safetensors file and add its tensors. With an index, `want`
 * lists the names the index assigns to this file (sorted), and the file must
 * hold exactly those. */
static int hf_load_file(struct qvl_model *m, const char *path, char *const *want, size_t nwant,
			struct qvl_err *err)
{
	struct qvl_st_header h;
	struct qvl_map map;
	int rc, src;

	rc = qvl_map_file(&map, path, err);
	if (rc)
		return rc;
	src = qvl_model_add_source(m, path, map.data, map.size, err);
	if (src < 0) {
		qvl_unmap(&map);
		return src;
	}
	rc = qvl_st_parse(&h, map.data, map.size, path, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < h.n && !rc; i++) {
		const struct qvl_st_entry *e = &h.entries[i];
		struct qvl_tensor t = {
		    .name = e->name,
		    .dtype = e->dtype,
		    .ndim = e->ndim,
		    .nelem = e->nelem,
		    .data = (const uint8_t *)map.data + h.data_start + e->begin,
		    .nbytes = e->end - e->begin,
		    .source = src,
		};

		if (want && !bsearch(&e->name, want, nwant, sizeof(*want), hf_str_cmp))
			rc = qvl_errf(err, -EBADMSG,
				      "%s: tensor '%s' is not mapped to this file by "
				      "model.safetensors.index.json",
				      path, e->name);
		memcpy(t.shape, e->shape, sizeof(t.shape));
		if (!rc && (uintptr_t)t.data % qvl_dtype_bytes(t.dtype, 1, NULL))
			rc = hf_align_copy(m, &t, path, err);
		if (!rc)
			rc = qvl_model_add_tensor(m, &t, err);
	}
	/* every name in the file is wanted and unique, so fewer means one is missing */
	if (!rc && want && h.n != nwant)
		rc = hf_find_missing(&h, path, want, nwant, err);
	qvl_st_free(&h);
	return rc;
}

struct hf_map_entry {
	char *tensor, *file;
};

static int hf_entry_cmp_tensor(const void *a, const void *b)
{
	return strcmp(((const struct hf_map_entry *)a)->tensor,
		      ((const struct hf_map_entry *)b)->tensor);
}

static int hf_entry_cmp(const void *a, const void *b)
{
	const struct hf_map_entry *x = a, *y = b;
	int c = strcmp(x->file, y->file);

	return c ? c : strcmp(x->tensor, y->tensor);
}

/* A shard name must stay inside the model directory. */
static bool hf_plain_name(const char *s)
{
	return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int hf_index_entries(const struct json_doc *doc, const char *ipath, struct hf_map_entry *e,
			    size_t n, struct qvl_err *err)
{
	uint32_t wm = json_get(doc, 0, "weight_map"), k = wm + 1;

	for (size_t i = 0; i < n; i++, k = doc->tok[k + 1].end) {
		e[i].tensor = json_strdup(doc, k, NULL);
		e[i].file = json_strdup(doc, k + 1, NULL);
		if (!e[i].tensor || (!e[i].file && doc->tok[k + 1].type == JSON_STRING))
			return qvl_errf(err, -ENOMEM, "%s: out of memory", ipath);
		if (!*e[i].tensor)
			return qvl_errf(err, -EBADMSG, "%s: weight_map has an empty tensor name",
					ipath);
		if (!e[i].file || !hf_plain_name(e[i].file))
			return qvl_errf(err, -EBADMSG,
					"%s: weight_map['%s']: expected a file name in the model "
					"directory",
					ipath, e[i].tensor);
	}
	/* JSON allows repeated keys: by tensor name to find them, then by file */
	qsort(e, n, sizeof(*e), hf_entry_cmp_tensor);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(e[i - 1].tensor, e[i].tensor))
			return qvl_errf(err, -EBADMSG, "%s: weight_map lists tensor '%s' twice",
					ipath, e[i].tensor);
	qsort(e, n, sizeof(*e), hf_entry_cmp);
	return 0;
}

/* Walk the index's weight_map grouped by file; map each shard once. */
static int hf_sharded(struct qvl_model *m, const char *dir, const char *ipath, struct qvl_err *err)
{
	struct json_doc doc = {0};
	struct hf_map_entry *e = NULL;
	char *text = NULL, **names = NULL;
	size_t len, n = 0;
	uint32_t wm;
	int rc;

	rc = qvl_read_file(ipath, HF_MAX_JSON, &text, &len, err);
	if (!rc)
		rc = json_parse(&doc, text, len, ipath, err);
	if (rc)
		goto out;
	wm = json_get(&doc, 0, "weight_map");
	if (wm == JSON_NONE || doc.tok[wm].type != JSON_OBJECT) {
		rc = qvl_errf(err, -EBADMSG, "%s: no weight_map object", ipath);
		goto out;
	}
	n = doc.tok[wm].count;
	if (n == 0) {
		rc = qvl_errf(err, -EBADMSG, "%s: weight_map is empty", ipath);
		goto out;
	}
	e = calloc(n, sizeof(*e));
	names = calloc(n, sizeof(*names));
	if (!e || !names) {
		rc = qvl_errf(err, -ENOMEM, "%s: out of memory", ipath);
		goto out;
	}
	rc = hf_index_entries(&doc, ipath, e, n, err);
	for (size_t i = 0; i < n && !rc;) {
		size_t j = i;
		char *path;

		while (j < n && !strcmp(e[j].file, e[i].file)) {
			names[j - i] = e[j].tensor;
			j++;
		}
		qsort(names, j - i, sizeof(*names), hf_str_cmp);
		path = qvl_path_join(dir, e[i].file);
		rc = path ? hf_load_file(m, path, names, j - i, err)
			  : qvl_errf(err, -ENOMEM, "out of memory");
		free(path);
		i = j;
	}
out:
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].tensor);
		free(e[i].file);
	}
	free(e);
	free(names);
	json_free(&doc);
	free(text);
	return rc;
}

int qvl_hf_open(struct qvl_model *m, const char *dir, struct qvl_err *err)
{
	char *single = NULL, *index = NULL;
	int rc;

	m->format = QVL_FMT_HF;
	rc = hf_configs(m, dir, err);
	if (rc)
		return rc;
	single = qvl_path_join(dir, "model.safetensors");
	index = qvl_path_join(dir, "model.safetensors.index.json");
	if (!single || !index)
		rc = qvl_errf(err, -ENOMEM, "out of memory");
	else if (access(index, F_OK) == 0)
		rc = hf_sharded(m, dir, index, err);
	else if (access(single, F_OK) == 0)
		rc = hf_load_file(m, single, NULL, 0, err);
	else
		rc = qvl_errf(err, -ENOENT,
			      "%s: no model.safetensors and no model.safetensors.index.json", dir);
	free(single);
	free(index);
	if (!rc)
		rc = qvl_model_finish(m, err);
	if (!rc)
		rc = qvl_model_check_tensors(m, err);
	return rc;
}
