/* qvl-http: one HTTP request that waits on the daemon (a generation, or a
 * STATS / STATUS query). Shared by the bridge (ring side), the responder
 * (OpenAI JSON) and the server (HTTP side).
 *
 * Ownership: two references, the connection's (dropped when libmicrohttpd
 * reports the request completed) and the ring's (dropped at the final CQE,
 * or when the daemon goes away). Everything below `refs` is guarded by the
 * bridge's lock. */
#ifndef QVL_HTTP_JOB_H
#define QVL_HTTP_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/translate.h"
#include "qvl.h"

struct MHD_Connection;
struct bridge;

enum job_kind {
	JOB_GENERATE,
	JOB_METRICS, /* STATS -> Prometheus text */
	JOB_HEALTH,  /* STATUS -> {"status":"ok"} */
	JOB_MODELS,  /* STATUS -> the model list */
};

struct job {
	/* set before bridge_start(), read-only after */
	enum job_kind kind;
	enum http_api api;
	bool stream, include_usage, logprobs;
	char model[128];
	char id[48];
	long long created;
	struct MHD_Connection *conn;
	struct bridge *bridge;
	int fd;		  /* the connection's socket (watched for a hang-up), -1 */
	bool half_closed; /* the client had shut its side when the request began */

	/* under the bridge's lock */
	int refs;
	uint64_t user_data;
	struct qvl_req *r;
	struct job *next;  /* in the bridge's list of jobs in flight */
	struct job *rnext; /* in a list of connections to resume */
	bool suspended;	   /* the connection is suspended and waits for us */
	bool started;	   /* the first CQE arrived: the HTTP status is known */
	bool done;	   /* the final CQE arrived (or the daemon went away) */
	bool conn_gone;	   /* the client left: cancel, then free at the final CQE */
	bool cancel_pending;
	bool hung_up;			       /* the socket hung up while suspended: cancelled */
	uint32_t n_tokens, text_len, n_prompt; /* seen so far (cumulative) */
	uint32_t max_tokens;		       /* of the request: bounds the CQE's counts */
	uint32_t tok_bytes;		       /* bytes of the tokens seen (text_offset) */
	int status;			       /* HTTP status once started */
	const char *ctype;
	char *out; /* the body, or the SSE bytes not yet sent */
	size_t out_n, out_cap, out_sent;
	bool oom; /* an append failed: the answer is cut short */
	/* the bridge's own share of the time to first token (qvl_now()):
	 * body complete -> submitted, and first CQE -> first byte to the socket;
	 * t_post is when qvld posted that first CQE (its post_ns), so that
	 * t_cqe - t_post is the reaper's wake-up delay */
	double t_start, t_submit, t_post, t_cqe, t_sent;
};

/* Append n bytes to j->out (sets j->oom on failure). */
void job_append(struct job *j, const char *s, size_t n);

#endif
