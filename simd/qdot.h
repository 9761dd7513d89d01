/* Integer dot products for block-quantized weights (the fast precision,
 * enum qvl_precision QVL_PREC_BF16, for GGUF block types), internal to simd/.
 *
 * As llama.cpp does, the f32 activations are quantized on the fly, once per
 * matmul call and per row, to int8 blocks (qact.c): blocks of 32 (struct
 * qvl_q8a: scale + 32 int8 + their sum) for the 32-value weight types,
 * blocks of 256 (struct qvl_q8k: scale + 256 int8 + 16 partial sums) for the
 * K-quants. A weight block is unpacked in registers to unsigned (or signed)
 * int8 and multiplied with the activation block in integers; each block's
 * integer sum is then scaled in f32 by weight scale x activation scale:
 *
 *   Q8_0, IQ4_NL   isum = Σ w x                       y += dw dx isum
 *   Q4_0, Q5_0     isum = Σ n x - o s (o = 8, 16)      y += dw dx isum
 *   Q4_1, Q5_1     isum = Σ n x                        y += dw dx isum + mw dx s
 *   Q4_K, Q5_K     isum = Σ_j sc_j Σ n x, msum = Σ_j m_j s_j
 *                                                      y += dx (d isum - dmin msum)
 *   Q6_K           isum = Σ_j sc_j (Σ n x - 32 s_j)   y += dx d isum
 *   IQ4_XS         isum = Σ_j (ls_j - 32) Σ w x        y += dx d isum
 *
 * (n: the unsigned quant, s: the activation block's or sub-block's sum.)
 * qdot_ref.c computes exactly these integer sums and this float combination;
 * the SIMD levels (qdot_tmpl.h, one copy per ISA) compute the same integer
 * sums and differ only in float summation order. */
#ifndef QVL_QDOT_H
#define QVL_QDOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define QVL_QA_BLK 32
#define QVL_QK_BLK 256

/* One 32-value activation block: x ≈ d * q, s = Σ q. */
struct qvl_q8a {
	float d;
	int32_t s;
	int8_t q[QVL_QA_BLK];
};

/* One 256-value activation block: x ≈ d * q, bsum[j] = Σ q[16j .. 16j+15]. */
struct qvl_q8k {
	float d;
	int16_t bsum[QVL_QK_BLK / 16];
	int8_t q[QVL_QK_BLK];
};

/* Weight types the int8 path serves (others go to the exact matmul). */
bool qvl_qdot_has(enum qvl_dtype t);
/* Activation block length the weight type pairs with: 32 or 256. */
/* Y[i][j] += bias[j] for m rows of n outputs: the kernels that write
 * their sums first add the bias after (no bias: nothing). */
static inline void qvl_qdot_add_bias(float *Y, size_t ldy, const float *bias, size_t m, size_t n)
{
	if (bias)
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++)
				Y[i * ldy + j] += bias[j];
}

static inline size_t qvl_qdot_act_blk(enum qvl_dtype t)
{
	return t >= QVL_DT_Q2_K && t <= QVL_DT_Q6_K ? QVL_QK_BLK
	       : t == QVL_DT_IQ4_XS		    ? QVL_QK_BLK
						    : QVL_QA_BLK;
}
/* Bytes of one activation row of k values (k a multiple of the block). */
static inline size_t qvl_qdot_act_bytes(enum qvl_dtype t, size_t k)
{
	return qvl_qdot_act_blk(t) == QVL_QK_BLK ? k / QVL_QK_BLK * sizeof(struct qvl_q8k)
						 : k / QVL_QA_BLK * sizeof(struct qvl_q8a);
}

/* Quantize one row of k floats for weight type t into dst
 * (qvl_qdot_act_bytes(t, k) bytes). The ref and AVX2 versions produce
 * identical bytes: d = amax / 127, q = round-to-nearest-even(x * (127 / amax)). */
void qvl_qact_row_ref(void *dst, enum qvl_dtype t, const float *x, size_t k);
void qvl_qact_row_avx2(void *dst, enum qvl_dtype t, const float *x, size_t k);

/* The calling thread's scratch buffer of at least `bytes` (grown, kept for
 * the thread's life, freed at thread exit); NULL if out of memory. */
void *qvl_qact_scratch(size_t bytes);

/* Y = X · Wᵀ (+ bias) through int8 activations; wtype must satisfy
 * qvl_qdot_has(), k a multiple of the activation block. Same arguments as
 * matmul(). Returns -ENOMEM (nothing written) when the scratch cannot be
 * had; the caller then uses the exact matmul. */
int qvl_qmatmul_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		    enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		    size_t k);
int qvl_qmatmul_avx2(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		     enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		     size_t k);
/* AVX512-VNNI (vpdpbusd); falls back to the AVX2 kernels on a CPU without it. */
int qvl_qmatmul_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		       enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		       size_t k);

/* Dot products of one weight row (nb weight blocks) with one quantized
 * activation row, the reference arithmetic above (tests, ref level). */
float qvl_qdot_row_ref(enum qvl_dtype t, const uint8_t *w, const void *xq, size_t k);

bool qvl_cpu_has_avx512vnni(void);

#endif
