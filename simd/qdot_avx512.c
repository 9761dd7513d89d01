/* AVX512-VNNI int8 dot products for block-quantized weights: vpdpbusd on
 * 256-bit vectors (AVX512VL), from the shared template (qdot_tmpl.h). On
 * Zen 4 a 512-bit vpdpbusd is two 256-bit halves, so ymm loses nothing and
 * keeps one block of 32 per vector; the 32 registers allow 2x4 tiles for
 * the K-quants too. A CPU with AVX-512 but without VNNI (Skylake-X) runs
 * the AVX2 kernels. */
#include "config.h"

#include <errno.h>

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

static QD_T void q4k_zx(float *Y, const void *xa, const void *W, size_t ldw, size_t n, size_t k)
{
	qk_run_zx(Y, xa, x8_rows_bytes(QVL_DT_Q4_K_X8, 1, k), W, ldw, n, k,
		  qvl_gemm_blk.qdec_streams);
}
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

#ifdef HAVE_AVX512_KERNELS
/* The products of the AVX2 level's prepared activation that run on
 * 512-bit vectors:
 *  - decode batches (m > 1) of every type: this level's own VNNI
 *    products, the bits of its matmul_fast (for Q4_0_X8, Q8_0_X8 and
 *    Q6_K_X8 also AVX2's: exact integer sums, the same float steps per
 *    row; Q4_K_X8's differ in the last bits). AVX2's (vpmaddubsw, half
 *    the work per instruction) made a batch of 16 cost 11-12 one-row
 *    steps: 1.45-1.57x the tokens of one sequence for q4_0, q8_0 and
 *    q4_k_m, 3-4.5x on these (bench_step, docs/status.md);
 *  - one row (the decode): Q6_K_X8 (AVX2's bits) and Q4_K_X8 (the 512-bit
 *    sums folded to AVX2's lanes, qdot_x8_q4k.h qk_zx_rows).
 * -EINVAL for the rest (Q4_0_X8 and Q8_0_X8 one-row products, whose
 * 256-bit form streamed faster here): the caller takes the AVX2 kernels
 * (matmul_fast.c qvl_matmul_act_avx512a2). A row's bits may differ
 * between m 1 and m > 1, as they do at every level (tests/engine_batchinv). */
int qvl_qmatmul_x8_act_on512_avx512(float *Y, size_t ldy, const void *xa, const void *W,
				     enum qvl_dtype rt, size_t ldw, const float *bias, size_t m,
				     size_t n, size_t k)
{
#ifdef HAVE_AVX512VNNI_KERNELS
	if (!qvl_cpu_has_avx512vnni() || !x8_shape_ok(rt, n, k))
		return -EINVAL;
	if (rt == QVL_DT_Q6_K_X8 || m > 1)
		return x8_matmul_act_avx512(Y, ldy, xa, W, rt, ldw, bias, m, n, k);
	if (rt == QVL_DT_Q4_K_X8 && m == 1) {
		q4k_zx(Y, xa, W, ldw, n, k);
		qvl_qdot_add_bias(Y, ldy, bias, m, n);
		return 0;
	}
#endif
	(void)Y, (void)ldy, (void)xa, (void)W, (void)rt, (void)ldw, (void)bias, (void)m, (void)n;
	(void)k;
	return -EINVAL;
}
#endif
