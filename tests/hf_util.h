/* Helpers for the model reader tests: scratch directories, writing files,
 * and a small safetensors writer that follows the official layout
 * (testmodel.md §6: compact header, __metadata__ first, space padding to a
 * multiple of 8, contiguous data). Header-only; every function is static. */
#ifndef QVL_TESTS_HF_UTIL_H
#define QVL_TESTS_HF_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "util.h"

static int tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void tu_rmtree(const char *dir)
{
	nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh scratch directory under $QVL_BUILDDIR/tests/tmp (or /tmp). */
static inline char *tu_tmpdir(const char *tag)
{
	const char *b = getenv("QVL_BUILDDIR");
	char base[4096], *path;

	if (b && *b) {
		snprintf(base, sizeof(base), "%s/tests", b);
		mkdir(base, 0755);
		snprintf(base, sizeof(base), "%s/tests/tmp", b);
		mkdir(base, 0755);
	} else {
		snprintf(base, sizeof(base), "/tmp");
	}
	if (asprintf(&path, "%s/%s-XXXXXX", base, tag) < 0)
		return NULL;
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static inline int tu_write(const char *dir, const char *name, const void *data, size_t len)
{
	char *p = qvl_path_join(dir, name);
	FILE *f = p ? fopen(p, "wb") : NULL;
	int rc = -1;

	if (f) {
		rc = (len == 0 || fwrite(data, 1, len, f) == len) ? 0 : -1;
		if (fclose(f))
			rc = -1;
	}
	free(p);
	return rc;
}

static inline int tu_write_str(const char *dir, const char *name, const char *s)
{
	return tu_write(dir, name, s, strlen(s));
}

/* The tiny model: $QVL_TINY if generated, else $QVL_SHARED/models/qvl-tiny. */
static inline const char *tu_tiny_dir(void)
{
	static char buf[4096];
	const char *t = getenv("QVL_TINY"), *s = getenv("QVL_SHARED");

	if (t && *t) {
		snprintf(buf, sizeof(buf), "%s/model.safetensors", t);
		if (access(buf, R_OK) == 0) {
			snprintf(buf, sizeof(buf), "%s", t);
			return buf;
		}
	}
	if (s && *s) {
		snprintf(buf, sizeof(buf), "%s/models/qvl-tiny/model.safetensors", s);
		if (access(buf, R_OK) == 0) {
			snprintf(buf, sizeof(buf), "%s/models/qvl-tiny", s);
			return buf;
		}
	}
	return NULL;
}

/* A growing string buffer. */
struct tu_buf {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static inline void tu_printf(struct tu_buf *b,
								   const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort(); /* test helper: out of memory is fatal */
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Write a safetensors file holding tensors t[0..n) in that order. */
static inline int tu_write_st(const char *dir, const char *name, const struct qvl_tensor *const *t,
			      size_t n)
{
	struct tu_buf h = {0};
	uint64_t off = 0, hlen;
	char *p = qvl_path_join(dir, name);
	FILE *f = p ? fopen(p, "wb") : NULL;
	int rc = 0;

	free(p);
	if (!f)
		return -1;
	tu_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (size_t i = 0; i < n; i++) {
		tu_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i]->name,
			  qvl_dtype_name(t[i]->dtype));
		for (int d = 0; d < t[i]->ndim; d++)
			tu_printf(&h, "%s%" PRId64, d ? "," : "", t[i]->shape[d]);
		tu_printf(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off,
			  off + t[i]->nbytes);
		off += t[i]->nbytes;
	}
	tu_printf(&h, "}");
	while (h.len % 8)
		tu_printf(&h, " ");
	hlen = h.len;
	if (fwrite(&hlen, 8, 1, f) != 1 || fwrite(h.p, 1, h.len, f) != h.len)
		rc = -1;
	for (size_t i = 0; i < n && !rc; i++)
		if (t[i]->nbytes && fwrite(t[i]->data, 1, t[i]->nbytes, f) != t[i]->nbytes)
			rc = -1;
	if (fclose(f))
		rc = -1;
	free(h.p);
	return rc;
}

/* A safetensors file from a literal header and `data_len` zero bytes. */
static inline int tu_write_raw_st(const char *dir, const char *name, const char *header,
				  size_t data_len)
{
	size_t hl = strlen(header), total = 8 + hl + data_len;
	uint8_t *buf = calloc(1, total);
	uint64_t n = hl;
	int rc;

	if (!buf)
		return -1;
	memcpy(buf, &n, 8);
	memcpy(buf + 8, header, hl);
	rc = tu_write(dir, name, buf, total);
	free(buf);
	return rc;
}

static inline uint16_t tu_u16(const struct qvl_tensor *t, size_t i)
{
	uint16_t v;

	memcpy(&v, (const uint8_t *)t->data + 2 * i, 2);
	return v;
}

#endif
