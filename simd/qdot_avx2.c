/* AVX2 int8 dot products for block-quantized weights: vpmaddubsw +
 * vpmaddwd, from the shared template (qdot_tmpl.h) and the decode and
 * K-quant kernels of qdot_ymm.h, which its qd_matmul() tries first. */
#include "config.h"

#ifdef HAVE_AVX2_KERNELS
#include <immintrin.h>

#define QD_T	    __attribute__((target("avx2,fma,f16c")))
#define QD_VNNI	    0
#define QD_FN(name) name##_avx2
#include "qdot_tmpl.h"
#include "qdot_ymm.h"
#include "qdot_x8.h"
#include "qdot_x8_q4k.h"
#include "qdot_x8_q6k.h"
#include "qdot_x8_q80.h"
#include "qdot_x8_act.h"

int qvl_qmatmul_avx2(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		     enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		     size_t k)
{
	return qd_matmul_avx2(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}
#endif

#ifdef HAVE_AVX2_KERNELS
int qvl_qmatmul_x8_avx2(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			size_t k)
{
	return x8_matmul_avx2(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}

size_t qvl_qact_x8_bytes_avx2(enum qvl_dtype rt, size_t m, size_t k)
{
	return x8_shape_ok(rt, 0, k) ? x8_act_bytes(rt, m, k) : 0;
}

void qvl_qact_x8_make_avx2(void *xa, enum qvl_dtype rt, const float *X, size_t ldx, size_t m,
			   size_t k)
{
	x8_act_make_avx2(xa, rt, X, ldx, m, k);
}

int qvl_qmatmul_x8_act_avx2(float *Y, size_t ldy, const void *xa, const void *W,
			    enum qvl_dtype rt, size_t ldw, const float *bias, size_t m, size_t n,
			    size_t k)
{
	return x8_matmul_act_avx2(Y, ldy, xa, W, rt, ldw, bias, m, n, k);
}
#endif
