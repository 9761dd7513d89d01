/* The exact (f32) vision attention at the AVX2 level (src/vision.c): every
 * query of an image against every key of it, S = Q·Kᵀ, S *= scale, the
 * level's softmax per row, O = S·V, on a 6x16 register tile, with K and V
 * laid out once per block by the rope pass so that nothing is packed per
 * query block (the two f32 GEMMs it replaces packed K, V and the scores for
 * every block of 64 queries: half the products' rate, docs/todo-avx2host.md).
 *
 * Bits: each score is one FMA chain over the head's values in order from
 * zero, each output one FMA chain over the keys in order from zero: the
 * f32 GEMM's order (matmul_avx2.c ukern), whatever the tile, the block or
 * the thread; qvl_vattn_f32_ref() is that order in scalar fmaf().
 *
 * Layouts, per head of hv values, n keys (np = n rounded up to 16):
 *   Q:  f32 rows (the qkv rows, already rotated), ldq floats apart;
 *   Kp: qvl_vattn_f32_kp_floats(n, hv) floats: panels of 16 keys, float
 *       [panel][d][jj] = K[16 panel + jj][d]; keys past n must be zero
 *       (finite: their scores are computed, then ignored);
 *   Vp: qvl_vattn_f32_vp_floats(n, hv) floats: panels of 16 values, float
 *       [panel][j][dd] = V[j][16 panel + dd], each panel one sequential
 *       stream for the outputs' tile; values past hv finite (read, not
 *       stored). */
#ifndef QVL_VATTN_F32_H
#define QVL_VATTN_F32_H

#include <stddef.h>

#define VATTN_F32_KP 16 /* keys per K panel */

size_t qvl_vattn_f32_kp_floats(size_t n, size_t hv);
size_t qvl_vattn_f32_vp_floats(size_t n, size_t hv);
/* Scratch floats per call (the scores of one tile of queries). */
size_t qvl_vattn_f32_scratch_floats(size_t n);

/* Key r of one head (hv values at k) into the head's Kp. */
void qvl_vattn_f32_store_k(float *kph, const float *k, size_t r, size_t hv);
/* Value row r of one head (hv values at v) into the head's Vp. */
void qvl_vattn_f32_store_v(float *vph, const float *v, size_t r, size_t n, size_t hv);

/* out[i][0..hv) = softmax(scale · Q_i·Kᵀ) · V for the nq query rows at q,
 * one head; out rows ldo floats apart; softmax is the level's kernel. */
typedef void (*qvl_softmax_fn)(float *x, size_t n);
void qvl_vattn_f32_avx2(float *out, size_t ldo, const float *q, size_t ldq, size_t nq,
			const float *kp, const float *v, size_t n, size_t hv, float scale,
			qvl_softmax_fn softmax, float *scratch);
void qvl_vattn_f32_ref(float *out, size_t ldo, const float *q, size_t ldq, size_t nq,
		       const float *kp, const float *v, size_t n, size_t hv, float scale,
		       qvl_softmax_fn softmax, float *scratch);

#endif
