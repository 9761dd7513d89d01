/* GGUF parsing and validation (format: ggml's docs/gguf.md, versions 2 and 3).
 * The whole file is untrusted: every count is bounded by what the remaining
 * bytes could hold before anything is allocated, and every size and offset is
 * computed with overflow-checked arithmetic before it is used to index. */
#include "gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "gguf_impl.h"
#include "util.h"

/* Longest key or tensor name accepted (ggml's own limit for names is 64). */
#define GGUF_MAX_NAME 1024

/* Parsing cursor. */
struct gguf_rd {
	struct gguf_file *f;
	size_t pos;
	struct qvl_err *err;
};

static const char *const gguf_type_names[GGUF_TYPE_COUNT] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",	"float32",
    "bool",  "string", "array",	 "uint64", "int64",  "float64",
};

const uint8_t gguf_type_size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static const char *const ggml_type_names[] = {
    [0] = "F32",     [1] = "F16",      [2] = "Q4_0",   [3] = "Q4_1",	[6] = "Q5_0",
    [7] = "Q5_1",    [8] = "Q8_0",     [9] = "Q8_1",   [10] = "Q2_K",	[11] = "Q3_K",
    [12] = "Q4_K",   [13] = "Q5_K",    [14] = "Q6_K",  [15] = "Q8_K",	[16] = "IQ2_XXS",
    [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S", [20] = "IQ4_NL", [21] = "IQ3_S",
    [22] = "IQ2_S",  [23] = "IQ4_XS",  [24] = "I8",    [25] = "I16",	[26] = "I32",
    [27] = "I64",    [28] = "F64",     [29] = "IQ1_M", [30] = "BF16",	[34] = "TQ1_0",
    [35] = "TQ2_0",  [39] = "MXFP4",
};

const char *gguf_type_name(enum gguf_type t)
{
	return (unsigned)t < GGUF_TYPE_COUNT ? gguf_type_names[t] : "?";
}

const char *gguf_ggml_type_name(uint32_t t)
{
	if (t < sizeof(ggml_type_names) / sizeof(ggml_type_names[0]) && ggml_type_names[t])
		return ggml_type_names[t];
	return "?";
}

/* Untrusted bytes in an error message: printable ASCII kept, the rest
 * escaped, cut at ~60 characters. */
static const char *gguf_printable(const uint8_t *s, size_t n, char *buf, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (o + 8 >= cap || o >= 60) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			buf[o++] = (char)s[i];
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", s[i]);
	}
	buf[o] = 0;
	return buf;
}

static bool gguf_utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);

		if (k <= 0 || cp == 0)
			return false;
		i += (size_t)k;
	}
	return true;
}

static int rd_need(struct gguf_rd *r, uint64_t n, const char *field)
{
	if (n > r->f->size - r->pos)
		return qvl_errf(r->err, -EBADMSG,
				"%s: truncated: %s needs %" PRIu64
				" bytes at offset %zu, file is %zu bytes",
				r->f->what, field, n, r->pos, r->f->size);
	return 0;
}

static int rd_u32(struct gguf_rd *r, uint32_t *v, const char *field)
{
	int rc = rd_need(r, 4, field);

	if (rc)
		return rc;
	*v = (uint32_t)gguf_le(r->f->buf + r->pos, 4);
	r->pos += 4;
	return 0;
}

static int rd_u64(struct gguf_rd *r, uint64_t *v, const char *field)
{
	int rc = rd_need(r, 8, field);

	if (rc)
		return rc;
	*v = gguf_le(r->f->buf + r->pos, 8);
	r->pos += 8;
	return 0;
}

/* A string: u64 length then bytes. *s points into the buffer. */
static int rd_str(struct gguf_rd *r, const uint8_t **s, uint64_t *len, const char *field)
{
	int rc = rd_u64(r, len, field);

	if (rc)
		return rc;
	if (*len > r->f->size - r->pos)
		return qvl_errf(r->err, -EBADMSG,
				"%s: %s: string length %" PRIu64
				" at offset %zu runs past end of file (%zu bytes)",
				r->f->what, field, *len, r->pos - 8, r->f->size);
	*s = r->f->buf + r->pos;
	r->pos += *len;
	return 0;
}

