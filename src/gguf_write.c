/* The GGUF writer: metadata as serialized blobs, tensor infos with offsets
 * computed up front, the header written in one go (see gguf_write.h). */
#include "gguf_write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_impl.h"

#define GGUF_W_ALIGN GGUF_DEFAULT_ALIGNMENT

void gguf_w_init(struct gguf_w *w)
{
	memset(w, 0, sizeof(*w));
}

void gguf_w_free(struct gguf_w *w)
{
	for (size_t i = 0; i < w->nkv; i++) {
		free(w->kv[i].key);
		free(w->kv[i].val);
	}
	for (size_t i = 0; i < w->nt; i++)
		free(w->t[i].name);
	free(w->kv);
	free(w->t);
	memset(w, 0, sizeof(*w));
}

static void w_fail(struct gguf_w *w, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void w_fail(struct gguf_w *w, int rc, const char *fmt, ...)
{
	va_list ap;

	if (w->rc)
		return;
	w->rc = rc;
	va_start(ap, fmt);
	vsnprintf(w->err.msg, sizeof(w->err.msg), fmt, ap);
	va_end(ap);
}

/* A growable byte buffer for one value. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void wb_put(struct wbuf *b, const void *src, size_t n)
{
	if (b->oom)
		return;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 64;
		uint8_t *p;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->oom = true;
				return;
			}
			cap *= 2;
		}
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void wb_le(struct wbuf *b, uint64_t v, int n)
{
	uint8_t le[8];

	for (int i = 0; i < n; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	wb_put(b, le, (size_t)n);
}

static void wb_str(struct wbuf *b, const char *s, size_t len)
{
	wb_le(b, len, 8);
	wb_put(b, s, len);
}

static long kv_find(const struct gguf_w *w, const char *key)
{
	for (size_t i = 0; i < w->nkv; i++)
		if (!strcmp(w->kv[i].key, key))
			return (long)i;
	return -1;
}

bool gguf_w_has(const struct gguf_w *w, const char *key)
{
	return kv_find(w, key) >= 0;
}

void gguf_w_remove(struct gguf_w *w, const char *key)
{
	long i = kv_find(w, key);

	if (i < 0)
		return;
	free(w->kv[i].key);
	free(w->kv[i].val);
	memmove(&w->kv[i], &w->kv[i + 1], (w->nkv - (size_t)i - 1) * sizeof(*w->kv));
	w->nkv--;
}

/* Take ownership of a serialized value (b) for key: replaces an old entry. */
static void kv_put(struct gguf_w *w, const char *key, struct wbuf *b)
{
	struct gguf_w_kv *kv;
	char *k = NULL;

	if (!w->rc && b->oom)
		w_fail(w, -ENOMEM, "out of memory for the value of %s", key);
	if (!w->rc && (!*key || strlen(key) > 1024))
		w_fail(w, -EINVAL, "GGUF key '%.64s': length outside 1..1024", key);
	if (!w->rc && !(k = strdup(key)))
		w_fail(w, -ENOMEM, "out of memory for key %s", key);
	if (!w->rc && w->nkv == w->capkv) {
		size_t cap = w->capkv ? 2 * w->capkv : 32;

		kv = realloc(w->kv, cap * sizeof(*kv));
		if (!kv)
			w_fail(w, -ENOMEM, "out of memory for key %s", key);
		else {
			w->kv = kv;
			w->capkv = cap;
		}
	}
	if (w->rc) {
		free(k);
		free(b->p);
		return;
	}
	gguf_w_remove(w, key);
	w->kv[w->nkv++] = (struct gguf_w_kv){.key = k, .val = b->p, .len = b->len};
}

void gguf_w_scalar(struct gguf_w *w, const char *key, enum gguf_type t, const void *le)
{
	struct wbuf b = {0};

	if ((unsigned)t >= GGUF_TYPE_COUNT || !gguf_type_size[t]) {
		w_fail(w, -EINVAL, "GGUF key %s: %s is not a scalar type", key, gguf_type_name(t));
		return;
	}
	wb_le(&b, t, 4);
	wb_put(&b, le, gguf_type_size[t]);
	kv_put(w, key, &b);
}

void gguf_w_u32(struct gguf_w *w, const char *key, uint32_t v)
{
	uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	gguf_w_scalar(w, key, GGUF_TYPE_UINT32, le);
}

void gguf_w_i32(struct gguf_w *w, const char *key, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};

	gguf_w_scalar(w, key, GGUF_TYPE_INT32, le);
}

