/* What `qvlctl run` and `qvlctl bench` share: opening a model and an engine
 * with the same options and reporting how long it took. */
#ifndef QVL_RUN_COMMON_H
#define QVL_RUN_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "model.h"
#include "tiers.h"

struct run_load {
	const char *cmd;    /* "run" / "bench", for messages */
	const char *model;  /* --model */
	const char *mmproj; /* --mmproj or NULL */
	int threads;	    /* --threads (0: one per physical core) */
	const char *cpus;   /* --cpus */
	enum qvl_dtype kv;  /* --kv-type */
	enum qvl_precision prec; /* --precision (0: bf16, the default) */
	bool quiet;	    /* no progress on stderr */
	bool copy_weights;  /* --copy-weights (run) / always (bench): see
			     * qvl_engine_opts.copy_weights */
	/* --cpu-mem / --gpu-mem / --sim-device-bw (offload/tiers.h): with a
	 * budget, a .qvl model is opened through the tiered pool */
	struct tier_opts tiers;
	struct tier_pool *pool;
	/* the KV pool's page budget (qvl_engine_opts.kv_pages; 0: none): with
	 * one, a sequence's freed pages stay mapped for the next, as in qvld */
	size_t kv_pages;

	struct qvl_model *m;
	struct qvl_engine *e;
	double load_s;
};

/* "bf16" | "f16" | "f32" -> dtype; -EINVAL otherwise. */
int run_parse_kv(const char *s, enum qvl_dtype *out);
/* What precision p means with the global kernels (qvl_kern), for the
 * commands' reports: "exact", or bf16 and whether bf16 weights get the
 * vdpbf16ps path at this SIMD level. */
const char *run_precision_desc(enum qvl_precision p);
/* Strict "ID ID ..." (spaces, tabs, commas or newlines between) into a
 * malloc'd array: each item whole, decimal, within int32, whatever its
 * length; -EINVAL with why naming the bad item. */
int run_parse_ids(const char *s, int32_t **ids, size_t *n, char *why, size_t cap);
/* Bytes of a KV cache of n_ctx positions (K and V of every layer). */
uint64_t run_kv_bytes(const struct qvl_model *m, int64_t n_ctx, enum qvl_dtype kv);
/* Open the model and create the engine; prints "qvlctl CMD: message" and
 * returns 1 on failure, 0 on success. */
int run_open(struct run_load *r);
void run_close(struct run_load *r);
/* Bytes of weights one decode step reads (every layer matrix, the output
 * projection and one embedding row): the numerator of the bandwidth bound. */
uint64_t run_weight_bytes_per_token(const struct qvl_model *m);

#endif
