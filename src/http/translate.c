/* qvl-http: OpenAI request JSON -> the parts, flags and sampling of one
 * qvld GENERATE request (see translate.h). Every field is checked here, with
 * a message naming it, so that the daemon only sees requests it accepts.
 * Unknown fields are ignored, as llama-server and vLLM do; known fields that
 * qvl cannot honour (tools, n > 1, echo) are
 * refused rather than silently dropped. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/b64.h"
#include "http/translate.h"
#include "json.h"

int http_fail(struct http_error *e, int code, int status, const char *param, const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

#define BAD(e, param, ...) http_fail(e, -EINVAL, 400, param, __VA_ARGS__)

struct tr {
	const struct json_doc *d;
	const struct http_limits *lim;
	struct http_plan *p;
	struct http_error *e;
};

/* The value of key in obj, or JSON_NONE when absent or null. */
static uint32_t field(const struct json_doc *d, uint32_t obj, const char *key)
{
	uint32_t t = json_get(d, obj, key);
	return t != JSON_NONE && d->tok[t].type == JSON_NULL ? JSON_NONE : t;
}

static int num(struct tr *t, uint32_t obj, const char *key, double lo, double hi, double *out,
	       bool *given)
{
	uint32_t v = field(t->d, obj, key);

	if (v == JSON_NONE)
		return 0;
	if (json_double(t->d, v, out) < 0 || !isfinite(*out))
		return BAD(t->e, key, "%s: not a number", key);
	if (!(*out >= lo && *out <= hi))
		return BAD(t->e, key, "%s: %g out of range (%g..%g)", key, *out, lo, hi);
	if (given)
		*given = true;
	return 0;
}

static int integer(struct tr *t, uint32_t obj, const char *key, int64_t lo, int64_t hi,
		   int64_t *out, bool *given)
{
	uint32_t v = field(t->d, obj, key);

	if (v == JSON_NONE)
		return 0;
	if (json_int64(t->d, v, out) < 0)
		return BAD(t->e, key, "%s: not an integer", key);
	if (*out < lo || *out > hi)
		return BAD(t->e, key, "%s: %lld out of range (%lld..%lld)", key, (long long)*out,
			   (long long)lo, (long long)hi);
	if (given)
		*given = true;
	return 0;
}

static int boolean(struct tr *t, uint32_t obj, const char *key, bool *out)
{
	uint32_t v = field(t->d, obj, key);

	if (v != JSON_NONE && json_bool(t->d, v, out) < 0)
		return BAD(t->e, key, "%s: not a boolean", key);
	return 0;
}

static int add_part(struct tr *t, uint32_t kind, char *data, size_t len, const char *param)
{
	struct http_plan *p = t->p;

	if (p->n_parts == QVL_MAX_PARTS) {
		free(data);
		return BAD(t->e, param, "%s: more than %u messages, images and stops in all", param,
			   QVL_MAX_PARTS);
	}
	if (len > UINT32_MAX) {
		free(data);
		return BAD(t->e, param, "%s: %zu bytes is too long", param, len);
	}
	p->parts[p->n_parts++] =
	    (struct http_part){.kind = kind, .len = (uint32_t)len, .data = data};
	return 0;
}

static int str_part(struct tr *t, uint32_t v, uint32_t kind, const char *param)
{
	size_t len;
	char *s = json_strdup(t->d, v, &len);

	if (!s)
		return http_fail(t->e, -ENOMEM, 500, param, "%s: out of memory", param);
	return add_part(t, kind, s, len, param);
}

