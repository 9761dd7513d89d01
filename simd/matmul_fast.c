/* matmul_fast(): the per-weight-type choice of the fast-precision matrix
 * product (enum qvl_precision in kernels.h). Each level sends the types it
 * has a faster, rounded-activation kernel for to that kernel (block types:
 * int8 activations, qdot.h; bf16: vdpbf16ps) and everything else, or a
 * kernel that could not get its scratch, to its exact matmul(), so the fast
 * table entry is always complete. */
#include "config.h"

#include "kern_impl.h"
#include "qdot.h"
#include "qrepack.h"

/* k must be whole activation blocks (a 32-multiple type's rows need not be
 * whole 256-blocks: those types pair with 32-blocks) */
static bool use_qdot(enum qvl_dtype wtype, size_t k)
{
	return qvl_qdot_has(wtype) && k % qvl_qdot_act_blk(wtype) == 0;
}

/* the ref level's kernel of the repacked types, in the levels' signature */
static int x8_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		  enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	qvl_qmatmul_x8_ref(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
	return 0;
}

#define qvl_qmatmul_x8_ref x8_ref

/* The bf16 panels (qrepack.h): the AVX512-BF16 kernel when the level has
 * it (nonzero: run the reference) */
static int bf16p_none(float *Y, size_t ldy, const float *X, size_t ldx, const void *W, size_t ldw,
		      const float *bias, size_t m, size_t n, size_t k)
{
	(void)Y, (void)ldy, (void)X, (void)ldx, (void)W, (void)ldw, (void)bias, (void)m, (void)n;
	(void)k;
	return -1;
}

