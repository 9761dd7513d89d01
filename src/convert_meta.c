/* Metadata keys of a conversion from a Hugging Face directory, written in
 * the order and with the types convert_hf_to_gguf.py uses (gguf-py's
 * Metadata.load / set_gguf_meta_model, TextModel.set_gguf_parameters,
 * Qwen3VLTextModel, MmprojModel and Qwen3VLVisionModel). */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "json.h"
#include "util.h"

#define CV_MAX_JSON (64u << 20)

/* An optional JSON side file of dir: *ok false when absent or not valid
 * JSON (the converter ignores such a generation_config.json too). */
static int read_json(const char *dir, const char *name, char **text, struct json_doc *doc, bool *ok,
		     struct qvl_err *err)
{
	char *path = qvl_path_join(dir, name);
	size_t len;
	int rc = 0;

	*ok = false;
	*text = NULL;
	if (!path)
		return qvl_errf(err, -ENOMEM, "out of memory");
	if (access(path, F_OK) == 0) {
		rc = qvl_read_file(path, CV_MAX_JSON, text, &len, err);
		if (!rc && json_parse(doc, *text, len, path, NULL) == 0)
			*ok = true;
	}
	free(path);
	return rc;
}

/* Python's str.title() and islower() on ASCII (other bytes are left). */
static void title_word(char *w)
{
	bool prev_cased = false;

	for (; *w; w++) {
		bool cased = isalpha((unsigned char)*w);

		if (cased)
			*w = (char)(prev_cased ? tolower((unsigned char)*w)
					       : toupper((unsigned char)*w));
		prev_cased = cased;
	}
}

static bool is_lower(const char *w)
{
	bool any = false;

	for (; *w; w++) {
		if (isupper((unsigned char)*w))
			return false;
		any |= islower((unsigned char)*w) != 0;
	}
	return any;
}

/* re '^(v\d+(?:\.\d+)*|\d.*)$': a version or something starting with a digit */
static bool is_version(const char *w)
{
	if (isdigit((unsigned char)*w))
		return true;
	if (*w != 'v' || !isdigit((unsigned char)w[1]))
		return false;
	for (w++; *w; w++)
		if (!isdigit((unsigned char)*w) && !(*w == '.' && isdigit((unsigned char)w[1])))
			return false;
	return true;
}

/* Metadata.id_to_title: '-' to spaces, lower-case words title-cased. */
static void id_to_title(const char *id, char *out, size_t cap)
{
	char buf[512], *save = NULL, *w;
	size_t o = 0;

	snprintf(buf, sizeof(buf), "%s", id);
	for (char *p = buf; *p; p++)
		if (*p == '-')
			*p = ' ';
	out[0] = 0;
	for (w = strtok_r(buf, " \t\n\r\f\v", &save); w; w = strtok_r(NULL, " \t\n\r\f\v", &save)) {
		if (is_lower(w) && !is_version(w))
			title_word(w);
		o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", o ? " " : "", w);
		if (o >= cap)
			break;
	}
}

/* gguf-py's model_weight_count_rounded_notation(n, min_digits=2) */
static void size_label(uint64_t n, char *out, size_t cap)
{
	double s, r;
	char suffix;
	int digits = 0, fix;

	if (n > 1e12) {
		s = (double)n * 1e-12;
		suffix = 'T';
	} else if (n > 1e9) {
		s = (double)n * 1e-9;
		suffix = 'B';
	} else if (n > 1e6) {
		s = (double)n * 1e-6;
		suffix = 'M';
	} else {
		s = (double)n * 1e-3;
		suffix = 'K';
	}
	for (r = nearbyint(s); r >= 1; r = floor(r / 10))
		digits++;
	fix = digits < 2 ? 2 - digits : 0;
	snprintf(out, cap, "%.*f%c", fix, s, suffix);
}

