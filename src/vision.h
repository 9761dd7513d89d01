/* The Qwen3-VL vision tower (qwen3-vl.md §4): patch embedding, interpolated
 * learned position embedding, 2-D RoPE, pre-LN blocks, DeepStack mergers and
 * the main merger. f32 activations; weights stay in the model's mapping and
 * are widened inside the matmul kernel. Work is split over the engine's pool.
 * Owned by the vision module. */
#ifndef QVL_VISION_H
#define QVL_VISION_H

#include <stddef.h>

#include "err.h"
#include "kernels.h" /* enum qvl_precision */

struct qvl_model;
struct qvl_pool;
struct qvl_pixels;

struct qvl_vision;

/* Creation options; a zeroed struct (or NULL) is the default. */
struct qvl_vision_opts {
	const struct qvl_kernels *kern; /* NULL: the global qvl_kern (qvl_kernels_init()
					 * must have run) */
	enum qvl_precision precision;	/* of the weight products (patch embedding, qkv,
					 * projections, MLPs, mergers): QVL_PREC_BF16 (= 0)
					 * or QVL_PREC_EXACT; where bf16 weights take
					 * vdpbf16ps, so do the two attention products
					 * (simd/vattn.h), with an f32 softmax */
	bool copy_weights;		/* copy the weight matrices read from a file's
					 * mapping into huge pages at creation (vision.c,
					 * vis_own): every later encode runs faster, at 1.5-2 s
					 * of CPU for the 2b tower; for a tower that encodes
					 * many images (qvld, bench). The policy, with
					 * QVL_WEIGHT_COPY's override: weight_copy.h */
};

int qvl_vision_create(struct qvl_vision **out, const struct qvl_model *m, struct qvl_pool *pool,
		      const struct qvl_vision_opts *opts, struct qvl_err *err);
void qvl_vision_destroy(struct qvl_vision *v);

int qvl_vision_out_dim(const struct qvl_vision *v);	/* Do (= text hidden size) */
int qvl_vision_n_deepstack(const struct qvl_vision *v); /* K */
int qvl_vision_merge(const struct qvl_vision *v);	/* spatial merge size M */

/* Encode one image (its own attention segment): main[n_tok][Do] and
 * ds[k * ds_stride + tok * Do] for k < K, n_tok = px->n / M². */
int qvl_vision_encode(struct qvl_vision *v, const struct qvl_pixels *px, float *main, float *ds,
		      size_t ds_stride, struct qvl_err *err);

/* The same pass cut by blocks (issue 18: an image's encode runs a few
 * blocks per scheduler step beside the others' decodes):
 *   qvl_vision_begin()  the patch embedding and position tables into a run
 *                       that keeps the activations (px is not needed after);
 *   qvl_vision_run()    the next k blocks (DeepStack mergers as their blocks
 *                       pass); returns the blocks left;
 *   qvl_vision_end()    with none left: the main merger (0); frees the run
 *                       in any case (-ECANCELED when blocks were left).
 * main and ds must stay valid until the end. Cut anywhere, the rows are bit
 * for bit those of qvl_vision_encode (tests/vis_cut). Other passes (and
 * other work on the pool) may run between the calls; one thread at a time
 * per tower. */
struct qvl_vision_run;
int qvl_vision_begin(struct qvl_vision *v, const struct qvl_pixels *px, float *main, float *ds,
		     size_t ds_stride, struct qvl_vision_run **out, struct qvl_err *err);
int qvl_vision_run(struct qvl_vision_run *r, int k);
int qvl_vision_blocks_left(const struct qvl_vision_run *r);
int qvl_vision_end(struct qvl_vision_run *r);
/* Depth (blocks) of the tower. */
int qvl_vision_depth(const struct qvl_vision *v);

/* Progress of qvl_vision_encode: fn(ctx, blocks done, depth) after each
 * block, on the calling thread (the tower of a large image runs for
 * minutes). fn NULL: none. */
void qvl_vision_set_progress(struct qvl_vision *v, void (*fn)(void *ctx, int done, int depth),
			     void *ctx);

/* Floating-point operations of one encode of n patches (matmuls and
 * attention, 2 per multiply-add), for benchmarks. */
double qvl_vision_flops(const struct qvl_vision *v, int n_patches);

#endif
