/* A tiny GGUF writer for tests: builds files byte by byte in memory so that
 * tests can make both valid files and every kind of malformed one. Little-
 * endian host assumed (x86-64). Header-only on purpose. */
#ifndef QVL_TEST_GGUF_WRITER_H
#define QVL_TEST_GGUF_WRITER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct gw {
	uint8_t *buf;
	size_t len, cap;
};

static inline void gw_bytes(struct gw *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;

		while (cap < w->len + n)
			cap *= 2;
		w->buf = realloc(w->buf, cap);
		if (!w->buf)
			abort();
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static inline void gw_u8(struct gw *w, uint8_t v)
{
	gw_bytes(w, &v, 1);
}
static inline void gw_u32(struct gw *w, uint32_t v)
{
	gw_bytes(w, &v, 4);
}
static inline void gw_u64(struct gw *w, uint64_t v)
{
	gw_bytes(w, &v, 8);
}
static inline void gw_f32(struct gw *w, float v)
{
	gw_bytes(w, &v, 4);
}

static inline void gw_strn(struct gw *w, const char *s, size_t n)
{
	gw_u64(w, n);
	gw_bytes(w, s, n);
}

static inline void gw_str(struct gw *w, const char *s)
{
	gw_strn(w, s, strlen(s));
}

static inline void gw_header(struct gw *w, uint32_t version, uint64_t nt, uint64_t nkv)
{
	gw_bytes(w, "GGUF", 4);
	gw_u32(w, version);
	gw_u64(w, nt);
	gw_u64(w, nkv);
}

/* key + value type; the caller writes the value */
static inline void gw_key(struct gw *w, const char *key, uint32_t type)
{
	gw_str(w, key);
	gw_u32(w, type);
}

static inline void gw_kv_u32(struct gw *w, const char *key, uint32_t v)
{
	gw_key(w, key, 4);
	gw_u32(w, v);
}

static inline void gw_kv_str(struct gw *w, const char *key, const char *v)
{
	gw_key(w, key, 8);
	gw_str(w, v);
}

static inline void gw_tensor(struct gw *w, const char *name, uint32_t ndim, const uint64_t *ne,
			     uint32_t type, uint64_t offset)
{
	gw_str(w, name);
	gw_u32(w, ndim);
	for (uint32_t i = 0; i < ndim; i++)
		gw_u64(w, ne[i]);
	gw_u32(w, type);
	gw_u64(w, offset);
}

static inline void gw_pad(struct gw *w, size_t align)
{
	while (w->len % align)
		gw_u8(w, 0);
}

#endif
