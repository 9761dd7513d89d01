/* The vision tower's state, shared by its weights (vision_load.c) and its
 * encode (vision.c). Internal to the engine module. */
#ifndef QVL_VISION_IMPL_H
#define QVL_VISION_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "model.h"
#include "pool.h"
#include "vision.h"
#include "vision_prof.h"

#define VIS_PREFIX	"model.visual."
#define VIS_MC		256 /* rows per weight-product call (struct qvl_vision) */
#define VIS_MC_MIN	128

struct vis_lin {
	const void *w;
	const uint32_t *wp; /* bf16 W as the GEMM's panels (vis_own), or NULL */
	enum qvl_dtype dt;
	size_t row_bytes;
	float *b;
	int n, k; /* [out, in] */
};

struct vis_norm {
	float *w, *b;
	int n;
};

struct vis_block {
	struct vis_norm n1, n2;
	struct vis_lin qkv, proj, fc1, fc2;
};

struct vis_merger {
	struct vis_norm norm;
	struct vis_lin fc1, fc2;
};

struct qvl_vision {
	const struct qvl_model *m;
	struct qvl_pool *pool;
	const struct qvl_kernels *k;
	/* weight products: k->matmul_fast under QVL_PREC_BF16, else k->matmul
	 * (the attention products, activations by activations, use k->matmul) */
	void (*wmm)(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		    enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		    size_t k);
	bool bf16attn; /* attention on vdpbf16ps (simd/vattn.h): QVL_PREC_BF16 where the
			* kernels multiply bf16 weights with it, else the exact f32 GEMMs */
	bool f32attn;  /* the exact attention on its own tile (simd/vattn_f32.h): the AVX2
			* level without bf16attn; QVL_VIS_GEMM_ATTN=1 keeps the GEMMs */
	/* rows per weight-product call (0: all of a thread's rows at once): the
	 * packed-panel kernels re-read the activation rows of their call for
	 * every 32-column weight panel, so a block that stays in L2 saves
	 * streaming all of them from memory per panel (1.2-1.5x on the 2b
	 * tower's MLP, docs/todo-vision.md). A row's sums do not depend on
	 * the rows beside it in a packed-panel call, and every block has at
	 * least VIS_MC_MIN rows (above the kernels' small-m and bf16 batch
	 * switches), so the exact tower's bits do not change.
	 * QVL_VIS_MC overrides (benchmarks; below VIS_MC_MIN: no blocks) */
	size_t mc;
	int Dv, Iv, nv, hv, depth, P, T, M, S, Do, K, patch_dim;
	int ds_of_block[64]; /* DeepStack merger index after block j, or -1 */
	float eps;
	struct vis_lin patch;
	float *pos;	 /* [S*S][Dv] */
	float *inv_freq; /* [hv/4] */
	struct vis_block *blk;
	struct vis_merger merger, ds[QVL_MAX_DEEPSTACK];
	void (*progress)(void *ctx, int done, int depth);
	void *progress_ctx;
	struct vis_prof *prof; /* QVL_PROFILE: per-stage CPU time, else NULL */
	void *wmem;	       /* the weight matrices' copy (vis_own), or NULL */
	bool packed;	       /* some matrices are the GEMM's panels (vis_own) */
};

#endif
