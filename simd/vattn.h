/* The vision tower's attention at `--precision bf16` (src/vision.c): every
 * query of an image against every key of it, both products with vdpbf16ps
 * (Q, K, the probabilities P and V rounded to bf16, f32 accumulation), the
 * softmax in f32. The exact tower keeps its f32 GEMMs; this is only used
 * where qvl_vattn_bf16_available() (AVX512-BF16 built and present).
 *
 * Layouts, per head of hv values (hv even, hp = hv / 2 pairs), n keys:
 *   Q:  bf16 rows, the head's hv values consecutive, pre-scaled by 1/sqrt(hv);
 *   Kp: qvl_vattn_kp_words(n, hv) words per head: panels of 32 keys, word
 *       [panel][p][jj] = (K[32 panel + jj][2p], K[...][2p + 1]);
 *   Vp: qvl_vattn_vp_words(n, hv) words per head: blocks of 32 values,
 *       word [d / 32][i][d % 32] = (V[2i][d], V[2i + 1][d]) (i < (n + 1) / 2),
 *       a zero high half past an odd n; each block contiguous, so that
 *       the P·V tiles stream it.
 * Keys past n inside the last panel are masked out of the softmax. */
#ifndef QVL_VATTN_H
#define QVL_VATTN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VATTN_MR 8 /* queries per register tile */

bool qvl_vattn_bf16_available(void);
size_t qvl_vattn_kp_words(size_t n, size_t hv);
size_t qvl_vattn_vp_words(size_t n, size_t hv);
/* Scratch floats per thread for qvl_vattn_bf16() over n keys. */
size_t qvl_vattn_scratch_floats(size_t n);

/* Row r of one image (all nh heads, f32, already rotated; hv <= 1024): q
 * (scaled by qscale) to bf16 at qb, k and v into every head's Kp / Vp (heads
 * kps / vps words apart). Rows may be stored by different threads in any
 * order: the two rows of a V pair write the two 16-bit halves of its words,
 * distinct objects. */
void qvl_vattn_store_row(uint16_t *qb, uint32_t *kp, size_t kps, uint32_t *vp, size_t vps,
			 const float *q, const float *k, const float *v, float qscale, size_t r,
			 size_t n, size_t nh, size_t hv);

/* One head of row r, x its hv values (f32, already rotated): q (scaled by
 * qscale) to bf16 at qb, else k into the head's Kp at kph, else v into its
 * Vp at vph (the others NULL); qvl_vattn_store_row() head by head, the same
 * words (the vision tower's qkv product stores each head's tile as it
 * finishes it). */
void qvl_vattn_store_head(uint16_t *qb, uint32_t *kph, uint32_t *vph, const float *x,
			  float qscale, size_t r, size_t n, size_t hv);

/* out[i][0..hv) = softmax(Q_i · Kᵀ) · V for the nq query rows at q (rows ldq
 * bf16 apart), one head; out rows ldo floats apart. */
void qvl_vattn_bf16(float *out, size_t ldo, const uint16_t *q, size_t ldq, size_t nq,
		    const uint32_t *kp, const uint32_t *vp, size_t n, size_t hv, float *scratch);

#endif
