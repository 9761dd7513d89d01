/* qvl-http: OpenAI-shaped answers (see respond.h). Each answer is written
 * to a memory stream and appended to the job's output in one piece, so
 * that the reader callback never sees half an SSE event. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/respond.h"
#include "http/vocab.h"
#include "json.h"
#include "prometheus.h"

static const char *error_type(int status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 404:
		return "not_found_error";
	case 429:
		return "rate_limit_error";
	case 500:
		return "server_error";
	case 503:
		return "service_unavailable";
	default:
		return "invalid_request_error";
	}
}

static void error_object(FILE *f, int status, const char *param, const char *msg)
{
	fprintf(f, "{\"error\":{\"message\":");
	json_write_string(f, msg, strlen(msg));
	fprintf(f, ",\"type\":\"%s\",\"param\":", error_type(status));
	if (param && *param)
		json_write_string(f, param, strlen(param));
	else
		fprintf(f, "null");
	fprintf(f, ",\"code\":%s}}",
		status == 401	? "\"invalid_api_key\""
		: status == 429 ? "\"busy\""
				: "null");
}

char *respond_error_json(int status, const char *param, const char *msg, size_t *len)
{
	char *s = NULL;
	FILE *f = open_memstream(&s, len);

	if (!f)
		return NULL;
	error_object(f, status, param, msg);
	fputc('\n', f);
	if (fclose(f)) {
		free(s);
		return NULL;
	}
	return s;
}

/* Finish memory stream f and append what it holds to the job's output. */
static void flush_to(struct job *j, FILE *f, char **s, size_t *n)
{
	if (fclose(f))
		j->oom = true;
	else
		job_append(j, *s, *n);
	free(*s);
}

void respond_fail(struct job *j, int status, const char *msg)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	if (!f) {
		j->oom = true;
		return;
	}
	if (j->started && j->stream && j->status == 200) {
		/* the 200 went out with the first chunk: say it in the stream */
		fprintf(f, "data: ");
		error_object(f, status, NULL, msg);
		fprintf(f, "\n\ndata: [DONE]\n\n");
	} else {
		j->status = status;
		j->ctype = "application/json";
		j->out_n = j->out_sent = 0;
		error_object(f, status, NULL, msg);
		fputc('\n', f);
	}
	flush_to(j, f, &s, &n);
}

int respond_status_of(int res)
{
	switch (res) {
	case -EBUSY:
	case -EAGAIN:
		return 429;
	case -ENOTCONN:
	case -ESHUTDOWN:
	case -ECONNRESET:
		return 503;
	case -EINVAL:
	case -E2BIG:
	case -EBADMSG:
	case -ERANGE:
	case -EMSGSIZE:
	case -EILSEQ:
	case -ENOSPC:
	case -EOPNOTSUPP:
	case -ENOENT:
		return 400;
	default:
		return 500;
	}
}

static const char *finish_reason(uint32_t stop)
{
	switch (stop) {
	case QVL_STOP_LENGTH:
	case QVL_STOP_CONTEXT:
		return "\"length\"";
	case QVL_STOP_NONE:
		return "null";
	default:
		return "\"stop\"";
	}
}

/* What the output region holds for a generation, its counts checked. */
struct gen_view {
	const char *text;
	const int32_t *ids;
	const float *lp;		   /* NULL without logprobs */
	const struct qvl_top_logprob *top; /* NULL without alternatives */
	uint32_t k;
	const struct http_vocab *v;
};

/* Bytes of length 1..4 that form one valid UTF-8 sequence at s (n left). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80		   ? 1
		     : s[0] >= 0xC2 && s[0] < 0xE0 ? 2
		     : s[0] >= 0xE0 && s[0] < 0xF0 ? 3
		     : s[0] >= 0xF0 && s[0] < 0xF5 ? 4
						   : 0;

	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

/* A token's bytes as a JSON string: a piece may hold part of a UTF-8
 * character, which becomes U+FFFD (as OpenAI does; "bytes" keeps them). */
static void token_string(FILE *f, const char *s, uint32_t n)
{
	fputc('"', f);
	for (uint32_t i = 0; i < n;) {
		size_t k = utf8_seq((const unsigned char *)s + i, n - i);
		if (!k) {
			fputs("\\ufffd", f); /* the JSON escape */
			i++;
			continue;
		}
		if (k == 1 && (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20))
			fprintf(f, "\\u%04x", (unsigned char)s[i]);
		else
			fwrite(s + i, 1, k, f);
		i += (uint32_t)k;
	}
	fputc('"', f);
}

