/* Internal to the engine module (src/engine.c, src/forward.c): the prepared
 * weights, the per-engine scratch and the per-sequence state. */
#ifndef QVL_ENGINE_IMPL_H
#define QVL_ENGINE_IMPL_H

#include <stdint.h>

#include "../simd/kernels.h"
#include "engine.h"

/* Tokens processed per pass through the layers. A longer chunk is run in
 * slices of this size (the result is the same: attention reads the cache).
 * 512 rows keep every activation buffer of the 2B model under 13 MB while
 * giving the m > 1 matmul enough rows to reuse each packed weight panel. */
#define ENG_MAX_ROWS 512

/* A weight matrix [n][k] as the matmul kernel reads it, straight from the
 * mmapped tensor (zero-copy). */
struct eng_mat {
	const uint8_t *data;
	enum qvl_dtype type;
	size_t n, k;	  /* rows (outputs), columns (inputs) */
	size_t row_bytes; /* bytes between rows */
};

struct eng_layer {
	struct eng_mat wq, wk, wv, wo, wg, wu, wd;
	/* Norm weights are tiny; widened to f32 once so the kernels see f32. */
	float *attn_norm, *ffn_norm, *q_norm, *k_norm;
};

struct qvl_engine {
	const struct qvl_model *m;
	struct qvl_kernels k; /* the table this engine calls (a copy) */
	struct qvl_pool *pool;
	int nth;
	enum qvl_dtype kv_dtype;

	int H, L, nh, nkv, hd, I, V;
	int n_deepstack_max; /* layers that may receive DeepStack rows */
	int image_token_id;
	float eps;

	struct eng_mat embd; /* token embedding [V][H] */
	struct eng_mat out;  /* output projection: lm_head, or embd when tied */
	float *out_norm;
	struct eng_layer *layers;
	float *inv_freq; /* [hd/2] */
	uint8_t *stream; /* [hd/2]: 0 = t, 1 = h, 2 = w (interleaved M-RoPE) */

	/* Activations for ENG_MAX_ROWS rows, allocated once, first-touched by
	 * the pool threads in the slices they write. */
	float *x;	  /* residual stream [rows][H] */
	float *xb;	  /* normed input of the next matmul [rows][H] */
	float *tmp;	  /* o_proj / down output [rows][H] */
	float *q;	  /* [rows][nh*hd] */
	float *kk, *vv;	  /* [rows][nkv*hd] */
	float *att;	  /* attention output [rows][nh*hd] */
	float *gate, *up; /* [rows][I] */
	float *cs;	  /* cos | sin per row [rows][hd] */
	int32_t *ds_rank; /* per row: DeepStack row index, or -1 */
};

struct qvl_seq {
	struct qvl_engine *e;
	int n_ctx;
	int len;	  /* positions in the cache */
	int32_t next_pos; /* M-RoPE position of the next text token */
	size_t kv_elem;	  /* bytes per KV element */
	/* Per layer, K and V as [nkv][n_ctx][hd]: one head's keys contiguous, so
	 * the attention kernel streams them. */
	uint8_t *kv;
	size_t layer_bytes; /* K + V of one layer */
};

/* src/forward.c: one slice of at most ENG_MAX_ROWS tokens, already validated.
 * img0 is the DeepStack/embedding row of the slice's first image token;
 * logits receive rows for [want_from, n) (last row only if !all). */
void eng_forward_rows(struct qvl_engine *e, struct qvl_seq *s, const struct qvl_chunk *c,
		      size_t off, size_t n, size_t img0, float *logits, bool all, bool want);

#endif
