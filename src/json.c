/* Validating JSON parser into a flat token array (see json.h).
 *
 * Recursive descent with a hard depth limit, so hostile nesting cannot
 * overflow the stack. Strings are validated (UTF-8, escapes, surrogate pairs)
 * but not copied; json_str() decodes on demand. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 512
#define JSON_MAX_LEN ((size_t)INT32_MAX)

struct parser {
	const unsigned char *s;
	size_t len, pos;
	struct json_tok *tok;
	uint32_t ntok, cap;
	const char *what;
	struct qvl_err *err;
};

static int fail(struct parser *p, size_t at, const char *msg)
{
	size_t line = 1, col = 1;

	for (size_t i = 0; i < at && i < p->len; i++) {
		if (p->s[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	return qvl_errf(p->err, -EINVAL, "%s: invalid JSON at line %zu column %zu (byte %zu): %s",
			p->what, line, col, at, msg);
}

static int new_tok(struct parser *p, enum json_type type, uint32_t *idx)
{
	if (p->ntok == p->cap) {
		uint32_t ncap = p->cap ? p->cap * 2 : 64;
		struct json_tok *t;

		if (ncap < p->cap || ncap > UINT32_MAX / 2)
			return qvl_errf(p->err, -E2BIG, "%s: too many JSON values", p->what);
		t = realloc(p->tok, (size_t)ncap * sizeof(*t));
		if (!t)
			return qvl_errf(p->err, -ENOMEM, "%s: out of memory parsing JSON", p->what);
		p->tok = t;
		p->cap = ncap;
	}
	*idx = p->ntok++;
	p->tok[*idx] = (struct json_tok){.type = type, .start = (uint32_t)p->pos};
	return 0;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		unsigned char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static int hex4(const unsigned char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0; /* overlong */
		if (c == 0xed && s[1] >= 0xa0)
			return 0; /* UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xf4 && s[1] >= 0x90)
			return 0; /* past U+10FFFF */
		return 4;
	}
	return 0;
}

static int parse_string(struct parser *p)
{
	const unsigned char *s = p->s;
	size_t i = p->pos + 1, n = p->len;
	uint32_t idx;
	int rc, escaped = 0;

	p->pos++;
	rc = new_tok(p, JSON_STRING, &idx);
	if (rc)
		return rc;
	for (;;) {
		unsigned char c;

		/* fast path: plain ASCII */
		while (i < n && (c = s[i]) >= 0x20 && c < 0x80 && c != '"' && c != '\\')
			i++;
		if (i >= n)
			return fail(p, i, "unterminated string");
		c = s[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(p, i, "control character in string");
		if (c == '\\') {
			escaped = 1;
			if (i + 1 >= n)
				return fail(p, i, "unterminated escape");
			c = s[i + 1];
			if (c == 'u') {
				unsigned u, lo;
				if (i + 6 > n || hex4(s + i + 2, &u))
					return fail(p, i, "bad \\u escape");
				i += 6;
				if (u >= 0xdc00 && u <= 0xdfff)
					return fail(p, i - 6, "lone low surrogate in \\u escape");
				if (u >= 0xd800 && u <= 0xdbff) {
					if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u' ||
					    hex4(s + i + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
						return fail(p, i - 6,
							    "high surrogate not followed by a low one");
					i += 6;
				}
				continue;
			}
			if (!strchr("\"\\/bfnrt", c) || c == 0)
				return fail(p, i, "unknown escape");
			i += 2;
			continue;
		}
		/* c >= 0x80 */
		size_t l = utf8_len(s + i, n - i);
		if (!l)
			return fail(p, i, "invalid UTF-8 in string");
		i += l;
	}
	p->tok[idx].start = (uint32_t)p->pos;
	p->tok[idx].len = (uint32_t)(i - p->pos);
	p->tok[idx].escaped = escaped;
	p->tok[idx].end = p->ntok;
	p->pos = i + 1;
	return 0;
}

static int parse_number(struct parser *p)
{
	const unsigned char *s = p->s;
	size_t i = p->pos, n = p->len;
	uint32_t idx;
	int rc;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return fail(p, i, "bad number");
	if (s[i] == '0') {
		i++;
	} else {
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return fail(p, i, "bad number: digit expected after '.'");
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return fail(p, i, "bad number: digit expected in exponent");
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	rc = new_tok(p, JSON_NUMBER, &idx);
	if (rc)
		return rc;
	p->tok[idx].len = (uint32_t)(i - p->pos);
	p->tok[idx].end = p->ntok;
	p->pos = i;
	return 0;
}

static int parse_literal(struct parser *p, const char *word, enum json_type type)
{
	size_t l = strlen(word);
	uint32_t idx;
	int rc;

	if (p->len - p->pos < l || memcmp(p->s + p->pos, word, l))
		return fail(p, p->pos, "unexpected character");
	rc = new_tok(p, type, &idx);
	if (rc)
		return rc;
	p->tok[idx].len = (uint32_t)l;
	p->tok[idx].end = p->ntok;
	p->pos += l;
	return 0;
}

static int parse_value(struct parser *p, int depth);

static int parse_container(struct parser *p, int depth, int is_obj)
{
	uint32_t idx, count = 0;
	char close = is_obj ? '}' : ']';
	int rc;

	if (depth >= JSON_MAX_DEPTH)
		return fail(p, p->pos, "nesting deeper than 512");
	rc = new_tok(p, is_obj ? JSON_OBJECT : JSON_ARRAY, &idx);
	if (rc)
		return rc;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		goto done;
	}
	for (;;) {
		skip_ws(p);
		if (is_obj) {
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return fail(p, p->pos, "object key (a string) expected");
			rc = parse_string(p);
			if (rc)
				return rc;
			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return fail(p, p->pos, "':' expected after object key");
			p->pos++;
		}
		rc = parse_value(p, depth + 1);
		if (rc)
			return rc;
		count++;
		skip_ws(p);
		if (p->pos >= p->len)
			return fail(p, p->pos, is_obj ? "unterminated object" : "unterminated array");
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == close) {
			p->pos++;
			break;
		}
		return fail(p, p->pos, is_obj ? "',' or '}' expected" : "',' or ']' expected");
	}
done:
	p->tok[idx].count = count;
	p->tok[idx].len = (uint32_t)(p->pos - p->tok[idx].start);
	p->tok[idx].end = p->ntok;
	return 0;
}

static int parse_value(struct parser *p, int depth)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return fail(p, p->pos, "value expected");
	switch (p->s[p->pos]) {
	case '{':
		return parse_container(p, depth, 1);
	case '[':
		return parse_container(p, depth, 0);
	case '"':
		return parse_string(p);
	case 't':
		return parse_literal(p, "true", JSON_TRUE);
	case 'f':
		return parse_literal(p, "false", JSON_FALSE);
	case 'n':
		return parse_literal(p, "null", JSON_NULL);
	default:
		return parse_number(p);
	}
}