static void sampling(struct gguf_w *w, const struct json_doc *d)
{
	static const char *const keys[][2] = {
	    {"top_p", "general.sampling.top_p"},
	    {"min_p", "general.sampling.min_p"},
	    {"temperature", "general.sampling.temp"},
	};
	uint32_t v = json_get(d, 0, "top_k");
	int64_t k;
	double x;

	if (v != JSON_NONE && !json_int64(d, v, &k) && k >= INT32_MIN && k <= INT32_MAX)
		gguf_w_i32(w, "general.sampling.top_k", (int32_t)k);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		v = json_get(d, 0, keys[i][0]);
		if (v != JSON_NONE && !json_double(d, v, &x))
			gguf_w_f32(w, keys[i][1], (float)x);
	}
}

/* The model's name: config.json's _name_or_path when it is a model id
 * (at most one '/'), else the directory's name. */
static void model_name(struct gguf_w *w, const char *dir, struct qvl_err *err)
{
	char *text = NULL, *id = NULL, name[512], *real = realpath(dir, NULL);
	struct json_doc d = {0};
	const char *base, *slash;
	bool ok;
	uint32_t v;

	if (!read_json(dir, "config.json", &text, &d, &ok, err) && ok &&
	    (v = json_get(&d, 0, "_name_or_path")) != JSON_NONE && d.tok[v].type == JSON_STRING)
		id = json_strdup(&d, v, NULL);
	if (id && *id && (!(slash = strchr(id, '/')) || !strchr(slash + 1, '/'))) {
		slash = strchr(id, '/');
		id_to_title(slash ? slash + 1 : id, name, sizeof(name));
		gguf_w_str(w, "general.name", name, strlen(name));
		if (slash && slash != id && id[0] != '.') {
			char org[256];

			snprintf(org, sizeof(org), "%.*s", (int)(slash - id), id);
			id_to_title(org, name, sizeof(name));
			gguf_w_str(w, "general.organization", name, strlen(name));
		}
	} else {
		/* the name as given (pathlib's Path.name: trailing slashes dropped,
		 * symlinks not followed); "." and ".." through realpath */
		char given[512];
		size_t n;

		snprintf(given, sizeof(given), "%s", dir);
		for (n = strlen(given); n > 1 && given[n - 1] == '/'; n--)
			given[n - 1] = 0;
		base = strrchr(given, '/');
		base = base ? base + 1 : given;
		if ((!strcmp(base, ".") || !strcmp(base, "..")) && real && strrchr(real, '/'))
			base = strrchr(real, '/') + 1;
		id_to_title(base, name, sizeof(name));
		gguf_w_str(w, "general.name", name, strlen(name));
	}
	free(id);
	free(real);
	if (ok)
		json_free(&d);
	free(text);
}

int cv_meta_general(struct gguf_w *w, const char *dir, const char *arch, const char *type,
		    uint64_t n_params, struct qvl_err *err)
{
	char *text = NULL, label[32];
	struct json_doc d = {0};
	bool ok;
	int rc;

	gguf_w_str(w, "general.architecture", arch, strlen(arch));
	gguf_w_str(w, "general.type", type, strlen(type));
	rc = read_json(dir, "generation_config.json", &text, &d, &ok, err);
	if (rc)
		return rc;
	if (ok && d.tok[0].type == JSON_OBJECT)
		sampling(w, &d);
	if (ok)
		json_free(&d);
	free(text);
	model_name(w, dir, err);
	size_label(n_params, label, sizeof(label));
	gguf_w_str(w, "general.size_label", label, strlen(label));
	return 0;
}

