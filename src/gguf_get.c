/* Typed access to GGUF metadata values and array elements; every value was
 * bounds-checked by the parser (gguf.c), so reads here need no more checks
 * than the element index. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gguf_impl.h"

/* A scalar decoded: integers keep their exact value (sign in neg), floats go
 * to d; bools count as the integers 0 and 1. */
struct gguf_num {
	bool is_int, neg;
	uint64_t mag; /* |value| for integers */
	double d;
};

static bool gguf_decode_num(enum gguf_type t, const uint8_t *p, struct gguf_num *n)
{
	int64_t s;
	uint32_t u32;
	uint64_t u64;

	n->is_int = true;
	n->neg = false;
	switch (t) {
	case GGUF_TYPE_UINT8:
	case GGUF_TYPE_BOOL:
		n->mag = p[0];
		break;
	case GGUF_TYPE_UINT16:
		n->mag = gguf_le(p, 2);
		break;
	case GGUF_TYPE_UINT32:
		n->mag = gguf_le(p, 4);
		break;
	case GGUF_TYPE_UINT64:
		n->mag = gguf_le(p, 8);
		break;
	case GGUF_TYPE_INT8:
		s = (int8_t)p[0];
		goto sgn;
	case GGUF_TYPE_INT16:
		s = (int16_t)gguf_le(p, 2);
		goto sgn;
	case GGUF_TYPE_INT32:
		s = (int32_t)gguf_le(p, 4);
		goto sgn;
	case GGUF_TYPE_INT64:
		s = (int64_t)gguf_le(p, 8);
	sgn:
		n->neg = s < 0;
		n->mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
		break;
	case GGUF_TYPE_FLOAT32: {
		float fl;

		u32 = (uint32_t)gguf_le(p, 4);
		memcpy(&fl, &u32, 4);
		n->is_int = false;
		n->d = fl;
		return true;
	}
	case GGUF_TYPE_FLOAT64:
		u64 = gguf_le(p, 8);
		memcpy(&n->d, &u64, 8);
		n->is_int = false;
		return true;
	default:
		return false;
	}
	n->d = n->neg ? -(double)n->mag : (double)n->mag;
	return true;
}

static bool num_to_i64(const struct gguf_num *n, int64_t *out)
{
	if (!n->is_int)
		return false;
	if (n->neg) {
		if (n->mag > (uint64_t)INT64_MAX + 1)
			return false;
		*out = n->mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)n->mag;
		return true;
	}
	if (n->mag > INT64_MAX)
		return false;
	*out = (int64_t)n->mag;
	return true;
}

/* Look key up; -ENOENT (with a message) when absent. */
static const struct gguf_kv *gguf_kv_get(const struct gguf_file *f, const char *key,
					 struct qvl_err *err, int *rc)
{
	long i = gguf_find_key(f, key);

	if (i < 0) {
		*rc = qvl_errf(err, -ENOENT, "%s: key '%s' missing", f->what, key);
		return NULL;
	}
	*rc = 0;
	return &f->kv[i];
}

static int gguf_kv_num(const struct gguf_file *f, const char *key, struct gguf_num *n,
		       struct qvl_err *err)
{
	int rc;
	const struct gguf_kv *kv = gguf_kv_get(f, key, err, &rc);

	if (!kv)
		return rc;
	if (!gguf_decode_num(kv->type, kv->val, n))
		return qvl_errf(err, -EINVAL, "%s: key '%s' is a %s, expected a number", f->what,
				key, gguf_type_name(kv->type));
	return 0;
}

static int gguf_range_err(const struct gguf_file *f, const char *key, const struct gguf_num *n,
			  const char *want, struct qvl_err *err)
{
	if (!n->is_int)
		return qvl_errf(err, -EINVAL, "%s: key '%s' is %g, expected %s", f->what, key, n->d,
				want);
	return qvl_errf(err, -EINVAL, "%s: key '%s' is %s%" PRIu64 ", expected %s", f->what, key,
			n->neg ? "-" : "", n->mag, want);
}

int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out, struct qvl_err *err)
{
	struct gguf_num n;
	int rc = gguf_kv_num(f, key, &n, err);

	if (rc)
		return rc;
	if (!num_to_i64(&n, out))
		return gguf_range_err(f, key, &n, "a 64-bit signed integer", err);
	return 0;
}

int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out, struct qvl_err *err)
{
	struct gguf_num n;
	int rc = gguf_kv_num(f, key, &n, err);

	if (rc)
		return rc;
	if (!n.is_int || n.neg)
		return gguf_range_err(f, key, &n, "an unsigned integer", err);
	*out = n.mag;
	return 0;
}

int gguf_get_int(const struct gguf_file *f, const char *key, int *out, struct qvl_err *err)
{
	struct gguf_num n;
	int64_t v;
	int rc = gguf_kv_num(f, key, &n, err);

	if (rc)
		return rc;
	if (!num_to_i64(&n, &v) || v < INT32_MIN || v > INT32_MAX)
		return gguf_range_err(f, key, &n, "a 32-bit integer", err);
	*out = (int)v;
	return 0;
}

