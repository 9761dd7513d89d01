/* safetensors header parsing and validation (format: huggingface/safetensors).
 * Everything here is untrusted input: every offset is checked against the
 * data size with overflow-checked arithmetic before anyone may index with it. */
#include "safetensors.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* A dimension above this is absurd for any model qvl reads. */
#define ST_MAX_DIM (UINT64_C(1) << 32)

static const struct {
	const char *name;
	enum qvl_dtype dt;
} st_dtypes[] = {
    {"BF16", QVL_DT_BF16},
    {"F16", QVL_DT_F16},
    {"F32", QVL_DT_F32},
};

/* Tensor names go into error messages: keep them short and printable. */
static const char *st_printable(const char *s, char *buf, size_t cap)
{
	size_t i = 0;

	for (; *s && i + 4 < cap; s++)
		buf[i++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
	if (*s) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = 0;
	return buf;
}

/* Returns the offset of the first byte that is not valid UTF-8, or len. */
static size_t st_utf8_check(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

static int st_parse_dtype(const struct json_doc *doc, uint32_t t, const char *what,
			  const char *pname, enum qvl_dtype *out, struct qvl_err *err)
{
	char buf[32];
	long n;

	if (t == JSON_NONE)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': no dtype", what, pname);
	n = json_str(doc, t, buf, sizeof(buf));
	if (n < 0)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': dtype is not a string (got %s)",
				what, pname, json_type_name(doc->tok[t].type));
	for (size_t i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++) {
		if ((size_t)n == strlen(st_dtypes[i].name) && !strcmp(buf, st_dtypes[i].name)) {
			*out = st_dtypes[i].dt;
			return 0;
		}
	}
	if ((size_t)n >= sizeof(buf))
		memcpy(buf + sizeof(buf) - 4, "...", 4);
	return qvl_errf(err, -ENOTSUP,
			"%s: tensor '%s': unsupported dtype '%s' (qvl reads BF16, F16 and F32)",
			what, pname, st_printable(buf, (char[40]){0}, 40));
}

static int st_parse_shape(const struct json_doc *doc, uint32_t t, const char *what,
			  const char *pname, struct qvl_st_entry *e, struct qvl_err *err)
{
	uint64_t nelem = 1;
	uint32_t c;

	if (t == JSON_NONE)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': no shape", what, pname);
	if (doc->tok[t].type != JSON_ARRAY)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': shape is not an array (got %s)",
				what, pname, json_type_name(doc->tok[t].type));
	if (doc->tok[t].count > QVL_MAX_DIMS)
		return qvl_errf(err, -EBADMSG,
				"%s: tensor '%s': shape has %u dimensions (at most %d)", what,
				pname, doc->tok[t].count, QVL_MAX_DIMS);
	e->ndim = (int)doc->tok[t].count;
	c = t + 1;
	for (int d = 0; d < e->ndim; d++, c = doc->tok[c].end) {
		int64_t v;

		if (json_int64(doc, c, &v) < 0 || v < 0)
			return qvl_errf(err, -EBADMSG,
					"%s: tensor '%s': shape[%d] is not a non-negative integer",
					what, pname, d);
		if ((uint64_t)v > ST_MAX_DIM)
			return qvl_errf(err, -EBADMSG,
					"%s: tensor '%s': shape[%d] = %" PRId64
					" is absurd (limit %" PRIu64 ")",
					what, pname, d, v, ST_MAX_DIM);
		e->shape[d] = v;
		if (__builtin_mul_overflow(nelem, (uint64_t)v, &nelem))
			return qvl_errf(err, -EOVERFLOW,
					"%s: tensor '%s': element count overflows 64 bits", what,
					pname);
	}
	e->nelem = nelem;
	return 0;
}

static int st_parse_offsets(const struct json_doc *doc, uint32_t t, const char *what,
			    const char *pname, uint64_t data_size, struct qvl_st_entry *e,
			    struct qvl_err *err)
{
	int64_t v[2];
	uint64_t want;
	bool ok;