#define bf16p_ref  bf16p_none
#define bf16p_avx2 bf16p_none
#ifdef HAVE_AVX512_KERNELS
static int bf16p_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W, size_t ldw,
			const float *bias, size_t m, size_t n, size_t k)
{
#ifdef HAVE_AVX512BF16_KERNELS
	if (qvl_cpu_has_avx512bf16())
		return qvl_matmul_bf16p_avx512(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
#endif
	return bf16p_none(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
}
#endif

/* One level's matmul_fast: the repacked types (qrepack.h: only this reads
 * them; the bf16 panels first; the ref kernel, which needs no scratch, when the level's cannot
 * get its scratch), the int8 kernel for block types (exact matmul when it
 * cannot get its scratch), PRE for what the level sends elsewhere first (a
 * statement that returns), the level's exact matmul for the rest. */
#define QVL_MATMUL_FAST(lvl, PRE)                                                                  \
	void qvl_matmul_fast_##lvl(float *Y, size_t ldy, const float *X, size_t ldx,               \
				   const void *W, enum qvl_dtype wtype, size_t ldw,                \
				   const float *bias, size_t m, size_t n, size_t k)                \
	{                                                                                          \
		if (wtype == QVL_DT_BF16_P16) {                                                    \
			if (bf16p_##lvl(Y, ldy, X, ldx, W, ldw, bias, m, n, k))                    \
				qvl_matmul_bf16p_ref(Y, ldy, X, ldx, W, ldw, bias, m, n, k);       \
			return;                                                                    \
		}                                                                                  \
		if (qvl_dtype_is_repacked(wtype)) {                                                \
			if (qvl_qmatmul_x8_##lvl(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k))    \
				x8_ref(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);              \
			return;                                                                    \
		}                                                                                  \
		PRE;                                                                               \
		if (use_qdot(wtype, k) &&                                                          \
		    !qvl_qmatmul_##lvl(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k))              \
			return;                                                                    \
		qvl_matmul_##lvl(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);                    \
	}

QVL_MATMUL_FAST(ref, (void)0)

/* The bf16 panels' prepared activation: their rows in bf16, made once per
 * product instead of once per call. Panels exist only under the avx512
 * matmul_fast (qrepack.c), whichever level serves the prepared products
 * (dispatch.c act_level), so their kernel here is the AVX512-BF16 one.
 * One row is left to matmul_fast: its rounding is one row, and a prepared
 * one-row product takes the quantized types' chunks (forward.c). */
static size_t bf16p_act_bytes(size_t m, size_t k)
{
#ifdef HAVE_AVX512BF16_KERNELS
	if (m > 1 && k % 2 == 0 && qvl_cpu_has_avx512bf16())
		return qvl_bf16p_act_bytes(m, k);
#endif
	(void)m, (void)k;
	return 0;
}

static void bf16p_act(float *Y, size_t ldy, const float *X, size_t ldx, const void *xa,
		      const void *W, size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
#ifdef HAVE_AVX512BF16_KERNELS
	if (!qvl_matmul_bf16p_act_avx512(Y, ldy, xa, W, ldw, bias, m, n, k))
		return;
	if (!qvl_matmul_bf16p_avx512(Y, ldy, X, ldx, W, ldw, bias, m, n, k))
		return;
#endif
	(void)xa;
	qvl_matmul_bf16p_ref(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
}

/* One level's act_bytes, act_make and matmul_act (kernels.h): the
 * repacked types only (qrepack.h, qdot_x8_act.h, the bf16 panels), the
 * decode's types. */
#define QVL_MATMUL_ACT(lvl)                                                                        \
	size_t qvl_act_bytes_##lvl(enum qvl_dtype wtype, size_t m, size_t k)                       \
	{                                                                                          \
		if (wtype == QVL_DT_BF16_P16)                                                      \
			return bf16p_act_bytes(m, k);                                              \
		return qvl_qact_x8_bytes_##lvl(wtype, m, k);                                       \
	}                                                                                          \
	void qvl_act_make_##lvl(void *xa, enum qvl_dtype wtype, const float *X, size_t ldx,        \
				size_t m, size_t k)                                                \
	{                                                                                          \
		if (wtype == QVL_DT_BF16_P16)                                                      \
			BF16P_ACT_MAKE(xa, X, ldx, m, k);                                          \
		else                                                                               \
			qvl_qact_x8_make_##lvl(xa, wtype, X, ldx, m, k);                           \
	}                                                                                          \
	void qvl_matmul_act_##lvl(float *Y, size_t ldy, const float *X, size_t ldx,                \
				  const void *xa, const void *W, enum qvl_dtype wtype, size_t ldw, \
				  const float *bias, size_t m, size_t n, size_t k)                 \
	{                                                                                          \
		if (wtype == QVL_DT_BF16_P16)                                                      \
			bf16p_act(Y, ldy, X, ldx, xa, W, ldw, bias, m, n, k);                      \
		else if (qvl_qmatmul_x8_act_##lvl(Y, ldy, xa, W, wtype, ldw, bias, m, n, k))       \
			qvl_matmul_fast_##lvl(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);       \
	}                                                                                          \
	bool qvl_act_part_##lvl(void *xa, enum qvl_dtype wtype, const float *X, size_t ldx,        \
				size_t m, size_t k, size_t r0, size_t r1, size_t c0, size_t c1)    \
	{                                                                                          \
		if (wtype != QVL_DT_BF16_P16 || !bf16p_act_bytes(m, k))                            \
			return false;                                                              \
		BF16P_ACT_PART(xa, X, ldx, k, r0, r1, c0, c1);                                     \
		return true;                                                                       \
	}

#ifdef HAVE_AVX512BF16_KERNELS
#define BF16P_ACT_MAKE qvl_bf16p_act_make
#define BF16P_ACT_PART qvl_bf16p_act_part
#else
#define BF16P_ACT_MAKE(xa, X, ldx, m, k) (void)0 /* act_bytes is 0 */
#define BF16P_ACT_PART(xa, X, ldx, k, r0, r1, c0, c1) (void)0
#endif

#ifdef HAVE_AVX2_KERNELS
QVL_MATMUL_FAST(avx2, (void)0)
QVL_MATMUL_ACT(avx2)
#endif

#ifdef HAVE_AVX512_KERNELS
#ifdef HAVE_AVX512BF16_KERNELS
/* bf16dot itself sends non-bf16 weights to the exact kernel */
#define QVL_BF16DOT                                                                                \
	do {                                                                                       \
		if (wtype == QVL_DT_BF16 && qvl_cpu_has_avx512bf16()) {                            \
			qvl_matmul_bf16dot_avx512(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);   \
			return;                                                                    \
		}                                                                                  \
	} while (0)
#else
#define QVL_BF16DOT (void)0
#endif
QVL_MATMUL_FAST(avx512, QVL_BF16DOT)
QVL_MATMUL_ACT(avx512)

#ifdef HAVE_AVX2_KERNELS
/* The avx512 table's decode (simd/dispatch.c act_level): the AVX2 level's
 * act kernels, with their bits; decode batches, Q6_K_X8 and the Q4_K_X8
 * decode on 512-bit vectors (qdot_avx512.c): their AVX2 forms are compute-bound, one core
 * 38-42 (Q6_K) and 32-38 (Q4_K) GB/s in L2 against 54-84 and 73-92, at or
 * below the 37-40 a core streams (docs/todo-qdec.md). */
void qvl_matmul_act_avx512a2(float *Y, size_t ldy, const float *X, size_t ldx, const void *xa,
			     const void *W, enum qvl_dtype wtype, size_t ldw, const float *bias,
			     size_t m, size_t n, size_t k)
{
	if (!qvl_qmatmul_x8_act_on512_avx512(Y, ldy, xa, W, wtype, ldw, bias, m, n, k))
		return;
	qvl_matmul_act_avx2(Y, ldy, X, ldx, xa, W, wtype, ldw, bias, m, n, k);
}
#endif
#endif
