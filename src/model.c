/* The internal model description shared by every reader: opening by path
 * (dispatch to the HF or GGUF reader), the sorted tensor table, and the check
 * that the table is exactly what the config implies. */
#define _GNU_SOURCE
#include "model.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "gguf.h"
#include "pack.h"
#include "quant.h"
#include "util.h"

const struct qvl_dtype_info qvl_dtype_table[QVL_DT_COUNT] = {
    [QVL_DT_F32] = {"F32", 1, 4, 0},	     [QVL_DT_F16] = {"F16", 1, 2, 1},
    [QVL_DT_BF16] = {"BF16", 1, 2, 30},	     [QVL_DT_Q8_0] = {"Q8_0", 32, 34, 8},
    [QVL_DT_Q4_0] = {"Q4_0", 32, 18, 2},     [QVL_DT_Q4_1] = {"Q4_1", 32, 20, 3},
    [QVL_DT_Q5_0] = {"Q5_0", 32, 22, 6},     [QVL_DT_Q5_1] = {"Q5_1", 32, 24, 7},
    [QVL_DT_Q2_K] = {"Q2_K", 256, 84, 10},   [QVL_DT_Q3_K] = {"Q3_K", 256, 110, 11},
    [QVL_DT_Q4_K] = {"Q4_K", 256, 144, 12},  [QVL_DT_Q5_K] = {"Q5_K", 256, 176, 13},
    [QVL_DT_Q6_K] = {"Q6_K", 256, 210, 14},  [QVL_DT_IQ4_NL] = {"IQ4_NL", 32, 18, 20},
    [QVL_DT_IQ4_XS] = {"IQ4_XS", 256, 136, 23},
};

const struct qvl_dtype_info *qvl_dtype_info(enum qvl_dtype dt)
{
	return (unsigned)dt < QVL_DT_COUNT ? &qvl_dtype_table[dt] : NULL;
}

int qvl_dtype_from_ggml(uint32_t ggml_type)
{
	for (int i = 0; i < QVL_DT_COUNT; i++)
		if (qvl_dtype_table[i].ggml_type == ggml_type)
			return i;
	return -1;
}

const char *qvl_dtype_name(enum qvl_dtype dt)
{
	return (unsigned)dt < QVL_DT_COUNT ? qvl_dtype_table[dt].name : "?";
}

uint64_t qvl_dtype_bytes(enum qvl_dtype dt, uint64_t n, bool *ok)
{
	const struct qvl_dtype_info *di = qvl_dtype_info(dt);
	uint64_t r = 0;
	bool good = di && n % di->blk == 0 && !__builtin_mul_overflow(n / di->blk, di->blk_bytes, &r);

	if (ok)
		*ok = good;
	return good ? r : 0;
}

const char *qvl_format_name(enum qvl_format f)
{
	switch (f) {
	case QVL_FMT_HF:
		return "hf";
	case QVL_FMT_GGUF:
		return "gguf";
	case QVL_FMT_PACK:
		return "pack";
	}
	return "?";
}

/* ---- opening ------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A GGUF directory: exactly one text .gguf and at most one mmproj*.gguf. */
static int open_gguf_dir(struct qvl_model *m, const char *dir, const char *mmproj,
			 struct qvl_err *err)
{
	char *text = NULL, *proj = NULL;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	d = opendir(dir);
	if (!d)
		return qvl_errf(err, -errno, "%s: cannot open directory: %s", dir, strerror(errno));
	while ((de = readdir(d)) && !rc) {
		char **slot;

		if (!ends_with(de->d_name, ".gguf"))
			continue;
		slot = !strncmp(de->d_name, "mmproj", 6) ? &proj : &text;
		if (*slot)
			rc = qvl_errf(err, -EINVAL,
				      "%s: ambiguous: both %s and %s are %s GGUF files; name the "
				      "text .gguf file (and --mmproj) instead of the directory",
				      dir, strrchr(*slot, '/') + 1, de->d_name,
				      slot == &proj ? "mmproj" : "text");
		else if (!(*slot = qvl_path_join(dir, de->d_name)))
			rc = qvl_errf(err, -ENOMEM, "%s: out of memory", dir);
	}
	closedir(d);
	if (!rc && !text)
		rc = qvl_errf(err, -ENOENT,
			      "%s: not a model directory: no config.json and no text .gguf file",
			      dir);
	if (!rc)
		rc = qvl_gguf_open(m, text, mmproj ? mmproj : proj, err);
	free(text);
	free(proj);
	return rc;
}

int qvl_model_open(struct qvl_model **out, const char *path, const char *mmproj,
		   struct qvl_err *err)
{
	struct qvl_model *m;
	struct stat st;
	int rc;