/* "stop": a string or an array of strings. */
static int stops(struct tr *t, uint32_t root)
{
	uint32_t v = field(t->d, root, "stop"), n = 1, s;

	if (v == JSON_NONE)
		return 0;
	if (t->d->tok[v].type == JSON_ARRAY)
		n = t->d->tok[v].count;
	else if (t->d->tok[v].type != JSON_STRING)
		return BAD(t->e, "stop", "stop: not a string or an array of strings");
	if (n > QVL_MAX_STOPS)
		return BAD(t->e, "stop", "stop: %u strings, at most %u", n, QVL_MAX_STOPS);
	s = t->d->tok[v].type == JSON_ARRAY ? v + 1 : v;
	for (uint32_t i = 0; i < n; i++, s = t->d->tok[s].end) {
		long len = json_str(t->d, s, NULL, 0);
		if (t->d->tok[s].type != JSON_STRING || len < 0)
			return BAD(t->e, "stop", "stop[%u]: not a string", i);
		if (len < 1 || len > (long)QVL_MAX_STOP_LEN)
			return BAD(t->e, "stop", "stop[%u]: %ld bytes (1..%u)", i, len,
				   QVL_MAX_STOP_LEN);
		int rc = str_part(t, s, QVL_PART_STOP, "stop");
		if (rc)
			return rc;
		t->p->n_stops++;
	}
	return 0;
}

/* An image_url part: a data: URL with base64 PNG or JPEG, never fetched;
 * at: where in its message's text it goes. */
static int image(struct tr *t, uint32_t part, const char *param, size_t at)
{
	const struct json_doc *d = t->d;
	uint32_t u = field(d, part, "image_url");
	const char *mime, *b64;
	size_t mlen, blen, url_len, n;
	char *url, *img;
	int rc;

	if (u != JSON_NONE && d->tok[u].type == JSON_OBJECT)
		u = field(d, u, "url");
	if (u == JSON_NONE || d->tok[u].type != JSON_STRING)
		return BAD(t->e, param, "%s: image_url.url: missing or not a string", param);
	if (t->p->n_images == QVL_MAX_IMAGES)
		return BAD(t->e, param, "%s: more than %u images", param, QVL_MAX_IMAGES);
	url = json_strdup(d, u, &url_len);
	if (!url)
		return http_fail(t->e, -ENOMEM, 500, param, "out of memory");
	if (data_url_split(url, url_len, &mime, &mlen, &b64, &blen) < 0) {
		bool remote = !strncasecmp(url, "http:", 5) || !strncasecmp(url, "https:", 6);
		free(url);
		return BAD(t->e, param,
			   "%s: image_url: %s; send a data: URL with base64 PNG or JPEG", param,
			   remote ? "remote URLs are refused (qvl never fetches)"
				  : "not a base64 data: URL");
	}
	rc = b64_decode(b64, blen, t->lim->max_image, &img, &n);
	free(url);
	if (rc == -E2BIG)
		return http_fail(t->e, rc, 413, param, "%s: image larger than %zu bytes", param,
				 t->lim->max_image);
	if (rc == -ENOMEM)
		return http_fail(t->e, rc, 500, param, "out of memory");
	if (rc < 0)
		return BAD(t->e, param, "%s: image_url: invalid base64", param);
	/* the daemon decodes; refuse here what it could not (no sniffing of
	 * the declared type: the bytes decide) */
	if (!(n >= 8 && !memcmp(img, "\x89PNG\r\n\x1a\n", 8)) &&
	    !(n >= 3 && !memcmp(img, "\xff\xd8\xff", 3))) {
		free(img);
		return BAD(t->e, param, "%s: image_url: not a PNG or JPEG image", param);
	}
	if ((rc = add_part(t, QVL_PART_IMAGE, img, n, param)))
		return rc;
	t->p->parts[t->p->n_parts - 1].text_at = (uint32_t)at; /* < the text's 4 GiB check */
	t->p->n_images++;
	return 0;
}

/* Append the text of token v to *buf, after a "\n" when sep. */
static int cat_text(struct tr *t, uint32_t v, char **buf, size_t *len, bool sep, const char *param)
{
	long n = json_str(t->d, v, NULL, 0);
	char *b;

	if (n < 0)
		return BAD(t->e, param, "%s: text: not a string", param);
	b = realloc(*buf, *len + (size_t)n + 2);
	if (!b)
		return http_fail(t->e, -ENOMEM, 500, param, "out of memory");
	if (sep)
		b[(*len)++] = '\n';
	json_str(t->d, v, b + *len, (size_t)n + 1);
	*len += (size_t)n;
	*buf = b;
	return 0;
}

