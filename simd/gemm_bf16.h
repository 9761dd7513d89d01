/* The bf16 GEMM for many activation rows (simd/gemm_bf16_avx512.c): called
 * by qvl_matmul_bf16dot_avx512() for m > 64, and with its weights packed
 * once by the vision tower (src/vision.c), whose products all have many
 * rows. */
#ifndef QVL_GEMM_BF16_H
#define QVL_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

/* Y[m][n] (ldy) = bf16(X[m][k]) (ldx) · W[n][k]ᵀ (bf16, ldw) + bias (NULL:
 * none), f32 accumulation. 0, or -ENOMEM when the thread's scratch for the
 * packed X cannot grow (Y untouched: the caller falls back). */
int qvl_gemm_bf16_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const uint16_t *W,
			 size_t ldw, const float *bias, size_t m, size_t n, size_t k);

/* More rows than this go to the GEMM in qvl_matmul_bf16dot_avx512()
 * (matmul_bf16dot.c's DP_MAX_M); the packed GEMM gives the same bits as
 * that call only above it. */
#define GEMM_BF16_MIN_M 65

/* W[n][k] (bf16, ldw) as the GEMM's panels: 32 rows (zero past n) x every
 * k pair, pair p of the panel's columns 32 words, at Wp (64-byte aligned,
 * qvl_gemm_bf16_packed_words(n, k) words). */
size_t qvl_gemm_bf16_packed_words(size_t n, size_t k);
void qvl_gemm_bf16_pack(uint32_t *Wp, const uint16_t *W, size_t ldw, size_t n, size_t k);

/* qvl_gemm_bf16_avx512() on W packed by qvl_gemm_bf16_pack(): the same
 * bits (columns from a multiple of 32: Wp + c / 32 * that panel size).
 * -ENOTSUP without AVX512-BF16 kernels in the build. */
int qvl_gemm_bf16_packed_avx512(float *Y, size_t ldy, const float *X, size_t ldx,
				const uint32_t *Wp, const float *bias, size_t m, size_t n,
				size_t k);

#endif
