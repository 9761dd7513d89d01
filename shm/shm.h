/* The daemon side of the client rings: handshake, per-client memfd, the
 * validator and the poller loop. The daemon supplies the callbacks
 * (struct shm_ops) and does the engine work; everything that touches
 * client-writable memory is here.
 *
 * Threads: shm_poller_run() runs in one thread (the poller) and calls the
 * callbacks from it. shm_complete(), shm_post_more(), shm_request_*() and
 * shm_client_get/put() may be called from any thread. shm_poller_stop() is
 * async-signal-safe.
 *
 * Shared memory is hostile: the poller copies every SQE and request block
 * out before validating it; a struct shm_request holds only validated
 * copies. The daemon must still read the inputs a request names (text,
 * token ids, image bytes) exactly once, copying what it keeps, because the
 * client can change them at any time. */
#ifndef QVL_SHM_H
#define QVL_SHM_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "qvl.h"

struct shm_client;
struct shm_poller;

/* Limits and access policy, owned by the daemon (qvl.conf). Zeroes mean the
 * defaults in brackets. */
struct shm_policy {
	const uid_t *allow_uids; /* peers allowed by uid (besides the daemon's uid and root) */
	size_t n_allow_uids;
	const gid_t *allow_gids; /* peers allowed by primary gid */
	size_t n_allow_gids;
	int allow_any;		 /* accept every peer the socket mode lets in */
	uint32_t sq_entries;	 /* default SQ size [64] */
	uint32_t max_sq_entries; /* [4096] */
	uint64_t arena_size;	 /* default arena bytes [64 MiB] */
	uint64_t max_arena_size; /* [1 GiB] */
	uint32_t max_inflight;	 /* requests in the daemon per client [64] */
	uint32_t max_bad;	 /* consecutive invalid SQEs before disconnect [16] */
	uint32_t spin_us;	 /* poller spin before sleeping [50] */
	uint32_t max_clients;	 /* [256] */
	uint32_t ring_start;	 /* first value of the free-running counters [0]; tests start
				  * near UINT32_MAX to exercise the wraparound */
};

/* A validated part: (off, len) lie inside the arena and outside the output. */
struct shm_part {
	uint32_t kind; /* QVL_PART_* */
	uint32_t width, height, stride;
	uint64_t off, len;
	uint32_t text_at; /* images: where in the next user message (checked <= its len) */
};

/* A request the daemon owns: validated copies only. */
struct shm_request {
	struct shm_client *client; /* holds a reference until shm_complete() */
	uint8_t opcode;		   /* QVL_OP_* */
	uint64_t user_data;
	uint64_t arg;	  /* CANCEL: target user_data */
	uint64_t out_off; /* validated: inside the arena, 4-byte aligned */
	uint64_t out_len;
	struct qvl_gen_req gen; /* the copied header (flags, max_tokens, sampling, n_parts) */
	uint32_t n_text, n_images, n_stops;
	struct shm_part parts[QVL_MAX_PARTS];
	uint64_t t_submit_ns; /* CLOCK_MONOTONIC when the poller accepted it */
};

/* Refusal of a connection, for the daemon's log and counters. */
struct shm_refusal {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int code; /* -EACCES, -EPROTO, -EPROTONOSUPPORT, -EINVAL, -EMFILE, -ENOMEM ... */
	char msg[256];
};

struct shm_ops {
	void *ctx;
	/* A validated GENERATE, TOKENIZE, EMBED_IMAGE, CANCEL, STATS, STATUS or
	 * SHUTDOWN (permission already checked). Return 0 to own req (finish
	 * it with shm_complete), or -errno: the poller completes it with that
	 * status and reuses req. */
	int (*submit)(void *ctx, struct shm_request *req);
	/* A client connected (optional). */
	void (*connected)(void *ctx, struct shm_client *c);
	/* The client is gone (EOF, misbehaviour or shutdown): cancel its work and
	 * shm_complete() every request it still owns, soon. Its memory stays
	 * mapped until the last request completes. */
	void (*disconnected)(void *ctx, struct shm_client *c, int why);
	/* A connection was refused (optional). */
	void (*refused)(void *ctx, const struct shm_refusal *r);
};

struct shm_stats {
	uint64_t clients;      /* connected now */
	uint64_t accepted;     /* handshakes that succeeded */
	uint64_t refused;      /* handshakes refused */
	uint64_t disconnected; /* for misbehaviour */
	uint64_t sqes;	       /* SQEs consumed */
	uint64_t invalid;      /* SQEs that failed validation */
	uint64_t busy;	       /* SQEs refused with -EBUSY (in-flight limit) */
	uint64_t sleeps;       /* times the poller slept in epoll */
};

/* ---- poller --------------------------------------------------------------- */

/* listen_fd: a bound, listening UNIX stream socket (made nonblocking here). */
int shm_poller_create(int listen_fd, const struct shm_policy *pol, const struct shm_ops *ops,
		      struct shm_poller **out, struct qvl_err *err);
/* Serve until shm_poller_stop(); returns 0 or -errno on a fatal error. */
int shm_poller_run(struct shm_poller *p);
void shm_poller_stop(struct shm_poller *p);
/* Disconnect every client (calling ops->disconnected) and free the poller. */
void shm_poller_destroy(struct shm_poller *p);
void shm_poller_stats(struct shm_poller *p, struct shm_stats *st);

/* ---- requests (any thread) -------------------------------------------------- */

/* Post the final CQE of req and give req back. cqe->user_data and flags are
 * set from req; the other fields are the caller's. A client that is gone gets
 * nothing (returns -ENOTCONN) but req is still released. */
int shm_complete(struct shm_request *req, const struct qvl_cqe *cqe);
/* Post a streamed (QVL_CQE_F_MORE) CQE. -EAGAIN: the CQ has no room beyond
 * the final CQEs it reserves; the chunk is dropped, which is harmless since
 * the counts are cumulative. -ENOTCONN: the client is gone. */
int shm_post_more(struct shm_request *req, const struct qvl_cqe *cqe);
/* The client's arena (base, bytes): validated (off, len) index into it. */
uint8_t *shm_request_arena(const struct shm_request *req, uint64_t *size);

/* ---- clients ---------------------------------------------------------------- */

uint32_t shm_client_id(const struct shm_client *c);
void shm_client_cred(const struct shm_client *c, pid_t *pid, uid_t *uid, gid_t *gid);
void shm_client_get(struct shm_client *c);
void shm_client_put(struct shm_client *c);

/* ---- handshake (used by the poller; public for tests) ------------------------ */

/* Read the hello from sockfd (already readable), check the peer's
 * credentials, create and map the memfd and send the welcome with the fds.
 * On refusal, sends a welcome with the status (when the socket allows) and
 * fills *ref. sockfd is not closed either way; on success the client keeps
 * it (it is the liveness signal) and closes it when freed. */
int shm_handshake_server(int sockfd, const struct shm_policy *pol, uint32_t client_id,
			 struct shm_client **out, struct shm_refusal *ref);

/* bind+listen a UNIX stream socket at path with the given mode (0660). */
int shm_listen(const char *path, unsigned mode, int *fd, struct qvl_err *err);

#endif