/* A key or tensor name: non-empty, bounded, valid UTF-8 without NUL; copied. */
static int rd_name(struct gguf_rd *r, char **out, const char *field)
{
	const uint8_t *s = NULL;
	uint64_t len;
	char pb[96];
	int rc = rd_str(r, &s, &len, field);

	if (rc)
		return rc;
	if (len == 0 || len > GGUF_MAX_NAME)
		return qvl_errf(r->err, -EBADMSG,
				"%s: %s at offset %zu: length %" PRIu64 " outside 1..%d",
				r->f->what, field, r->pos - len - 8, len, GGUF_MAX_NAME);
	if (!gguf_utf8_ok(s, len))
		return qvl_errf(r->err, -EBADMSG, "%s: %s '%s' at offset %zu is not valid UTF-8",
				r->f->what, field, gguf_printable(s, len, pb, sizeof(pb)),
				r->pos - len - 8);
	*out = malloc(len + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, s, len);
	(*out)[len] = 0;
	return 0;
}

static int pool_reserve(struct gguf_rd *r, uint64_t n, uint64_t *idx)
{
	struct gguf_file *f = r->f;
	uint64_t need;

	if (__builtin_add_overflow(f->npool, n, &need) || need > SIZE_MAX / sizeof(uint64_t))
		return -ENOMEM;
	if (need > f->cappool) {
		uint64_t cap = f->cappool ? f->cappool : 64;
		uint64_t *p;

		while (cap < need)
			cap = cap > UINT64_MAX / 2 ? need : cap * 2;
		if (cap > SIZE_MAX / sizeof(uint64_t))
			cap = need;
		p = realloc(f->pool, (size_t)cap * sizeof(uint64_t));
		if (!p)
			return -ENOMEM;
		f->pool = p;
		f->cappool = cap;
	}
	*idx = f->npool;
	f->npool = need;
	return 0;
}

static int rd_value(struct gguf_rd *r, uint32_t type, int depth, const char *key,
		    uint64_t *pool_idx);

/* An array value after its type field has been read as ARRAY: element type,
 * count, elements. *pool_idx gets its offset table (or UINT64_MAX). */
static int rd_array(struct gguf_rd *r, int depth, const char *key, uint64_t *pool_idx)
{
	struct gguf_file *f = r->f;
	uint32_t et;
	uint64_t n, min, idx, base;
	int rc;

	*pool_idx = UINT64_MAX;
	if (depth >= GGUF_MAX_ARRAY_DEPTH)
		return qvl_errf(r->err, -EBADMSG,
				"%s: key '%s': arrays nested deeper than %d at offset %zu", f->what,
				key, GGUF_MAX_ARRAY_DEPTH, r->pos);
	if ((rc = rd_u32(r, &et, "array element type")) || (rc = rd_u64(r, &n, "array length")))
		return rc;
	if (et >= GGUF_TYPE_COUNT)
		return qvl_errf(r->err, -EBADMSG,
				"%s: key '%s': unknown array element type %" PRIu32
				" at offset %zu",
				f->what, key, et, r->pos - 12);
	/* Smallest possible encoding of one element: bounds n before any
	 * allocation so that an absurd length cannot make us allocate. */
	min = gguf_type_size[et] ? gguf_type_size[et] : et == GGUF_TYPE_STRING ? 8 : 12;
	if (n > (f->size - r->pos) / min)
		return qvl_errf(r->err, -EBADMSG,
				"%s: key '%s': array of %" PRIu64
				" %s at offset %zu cannot fit in the %zu bytes left",
				f->what, key, n, gguf_type_name(et), r->pos - 12, f->size - r->pos);
	if (gguf_type_size[et]) {
		if (et == GGUF_TYPE_BOOL)
			for (uint64_t i = 0; i < n; i++)
				if (f->buf[r->pos + i] > 1)
					return qvl_errf(r->err, -EBADMSG,
							"%s: key '%s': bool element %" PRIu64
							" is %u, not 0 or 1",
							f->what, key, i, f->buf[r->pos + i]);
		r->pos += n * gguf_type_size[et];
		return 0;
	}
	if (n == 0)
		return 0;
	rc = pool_reserve(r, et == GGUF_TYPE_ARRAY ? 2 * n : n, &idx);
	if (rc)
		return rc;
	base = r->pos;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t sub = UINT64_MAX;

		f->pool[idx + i] = r->pos - base;
		rc = rd_value(r, et, depth + 1, key, &sub);
		if (rc)
			return rc;
		if (et == GGUF_TYPE_ARRAY)
			f->pool[idx + n + i] = sub;
	}
	*pool_idx = idx;
	return 0;
}