static void token_bytes(FILE *f, const char *s, uint32_t n)
{
	fputc('[', f);
	for (uint32_t k = 0; k < n; k++)
		fprintf(f, "%s%u", k ? "," : "", (unsigned char)s[k]);
	fputc(']', f);
}

/* {"token":..,"logprob":..,"bytes":[..]} of one id */
static void token_entry(FILE *f, const struct gen_view *g, int32_t id, float lp)
{
	uint32_t n;
	const char *s = http_vocab_piece(g->v, id, &n);

	fprintf(f, "{\"token\":");
	token_string(f, s, n);
	fprintf(f, ",\"logprob\":%.6g,\"bytes\":", lp);
	token_bytes(f, s, n);
}

/* The logprobs object for tokens [from, to). */
static void logprobs(FILE *f, const struct job *j, const struct gen_view *g, uint32_t from,
		     uint32_t to, uint32_t text_at)
{
	uint32_t n;
	const char *s;

	if (!j->logprobs || !g->lp) {
		fprintf(f, "null");
		return;
	}
	if (j->api == HTTP_API_CHAT) {
		fprintf(f, "{\"content\":[");
		for (uint32_t i = from; i < to; i++) {
			fprintf(f, "%s", i > from ? "," : "");
			token_entry(f, g, g->ids[i], g->lp[i]);
			fprintf(f, ",\"top_logprobs\":[");
			for (uint32_t a = 0; g->top && a < g->k; a++) {
				const struct qvl_top_logprob *e = &g->top[(uint64_t)i * g->k + a];
				fprintf(f, "%s", a ? "," : "");
				token_entry(f, g, e->id, e->logprob);
				fputc('}', f);
			}
			fprintf(f, "]}");
		}
		fprintf(f, "],\"refusal\":null}");
		return;
	}
	fprintf(f, "{\"tokens\":[");
	for (uint32_t i = from; i < to; i++) {
		s = http_vocab_piece(g->v, g->ids[i], &n);
		fprintf(f, "%s", i > from ? "," : "");
		token_string(f, s, n);
	}
	fprintf(f, "],\"token_logprobs\":[");
	for (uint32_t i = from; i < to; i++)
		fprintf(f, "%s%.6g", i > from ? "," : "", g->lp[i]);
	fprintf(f, "],\"top_logprobs\":");
	if (!g->top) {
		fprintf(f, "null");
	} else {
		fputc('[', f);
		for (uint32_t i = from; i < to; i++) {
			fprintf(f, "%s{", i > from ? "," : "");
			for (uint32_t a = 0; a < g->k; a++) {
				const struct qvl_top_logprob *e = &g->top[(uint64_t)i * g->k + a];
				s = http_vocab_piece(g->v, e->id, &n);
				fprintf(f, "%s", a ? "," : "");
				token_string(f, s, n);
				fprintf(f, ":%.6g", e->logprob);
			}
			fputc('}', f);
		}
		fputc(']', f);
	}
	/* offsets of each token's bytes in the text (as they add up) */
	fprintf(f, ",\"text_offset\":[");
	for (uint32_t i = from; i < to; i++) {
		fprintf(f, "%s%u", i > from ? "," : "", text_at);
		http_vocab_piece(g->v, g->ids[i], &n);
		text_at += n;
	}
	fprintf(f, "]}");
}

static void head(FILE *f, const struct job *j, const char *object)
{
	fprintf(f, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", j->id, object,
		j->created);
	json_write_string(f, j->model, strlen(j->model));
	fprintf(f, ",\"system_fingerprint\":null,\"choices\":[");
}

static void usage(FILE *f, const struct qvl_cqe *c)
{
	fprintf(f, "{\"prompt_tokens\":%u,\"completion_tokens\":%u,\"total_tokens\":%llu}",
		c->n_prompt, c->n_tokens, (unsigned long long)c->n_prompt + c->n_tokens);
}

/* The daemon's own clock, under llama-server's key names (an extension
 * clients ignore; the benchmark subtracts it from the client's TTFT). */
