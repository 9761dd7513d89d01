/* Internal to the engine module (src/engine.c, src/forward.c): the prepared
 * weights, the per-engine scratch and the per-sequence state. */
#ifndef QVL_ENGINE_IMPL_H
#define QVL_ENGINE_IMPL_H

#include <stdint.h>

#include "../simd/kernels.h"
#include "engine.h"
#include "claim.h"
#include "kvpool.h"
#include "profile.h"

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
	bool owned;	  /* data is the engine's copy (repacked or aligned): freed with it */
};

struct eng_layer {
	struct eng_mat wq, wk, wv, wo, wg, wu, wd;
	/* Norm weights are tiny; widened to f32 once so the kernels see f32. */
	float *attn_norm, *ffn_norm, *q_norm, *k_norm;
	/* Not resident: the matrices' data are relative to home (the shard's
	 * nominal address) and each pass rebases them (eng_layer_begin). */
	const uint8_t *home;
};

struct qvl_engine {
	const struct qvl_model *m;
	/* The table this engine calls (a copy). Under QVL_PREC_BF16 its matmul
	 * is the table's matmul_fast: every k.matmul call of the forward pass
	 * multiplies by a weight matrix, so the precision needs no test there. */
	struct qvl_kernels k;
	struct qvl_pool *pool;
	int nth;
	enum qvl_dtype kv_dtype;
	enum qvl_precision prec;
	bool copy_weights; /* opts.copy_weights, QVL_WEIGHT_COPY applied */

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
	float *x;	      /* residual stream [rows][H] */
	float *xb;	      /* normed input of the next matmul [rows][H] */
	float *tmp;	      /* o_proj / down output [rows][H] */
	float *q;	      /* [rows][nh*hd] */
	float *kk, *vv;	      /* [rows][nkv*hd] */
	float *att;	      /* attention output [rows][nh*hd] */
	float *gate, *up;     /* [rows][I] */
	float *cs;	      /* cos | sin per row [rows][hd] */
	struct eng_row *rows; /* what each row of the current slice is */
	float **out_dst;      /* [rows] logits destinations of the output rows */
	int32_t **out_arg;    /* [rows] argmax destinations of the output rows */
	float *arg_val;	      /* [nth][ENG_LOGIT_ROWS] per-thread maxima (fused argmax) */
	size_t *arg_idx;      /* [nth][ENG_LOGIT_ROWS] and their ids */
	struct eng_claim *claims; /* [nth]: work sharing of a dispatch (claim.h) */
	float *lscratch;      /* [ENG_LOGIT_ROWS][V]: logits of scattered rows */
	void *xa;	      /* decode activations prepared once per matmul (forward.c) */
	size_t xa_cap;	      /* its bytes */
	void *xn;	      /* the next product's activations, prepared in parts */
	size_t xn_cap;	      /* its bytes */

	struct eng_prof *prof; /* QVL_PROFILE: per-stage timers, else NULL */

	qvl_progress_fn progress; /* qvl_engine_set_progress() */
	void *progress_ctx;

	struct kv_pool *kv;	    /* kvpool.c */
	struct mm_cache *vcache; /* mm_cache.c */
	struct qvl_weight_src wsrc; /* .begin NULL: every layer resident */
};

/* Logits rows computed in one matmul when their destinations are not one
 * contiguous block (a decode batch: one row per sequence). 16 rows of the
 * 152k vocabulary are 9.7 MB of scratch and already read the output matrix
 * once for 16 sequences. */
#define ENG_LOGIT_ROWS 16

/* One row (token) of a slice: which sequence and input it belongs to. Rows
 * of several sequences can share a slice (a decode batch), so every step
 * that touches the KV cache or positions looks here. */
struct eng_row {
	struct qvl_seq *s;
	const struct qvl_chunk *c;
	uint32_t ci;   /* index in c->ids */
	int32_t pos;   /* cache position */
	int32_t rank;  /* image row (embedding / DeepStack) in c, or -1 */
	float *logits;	 /* where this row's logits go, or NULL */
	int32_t *argmax; /* where this row's argmax goes, or NULL */
};

struct qvl_seq {
	struct qvl_engine *e;
	int n_ctx;
	int len;	  /* positions in the cache */
	int32_t next_pos; /* M-RoPE position of the next text token */
	struct kv_seq kv; /* its pages of e->kv (kvpool.h) */
};

/* src/forward.c: run the n rows described in e->rows[0..n) (at most
 * ENG_MAX_ROWS, validated by the caller) through the model, appending their
 * K/V, and write the logits of every row whose .logits is set and the
 * argmax of every row whose .argmax is set. */
int eng_forward_rows(struct qvl_engine *e, size_t n, struct qvl_err *err);
/* The same through layers [l0, l1) only: the embedding runs when l0 == 0,
 * the output when l1 == L; in between, e->x, e->xb and e->cs carry the
 * rows from one call to the next (engine_split.c saves them). */
int eng_forward_layers(struct qvl_engine *e, size_t n, int l0, int l1, struct qvl_err *err);
/* src/engine.c: the weights of layer l for this pass: e->layers[l] when
 * resident, else *tmp rebased onto where the weight source put its bytes;
 * eng_layer_end() after the layer's last use. */
int eng_layer_begin(struct qvl_engine *e, int l, struct eng_layer *tmp,
		    const struct eng_layer **out, struct qvl_err *err);
void eng_layer_end(struct qvl_engine *e, int l);

/* src/engine.c, for engine_split.c: check a batch and take its KV pages
 * (nothing changed on error); describe rows [ci0, ci0 + n) of item it
 * (its chunk c) into rows[0..n), *rank counting c's image rows before
 * them; after the last layer, append the chunks to their sequences
 * (length, positions, prefix publishing). */
int eng_prepare(struct qvl_engine *e, const struct qvl_batch_item *items, size_t n,
		struct qvl_err *err);
void eng_item_rows(const struct qvl_engine *e, const struct qvl_batch_item *it,
		   const struct qvl_chunk *c, size_t ci0, size_t n, int32_t *rank,
		   struct eng_row *rows);
void eng_commit(const struct qvl_batch_item *items, size_t n);

#endif
