/* Shared by the example clients: stream one GENERATE request's text to
 * stdout, from the MORE chunks to the final CQE. */
#ifndef QVL_EXAMPLES_COMMON_H
#define QVL_EXAMPLES_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <qvl.h>

static int run_request(struct qvl *q, struct qvl_req *r, const char *prog)
{
	struct qvl_sqe *sqe = qvl_sqe_get(q);
	struct qvl_cqe *c;
	uint32_t printed = 0;
	int rc;

	if (!sqe || (rc = qvl_req_prep(r, sqe, 1, 0)) < 0) {
		fprintf(stderr, "%s: cannot prepare the request: %s\n", prog,
			qvl_strerror(sqe ? rc : -EBUSY));
		return 1;
	}
	qvl_submit(q);
	for (;;) {
		if ((rc = qvl_wait_cqe(q, &c, 600ll * 1000000000)) < 0) {
			fprintf(stderr, "%s: waiting for qvld: %s\n", prog, qvl_strerror(rc));
			return 1;
		}
		if (c->res < 0) {
			fprintf(stderr, "%s: request failed: %s\n", prog, qvl_strerror(c->res));
			qvl_cqe_seen(q);
			return 1;
		}
		/* text_len is cumulative: print what is new since the last chunk */
		fwrite(qvl_req_text(r) + printed, 1, c->text_len - printed, stdout);
		fflush(stdout);
		printed = c->text_len;
		if (!(c->flags & QVL_CQE_F_MORE)) {
			fprintf(
			    stderr,
			    "\n[%u prompt tokens, %u generated, prefill %.1f ms, decode %.1f ms]\n",
			    c->n_prompt, c->n_tokens, c->prefill_ns / 1e6, c->decode_ns / 1e6);
			qvl_cqe_seen(q);
			return 0;
		}
		qvl_cqe_seen(q);
	}
}

/* -n MAX_TOKENS: digits only, 1 or more. strtoul alone takes "-1" as
 * 2^64-1 and "5x" as 5, and the request went out with that. */
static int parse_max_tokens(const char *s, uint32_t *out, const char *prog)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
	if (!v || errno || *end || v > UINT32_MAX) {
		fprintf(stderr, "%s: -n '%s': want a number of tokens from 1 to %u\n", prog, s,
			UINT32_MAX);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static struct qvl *connect_or_explain(const char *path, const char *prog)
{
	struct qvl *q;
	int rc = qvl_connect(path, NULL, &q);

	if (rc < 0) {
		fprintf(
		    stderr, "%s: cannot connect to qvld at %s: %s (is qvld running? see qvld(8))\n",
		    prog, path ? path : "the default socket (qvl_connect(3))", qvl_strerror(rc));
		return NULL;
	}
	return q;
}

#endif
