/* matmul_fast(): the per-weight-type choice of the fast-precision matrix
 * product (enum qvl_precision in kernels.h). Each level sends the types it
 * has a faster, rounded-activation kernel for to that kernel (block types:
 * int8 activations, qdot.h; bf16: vdpbf16ps) and everything else, or a
 * kernel that could not get its scratch, to its exact matmul(), so the fast
 * table entry is always complete. */
#include "config.h"

#include "kern_impl.h"
#include "qdot.h"

/* k must be whole activation blocks (a 32-multiple type's rows need not be
 * whole 256-blocks: those types pair with 32-blocks) */
static bool use_qdot(enum qvl_dtype wtype, size_t k)
{
	return qvl_qdot_has(wtype) && k % qvl_qdot_act_blk(wtype) == 0;
}

void qvl_matmul_fast_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			 enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			 size_t k)
{
	if (use_qdot(wtype, k) && !qvl_qmatmul_ref(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k))
		return;
	qvl_matmul_ref(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}

#ifdef HAVE_AVX2_KERNELS
void qvl_matmul_fast_avx2(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			  enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			  size_t k)
{
	if (use_qdot(wtype, k) && !qvl_qmatmul_avx2(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k))
		return;
	qvl_matmul_avx2(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}
#endif

#ifdef HAVE_AVX512_KERNELS
void qvl_matmul_fast_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			    enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			    size_t k)
{
#ifdef HAVE_AVX512BF16_KERNELS
	/* bf16dot itself sends m == 1 and non-bf16 weights to the exact kernel */
	if (wtype == QVL_DT_BF16 && qvl_cpu_has_avx512bf16()) {
		qvl_matmul_bf16dot_avx512(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
		return;
	}
#endif
	if (use_qdot(wtype, k) && !qvl_qmatmul_avx512(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k))
		return;
	qvl_matmul_avx512(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}
#endif
