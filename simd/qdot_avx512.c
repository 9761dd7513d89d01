/* AVX512-VNNI int8 dot products for block-quantized weights: vpdpbusd on
 * 256-bit vectors (AVX512VL), from the shared template (qdot_tmpl.h). On
 * Zen 4 a 512-bit vpdpbusd is two 256-bit halves, so ymm loses nothing and
 * keeps one block of 32 per vector; the 32 registers allow 2x4 tiles for
 * the K-quants too. A CPU with AVX-512 but without VNNI (Skylake-X) runs
 * the AVX2 kernels. */
#include "config.h"

#if defined(HAVE_AVX512_KERNELS) && defined(HAVE_AVX512VNNI_KERNELS)
#include <immintrin.h>

#define QD_T	    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define QD_VNNI	    1
#define QD_FN(name) name##_avx512
#include "qdot_tmpl.h"
#include "qdot_zmm.h"
#include "qdot_x8.h"
#include "qdot_x8_q4k.h"
#include "qdot_x8_q6k.h"
#include "qdot_x8_q80.h"
#endif

#ifdef HAVE_AVX512_KERNELS
#include "qdot.h"

int qvl_qmatmul_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		       enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		       size_t k)
{
#ifdef HAVE_AVX512VNNI_KERNELS
	if (qvl_cpu_has_avx512vnni())
		return qd_matmul_avx512(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
#endif
	return qvl_qmatmul_avx2(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}
#endif

#ifdef HAVE_AVX512_KERNELS
int qvl_qmatmul_x8_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			  enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			  size_t k)
{
#ifdef HAVE_AVX512VNNI_KERNELS
	if (qvl_cpu_has_avx512vnni() && wtype == QVL_DT_Q4_K_X8)
		return qk_matmul_x8_avx512(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
	if (qvl_cpu_has_avx512vnni() && wtype == QVL_DT_Q6_K_X8)
		return qd_matmul_x8q6_avx512(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
	if (qvl_cpu_has_avx512vnni() && wtype == QVL_DT_Q8_0_X8)
		return qd_matmul_x8q8_avx512(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
	if (qvl_cpu_has_avx512vnni())
		return qd_matmul_x8_avx512(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
#endif
	return qvl_qmatmul_x8_avx2(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}
#endif
