/* qvl-http: the one ring connection to qvld that every HTTP request goes
 * through. Requests are submitted from libmicrohttpd's thread under the
 * bridge's lock; one reaper thread waits for CQEs, turns them into answers
 * (respond.h) and resumes the suspended connections. When the daemon goes
 * away, every job in flight fails with 503 and the reaper reconnects. */
#ifndef QVL_HTTP_BRIDGE_H
#define QVL_HTTP_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "http/job.h"
#include "http/translate.h"

struct bridge;

struct bridge_opts {
	const char *socket; /* NULL: libqvl's default rule */
	uint64_t arena_size;
};

int bridge_create(const struct bridge_opts *o, struct bridge **out);
/* Stop the reaper, cancel and fail every job in flight (503) and resume
 * their connections: before MHD_stop_daemon, which must not find a
 * suspended connection. */
void bridge_stop(struct bridge *b);
/* bridge_stop if not done, disconnect, free: after MHD_stop_daemon. */
void bridge_destroy(struct bridge *b);

/* A job for conn, one reference (the connection's). */
struct job *bridge_job_new(enum job_kind kind, struct MHD_Connection *conn);
/* Take / drop a reference (frees at zero). */
void bridge_job_get(struct bridge *b, struct job *j);
void bridge_job_put(struct bridge *b, struct job *j);

/* Submit j (plan: the generation, NULL for the queries) and suspend its
 * connection until the first CQE. Called from libmicrohttpd's thread only.
 * 0, or -errno with *e saying what to answer. */
int bridge_start(struct bridge *b, struct job *j, const struct http_plan *plan,
		 struct http_error *e);

/* libmicrohttpd's thread: the client left (cancel in the daemon if the job
 * still runs). */
void bridge_conn_gone(struct bridge *b, struct job *j);

/* libmicrohttpd's thread, in the reader callback: copy up to max bytes of
 * the job's pending output. Returns the count, 0 after suspending the
 * connection (nothing yet), or -1 at the end of the stream. */
long bridge_read(struct bridge *b, struct job *j, char *buf, size_t max);

/* Take the finished answer (status, content type, body) out of a started
 * job; the body is malloc'd and the caller's. */
void bridge_take(struct bridge *b, struct job *j, int *status, const char **ctype, char **body,
		 size_t *len);

/* Is the started job a stream that answered 200 (else: an error to take)? */
bool bridge_stream_ok(struct bridge *b, struct job *j);

/* Count a served HTTP request (for /metrics). */
void bridge_count(struct bridge *b, int status);

#endif