static int message(struct tr *t, uint32_t m, uint32_t idx)
{
	const struct json_doc *d = t->d;
	char param[64];
	uint32_t role, c, kind;
	char *text = NULL;
	size_t len = 0;
	int rc = 0;

	snprintf(param, sizeof(param), "messages[%u]", idx);
	if (d->tok[m].type != JSON_OBJECT)
		return BAD(t->e, param, "%s: not an object", param);
	role = field(d, m, "role");
	if (role == JSON_NONE || d->tok[role].type != JSON_STRING)
		return BAD(t->e, param, "%s: role: missing or not a string", param);
	if (json_str_eq(d, role, "system", 6) || json_str_eq(d, role, "developer", 9))
		kind = QVL_PART_SYSTEM;
	else if (json_str_eq(d, role, "user", 4))
		kind = QVL_PART_USER;
	else if (json_str_eq(d, role, "assistant", 9))
		kind = QVL_PART_ASSISTANT;
	else
		return BAD(t->e, param,
			   "%s: role: not system, developer, user or assistant (no tools)", param);
	if (field(d, m, "tool_calls") != JSON_NONE || field(d, m, "function_call") != JSON_NONE)
		return BAD(t->e, param, "%s: tool calls are not supported", param);
	c = field(d, m, "content");
	if (c == JSON_NONE)
		return BAD(t->e, param, "%s: content: missing", param);
	if (d->tok[c].type == JSON_STRING)
		return str_part(t, c, kind, param);
	if (d->tok[c].type != JSON_ARRAY)
		return BAD(t->e, param, "%s: content: not a string or an array of parts", param);
	/* llama-server's rule: text parts joined by "\n", none next to an
	 * image; each image (a QVL_PART_IMAGE before the message's part)
	 * keeps its place in the text */
	bool after_text = false;
	for (uint32_t i = 0, p = c + 1; !rc && i < d->tok[c].count; i++, p = d->tok[p].end) {
		uint32_t ty = d->tok[p].type == JSON_OBJECT ? field(d, p, "type") : JSON_NONE;
		if (ty == JSON_NONE || d->tok[ty].type != JSON_STRING)
			rc = BAD(t->e, param, "%s: content[%u]: type: missing", param, i);
		else if (json_str_eq(d, ty, "text", 4)) {
			uint32_t tx = field(d, p, "text");
			rc = tx == JSON_NONE
				 ? BAD(t->e, param, "%s: content[%u]: text: missing", param, i)
				 : cat_text(t, tx, &text, &len, after_text, param);
			after_text = true;
		} else if (json_str_eq(d, ty, "image_url", 9)) {
			rc = kind == QVL_PART_USER
				 ? image(t, p, param, len)
				 : BAD(t->e, param, "%s: images only in user messages", param);
			after_text = false;
		} else {
			rc = BAD(t->e, param,
				 "%s: content[%u]: type: only text and image_url are supported",
				 param, i);
		}
	}
	if (!rc)
		return add_part(t, kind, text ? text : strdup(""), len, param);
	free(text);
	return rc;
}

static int chat(struct tr *t, uint32_t root)
{
	uint32_t ms = field(t->d, root, "messages");
	int rc = 0;

	if (ms == JSON_NONE || t->d->tok[ms].type != JSON_ARRAY || !t->d->tok[ms].count)
		return BAD(t->e, "messages", "messages: missing, or not a non-empty array");
	for (uint32_t i = 0, m = ms + 1; !rc && i < t->d->tok[ms].count; i++, m = t->d->tok[m].end)
		rc = message(t, m, i);
	return rc;
}

