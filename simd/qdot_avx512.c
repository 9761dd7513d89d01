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
#include "qdot_x8_act.h"
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
#include "qrepack.h"

/* Without VNNI the AVX2 kernels, for both halves alike (the Q4_0_X8
 * prepared terms differ between the two: qdot_x8.h struct qx_act). */
int qvl_qmatmul_x8_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			  enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			  size_t k)
{
#ifdef HAVE_AVX512VNNI_KERNELS
	if (qvl_cpu_has_avx512vnni())
		return x8_matmul_avx512(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
#endif
	return qvl_qmatmul_x8_avx2(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}

size_t qvl_qact_x8_bytes_avx512(enum qvl_dtype rt, size_t m, size_t k)
{
	return qvl_qact_x8_bytes_avx2(rt, m, k);
}

void qvl_qact_x8_make_avx512(void *xa, enum qvl_dtype rt, const float *X, size_t ldx, size_t m,
			     size_t k)
{
#ifdef HAVE_AVX512VNNI_KERNELS
	if (qvl_cpu_has_avx512vnni()) {
		x8_act_make_avx512(xa, rt, X, ldx, m, k);
		return;
	}
#endif
	qvl_qact_x8_make_avx2(xa, rt, X, ldx, m, k);
}

int qvl_qmatmul_x8_act_avx512(float *Y, size_t ldy, const void *xa, const void *W,
			      enum qvl_dtype rt, size_t ldw, const float *bias, size_t m, size_t n,
			      size_t k)
{
#ifdef HAVE_AVX512VNNI_KERNELS
	if (qvl_cpu_has_avx512vnni())
		return x8_matmul_act_avx512(Y, ldy, xa, W, rt, ldw, bias, m, n, k);
#endif
	return qvl_qmatmul_x8_act_avx2(Y, ldy, xa, W, rt, ldw, bias, m, n, k);
}
#endif