	*out = NULL;
	if (stat(path, &st) < 0)
		return qvl_errf(err, -errno, "%s: %s", path, strerror(errno));
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	if (S_ISDIR(st.st_mode)) {
		char *cfg = qvl_path_join(path, "config.json");

		if (!cfg) {
			rc = qvl_errf(err, -ENOMEM, "%s: out of memory", path);
		} else if (is_file(cfg)) {
			m->format = QVL_FMT_HF;
			rc = mmproj
				 ? qvl_errf(err, -EINVAL,
					    "%s: --mmproj only applies to GGUF models; a Hugging "
					    "Face directory holds its vision weights",
					    path)
				 : qvl_hf_open(m, path, err);
		} else {
			m->format = QVL_FMT_GGUF;
			rc = open_gguf_dir(m, path, mmproj, err);
		}
		free(cfg);
	} else if (S_ISREG(st.st_mode) && ends_with(path, ".gguf")) {
		m->format = QVL_FMT_GGUF;
		rc = qvl_gguf_open(m, path, mmproj, err);
	} else if (S_ISREG(st.st_mode) && ends_with(path, ".qvl")) {
		rc = mmproj ? qvl_errf(err, -EINVAL, "%s: --mmproj does not apply to a pack, which "
				       "holds its vision weights", path)
			    : qvl_pack_open(m, path, err);
	} else if (ends_with(path, ".safetensors") || ends_with(path, ".json")) {
		rc = qvl_errf(err, -EINVAL,
			      "%s: a Hugging Face model is named by its directory, not by one of "
			      "its files",
			      path);
	} else {
		rc = qvl_errf(err, -EINVAL,
			      "%s: not a model: expected a Hugging Face directory (config.json + "
			      "safetensors), a directory of GGUF files, a .gguf file or a .qvl pack",
			      path);
	}
	if (rc) {
		qvl_model_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

int qvl_model_describe(struct qvl_model **out, const char *path, const char *mmproj,
		       struct qvl_err *err)
{
	/* a 2b pack is 4.27 GB of shards behind a head of a few MB */
	if (!mmproj && ends_with(path, ".qvl") && is_file(path))
		return qvl_pack_describe(out, path, err);
	return qvl_model_open(out, path, mmproj, err);
}

bool qvl_model_file_page(const struct qvl_model *m, const void *p)
{
	const uint8_t *q = p;

	for (size_t i = 0; i < m->nsources; i++) {
		const uint8_t *b = m->sources[i].map;
		if (b && q >= b && q < b + m->sources[i].size)
			return !m->sources[i].anon;
	}
	return false;
}

void qvl_model_drop_pages(const void *p, size_t bytes)
{
	const uintptr_t page = 4096;
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t z = ((uintptr_t)p + bytes) & ~(page - 1);

	if (z > a)
		(void)madvise((void *)a, z - a, MADV_DONTNEED);
}

void qvl_model_close(struct qvl_model *m)
{
	if (!m)
		return;
	if (m->release)
		m->release(m);
	if (m->gguf_text)
		gguf_close(m->gguf_text);
	if (m->gguf_mmproj)
		gguf_close(m->gguf_mmproj);
	for (size_t i = 0; i < m->ntensors; i++)
		free((char *)m->tensors[i].name);
	free(m->tensors);
	for (size_t i = 0; i < m->nsources; i++) {
		if (m->sources[i].map && m->sources[i].size)
			munmap(m->sources[i].map, m->sources[i].size);
		free(m->sources[i].path);
	}
	free(m->sources);
	for (size_t i = 0; i < m->nowned; i++)
		free(m->owned[i]);
	free(m->owned);
	free(m->tokenizer_json_path);
	free(m->path);
	free(m);
}

int qvl_model_add_source(struct qvl_model *m, const char *path, void *map, size_t size,
			 struct qvl_err *err)
{
	struct qvl_source *s;
	char *p = strdup(path);

	s = p ? realloc(m->sources, (m->nsources + 1) * sizeof(*s)) : NULL;
	if (!s) {
		free(p);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	m->sources = s;
	s[m->nsources].path = p;
	s[m->nsources].map = map;
	s[m->nsources].size = size;
	s[m->nsources].anon = false;
	return (int)m->nsources++;
}

/* ---- the tensor table --------------------------------------------------- */

int qvl_model_add_tensor(struct qvl_model *m, const struct qvl_tensor *t, struct qvl_err *err)
{
	const char *src = t->source >= 0 && (size_t)t->source < m->nsources
			      ? m->sources[t->source].path
			      : m->path;
	uint64_t n = 1, want;
	struct qvl_tensor *nt;
	bool ok;

	if (t->ndim < 0 || t->ndim > QVL_MAX_DIMS)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': %d dimensions (at most %d)", src,
				t->name, t->ndim, QVL_MAX_DIMS);
	for (int d = 0; d < t->ndim; d++)
		if (t->shape[d] < 0 || __builtin_mul_overflow(n, (uint64_t)t->shape[d], &n))
			return qvl_errf(err, -EBADMSG, "%s: tensor '%s': bad shape", src, t->name);
	want = qvl_dtype_bytes(t->dtype, n, &ok);
	if (n != t->nelem || !ok || want != t->nbytes)
		return qvl_errf(err, -EBADMSG,
				"%s: tensor '%s': %" PRIu64 " bytes of %s do not hold its %" PRIu64
				" elements",
				src, t->name, t->nbytes, qvl_dtype_name(t->dtype), n);
	if ((m->ntensors & (m->ntensors - 1)) == 0) {
		size_t cap = m->ntensors ? 2 * m->ntensors : 64;

		nt = realloc(m->tensors, cap * sizeof(*nt));
		if (!nt)
			return qvl_errf(err, -ENOMEM, "%s: out of memory", src);
		m->tensors = nt;
	}
	nt = &m->tensors[m->ntensors];
	*nt = *t;
	nt->name = strdup(t->name);
	if (!nt->name)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", src);
	m->ntensors++;
	return 0;
}

static int tensor_cmp(const void *a, const void *b)
{
	return strcmp(((const struct qvl_tensor *)a)->name, ((const struct qvl_tensor *)b)->name);
}

int qvl_model_finish(struct qvl_model *m, struct qvl_err *err)
{
	if (m->ntensors > 1)
		qsort(m->tensors, m->ntensors, sizeof(*m->tensors), tensor_cmp);
	for (size_t i = 1; i < m->ntensors; i++) {
		const struct qvl_tensor *a = &m->tensors[i - 1], *b = &m->tensors[i];

		if (!strcmp(a->name, b->name))
			return qvl_errf(
			    err, -EBADMSG, "%s: duplicate tensor '%s' (in %s and %s)", m->path,
			    a->name,
			    (size_t)a->source < m->nsources ? m->sources[a->source].path : "?",
			    (size_t)b->source < m->nsources ? m->sources[b->source].path : "?");
	}
	return 0;
}

const struct qvl_tensor *qvl_model_find(const struct qvl_model *m, const char *name)
{
	size_t lo = 0, hi = m->ntensors;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->tensors[mid].name, name);

		if (!c)
			return &m->tensors[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct qvl_tensor *qvl_model_findf(const struct qvl_model *m, const char *fmt, ...)
{
	char name[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(name))
		return NULL;
	return qvl_model_find(m, name);
}

/* ---- conversion ----------------------------------------------------------- */

static float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	uint32_t bits;
	float f;

	if (exp == 0x1f) {
		bits = sign | 0x7f800000 | man << 13; /* inf / nan */
	} else if (exp) {
		bits = sign | (exp + 112) << 23 | man << 13;
	} else if (man) {
		/* subnormal half: value is man * 2^-24, exact in float */
		f = (float)man * 0x1p-24f;
		return sign ? -f : f;
	} else {
		bits = sign;
	}
	memcpy(&f, &bits, 4);
	return f;
}

int qvl_tensor_to_f32(const struct qvl_tensor *t, uint64_t first, uint64_t n, float *out)
{
	const uint8_t *p = t->data;
	uint64_t end;

	if (__builtin_add_overflow(first, n, &end) || end > t->nelem)
		return -ERANGE;
	switch (t->dtype) {
	case QVL_DT_F32:
		memcpy(out, p + first * 4, n * 4);
		return 0;
	case QVL_DT_F16:
		for (uint64_t i = 0; i < n; i++) {
			uint16_t h;

			memcpy(&h, p + (first + i) * 2, 2);
			out[i] = f16_to_f32(h);
		}
		return 0;
	case QVL_DT_BF16:
		for (uint64_t i = 0; i < n; i++) {
			uint16_t h;
			uint32_t b;

			memcpy(&h, p + (first + i) * 2, 2);
			b = (uint32_t)h << 16;
			memcpy(&out[i], &b, 4);
		}
		return 0;
	default: {
		/* block types: whole blocks only */
		const struct qvl_dtype_info *di = qvl_dtype_info(t->dtype);

		if (!di || first % di->blk || n % di->blk)
			return -EINVAL;
		return qvl_dequant_row(t->dtype, p + first / di->blk * di->blk_bytes, out, n);
	}
	}
}