	if (t == JSON_NONE)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': no data_offsets", what, pname);
	if (doc->tok[t].type != JSON_ARRAY || doc->tok[t].count != 2 ||
	    json_int64(doc, t + 1, &v[0]) < 0 || json_int64(doc, doc->tok[t + 1].end, &v[1]) < 0 ||
	    v[0] < 0 || v[1] < 0)
		return qvl_errf(err, -EBADMSG,
				"%s: tensor '%s': data_offsets is not two non-negative integers",
				what, pname);
	e->begin = (uint64_t)v[0];
	e->end = (uint64_t)v[1];
	if (e->begin > e->end)
		return qvl_errf(err, -EBADMSG,
				"%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				"]: begin is after end",
				what, pname, e->begin, e->end);
	if (e->end > data_size)
		return qvl_errf(err, -EBADMSG,
				"%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				"] past end of data (%" PRIu64 " bytes)",
				what, pname, e->begin, e->end, data_size);
	want = qvl_dtype_bytes(e->dtype, e->nelem, &ok);
	if (!ok)
		return qvl_errf(err, -EOVERFLOW, "%s: tensor '%s': byte count overflows", what,
				pname);
	if (e->end - e->begin != want)
		return qvl_errf(err, -EBADMSG,
				"%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
				"] hold %" PRIu64 " bytes but %s shape needs %" PRIu64
				" elements x %" PRIu64 " = %" PRIu64 " bytes",
				what, pname, e->begin, e->end, e->end - e->begin,
				qvl_dtype_name(e->dtype), e->nelem,
				qvl_dtype_bytes(e->dtype, 1, &ok), want);
	return 0;
}

static int st_parse_entry(const struct json_doc *doc, uint32_t key, uint32_t val, const char *what,
			  uint64_t data_size, struct qvl_st_entry *e, struct qvl_err *err)
{
	char pbuf[100];
	const char *pname;
	size_t len;
	int rc;

	e->name = json_strdup(doc, key, &len);
	if (!e->name)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", what);
	pname = st_printable(e->name, pbuf, sizeof(pbuf));
	if (len == 0)
		return qvl_errf(err, -EBADMSG, "%s: a tensor has an empty name", what);
	if (strlen(e->name) != len)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': name contains a NUL character",
				what, pname);
	if (st_utf8_check((const unsigned char *)e->name, len) != len)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': name is not valid UTF-8", what,
				pname);
	if (doc->tok[val].type != JSON_OBJECT)
		return qvl_errf(err, -EBADMSG, "%s: tensor '%s': entry is not an object (got %s)",
				what, pname, json_type_name(doc->tok[val].type));
	rc = st_parse_dtype(doc, json_get(doc, val, "dtype"), what, pname, &e->dtype, err);
	if (!rc)
		rc = st_parse_shape(doc, json_get(doc, val, "shape"), what, pname, e, err);
	if (!rc)
		rc = st_parse_offsets(doc, json_get(doc, val, "data_offsets"), what, pname,
				      data_size, e, err);
	return rc;
}

static int st_cmp_name(const void *a, const void *b)
{
	const struct qvl_st_entry *x = *(const struct qvl_st_entry *const *)a;
	const struct qvl_st_entry *y = *(const struct qvl_st_entry *const *)b;

	return strcmp(x->name, y->name);
}