void gguf_w_f32(struct gguf_w *w, const char *key, float v)
{
	uint32_t u;
	uint8_t le[4];

	memcpy(&u, &v, 4);
	for (int i = 0; i < 4; i++)
		le[i] = (uint8_t)(u >> (8 * i));
	gguf_w_scalar(w, key, GGUF_TYPE_FLOAT32, le);
}

void gguf_w_bool(struct gguf_w *w, const char *key, bool v)
{
	uint8_t b = v;

	gguf_w_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

void gguf_w_str(struct gguf_w *w, const char *key, const char *s, size_t len)
{
	struct wbuf b = {0};

	wb_le(&b, GGUF_TYPE_STRING, 4);
	wb_str(&b, s, len);
	kv_put(w, key, &b);
}

void gguf_w_arr(struct gguf_w *w, const char *key, enum gguf_type et, const void *le, uint64_t n)
{
	struct wbuf b = {0};
	uint64_t bytes;

	if ((unsigned)et >= GGUF_TYPE_COUNT || !gguf_type_size[et] ||
	    __builtin_mul_overflow(n, (uint64_t)gguf_type_size[et], &bytes) || bytes > SIZE_MAX) {
		w_fail(w, -EINVAL, "GGUF key %s: bad array of %" PRIu64 " %s", key, n,
		       gguf_type_name(et));
		return;
	}
	wb_le(&b, GGUF_TYPE_ARRAY, 4);
	wb_le(&b, et, 4);
	wb_le(&b, n, 8);
	wb_put(&b, le, (size_t)bytes);
	kv_put(w, key, &b);
}

void gguf_w_arr_str(struct gguf_w *w, const char *key, const char *const *s, const size_t *len,
		    uint64_t n)
{
	struct wbuf b = {0};

	wb_le(&b, GGUF_TYPE_ARRAY, 4);
	wb_le(&b, GGUF_TYPE_STRING, 4);
	wb_le(&b, n, 8);
	for (uint64_t i = 0; i < n; i++)
		wb_str(&b, s[i], len[i]);
	kv_put(w, key, &b);
}

void gguf_w_copy_kv(struct gguf_w *w, const struct gguf_file *f, size_t i)
{
	const struct gguf_kv *kv = &f->kv[i];
	struct wbuf b = {0};

	wb_le(&b, kv->type, 4);
	if (kv->type == GGUF_TYPE_STRING) {
		/* u64 length + bytes, already checked by the parser */
		wb_put(&b, kv->val, 8 + (size_t)gguf_le(kv->val, 8));
	} else if (kv->type != GGUF_TYPE_ARRAY) {
		wb_put(&b, kv->val, gguf_type_size[kv->type]);
	} else if (gguf_type_size[kv->arr.type]) {
		wb_put(&b, kv->val, 12 + (size_t)kv->arr.n * gguf_type_size[kv->arr.type]);
	} else if (kv->arr.type == GGUF_TYPE_STRING) {
		wb_put(&b, kv->val, 12);
		for (uint64_t j = 0; j < kv->arr.n; j++) {
			const uint8_t *e = kv->arr.data + kv->arr.off[j];

			wb_put(&b, e, 8 + (size_t)gguf_le(e, 8));
		}
	} else {
		free(b.p);
		w_fail(w, -ENOTSUP, "%s: key %s: nested arrays are not copied", f->what, kv->key);
		return;
	}
	kv_put(w, kv->key, &b);
}

long gguf_w_tensor(struct gguf_w *w, const char *name, uint32_t n_dims, const uint64_t *ne,
		   enum qvl_dtype dt)
{
	const struct qvl_dtype_info *di = qvl_dtype_info(dt);
	struct gguf_w_tensor *t;
	uint64_t n = 1, bytes, padded = 0, end;
	bool ok = di != NULL;

	for (uint32_t d = 0; d < n_dims && ok; d++)
		ok = ne[d] > 0 && !__builtin_mul_overflow(n, ne[d], &n);
	if (ok && (n_dims < 1 || n_dims > GGUF_MAX_DIMS || ne[0] % di->blk))
		ok = false;
	bytes = ok ? qvl_dtype_bytes(dt, n, &ok) : 0;
	ok = ok && !__builtin_add_overflow(bytes, GGUF_W_ALIGN - 1, &padded);
	padded &= ~(uint64_t)(GGUF_W_ALIGN - 1);
	ok = ok && !__builtin_add_overflow(w->data_size, padded, &end);
	if (!ok) {
		w_fail(w, -EINVAL, "tensor '%s': %s does not fit its shape (row of %" PRIu64 ")",
		       name, di ? di->name : "?", ne[0]);
		return -1;
	}
	for (size_t i = 0; i < w->nt; i++)
		if (!strcmp(w->t[i].name, name)) {
			w_fail(w, -EINVAL, "tensor '%s' written twice", name);
			return -1;
		}
	if (w->rc)
		return -1;
	if (w->nt == w->capt) {
		size_t cap = w->capt ? 2 * w->capt : 64;

		t = realloc(w->t, cap * sizeof(*t));
		if (!t) {
			w_fail(w, -ENOMEM, "out of memory for tensor '%s'", name);
			return -1;
		}
		w->t = t;
		w->capt = cap;
	}
	t = &w->t[w->nt];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	if (!t->name) {
		w_fail(w, -ENOMEM, "out of memory for tensor '%s'", name);
		return -1;
	}
	t->n_dims = n_dims;
	for (int d = 0; d < GGUF_MAX_DIMS; d++)
		t->ne[d] = d < (int)n_dims ? ne[d] : 1;
	t->ggml_type = di->ggml_type;
	t->nbytes = bytes;
	t->offset = w->data_size;
	w->data_size = end;
	return (long)w->nt++;
}

int gguf_w_write_all(int fd, const void *buf, size_t len, const char *path, struct qvl_err *err)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len > (1u << 30) ? 1u << 30 : len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return qvl_errf(err, n < 0 ? -errno : -EIO, "%s: write failed: %s", path,
					n < 0 ? strerror(errno) : "no progress");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int gguf_w_write_header(struct gguf_w *w, int fd, const char *path, struct qvl_err *err)
{
	struct wbuf b = {0};
	static const uint8_t zeros[GGUF_W_ALIGN];
	int rc;

	if (w->rc) {
		if (err)
			*err = w->err;
		return w->rc;
	}
	wb_put(&b, "GGUF", 4);
	wb_le(&b, 3, 4);
	wb_le(&b, w->nt, 8);
	wb_le(&b, w->nkv, 8);
	for (size_t i = 0; i < w->nkv; i++) {
		wb_str(&b, w->kv[i].key, strlen(w->kv[i].key));
		wb_put(&b, w->kv[i].val, w->kv[i].len);
	}
	for (size_t i = 0; i < w->nt; i++) {
		const struct gguf_w_tensor *t = &w->t[i];

		wb_str(&b, t->name, strlen(t->name));
		wb_le(&b, t->n_dims, 4);
		for (uint32_t d = 0; d < t->n_dims; d++)
			wb_le(&b, t->ne[d], 8);
		wb_le(&b, t->ggml_type, 4);
		wb_le(&b, t->offset, 8);
	}
	wb_put(&b, zeros, (GGUF_W_ALIGN - b.len % GGUF_W_ALIGN) % GGUF_W_ALIGN);
	if (b.oom) {
		free(b.p);
		return qvl_errf(err, -ENOMEM, "%s: out of memory for the GGUF header", path);
	}
	rc = gguf_w_write_all(fd, b.p, b.len, path, err);
	free(b.p);
	return rc;
}

int gguf_w_write_pad(const struct gguf_w *w, int fd, size_t i, const char *path,
		     struct qvl_err *err)
{
	static const uint8_t zeros[GGUF_W_ALIGN];
	size_t pad = (size_t)((GGUF_W_ALIGN - w->t[i].nbytes % GGUF_W_ALIGN) % GGUF_W_ALIGN);

	return gguf_w_write_all(fd, zeros, pad, path, err);
}