static void timings(FILE *f, const struct job *j, const struct qvl_cqe *c)
{
	double pre = (double)c->prefill_ns / 1e6, dec = (double)c->decode_ns / 1e6;
	/* the bridge's share of the first token's latency (qvl_http_ttft_ms):
	 * translation and submission, then first CQE seen to first byte
	 * written; the reaper's wake-up (CQE posted -> seen) apart, since any
	 * ring client waits for it too */
	double sub = j->t_submit - j->t_start, wr = j->t_sent ? j->t_sent - j->t_cqe : 0;
	double wake = j->t_post > 0 && j->t_cqe > j->t_post ? j->t_cqe - j->t_post : 0;

	fprintf(f,
		",\"timings\":{\"queue_ms\":%.3f,\"prompt_n\":%u,\"prompt_ms\":%.3f,"
		"\"predicted_n\":%u,\"predicted_ms\":%.3f,\"predicted_per_second\":%.3f,"
		"\"qvl_http_ttft_ms\":%.3f,\"qvl_http_submit_ms\":%.3f,\"qvl_http_wake_ms\":%.3f,"
		"\"qvl_http_write_ms\":%.3f}",
		(double)c->queue_ns / 1e6, c->n_prompt, pre, c->n_tokens, dec,
		c->n_tokens > 1 && dec > 0 ? (c->n_tokens - 1) / (dec / 1e3) : 0.0,
		(sub + wr) * 1e3, sub * 1e3, wake * 1e3, wr * 1e3);
}

/* One SSE chunk with the text and tokens that arrived since the last. */
static void chunk(FILE *f, struct job *j, const struct qvl_cqe *c, const struct gen_view *g,
		  bool first, bool final)
{
	const char *text = g->text;
	bool chat = j->api == HTTP_API_CHAT;
	uint32_t from = j->text_len, to = c->text_len > from ? c->text_len : from;

	fprintf(f, "data: ");
	head(f, j, chat ? "chat.completion.chunk" : "text_completion");
	if (chat) {
		fprintf(f, "{\"index\":0,\"delta\":{");
		if (first)
			fprintf(f, "\"role\":\"assistant\",");
		if (to > from || first || !final) {
			fprintf(f, "\"content\":");
			json_write_string(f, text + from, to - from);
		}
		fprintf(f, "},");
	} else {
		fprintf(f, "{\"index\":0,\"text\":");
		json_write_string(f, text + from, to - from);
		fprintf(f, ",");
	}
	fprintf(f, "\"logprobs\":");
	logprobs(f, j, g, j->n_tokens, c->n_tokens, j->tok_bytes);
	fprintf(f, ",\"finish_reason\":%s}]", final ? finish_reason(c->stop) : "null");
	if (j->include_usage)
		fprintf(f, ",\"usage\":null");
	if (final)
		timings(f, j, c);
	fprintf(f, "}\n\n");
	if (final && j->include_usage) {
		fprintf(f, "data: ");
		head(f, j, chat ? "chat.completion.chunk" : "text_completion");
		fprintf(f, "],\"usage\":");
		usage(f, c);
		fprintf(f, "}\n\n");
	}
	if (final)
		fprintf(f, "data: [DONE]\n\n");
}