/* "prompt": a string, [string], or an array of token ids. */
static int completion_prompt(struct tr *t, uint32_t root)
{
	const struct json_doc *d = t->d;
	uint32_t v = field(d, root, "prompt"), n;
	int32_t *ids;

	t->p->flags |= QVL_GEN_RAW;
	if (v != JSON_NONE && d->tok[v].type == JSON_ARRAY && d->tok[v].count == 1 &&
	    d->tok[v + 1].type == JSON_STRING)
		v++;
	if (v == JSON_NONE)
		return BAD(t->e, "prompt", "prompt: missing");
	if (d->tok[v].type == JSON_STRING) {
		if (json_str(d, v, NULL, 0) == 0)
			return BAD(t->e, "prompt", "prompt: empty");
		return str_part(t, v, QVL_PART_USER, "prompt");
	}
	if (d->tok[v].type != JSON_ARRAY || !(n = d->tok[v].count))
		return BAD(t->e, "prompt", "prompt: not a string, [string] or [token ids]");
	ids = malloc((size_t)n * 4);
	if (!ids)
		return http_fail(t->e, -ENOMEM, 500, "prompt", "out of memory");
	for (uint32_t i = 0, k = v + 1; i < n; i++, k = d->tok[k].end) {
		int64_t x;
		if (json_int64(d, k, &x) < 0 || x < 0 || x > INT32_MAX) {
			free(ids);
			return BAD(t->e, "prompt", "prompt[%u]: not a token id", i);
		}
		ids[i] = (int32_t)x;
	}
	return add_part(t, QVL_PART_TOKENS, (char *)ids, (size_t)n * 4, "prompt");
}

/* Fields qvl does not implement: refused when set to anything but their
 * neutral value, so that a client never gets silently different output. */
static int unsupported(struct tr *t, uint32_t root)
{
	static const char *const never[] = {"tools",  "functions", "tool_choice", "function_call",
					    "suffix", "audio",	   "prediction"};
	const struct json_doc *d = t->d;
	uint32_t v;
	int64_t n = 1;
	bool echo = false;
	int rc;

	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		v = field(d, root, never[i]);
		if (v != JSON_NONE && !(d->tok[v].type == JSON_ARRAY && !d->tok[v].count) &&
		    !(d->tok[v].type == JSON_STRING && json_str_eq(d, v, "none", 4)))
			return BAD(t->e, never[i], "%s: not supported by qvl-http", never[i]);
	}
	v = field(d, root, "response_format");
	if (v != JSON_NONE) {
		uint32_t ty = d->tok[v].type == JSON_OBJECT ? field(d, v, "type") : JSON_NONE;
		if (ty == JSON_NONE || !json_str_eq(d, ty, "text", 4))
			return BAD(t->e, "response_format",
				   "response_format: only {\"type\": \"text\"} is supported");
	}
	if ((rc = integer(t, root, "n", 1, 1, &n, NULL)) ||
	    (rc = integer(t, root, "best_of", 1, 1, &n, NULL)) ||
	    (rc = boolean(t, root, "echo", &echo)))
		return rc;
	if (echo)
		return BAD(t->e, "echo", "echo: not supported by qvl-http");
	return 0;
}

static int sampling(struct tr *t, uint32_t root)
{
	struct http_plan *p = t->p;
	bool given = false, ignore_eos = false;
	double temp = 1, top_p = 1, min_p = 0, pres = 0, freq = 0, rep = 1;
	int64_t top_k = 0, seed = 0, mt = 0, tlp = 0;
	bool seeded = false;
	int rc;

	if ((rc = num(t, root, "temperature", 0, 2, &temp, &given)) ||
	    (rc = num(t, root, "top_p", 0, 1, &top_p, &given)) ||
	    (rc = num(t, root, "min_p", 0, 0.999999, &min_p, &given)) ||
	    (rc = num(t, root, "presence_penalty", -2, 2, &pres, &given)) ||
	    (rc = num(t, root, "frequency_penalty", -2, 2, &freq, &given)) ||
	    (rc = num(t, root, "repeat_penalty", 0.000001, 100, &rep, &given)) ||
	    (rc = integer(t, root, "top_k", 0, 1000000, &top_k, &given)) ||
	    (rc = integer(t, root, "seed", INT64_MIN, INT64_MAX, &seed, &seeded)) ||
	    (rc = integer(t, root, "max_tokens", 1, QVL_MAX_TOKENS, &mt, NULL)) ||
	    (rc = integer(t, root, "max_completion_tokens", 1, QVL_MAX_TOKENS, &mt, NULL)) ||
	    (rc = integer(t, root, "top_logprobs", 0, 20, &tlp, NULL)) ||
	    (rc = boolean(t, root, "ignore_eos", &ignore_eos)))
		return rc;
	/* completions: "logprobs": N (0..5) asks for the chosen token's and N
	 * alternatives; chat: a boolean */
	if (p->api == HTTP_API_COMPLETIONS) {
		bool lp = false;
		if ((rc = integer(t, root, "logprobs", 0, 5, &tlp, &lp)))
			return rc;
		p->logprobs = lp;
	} else if ((rc = boolean(t, root, "logprobs", &p->logprobs))) {
		return rc;
	}
	if (tlp && !p->logprobs)
		return BAD(t->e, "top_logprobs", "top_logprobs: needs \"logprobs\": true");
	p->top_logprobs = (uint32_t)tlp;
	p->max_tokens = (uint32_t)mt;
	p->flags |= p->logprobs ? QVL_GEN_LOGPROBS : 0;
	p->flags |= tlp ? QVL_GEN_TOP_LOGPROBS : 0;
	p->flags |= ignore_eos ? QVL_GEN_IGNORE_EOS : 0;
	if (!given && !seeded) {
		p->flags |= QVL_GEN_MODEL_DEFAULTS;
		return 0;
	}
	/* greedy keeps the penalties: they change the argmax */
	if (temp == 0 || top_p == 0)
		p->flags |= QVL_GEN_GREEDY;
	p->frequency_penalty = (float)freq;
	p->s = (struct qvl_sampling){.temperature = (float)temp,
				     .top_p = (float)top_p,
				     .min_p = (float)min_p,
				     .repeat_penalty = (float)rep,
				     .presence_penalty = (float)pres,
				     .top_k = (int32_t)top_k,
				     .seed = (uint64_t)seed};
	return 0;
}

