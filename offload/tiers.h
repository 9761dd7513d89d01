/* The tiered pool: a .qvl pack's weights placed on three tiers from budgets
 * given by the user, and the streaming window that brings the rest in.
 *
 *   device  a simulated device (simdev.c, struct dev_tier): its own memory
 *           budget (--gpu-mem) filled through a copy engine throttled to
 *           --sim-device-bw; layers placed there are computed from the
 *           device copy. A CUDA tier implements the same interface later.
 *   host    anonymous memory (--cpu-mem, SIZE or PCT% of RAM): the text
 *           embeddings and head, as many text layers as fit beside the
 *           staging buffers. The vision tower (used once per image) is
 *           always loaded and is outside the budget.
 *   ssd     the pack file: every other text layer is streamed, every pass,
 *           through the window (stream.c).
 *
 * Layer access is cyclic (0..L-1 every pass), so there is no LRU: the
 * window reads streamed layers ahead of compute, in that cyclic order, into
 * a ring of staging buffers; the engine asks for a layer's bytes before it
 * computes the layer and gives them back after (struct qvl_weight_src).
 *
 * Files: budget.c (sizes, placement), stream.c (the window), simdev.c
 * (the simulated device), pool.c (opening a pack with placement, the
 * engine hook, the report), fill.c (qvld's streamed start: every layer
 * streamed until its resident copy is read behind the socket). */
#ifndef QVL_TIERS_H
#define QVL_TIERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "err.h"
#include "model.h"

/* PCIe 4.0 x16 carries ~31.5 GB/s raw; ~25 GB/s is what host-to-device
 * copies reach in practice. */
#define TIER_SIM_BW_DEFAULT 25000000000ull
#define TIER_MIN_BUFS	    2u /* one being computed on, one being read */
#define TIER_MAX_BUFS	    8u

struct tier_opts {
	uint64_t cpu_mem; /* host bytes for the text model's weights; 0: no budget */
	uint64_t gpu_mem; /* bytes of the simulated device; 0: no device tier */
	uint64_t sim_bw;  /* bytes/s of its copy engine; 0: TIER_SIM_BW_DEFAULT */
	unsigned bufs;	  /* staging buffers (TIER_MIN_BUFS..TIER_MAX_BUFS); 0: chosen */
	/* without budgets, a .qvl: the vision tower's shards are read after
	 * open (qvl_pack_open_late; the caller starts the read with
	 * qvl_model_load_late) */
	bool vision_late;
	/* without budgets, a .qvl (qvld's streamed start, fill.c): every text
	 * layer is served from the streaming window until its resident copy
	 * has been read behind it (tier_fill_start), so that the first token
	 * needs the embeddings and head and the window's buffers, not the
	 * whole model, in fresh memory */
	bool stream_start;
};

/* "1.50 GiB" */
const char *tier_fmt_bytes(uint64_t b, char *buf, size_t cap);

enum tier_kind { TIER_HOST, TIER_DEV, TIER_SSD };
const char *tier_kind_name(enum tier_kind k);

/* The placement of a pack's shards (budget.c). */
struct tier_plan {
	uint32_t n;		       /* shards */
	enum tier_kind *kind;	       /* [n] */
	int *layer;		       /* [n] text layer of the shard, or -1 */
	uint64_t host_bytes;	       /* resident text shards, staging buffers included */
	uint64_t vision_bytes;	       /* resident, outside the budget */
	uint64_t dev_bytes;	       /* on the simulated device */
	uint64_t stream_bytes;	       /* read per pass */
	uint64_t buf_bytes;	       /* one staging buffer */
	unsigned nbuf;		       /* 0 when nothing streams */
	unsigned n_host, n_dev, n_ssd; /* text layers on each tier */
};

struct pack_info;
int tier_place(struct tier_plan *pl, const struct pack_info *p, const struct tier_opts *o,
	       const char *path, struct qvl_err *err);
void tier_plan_free(struct tier_plan *pl);

/* ---- the pool (pool.c) ---- */
struct tier_pool;

/* Open the pack at path with placement: the model (as qvl_model_open
 * would, but streamed shards are not read) and the pool that serves the
 * layers not in host memory. Close the pool before the model. */
int tier_open(struct tier_pool **out, struct qvl_model **m, const char *path,
	      const struct tier_opts *o, struct qvl_err *err);
void tier_close(struct tier_pool *t);
/* What the commands call: qvl_model_open() without a budget in o (pool
 * NULL; qvl_pack_open_late() for a .qvl with o->vision_late), tier_open()
 * with one (a .qvl only). */
int tier_model_open(struct qvl_model **m, struct tier_pool **pool, const char *path,
		    const char *mmproj, const struct tier_opts *o, struct qvl_err *err);
/* The engine hook (qvl_engine_opts.wsrc): NULL when every layer is in
 * host memory. */
const struct qvl_weight_src *tier_weight_src(struct tier_pool *t);
/* ---- the streamed start (fill.c) ---- */

/* t was opened with stream_start and streams its layers (NULL: false; a
 * pack whose layers the engine repacks at load opens with all of them
 * resident instead). */
bool tier_streamed_start(const struct tier_pool *t);
/* Read the streamed layers into their resident place behind the window,
 * layer by layer in layer order, each one's CRC checked before it is used
 * from there (at compute's next begin() of it: a step boundary for that
 * layer); then the vision tower's late read (qvl_model_load_late). On a
 * thread of its own 5 nice levels below the process; once (later calls: 0). A
 * pool without stream_start: nothing. */
int tier_fill_start(struct tier_pool *t, struct qvl_err *err);

struct tier_fill_status {
	bool started, pending;
	int rc; /* 0, or the error that stopped the fill (msg names the shard) */
	unsigned filled, layers;
	unsigned readers;		  /* io_uring readers set up: 1 for the whole fill */
	uint64_t bytes;			  /* filled so far */
	double seconds;			  /* from the start to the end (0 while pending) */
	double read_seconds, mem_seconds; /* the reads' wall time, faulting the memory in */
	double wait_seconds;		  /* waiting for the first pass before reading */
	char msg[512];			  /* struct qvl_err's */
};
/* 1 and *s filled for a pool with stream_start, else 0. */
int tier_fill_status(struct tier_pool *t, struct tier_fill_status *s);

/* The placement and the counters as one JSON object (what `qvlctl tiers`
 * prints); bytes written, at most cap - 1 (always NUL-terminated). */
size_t tier_json(struct tier_pool *t, char *buf, size_t cap);

#endif