/* One value of the given type (already read) at r->pos. */
static int rd_value(struct gguf_rd *r, uint32_t type, int depth, const char *key,
		    uint64_t *pool_idx)
{
	*pool_idx = UINT64_MAX;
	if (type >= GGUF_TYPE_COUNT)
		return qvl_errf(r->err, -EBADMSG,
				"%s: key '%s': unknown value type %" PRIu32 " at offset %zu",
				r->f->what, key, type, r->pos - 4);
	if (type == GGUF_TYPE_STRING) {
		const uint8_t *s;
		uint64_t len;

		return rd_str(r, &s, &len, "string value");
	}
	if (type == GGUF_TYPE_ARRAY)
		return rd_array(r, depth, key, pool_idx);
	int rc = rd_need(r, gguf_type_size[type], "value");

	if (rc)
		return rc;
	if (type == GGUF_TYPE_BOOL && r->f->buf[r->pos] > 1)
		return qvl_errf(r->err, -EBADMSG, "%s: key '%s': bool value %u is not 0 or 1",
				r->f->what, key, r->f->buf[r->pos]);
	r->pos += gguf_type_size[type];
	return 0;
}

static int gguf_read_kvs(struct gguf_rd *r, uint64_t nkv)
{
	struct gguf_file *f = r->f;
	int rc;

	f->kv = calloc(nkv ? nkv : 1, sizeof(*f->kv));
	if (!f->kv)
		return -ENOMEM;
	for (uint64_t i = 0; i < nkv; i++) {
		struct gguf_kv *kv = &f->kv[i];
		uint32_t type;

		if ((rc = rd_name(r, &kv->key, "key")))
			return rc;
		f->nkv = i + 1;
		if ((rc = rd_u32(r, &type, "value type")))
			return rc;
		kv->type = (enum gguf_type)type;
		kv->val = f->buf + r->pos;
		if ((rc = rd_value(r, type, 0, kv->key, &kv->arr_pool)))
			return rc;
		if (type == GGUF_TYPE_ARRAY) {
			kv->arr.f = f;
			kv->arr.type = (enum gguf_type)gguf_le(kv->val, 4);
			kv->arr.n = gguf_le(kv->val + 4, 8);
			kv->arr.data = kv->val + 12;
		}
	}
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Duplicate keys, by sorting (a hostile file may hold a million keys). */
static int gguf_check_keys(struct gguf_rd *r)
{
	struct gguf_file *f = r->f;
	char **v;
	int rc = 0;

	if (f->nkv < 2)
		return 0;
	v = malloc(f->nkv * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < f->nkv; i++)
		v[i] = f->kv[i].key;
	qsort(v, f->nkv, sizeof(*v), cmp_key);
	for (size_t i = 1; i < f->nkv && !rc; i++)
		if (!strcmp(v[i - 1], v[i]))
			rc = qvl_errf(r->err, -EBADMSG, "%s: duplicate key '%s'", f->what, v[i]);
	free(v);
	return rc;
}

static uint64_t kv_uint(const struct gguf_kv *kv, bool *ok)
{
	*ok = true;
	switch (kv->type) {
	case GGUF_TYPE_UINT8:
		return kv->val[0];
	case GGUF_TYPE_UINT16:
		return gguf_le(kv->val, 2);
	case GGUF_TYPE_UINT32:
		return gguf_le(kv->val, 4);
	case GGUF_TYPE_UINT64:
		return gguf_le(kv->val, 8);
	case GGUF_TYPE_INT32:
		if ((int32_t)gguf_le(kv->val, 4) >= 0)
			return gguf_le(kv->val, 4);
		break;
	case GGUF_TYPE_INT64:
		if ((int64_t)gguf_le(kv->val, 8) >= 0)
			return gguf_le(kv->val, 8);
		break;
	default:
		break;
	}
	*ok = false;
	return 0;
}

static int gguf_read_alignment(struct gguf_rd *r)
{
	struct gguf_file *f = r->f;
	long i = gguf_find_key(f, "general.alignment");
	bool ok;
	uint64_t a;

	f->alignment = GGUF_DEFAULT_ALIGNMENT;
	if (i < 0)
		return 0;
	a = kv_uint(&f->kv[i], &ok);
	if (!ok || a == 0 || (a & (a - 1)) || a > (1u << 30))
		return qvl_errf(r->err, -EBADMSG,
				"%s: general.alignment (%s %" PRIu64
				") must be an unsigned power of two up to 2^30",
				f->what, gguf_type_name(f->kv[i].type), a);
	f->alignment = a;
	return 0;
}

/* Bytes of a tensor of type t with nelem elements whose rows are ne0 long:
 * -ENOTSUP for a type qvl does not read, -EINVAL when a row is not whole
 * blocks (block types quantize along rows). */
static int gguf_tensor_bytes(uint32_t t, uint64_t ne0, uint64_t nelem, enum qvl_dtype *dt,
			     uint64_t *bytes)
{
	int d = qvl_dtype_from_ggml(t);
	bool ok;

	if (d < 0)
		return -ENOTSUP;
	*dt = (enum qvl_dtype)d;
	if (ne0 % qvl_dtype_info(*dt)->blk)
		return -EINVAL;
	*bytes = qvl_dtype_bytes(*dt, nelem, &ok);
	return ok ? 0 : -EINVAL;
}

static int gguf_read_tensor(struct gguf_rd *r, size_t i)
{
	struct gguf_file *f = r->f;
	struct gguf_tensor_info *t = &f->t[i];
	uint32_t nd;
	int rc;

	if ((rc = rd_name(r, (char **)&t->name, "tensor name")))
		return rc;
	f->nt = i + 1;
	if ((rc = rd_u32(r, &nd, "tensor n_dims")))
		return rc;
	if (nd < 1 || nd > GGUF_MAX_DIMS)
		return qvl_errf(r->err, -EBADMSG,
				"%s: tensor '%s': n_dims %" PRIu32 " outside 1..%d", f->what,
				t->name, nd, GGUF_MAX_DIMS);
	t->n_dims = (int)nd;
	t->nelem = 1;
	for (int d = 0; d < GGUF_MAX_DIMS; d++) {
		t->ne[d] = 1;
		if (d >= t->n_dims)
			continue;
		if ((rc = rd_u64(r, &t->ne[d], "tensor dimension")))
			return rc;
		if (t->ne[d] == 0 || t->ne[d] > INT64_MAX ||
		    __builtin_mul_overflow(t->nelem, t->ne[d], &t->nelem) ||
		    t->nelem > (UINT64_C(1) << 60))
			return qvl_errf(r->err, -EBADMSG,
					"%s: tensor '%s': dimension %d is %" PRIu64
					" (zero, or element count overflows)",
					f->what, t->name, d, t->ne[d]);
	}
	if ((rc = rd_u32(r, &t->ggml_type, "tensor type")) ||
	    (rc = rd_u64(r, &t->offset, "tensor offset")))
		return rc;
	rc = gguf_tensor_bytes(t->ggml_type, t->ne[0], t->nelem, &t->dtype, &t->nbytes);
	if (rc == -ENOTSUP)
		return qvl_errf(r->err, rc,
				"%s: tensor '%s': type %" PRIu32
				" (%s) not supported (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, "
				"Q2_K..Q6_K, IQ4_NL, IQ4_XS are)",
				f->what, t->name, t->ggml_type, gguf_ggml_type_name(t->ggml_type));
	if (rc)
		return qvl_errf(r->err, -EBADMSG,
				"%s: tensor '%s': %s row length %" PRIu64
				" is not a multiple of its %" PRIu32 "-element block",
				f->what, t->name, gguf_ggml_type_name(t->ggml_type), t->ne[0],
				qvl_dtype_info(t->dtype)->blk);
	if (t->offset % f->alignment)
		return qvl_errf(r->err, -EBADMSG,
				"%s: tensor '%s': offset %" PRIu64
				" not a multiple of alignment %" PRIu64,
				f->what, t->name, t->offset, f->alignment);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	const struct gguf_tensor_info *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int cmp_off(const void *a, const void *b)
{
	const struct gguf_tensor_info *const *x = a, *const *y = b;

	return (*x)->offset < (*y)->offset ? -1 : (*x)->offset > (*y)->offset;
}

/* Data section bounds, duplicates, overlaps: needs every tensor info. */
static int gguf_check_tensors(struct gguf_rd *r)
{
	struct gguf_file *f = r->f;
	const struct gguf_tensor_info **v;
	uint64_t dsize = f->size - f->data_off;
	int rc = 0;

	for (size_t i = 0; i < f->nt; i++) {
		struct gguf_tensor_info *t = &f->t[i];

		if (t->offset > dsize || t->nbytes > dsize - t->offset)
			return qvl_errf(r->err, -EBADMSG,
					"%s: tensor '%s': data [%" PRIu64 ", +%" PRIu64
					") past end of data section (%" PRIu64
					" bytes at offset %" PRIu64 ")",
					f->what, t->name, t->offset, t->nbytes, dsize, f->data_off);
		t->data = f->buf + f->data_off + t->offset;
	}
	if (f->nt < 2)
		return 0;
	v = malloc(f->nt * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < f->nt; i++)
		v[i] = &f->t[i];
	qsort(v, f->nt, sizeof(*v), cmp_name);
	for (size_t i = 1; i < f->nt && !rc; i++)
		if (!strcmp(v[i - 1]->name, v[i]->name))
			rc = qvl_errf(r->err, -EBADMSG, "%s: duplicate tensor '%s'", f->what,
				      v[i]->name);
	qsort(v, f->nt, sizeof(*v), cmp_off);
	for (size_t i = 1; i < f->nt && !rc; i++)
		if (v[i - 1]->offset + v[i - 1]->nbytes > v[i]->offset)
			rc = qvl_errf(r->err, -EBADMSG,
				      "%s: tensors '%s' [%" PRIu64 ", +%" PRIu64
				      ") and '%s' [%" PRIu64 ", +%" PRIu64 ") overlap",
				      f->what, v[i - 1]->name, v[i - 1]->offset, v[i - 1]->nbytes,
				      v[i]->name, v[i]->offset, v[i]->nbytes);
	free(v);
	return rc;
}

static int gguf_parse_all(struct gguf_rd *r)
{
	struct gguf_file *f = r->f;
	uint32_t magic;
	uint64_t nt, nkv, pad;
	int rc;

	if ((rc = rd_u32(r, &magic, "magic")))
		return rc;
	if (magic != 0x46554747) /* "GGUF" */
		return qvl_errf(r->err, -EBADMSG,
				"%s: bad magic %02x %02x %02x %02x (not a GGUF file)", f->what,
				f->buf[0], f->buf[1], f->buf[2], f->buf[3]);
	if ((rc = rd_u32(r, &f->version, "version")))
		return rc;
	if (f->version != 2 && f->version != 3)
		return qvl_errf(r->err, -ENOTSUP,
				"%s: GGUF version %" PRIu32 " not supported (2 and 3 are)", f->what,
				f->version);
	if ((rc = rd_u64(r, &nt, "tensor count")) || (rc = rd_u64(r, &nkv, "kv count")))
		return rc;
	/* A kv needs at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8. */
	if (nkv > GGUF_MAX_KV || nkv > (f->size - r->pos) / 14)
		return qvl_errf(r->err, -EBADMSG,
				"%s: kv count %" PRIu64 " absurd for a %zu-byte file", f->what, nkv,
				f->size);
	if (nt > GGUF_MAX_TENSORS || nt > (f->size - r->pos) / 33)
		return qvl_errf(r->err, -EBADMSG,
				"%s: tensor count %" PRIu64 " absurd for a %zu-byte file", f->what,
				nt, f->size);
	if ((rc = gguf_read_kvs(r, nkv)) || (rc = gguf_check_keys(r)) ||
	    (rc = gguf_read_alignment(r)))
		return rc;
	/* Resolve array offset tables now that the pool no longer moves. */
	for (size_t i = 0; i < f->nkv; i++)
		if (f->kv[i].arr_pool != UINT64_MAX)
			f->kv[i].arr.off = f->pool + f->kv[i].arr_pool;
	f->t = calloc(nt ? nt : 1, sizeof(*f->t));
	if (!f->t)
		return -ENOMEM;
	for (size_t i = 0; i < nt; i++)
		if ((rc = gguf_read_tensor(r, i)))
			return rc;
	pad = (f->alignment - r->pos % f->alignment) % f->alignment;
	if (nt && pad > f->size - r->pos)
		return qvl_errf(r->err, -EBADMSG,
				"%s: truncated: data section would start at %zu + %" PRIu64
				" padding, file is %zu bytes",
				f->what, r->pos, pad, f->size);
	f->data_off = nt ? r->pos + pad : f->size;
	return gguf_check_tensors(r);
}

int gguf_parse(struct gguf_file **out, const void *buf, size_t size, const char *what,
	       struct qvl_err *err)
{
	struct gguf_file *f = calloc(1, sizeof(*f));
	struct gguf_rd r = {.f = f, .err = err};
	int rc;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->what = strdup(what ? what : "gguf");
	f->buf = buf;
	f->size = size;
	if (!f->what) {
		gguf_close(f);
		return -ENOMEM;
	}
	rc = gguf_parse_all(&r);
	if (rc) {
		if (rc == -ENOMEM)
			qvl_errf(err, rc, "%s: out of memory while parsing", f->what);
		gguf_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

int gguf_open(struct gguf_file **out, const char *path, struct qvl_err *err)
{
	struct qvl_map map;
	int rc = qvl_map_file(&map, path, err);

	*out = NULL;
	if (rc)
		return rc;
	rc = gguf_parse(out, map.data, map.size, path, err);
	if (rc) {
		qvl_unmap(&map);
		return rc;
	}
	(*out)->map = map;
	return 0;
}

void gguf_close(struct gguf_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nkv; i++)
		free(f->kv[i].key);
	for (size_t i = 0; i < f->nt; i++)
		free((char *)f->t[i].name);
	free(f->kv);
	free(f->t);
	free(f->pool);
	free(f->what);
	if (f->map.data)
		qvl_unmap(&f->map);
	free(f);
}

const char *gguf_what(const struct gguf_file *f)
{
	return f->what;
}
uint32_t gguf_version(const struct gguf_file *f)
{
	return f->version;
}
uint64_t gguf_alignment(const struct gguf_file *f)
{
	return f->alignment;
}
uint64_t gguf_data_offset(const struct gguf_file *f)
{
	return f->data_off;
}
size_t gguf_n_kv(const struct gguf_file *f)
{
	return f->nkv;
}
size_t gguf_n_tensors(const struct gguf_file *f)
{
	return f->nt;
}

const char *gguf_kv_key(const struct gguf_file *f, size_t i)
{
	return i < f->nkv ? f->kv[i].key : NULL;
}

enum gguf_type gguf_kv_type(const struct gguf_file *f, size_t i)
{
	return i < f->nkv ? f->kv[i].type : GGUF_TYPE_COUNT;
}

long gguf_find_key(const struct gguf_file *f, const char *key)
{
	for (size_t i = 0; i < f->nkv; i++)
		if (!strcmp(f->kv[i].key, key))
			return (long)i;
	return -1;
}

const struct gguf_tensor_info *gguf_tensor(const struct gguf_file *f, size_t i)
{
	return i < f->nt ? &f->t[i] : NULL;
}

const struct gguf_tensor_info *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
	for (size_t i = 0; i < f->nt; i++)
		if (!strcmp(f->t[i].name, name))
			return &f->t[i];
	return NULL;
}
