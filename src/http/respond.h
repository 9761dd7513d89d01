/* qvl-http: the OpenAI-shaped answers: completion objects, SSE chunks,
 * error objects, the model list and health, written into a job's output. */
#ifndef QVL_HTTP_RESPOND_H
#define QVL_HTTP_RESPOND_H

#include <stddef.h>

#include "http/job.h"
#include "qvl.h"

/* An OpenAI error object for status (malloc'd, NUL-terminated; NULL on
 * allocation failure). */
char *respond_error_json(int status, const char *param, const char *msg, size_t *len);

/* The job failed: an error body with status, or (a stream already
 * answered 200) an SSE error event and the end of the stream. */
void respond_fail(struct job *j, int status, const char *msg);

/* The HTTP status for a daemon error (-EBUSY: 429, -EINVAL: 400 ...). */
int respond_status_of(int res);

struct http_vocab;

/* A CQE of a generation whose output region is r's (text, ids, logprobs
 * and alternatives, checked against the CQE's counts here); v names the
 * tokens of logprobs. Appends the SSE chunk(s), or at the final CQE of a
 * non-streamed request the whole completion object. */
void respond_generate(struct job *j, const struct qvl_cqe *c, const struct qvl_req *r,
		      const struct http_vocab *v);

/* The final CQE of a STATUS (health, models) or STATS (metrics) query:
 * out is its JSON text (NUL-terminated). extra: the bridge's own
 * Prometheus lines (metrics only). */
void respond_query(struct job *j, const struct qvl_cqe *c, const char *out, const char *extra);

#endif
