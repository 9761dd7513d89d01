/* Per-stage timers of the decode step (QVL_PROFILE=1): where the time of one
 * token goes, to compare with the weight-streaming bound.
 *
 * The engine marks the end of each stage of a forward pass (a wall-clock
 * split on the calling thread, so a stage that is a pool dispatch includes
 * waiting for the slowest thread), and the pool reports its dispatch costs
 * (struct qvl_pool_prof). Forward passes of one row (decode steps) are kept,
 * or of exactly N rows with QVL_PROFILE=N (a decode batch of N sequences),
 * up to PROF_MAX_STEPS; the time between two of them (the caller's sampling
 * and bookkeeping) is a stage of its own. When the engine is destroyed the
 * table of medians and spread per stage goes to stderr. Internal to the
 * engine module. */
#ifndef QVL_PROFILE_H
#define QVL_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pool.h"

enum eng_stage {
	EST_EMBED,  /* embedding row, rope angles, first input norm */
	EST_QKV,    /* q/k/v matmuls (with the fused epilogue once fused) */
	EST_QKROPE, /* q/k norm + rope + KV append */
	EST_ATTN,   /* attention over the cache */
	EST_OPROJ,  /* o_proj matmul */
	EST_RES1,   /* residual add + post-attention norm */
	EST_GATEUP, /* gate/up matmuls + silu·up */
	EST_DOWN,   /* down matmul */
	EST_RES2,   /* residual add + next layer's input norm */
	EST_FINAL,  /* last layer: residual add + final norm */
	EST_LOGITS, /* logits matmul (with the fused argmax once fused) */
	EST_ARGMAX, /* argmax reduction after the logits (fused path) */
	EST_CALLER, /* between two steps: the caller's sampling, bookkeeping */
	EST_N
};

#define PROF_MAX_STEPS 4096
/* QVL_PROFILE=N: at most this many rows per profiled forward pass */
#define PROF_MAX_ROWS 4096

struct eng_prof;

/* NULL in *out (and 0) unless QVL_PROFILE is set to something other than
 * "0" (a number N > 1: record the passes of N rows, else of 1); -ENOMEM.
 * The pool's dispatch costs are collected while it lives. */
int eng_prof_create(struct eng_prof **out, struct qvl_pool *pool);
/* Start of a forward pass of `rows` rows at cache position pos (of the
 * first row). */
void eng_prof_begin(struct eng_prof *p, size_t rows, int pos);
/* The stage that just ended. */
void eng_prof_mark(struct eng_prof *p, enum eng_stage s);
/* End of the forward pass begun last. */
void eng_prof_end(struct eng_prof *p);
/* Print the table (median, p10, p90 per stage over the recorded steps). */
void eng_prof_report(const struct eng_prof *p, FILE *f, int threads, const char *kernels);
void eng_prof_free(struct eng_prof *p, struct qvl_pool *pool);

#endif
