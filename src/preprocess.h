/* Image preprocessing exactly as the Hugging Face slow processor does it
 * (qwen3-vl.md §3, shared/tools/hf_preprocess.py): smart_resize, Pillow's
 * integer BICUBIC resize, rescale + normalise, temporal duplication and
 * patchify in merge-window order. Owned by the vision module. */
#ifndef QVL_PREPROCESS_H
#define QVL_PREPROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct qvl_pool;
struct qvl_model;
struct qvl_image;

struct qvl_pp_params {
	int64_t min_pixels, max_pixels;
	int patch, temporal, merge;
	double rescale; /* 1/255 */
	float mean[3], std[3];
};

/* Patch rows ready for the vision tower: x[n][dim], dim = 3 * temporal *
 * patch², rows in merge-window order (§3.5); grid = (t, h, w) in patches. */
struct qvl_pixels {
	float *x;
	int n, dim;
	int grid[3];
	int rw, rh; /* resized size in pixels */
};

/* Parameters from the model's preprocessor_config.json (m->preproc) and
 * vision config; -EINVAL when the model has no vision. */
int qvl_pp_params_from_model(struct qvl_pp_params *p, const struct qvl_model *m,
			     struct qvl_err *err);
/* The token budget of one image (HF's max_pixels, llama.cpp's
 * --image-max-tokens): merged tokens = max_pixels / (patch * merge)². set
 * lowers or raises max_pixels to tokens * (patch * merge)² (and drops
 * min_pixels to one token when it was above that, so small images are not
 * upscaled past the budget); -EINVAL (with
 * the valid range) when that is below one token or above what
 * smart_resize accepts. */
int64_t qvl_pp_max_tokens(const struct qvl_pp_params *p);
int qvl_pp_set_max_tokens(struct qvl_pp_params *p, int64_t tokens, struct qvl_err *err);
/* Whether smart_resize shrinks an h x w image to fit max_pixels (rather
 * than only rounding its sides to the patch grid). */
bool qvl_pp_over_budget(int h, int w, const struct qvl_pp_params *p);

/* HF smart_resize (double arithmetic, round-half-even); errors like HF on
 * sides below the factor and aspect ratios above 200. */
int qvl_pp_smart_resize(int h, int w, const struct qvl_pp_params *p, int *rh, int *rw,
			struct qvl_err *err);
/* Pillow Image.resize((dw, dh), BICUBIC) on packed RGB8, bit-exact (22-bit
 * fixed-point weights, horizontal pass then vertical). pool may be NULL. */
int qvl_pp_resize_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh,
			  struct qvl_pool *pool);
/* Rescale, normalise, duplicate frames and patchify an already resized RGB8
 * image (w, h multiples of patch * merge). */
int qvl_pp_patchify(const uint8_t *rgb, int w, int h, const struct qvl_pp_params *p,
		    struct qvl_pool *pool, struct qvl_pixels *out, struct qvl_err *err);
/* The whole chain. resized (may be NULL) receives the malloc'd resized RGB8. */
int qvl_preprocess(const struct qvl_image *im, const struct qvl_pp_params *p, struct qvl_pool *pool,
		   struct qvl_pixels *out, uint8_t **resized, struct qvl_err *err);
void qvl_pixels_free(struct qvl_pixels *px);

#endif
