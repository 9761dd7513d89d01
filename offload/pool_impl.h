/* The tiered pool's insides, shared by pool.c (opening, the engine hook,
 * the report) and fill.c (the streamed start's resident fill). */
#ifndef QVL_TIER_POOL_IMPL_H
#define QVL_TIER_POOL_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvme.h"
#include "pack.h"
#include "stream.h"
#include "tiers.h"

/* A 1-D tensor (a norm) of a layer not in host memory: kept at home. */
struct tier_vec {
	uint64_t off, len; /* within the shard */
};

struct tier_layer {
	enum tier_kind kind;
	const uint8_t *home; /* the shard's nominal address (in the model's arena) */
	void *dev;	     /* its device copy (TIER_DEV) */
	uint64_t dev_len;
	const char *name;  /* the shard's */
	uint64_t off;	   /* its offset in the file */
	uint64_t len, crc; /* the shard's bytes and their CRC-64 */
	struct tier_vec *vec;
	unsigned nvec;
	/* a streamed layer's norms as read at start-up (the engine widened
	 * them from home then): what every CRC-checked copy is compared with,
	 * kept apart since fill.c rewrites home behind compute */
	uint8_t *vkeep;
	/* raised by fill.c (release) once home holds the CRC-checked shard;
	 * never lowered: compute uses home from its next begin() on */
	atomic_bool resident;
	bool held; /* compute holds the window's buffer for it (begin..end) */
};

/* The streamed start's fill (fill.c); under mu but for stop. */
struct tier_fill {
	pthread_t th;
	bool started;
	bool pending;
	int rc;
	struct qvl_err err;
	unsigned filled;
	unsigned readers; /* readers (io_uring set-ups) opened: 1 for a whole fill */
	uint64_t bytes;
	double t0, seconds, read_s, mem_s;
	double wait_s;	  /* before the first layer: waiting for the first pass */
	atomic_bool stop; /* raised by tier_close: the reads stop, the thread is joined */
};

/* The streamed start's embeddings read behind the open (embed.c); under
 * the pool's mu but for ready and stop; started and sh are set before the
 * engine exists and not changed after. */
struct tier_embed {
	pthread_t th;
	bool started;
	struct nv_shard sh;
	pthread_cond_t cv; /* broadcast when state leaves 1 */
	int state;	   /* 1 reading, 0 read and checked, < 0 the error */
	struct qvl_err err;
	struct nv_stats st;
	double t0, seconds;
	atomic_bool ready; /* raised (release) with state 0: the lock-free check */
	atomic_bool stop;  /* raised by tier_close: the reads stop, the thread is joined */
};

struct tier_pool {
	char *path;
	struct pack_info p;
	uint8_t *head;
	struct tier_opts o;
	struct tier_plan plan;
	int L;
	struct tier_layer *layer; /* [L] */
	struct tier_stream_layer *sl;
	int n_stream;
	/* the window: only compute's thread changes it (hook_begin drops it once
	 * every layer is resident), under mu, which the report takes to read it */
	struct tier_stream *stream;
	struct tier_stream_stats last_ss; /* its counters when it was dropped */
	pthread_mutex_t mu;
	struct qvl_model *m; /* the model the pool serves (its vision tower's late read) */
	/* raised (release) by fill.c after the last layer's resident flag */
	atomic_bool all_resident;
	struct tier_fill fill;
	struct tier_embed embed;
	/* passes that began (waiting for the embeddings, or at the first
	 * streamed layer) and that ended (the last one's end, or a failure):
	 * the fill waits for the first token */
	atomic_uint passes_begun, passes_ended;
	struct dev_tier *dev;
	struct qvl_weight_src wsrc;
	double load_dev_s; /* time to fill the device */
};

/* pool.c: y's norms as read at start-up equal the checked shard at base
 * (else -EBADMSG naming it) */
int tier_check_vecs(const struct tier_pool *t, const struct tier_layer *y, const uint8_t *base,
		    struct qvl_err *err);
/* embed.c: start the read of shard sh (the token embeddings) into its home;
 * wait for it (qvl_weight_src.shared: 0, or the error naming the shard);
 * stop and join it (tier_close); its state (1 reading, 0 done, < 0 failed)
 * and seconds, false when nothing was read behind the open */
int tier_embed_start(struct tier_pool *t, const struct nv_shard *sh, struct qvl_err *err);
int tier_embed_wait(void *ctx, struct qvl_err *err);
void tier_embed_stop(struct tier_pool *t);
bool tier_embed_status(struct tier_pool *t, int *state, double *seconds);
/* fill.c: stop the fill and join it (tier_close) */
void tier_fill_stop(struct tier_pool *t);

#endif