int json_parse(struct json_doc *doc, const char *text, size_t len, const char *what,
	       struct qvl_err *err)
{
	struct parser p = {.s = (const unsigned char *)text, .len = len, .what = what, .err = err};
	int rc;

	memset(doc, 0, sizeof(*doc));
	if (len > JSON_MAX_LEN)
		return qvl_errf(err, -EFBIG, "%s: JSON text of %zu bytes is over the 2 GiB limit",
				what, len);
	/* a first guess that avoids most reallocations on large files */
	p.cap = (uint32_t)(len / 16 + 16);
	p.tok = malloc((size_t)p.cap * sizeof(*p.tok));
	if (!p.tok)
		return qvl_errf(err, -ENOMEM, "%s: out of memory parsing JSON", what);
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		return free(p.tok), fail(&p, 0, "byte order mark not allowed");
	rc = parse_value(&p, 0);
	if (!rc) {
		skip_ws(&p);
		if (p.pos != p.len)
			rc = fail(&p, p.pos, "trailing characters after the JSON value");
	}
	if (rc) {
		free(p.tok);
		return rc;
	}
	doc->text = text;
	doc->len = len;
	doc->tok = p.tok;
	doc->ntok = p.ntok;
	return 0;
}

void json_free(struct json_doc *doc)
{
	free(doc->tok);
	memset(doc, 0, sizeof(*doc));
}

uint32_t json_get(const struct json_doc *doc, uint32_t obj, const char *key)
{
	size_t klen = strlen(key);
	uint32_t i;

	if (obj >= doc->ntok || doc->tok[obj].type != JSON_OBJECT)
		return JSON_NONE;
	i = obj + 1;
	for (uint32_t c = 0; c < doc->tok[obj].count; c++) {
		uint32_t v = i + 1;
		if (json_str_eq(doc, i, key, klen))
			return v;
		i = doc->tok[v].end;
	}
	return JSON_NONE;
}

uint32_t json_at(const struct json_doc *doc, uint32_t arr, uint32_t idx)
{
	uint32_t i;

	if (arr >= doc->ntok || doc->tok[arr].type != JSON_ARRAY || idx >= doc->tok[arr].count)
		return JSON_NONE;
	i = arr + 1;
	while (idx--)
		i = doc->tok[i].end;
	return i;
}