static int st_cmp_begin(const void *a, const void *b)
{
	const struct qvl_st_entry *x = *(const struct qvl_st_entry *const *)a;
	const struct qvl_st_entry *y = *(const struct qvl_st_entry *const *)b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

/* Duplicate names (JSON allows repeated keys) and overlapping data ranges. */
static int st_check_table(const struct qvl_st_header *h, const char *what, struct qvl_err *err)
{
	const struct qvl_st_entry **ix, *prev = NULL;
	char p1[100], p2[100];
	int rc = 0;

	if (h->n < 2)
		return 0;
	ix = malloc(h->n * sizeof(*ix));
	if (!ix)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", what);
	for (size_t i = 0; i < h->n; i++)
		ix[i] = &h->entries[i];
	qsort(ix, h->n, sizeof(*ix), st_cmp_name);
	for (size_t i = 1; i < h->n && !rc; i++)
		if (!strcmp(ix[i - 1]->name, ix[i]->name))
			rc = qvl_errf(err, -EBADMSG, "%s: tensor '%s' is listed twice", what,
				      st_printable(ix[i]->name, p1, sizeof(p1)));
	if (!rc) {
		qsort(ix, h->n, sizeof(*ix), st_cmp_begin);
		for (size_t i = 0; i < h->n && !rc; i++) {
			if (ix[i]->begin == ix[i]->end)
				continue; /* empty tensors occupy no bytes */
			if (prev && ix[i]->begin < prev->end)
				rc = qvl_errf(err, -EBADMSG,
					      "%s: tensor '%s' [%" PRIu64 ", %" PRIu64
					      ") overlaps tensor '%s' [%" PRIu64 ", %" PRIu64 ")",
					      what, st_printable(ix[i]->name, p1, sizeof(p1)),
					      ix[i]->begin, ix[i]->end,
					      st_printable(prev->name, p2, sizeof(p2)), prev->begin,
					      prev->end);
			if (!prev || ix[i]->end > prev->end)
				prev = ix[i];
		}
	}
	free(ix);
	return rc;
}

int qvl_st_parse(struct qvl_st_header *h, const void *buf, size_t size, const char *what,
		 struct qvl_err *err)
{
	const unsigned char *p = buf;
	struct json_doc doc = {0};
	char jwhat[1024];
	uint64_t hlen = 0;
	size_t bad;
	uint32_t root, k;
	int rc;

	memset(h, 0, sizeof(*h));
	if (size < 8)
		return qvl_errf(err, -EBADMSG,
				"%s: file is %zu bytes, too short for the 8-byte header length",
				what, size);
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | p[i];
	if (hlen == 0)
		return qvl_errf(err, -EBADMSG, "%s: header length is 0", what);
	if (hlen > QVL_ST_MAX_HEADER)
		return qvl_errf(err, -EBADMSG,
				"%s: header length %" PRIu64 " is absurd (limit %u bytes)", what,
				hlen, QVL_ST_MAX_HEADER);
	if (hlen > size - 8)
		return qvl_errf(err, -EBADMSG,
				"%s: header length %" PRIu64 " past end of file (%zu bytes)", what,
				hlen, size);
	h->data_start = 8 + hlen;
	h->data_size = size - h->data_start;
	bad = st_utf8_check(p + 8, hlen);
	if (bad != hlen)
		return qvl_errf(err, -EBADMSG, "%s: header is not valid UTF-8 (at byte %zu)", what,
				8 + bad);
	snprintf(jwhat, sizeof(jwhat), "%s: header", what);
	rc = json_parse(&doc, (const char *)p + 8, hlen, jwhat, err);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EBADMSG;
	root = 0;
	if (doc.ntok == 0 || doc.tok[root].type != JSON_OBJECT) {
		rc = qvl_errf(err, -EBADMSG, "%s: header is not a JSON object (got %s)", what,
			      doc.ntok ? json_type_name(doc.tok[root].type) : "nothing");
		goto out;
	}
	h->entries = calloc(doc.tok[root].count ? doc.tok[root].count : 1, sizeof(*h->entries));
	if (!h->entries) {
		rc = qvl_errf(err, -ENOMEM, "%s: out of memory", what);
		goto out;
	}
	k = root + 1;
	for (uint32_t c = 0; c < doc.tok[root].count; c++, k = doc.tok[k + 1].end) {
		uint32_t v = k + 1;

		if (json_str_eq(&doc, k, "__metadata__", 12)) {
			if (doc.tok[v].type != JSON_OBJECT) {
				rc = qvl_errf(err, -EBADMSG,
					      "%s: __metadata__ is not an object (got %s)", what,
					      json_type_name(doc.tok[v].type));
				goto out;
			}
			continue;
		}
		rc = st_parse_entry(&doc, k, v, what, h->data_size, &h->entries[h->n], err);
		h->n++; /* counted even on failure so that qvl_st_free frees the name */
		if (rc)
			goto out;
	}
	rc = st_check_table(h, what, err);
out:
	json_free(&doc);
	if (rc)
		qvl_st_free(h);
	return rc;
}

void qvl_st_free(struct qvl_st_header *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->entries[i].name);
	free(h->entries);
	h->entries = NULL;
	h->n = 0;
}
