/* qvl-http: an OpenAI request body (JSON) translated into the parts,
 * flags and sampling of one qvld GENERATE request. Pure: no ring, no HTTP,
 * so that the fuzz target (tests/fuzz/fuzz_http_translate.c) can check that
 * whatever it accepts the daemon's validator accepts too. */
#ifndef QVL_HTTP_TRANSLATE_H
#define QVL_HTTP_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qvl.h"

enum http_api {
	HTTP_API_CHAT,	      /* POST /v1/chat/completions */
	HTTP_API_COMPLETIONS, /* POST /v1/completions */
};

/* One ring part: kind QVL_PART_*; data is owned (malloc'd). */
struct http_part {
	uint32_t kind;
	uint32_t len;
	uint32_t text_at; /* images: byte of the next user message's text it goes before */
	char *data;
};

struct http_plan {
	enum http_api api;
	struct http_part parts[QVL_MAX_PARTS];
	uint32_t n_parts, n_images, n_stops;
	uint32_t flags;	     /* QVL_GEN_* (STREAM is the bridge's choice, not set here) */
	uint32_t max_tokens; /* 0: not given (the bridge uses the daemon's context) */
	struct qvl_sampling s;
	float frequency_penalty;
	uint32_t top_logprobs; /* 0..20, with logprobs */
	bool stream, include_usage, logprobs;
	char model[128]; /* echoed in the answer ("qvl" when absent) */
};

struct http_limits {
	size_t max_image; /* decoded bytes per image */
};

/* What to answer when a request is refused: the HTTP status, the OpenAI
 * error "param" (the offending field, may be empty) and a message. */
struct http_error {
	int status;
	char param[64];
	char msg[256];
};

/* 0, or -EINVAL / -E2BIG / -ENOMEM with *e filled (status 400, 413 or 500). */
int http_translate(const char *body, size_t len, enum http_api api, const struct http_limits *lim,
		   struct http_plan *p, struct http_error *e);
void http_plan_free(struct http_plan *p);

/* Fill *e and return code: a helper shared by the bridge's files. */
int http_fail(struct http_error *e, int code, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