/* The whole completion object (a request without "stream"). */
static void whole(FILE *f, struct job *j, const struct qvl_cqe *c, const struct gen_view *g)
{
	const char *text = g->text;
	bool chat = j->api == HTTP_API_CHAT;

	head(f, j, chat ? "chat.completion" : "text_completion");
	if (chat) {
		fprintf(f, "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
		json_write_string(f, text, c->text_len);
		fprintf(f, ",\"refusal\":null},");
	} else {
		fprintf(f, "{\"index\":0,\"text\":");
		json_write_string(f, text, c->text_len);
		fprintf(f, ",");
	}
	fprintf(f, "\"logprobs\":");
	logprobs(f, j, g, 0, c->n_tokens, 0);
	fprintf(f, ",\"finish_reason\":%s}],\"usage\":", finish_reason(c->stop));
	usage(f, c);
	timings(f, j, c);
	fprintf(f, "}\n");
}

/* The region's blocks, or -EBADMSG when the CQE's counts do not fit them
 * (the daemon is trusted, but a wrong count must not read past the arena). */
static int view(const struct job *j, const struct qvl_cqe *c, const struct qvl_req *r,
		const struct http_vocab *v, struct gen_view *g)
{
	uint64_t cap;
	const char *base = qvl_req_out(r, &cap);

	*g = (struct gen_view){
	    .text = qvl_req_text(r), .ids = qvl_req_ids(r), .lp = qvl_req_logprobs(r), .v = v};
	g->top = qvl_req_top_logprobs(r, &g->k);
	if (!base || !g->text || c->n_tokens > j->max_tokens ||
	    c->text_len > cap - (uint64_t)(g->text - base))
		return -EBADMSG;
	return 0;
}

void respond_generate(struct job *j, const struct qvl_cqe *c, const struct qvl_req *r,
		      const struct http_vocab *v)
{
	bool final = !(c->flags & QVL_CQE_F_MORE), first = !j->started;
	struct gen_view g;
	char *s = NULL;
	size_t n = 0;
	FILE *f;

	if (view(j, c, r, v, &g) < 0) {
		respond_fail(j, 500, "qvl-http: qvld's counts do not fit the output region");
		j->started = true;
		return;
	}
	if (final && c->res < 0) {
		/* the daemon puts its message where the text would go */
		char msg[512];
		if (c->text_len && c->text_len < sizeof(msg))
			snprintf(msg, sizeof(msg), "qvld: %.*s", (int)c->text_len, g.text);
		else
			snprintf(msg, sizeof(msg), "qvld: %s", qvl_strerror(c->res));
		respond_fail(j, respond_status_of(c->res), msg);
		j->started = true;
		return;
	}
	if (!j->started) {
		j->started = true;
		j->status = 200;
		j->ctype = j->stream ? "text/event-stream" : "application/json";
	}
	/* counts are cumulative; a stale CQE (fewer than seen) adds nothing */
	if (c->text_len < j->text_len || c->n_tokens < j->n_tokens)
		return;
	if (j->stream || final) {
		if (!(f = open_memstream(&s, &n))) {
			j->oom = true;
			return;
		}
		if (j->stream)
			chunk(f, j, c, &g, first, final);
		else
			whole(f, j, c, &g);
		flush_to(j, f, &s, &n);
	}
	for (uint32_t i = j->n_tokens; j->logprobs && i < c->n_tokens; i++) {
		uint32_t len;
		http_vocab_piece(v, g.ids[i], &len);
		j->tok_bytes += len;
	}
	j->n_tokens = c->n_tokens;
	j->text_len = c->text_len;
	j->n_prompt = c->n_prompt;
}

/* The file name of the model path: the id /v1/models lists. */
static void model_id(const char *json, char *id, size_t cap)
{
	struct qvl_err e;
	struct json_doc d;
	char path[1024] = "qvl";

	if (!json_parse(&d, json, strlen(json), "status", &e)) {
		uint32_t m = d.tok[0].type == JSON_OBJECT ? json_get(&d, 0, "model") : JSON_NONE;
		if (m != JSON_NONE)
			json_str(&d, m, path, sizeof(path));
		json_free(&d);
	}
	while (strlen(path) > 1 && path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = 0;
	snprintf(id, cap, "%s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
}

void respond_query(struct job *j, const struct qvl_cqe *c, const char *out, const char *extra)
{
	char *s = NULL, id[1024];
	size_t n = 0;
	struct json_doc d;
	struct qvl_err e;
	FILE *f;

	j->started = true;
	if (c->res < 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "qvld: %s", qvl_strerror(c->res));
		respond_fail(j, respond_status_of(c->res), msg);
		return;
	}
	if (!(f = open_memstream(&s, &n))) {
		j->oom = true;
		return;
	}
	j->status = 200;
	j->ctype = "application/json";
	switch (j->kind) {
	case JOB_HEALTH:
		fprintf(f, "{\"status\":\"ok\",\"qvld\":%s}\n", out);
		break;
	case JOB_MODELS:
		model_id(out, id, sizeof(id));
		fprintf(f, "{\"object\":\"list\",\"data\":[{\"id\":");
		json_write_string(f, id, strlen(id));
		fprintf(f, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"qvl\"}]}\n",
			j->created);
		break;
	case JOB_METRICS:
		j->ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (!json_parse(&d, out, strlen(out), "stats", &e)) {
			if (d.tok[0].type == JSON_OBJECT)
				stats_prometheus(f, &d);
			json_free(&d);
		}
		fputs(extra ? extra : "", f);
		break;
	default:
		break;
	}
	flush_to(j, f, &s, &n);
}