int gguf_get_f64(const struct gguf_file *f, const char *key, double *out, struct qvl_err *err)
{
	struct gguf_num n;
	int rc = gguf_kv_num(f, key, &n, err);

	if (rc)
		return rc;
	*out = n.d;
	return 0;
}

int gguf_get_bool(const struct gguf_file *f, const char *key, bool *out, struct qvl_err *err)
{
	int rc;
	const struct gguf_kv *kv = gguf_kv_get(f, key, err, &rc);

	if (!kv)
		return rc;
	if (kv->type != GGUF_TYPE_BOOL)
		return qvl_errf(err, -EINVAL, "%s: key '%s' is a %s, expected a bool", f->what, key,
				gguf_type_name(kv->type));
	*out = kv->val[0] != 0;
	return 0;
}

int gguf_get_str(const struct gguf_file *f, const char *key, const char **s, size_t *len,
		 struct qvl_err *err)
{
	int rc;
	const struct gguf_kv *kv = gguf_kv_get(f, key, err, &rc);

	if (!kv)
		return rc;
	if (kv->type != GGUF_TYPE_STRING)
		return qvl_errf(err, -EINVAL, "%s: key '%s' is a %s, expected a string", f->what,
				key, gguf_type_name(kv->type));
	*len = (size_t)gguf_le(kv->val, 8);
	*s = (const char *)kv->val + 8;
	return 0;
}

int gguf_get_strz(const struct gguf_file *f, const char *key, char *buf, size_t cap,
		  struct qvl_err *err)
{
	const char *s;
	size_t len;
	int rc = gguf_get_str(f, key, &s, &len, err);

	if (rc)
		return rc;
	if (memchr(s, 0, len))
		return qvl_errf(err, -EINVAL, "%s: key '%s': string contains a NUL byte", f->what,
				key);
	if (len >= cap)
		return qvl_errf(err, -ENAMETOOLONG, "%s: key '%s': string of %zu bytes too long",
				f->what, key, len);
	memcpy(buf, s, len);
	buf[len] = 0;
	return 0;
}

int gguf_kv_arr(const struct gguf_file *f, size_t i, struct gguf_arr *a)
{
	if (i >= f->nkv || f->kv[i].type != GGUF_TYPE_ARRAY)
		return -EINVAL;
	*a = f->kv[i].arr;
	return 0;
}

int gguf_get_arr(const struct gguf_file *f, const char *key, struct gguf_arr *a,
		 struct qvl_err *err)
{
	int rc;
	const struct gguf_kv *kv = gguf_kv_get(f, key, err, &rc);

	if (!kv)
		return rc;
	if (kv->type != GGUF_TYPE_ARRAY)
		return qvl_errf(err, -EINVAL, "%s: key '%s' is a %s, expected an array", f->what,
				key, gguf_type_name(kv->type));
	*a = kv->arr;
	return 0;
}

/* Where element i starts. */
static const uint8_t *arr_elem(const struct gguf_arr *a, uint64_t i)
{
	if (i >= a->n)
		return NULL;
	if (a->type < GGUF_TYPE_COUNT && gguf_type_size[a->type])
		return a->data + i * gguf_type_size[a->type];
	return a->off ? a->data + a->off[i] : NULL;
}

int gguf_arr_str(const struct gguf_arr *a, uint64_t i, const char **s, size_t *len)
{
	const uint8_t *p = arr_elem(a, i);

	if (!p || a->type != GGUF_TYPE_STRING)
		return -EINVAL;
	*len = (size_t)gguf_le(p, 8);
	*s = (const char *)p + 8;
	return 0;
}

int gguf_arr_i64(const struct gguf_arr *a, uint64_t i, int64_t *out)
{
	const uint8_t *p = arr_elem(a, i);
	struct gguf_num n;

	if (!p || !gguf_decode_num(a->type, p, &n) || !num_to_i64(&n, out))
		return -EINVAL;
	return 0;
}

int gguf_arr_f64(const struct gguf_arr *a, uint64_t i, double *out)
{
	const uint8_t *p = arr_elem(a, i);
	struct gguf_num n;

	if (!p || !gguf_decode_num(a->type, p, &n))
		return -EINVAL;
	*out = n.d;
	return 0;
}

int gguf_arr_sub(const struct gguf_arr *a, uint64_t i, struct gguf_arr *sub)
{
	const uint8_t *p = arr_elem(a, i);
	uint64_t idx;

	if (!p || a->type != GGUF_TYPE_ARRAY)
		return -EINVAL;
	sub->f = a->f;
	sub->type = (enum gguf_type)gguf_le(p, 4);
	sub->n = gguf_le(p + 4, 8);
	sub->data = p + 12;
	/* The parent's table holds n offsets and then n sub-table indexes. */
	idx = a->off[a->n + i];
	sub->off = idx == UINT64_MAX ? NULL : a->f->pool + idx;
	return 0;
}