static int top(struct tr *t)
{
	const struct json_doc *d = t->d;
	struct http_plan *p = t->p;
	uint32_t v, so;
	int rc;

	if (d->tok[0].type != JSON_OBJECT)
		return BAD(t->e, "", "request body: not a JSON object");
	snprintf(p->model, sizeof(p->model), "qvl");
	v = field(d, 0, "model");
	if (v != JSON_NONE) {
		if (d->tok[v].type != JSON_STRING)
			return BAD(t->e, "model", "model: not a string");
		if (json_str(d, v, p->model, sizeof(p->model)) >= (long)sizeof(p->model))
			return BAD(t->e, "model", "model: longer than %zu bytes",
				   sizeof(p->model) - 1);
	}
	if ((rc = boolean(t, 0, "stream", &p->stream)))
		return rc;
	so = field(d, 0, "stream_options");
	if (so != JSON_NONE) {
		if (d->tok[so].type != JSON_OBJECT)
			return BAD(t->e, "stream_options", "stream_options: not an object");
		if ((rc = boolean(t, so, "include_usage", &p->include_usage)))
			return rc;
	}
	if ((rc = unsupported(t, 0)) || (rc = sampling(t, 0)))
		return rc;
	rc = p->api == HTTP_API_CHAT ? chat(t, 0) : completion_prompt(t, 0);
	return rc ? rc : stops(t, 0);
}

int http_translate(const char *body, size_t len, enum http_api api, const struct http_limits *lim,
		   struct http_plan *p, struct http_error *e)
{
	struct qvl_err qe = {{0}};
	struct json_doc d;
	struct tr t = {&d, lim, p, e};
	int rc;

	p->n_parts = p->n_images = p->n_stops = 0;
	p->api = api;
	p->flags = 0;
	p->max_tokens = 0;
	p->s = (struct qvl_sampling){0};
	p->frequency_penalty = 0;
	p->top_logprobs = 0;
	p->stream = p->include_usage = p->logprobs = false;
	p->model[0] = 0;
	if ((rc = json_parse(&d, body, len, "request body", &qe)) < 0)
		return rc == -ENOMEM ? http_fail(e, rc, 500, "", "out of memory")
				     : BAD(e, "", "%s", qe.msg);
	rc = top(&t);
	json_free(&d);
	if (rc)
		http_plan_free(p);
	return rc;
}

void http_plan_free(struct http_plan *p)
{
	for (uint32_t i = 0; i < p->n_parts; i++)
		free(p->parts[i].data);
	p->n_parts = p->n_images = p->n_stops = 0;
}
