/* The bf16 GEMM for many activation rows (simd/gemm_bf16_avx512.c), internal
 * to simd/: called by qvl_matmul_bf16dot_avx512() for m > 64. */
#ifndef QVL_GEMM_BF16_H
#define QVL_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

/* Y[m][n] (ldy) = bf16(X[m][k]) (ldx) · W[n][k]ᵀ (bf16, ldw) + bias (NULL:
 * none), f32 accumulation. 0, or -ENOMEM when the thread's scratch for the
 * packed X cannot grow (Y untouched: the caller falls back). */
int qvl_gemm_bf16_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const uint16_t *W,
			 size_t ldw, const float *bias, size_t m, size_t n, size_t k);

#endif
