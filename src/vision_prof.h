/* Per-stage CPU time of the vision tower (QVL_PROFILE=1, as the engine's
 * src/profile.h): every pool task adds its thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID) to its stage, and the caller adds the wall time
 * of the dispatch, so a stage shows both its work and how well the threads
 * share it (imbalance = threads x wall - CPU). The table goes to stderr when
 * the tower is destroyed. CPU time, not wall time: the machines are shared
 * and a preempted thread does not count. Internal to the vision module. */
#ifndef QVL_VISION_PROF_H
#define QVL_VISION_PROF_H

#include <stdint.h>

enum vis_stage {
	VST_PATCH, /* patch embedding matmul */
	VST_POS,   /* position embedding interpolation, RoPE tables */
	VST_LN,	   /* the two LayerNorms of every block */
	VST_QKV,   /* qkv matmul */
	VST_ROPE,  /* 2-D RoPE on q and k, K/V to the per-head layout */
	VST_ATTN,  /* attention (Q·Kᵀ, softmax, P·V) */
	VST_PROJ,  /* attention output projection */
	VST_FC1,   /* MLP up (with its GELU when fused) */
	VST_GELU,  /* GELU when separate */
	VST_FC2,   /* MLP down */
	VST_ADD,   /* residual adds */
	VST_MERGE, /* DeepStack mergers and the main merger */
	VST_N
};

#define VIS_PROF_THREADS 64

struct vis_prof {
	_Atomic uint64_t cpu_ns[VST_N]; /* relaxed adds: read only after the pool
					 * run returned (its barrier orders them) */
	uint64_t wall_ns[VST_N];
	uint64_t calls[VST_N];
	int images;
};

/* NULL unless QVL_PROFILE is set to something other than "0". */
struct vis_prof *vis_prof_create(void);
uint64_t vis_prof_thread_ns(void);
uint64_t vis_prof_wall_ns(void);
void vis_prof_report(const struct vis_prof *p, int threads);

#endif
