/* Helpers of the scheduler tests (tests/daemon_*.c): libqvl requests built
 * from token ids, waits that are always bounded, and the daemon's STATS
 * numbers read by key. */
#ifndef QVL_TESTS_DAEMON_CLIENT_H
#define QVL_TESTS_DAEMON_CLIENT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qvl.h"

/* A deterministic prompt of n ids (seeded), inside the tiny vocabulary's
 * ordinary tokens. */
static inline void dc_ids(int32_t *ids, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		ids[i] = (int32_t)(100 + (x >> 33) % 20000);
	}
}

/* Submit a greedy GENERATE (ids prompt of n ids, max_tokens, flags added). */
static inline int dc_submit_ids(struct qvl *q, uint64_t ud, const int32_t *ids, size_t n,
				uint32_t max, uint32_t flags, struct qvl_req **out)
{
	struct qvl_req *r;
	struct qvl_sqe *sqe;
	int rc = qvl_req_new(q, QVL_OP_GENERATE, &r);

	if (rc < 0)
		return rc;
	if ((rc = qvl_req_add_tokens(r, ids, n)) < 0 ||
	    (rc = qvl_req_set_flags(r, flags | QVL_GEN_GREEDY | QVL_GEN_IGNORE_EOS)) < 0 ||
	    (rc = qvl_req_set_max_tokens(r, max)) < 0)
		goto fail;
	sqe = qvl_sqe_get(q);
	if (!sqe) {
		rc = -EAGAIN;
		goto fail;
	}
	/* room for long pieces: libqvl's default (16 text bytes a token) can
	 * end a random-id generation early with QVL_STOP_LENGTH */
	if ((rc = qvl_req_prep(r, sqe, ud, (uint64_t)max * 80 + 1024)) < 0 ||
	    (rc = qvl_submit(q)) < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	qvl_release(r);
	return rc;
}

/* The next CQE within timeout_s, copied out. */
static inline int dc_next(struct qvl *q, struct qvl_cqe *out, double timeout_s)
{
	struct qvl_cqe *c;
	int rc = qvl_wait_cqe(q, &c, (int64_t)(timeout_s * 1e9));

	if (rc < 0)
		return rc;
	*out = *c;
	qvl_cqe_seen(q);
	return 0;
}

/* A CANCEL of target. */
static inline int dc_cancel(struct qvl *q, uint64_t ud, uint64_t target)
{
	struct qvl_sqe *sqe = qvl_sqe_get(q);

	if (!sqe)
		return -EAGAIN;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = QVL_OP_CANCEL;
	sqe->user_data = ud;
	sqe->arg = target;
	int rc = qvl_submit(q); /* the count submitted */
	return rc < 0 ? rc : 0;
}

/* STATS (or STATUS) into a malloc'd NUL-terminated string; NULL on error.
 * Other CQEs read meanwhile are dropped: use a connection of its own. */
static inline char *dc_stats(struct qvl *q, uint8_t op, uint64_t ud)
{
	struct qvl_req *r;
	struct qvl_sqe *sqe;
	struct qvl_cqe c;
	char *s = NULL;

	if (qvl_req_new(q, op, &r) < 0)
		return NULL;
	sqe = qvl_sqe_get(q);
	if (sqe && qvl_req_prep(r, sqe, ud, 64 << 10) == 0 && qvl_submit(q) >= 0) {
		for (int i = 0; i < 1000; i++) {
			if (dc_next(q, &c, 10) < 0)
				break;
			if (c.user_data != ud)
				continue; /* a straggler of an earlier request */
			if (c.res == 0 && (s = malloc(c.text_len + 1))) {
				memcpy(s, qvl_req_out(r, NULL), c.text_len);
				s[c.text_len] = 0;
			}
			break;
		}
	}
	qvl_release(r);
	return s;
}

/* The number after "key": in a flat JSON object; -1 when absent. */
static inline double dc_num(const char *json, const char *key)
{
	char pat[128];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = json ? strstr(json, pat) : NULL;
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

#endif