int json_int64(const struct json_doc *doc, uint32_t t, int64_t *out)
{
	const char *s;
	uint32_t n, i = 0;
	int neg = 0;
	uint64_t v = 0;

	if (t >= doc->ntok || doc->tok[t].type != JSON_NUMBER)
		return -EINVAL;
	s = doc->text + doc->tok[t].start;
	n = doc->tok[t].len;
	if (s[0] == '-') {
		neg = 1;
		i = 1;
	}
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL; /* fraction or exponent: not an integer */
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
		return -ERANGE;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

int json_double(const struct json_doc *doc, uint32_t t, double *out)
{
	char buf[128];
	uint32_t n;
	char *end;

	if (t >= doc->ntok || doc->tok[t].type != JSON_NUMBER)
		return -EINVAL;
	n = doc->tok[t].len;
	if (n >= sizeof(buf))
		return -ERANGE;
	memcpy(buf, doc->text + doc->tok[t].start, n);
	buf[n] = 0;
	*out = strtod(buf, &end);
	if (*end || !isfinite(*out))
		return -ERANGE;
	return 0;
}

int json_bool(const struct json_doc *doc, uint32_t t, bool *out)
{
	if (t >= doc->ntok)
		return -EINVAL;
	if (doc->tok[t].type == JSON_TRUE)
		*out = true;
	else if (doc->tok[t].type == JSON_FALSE)
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

long json_str(const struct json_doc *doc, uint32_t t, char *out, size_t cap)
{
	const unsigned char *s;
	size_t n, o = 0;
	char tmp[4];

	if (t >= doc->ntok || doc->tok[t].type != JSON_STRING)
		return -EINVAL;
	s = (const unsigned char *)doc->text + doc->tok[t].start;
	n = doc->tok[t].len;
	if (!doc->tok[t].escaped) {
		if (out && cap) {
			memcpy(out, s, n < cap ? n : cap);
			if (n < cap)
				out[n] = 0;
		}
		return (long)n;
	}
	for (size_t i = 0; i < n;) {
		size_t w = 1;
		if (s[i] != '\\') {
			tmp[0] = (char)s[i++];
		} else {
			unsigned char c = s[i + 1];
			i += 2;
			switch (c) {
			case 'b': tmp[0] = '\b'; break;
			case 'f': tmp[0] = '\f'; break;
			case 'n': tmp[0] = '\n'; break;
			case 'r': tmp[0] = '\r'; break;
			case 't': tmp[0] = '\t'; break;
			case 'u': {
				unsigned u = 0, lo = 0;
				hex4(s + i, &u); /* validated by the parser */
				i += 4;
				if (u >= 0xd800 && u <= 0xdbff) {
					hex4(s + i + 2, &lo);
					i += 6;
					u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
				}
				w = put_utf8(tmp, u);
				break;
			}
			default: tmp[0] = (char)c; break;
			}
		}
		for (size_t k = 0; k < w; k++, o++)
			if (out && o < cap)
				out[o] = tmp[k];
	}
	if (out && o < cap)
		out[o] = 0;
	return (long)o;
}

char *json_strdup(const struct json_doc *doc, uint32_t t, size_t *len_out)
{
	long n = json_str(doc, t, NULL, 0);
	char *s;

	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	json_str(doc, t, s, (size_t)n + 1);
	if (len_out)
		*len_out = (size_t)n;
	return s;
}

bool json_str_eq(const struct json_doc *doc, uint32_t t, const char *str, size_t n)
{
	char stackbuf[256];
	long got;

	if (t >= doc->ntok || doc->tok[t].type != JSON_STRING)
		return false;
	if (!doc->tok[t].escaped)
		return doc->tok[t].len == n && !memcmp(doc->text + doc->tok[t].start, str, n);
	if (n >= sizeof(stackbuf))
		return false; /* escaped keys this long do not occur in what we compare */
	got = json_str(doc, t, stackbuf, sizeof(stackbuf));
	return got == (long)n && !memcmp(stackbuf, str, n);
}

const char *json_type_name(enum json_type t)
{
	static const char *const names[] = {"null",   "false", "true",  "number",
					    "string", "array", "object"};
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

void json_escape(json_sink *put, void *ctx, const char *s, size_t n)
{
	size_t run = 0; /* start of the bytes not written yet */

	put(ctx, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue; /* the common case: part of the run */
		char esc[8] = {'\\', (char)ch};
		size_t elen = 2;
		if (ch == '\n')
			esc[1] = 'n';
		else if (ch < 0x20)
			elen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", ch);
		if (i > run)
			put(ctx, s + run, i - run);
		put(ctx, esc, elen);
		run = i + 1;
	}
	if (n > run)
		put(ctx, s + run, n - run);
	put(ctx, "\"", 1);
}

static void file_sink(void *ctx, const char *p, size_t n)
{
	fwrite(p, 1, n, ctx);
}

void json_write_string(FILE *f, const char *s, size_t n)
{
	json_escape(file_sink, f, s, n);
}
