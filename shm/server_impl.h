/* The daemon's private view of one client (shm/server.c, shm/poller.c). */
#ifndef QVL_SHM_SERVER_IMPL_H
#define QVL_SHM_SERVER_IMPL_H

#include <pthread.h>
#include <sys/socket.h>

#include "shm.h"

struct shm_client {
	int sock;     /* the handshake socket: EOF means the client is gone */
	int doorbell; /* eventfd the client writes when our sq_need_wakeup is set */
	uint32_t id;
	struct ucred cred;
	uint8_t *map;
	size_t map_size;
	struct qvl_ring_hdr *hdr;
	struct qvl_sqe *sqes;
	struct qvl_cqe *cqes;
	uint8_t *arena;
	uint64_t arena_size;
	uint32_t sq_entries, cq_entries;
	uint32_t sq_head;      /* poller's private copy; the shared one is only written */
	uint32_t max_inflight; /* requests handed to the daemon at once */
	uint32_t bad;	       /* consecutive invalid SQEs (poller) */
	int refs;	       /* atomic: the poller's + one per request the daemon owns */
	int alive;	       /* atomic: 0 once disconnected */
	int broken; /* atomic: -errno when a CQ post found garbage; the poller disconnects */
	pthread_spinlock_t cq_lock; /* CQ producers: the poller and daemon threads */
	uint32_t cq_tail;	    /* under cq_lock: private copy of the tail */
	uint32_t reserved;	    /* under cq_lock: CQ slots owed to consumed SQEs */
	uint32_t dinflight;	    /* atomic: requests the daemon owns */
	struct shm_client *next;    /* poller's list */
};

/* Reserve up to want CQ slots (one per SQE about to be consumed); returns
 * how many. */
uint32_t shm_cq_reserve(struct shm_client *c, uint32_t want);
/* Post n CQEs. final: they consume reservations (and dinflight when
 * daemon_owned); else (MORE) they need a free unreserved slot. */
int shm_cq_post(struct shm_client *c, const struct qvl_cqe *cqes, uint32_t n, int final,
		int daemon_owned);
/* Reply to a handshake with a refusal status (no fds); fills ref's code and creds. */
void shm_refuse(int sockfd, int code, struct shm_refusal *ref);
/* Mark dead (idempotent), set the epoch to 0 and wake a sleeping client. */
void shm_client_kill(struct shm_client *c);

#endif