void cv_meta_text(struct gguf_w *w, const struct qvl_config *c, uint32_t ftype)
{
	const struct qvl_text_config *t = &c->text;
	int32_t sec[4] = {t->mrope_section[0], t->mrope_section[1], t->mrope_section[2], 0};
	uint8_t le[16];

	gguf_w_u32(w, "qwen3vl.block_count", (uint32_t)t->num_layers);
	gguf_w_u32(w, "qwen3vl.context_length", (uint32_t)t->max_position);
	gguf_w_u32(w, "qwen3vl.embedding_length", (uint32_t)t->hidden_size);
	gguf_w_u32(w, "qwen3vl.feed_forward_length", (uint32_t)t->intermediate_size);
	gguf_w_u32(w, "qwen3vl.attention.head_count", (uint32_t)t->num_heads);
	gguf_w_u32(w, "qwen3vl.attention.head_count_kv", (uint32_t)t->num_kv_heads);
	for (int i = 0; i < 16; i++)
		le[i] = (uint8_t)((uint32_t)sec[i / 4] >> (8 * (i % 4)));
	gguf_w_arr(w, "qwen3vl.rope.dimension_sections", GGUF_TYPE_INT32, le, 4);
	gguf_w_f32(w, "qwen3vl.rope.freq_base", (float)t->rope_theta);
	gguf_w_f32(w, "qwen3vl.attention.layer_norm_rms_epsilon", (float)t->rms_norm_eps);
	gguf_w_u32(w, "qwen3vl.attention.key_length", (uint32_t)t->head_dim);
	gguf_w_u32(w, "qwen3vl.attention.value_length", (uint32_t)t->head_dim);
	gguf_w_u32(w, "general.file_type", ftype);
	gguf_w_u32(w, "qwen3vl.n_deepstack_layers",
		   c->vision.present ? (uint32_t)c->vision.n_deepstack : 0);
}

void cv_meta_mmproj(struct gguf_w *w, const struct qvl_model *m, uint32_t ftype)
{
	const struct qvl_vision_config *v = &m->config.vision;
	uint8_t le[12], ds[QVL_MAX_DEEPSTACK * 128] = {0};
	const double *ms[2] = {m->preproc.image_mean, m->preproc.image_std};
	static const char *const mkeys[2] = {"clip.vision.image_mean", "clip.vision.image_std"};

	gguf_w_u32(w, "general.file_type", ftype);
	gguf_w_bool(w, "clip.has_vision_encoder", true);
	gguf_w_u32(w, "clip.vision.projection_dim", (uint32_t)m->config.text.hidden_size);
	/* the converter derives it: int(sqrt(num_position_embeddings) * patch) */
	gguf_w_u32(w, "clip.vision.image_size",
		   (uint32_t)(sqrt((double)v->num_position_embeddings) * v->patch_size));
	gguf_w_u32(w, "clip.vision.patch_size", (uint32_t)v->patch_size);
	gguf_w_u32(w, "clip.vision.embedding_length", (uint32_t)v->hidden_size);
	gguf_w_u32(w, "clip.vision.feed_forward_length", (uint32_t)v->intermediate_size);
	gguf_w_u32(w, "clip.vision.block_count", (uint32_t)v->depth);
	gguf_w_u32(w, "clip.vision.attention.head_count", (uint32_t)v->num_heads);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 3; i++) {
			float f = (float)ms[k][i];
			uint32_t u;

			memcpy(&u, &f, 4);
			for (int b = 0; b < 4; b++)
				le[4 * i + b] = (uint8_t)(u >> (8 * b));
		}
		gguf_w_arr(w, mkeys[k], GGUF_TYPE_FLOAT32, le, 3);
	}
	gguf_w_str(w, "clip.projector_type", "qwen3vl_merger", 14);
	gguf_w_bool(w, "clip.use_gelu", true);
	gguf_w_u32(w, "clip.vision.spatial_merge_size", (uint32_t)v->spatial_merge_size);
	/* copied from the text model's rms_norm_eps, as the converter does */
	gguf_w_f32(w, "clip.vision.attention.layer_norm_epsilon",
		   (float)m->config.text.rms_norm_eps);
	if (v->depth > 0 && (size_t)v->depth <= sizeof(ds)) {
		for (int k = 0; k < v->n_deepstack; k++)
			if (v->deepstack_indexes[k] >= 0 && v->deepstack_indexes[k] < v->depth)
				ds[v->deepstack_indexes[k]] = 1;
		gguf_w_arr(w, "clip.vision.is_deepstack_layers", GGUF_TYPE_BOOL, ds,
			   (uint64_t)v->depth);
	}
}
