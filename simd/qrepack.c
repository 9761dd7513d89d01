/* Load-time weight repacking (layouts in qrepack.h), and the scalar
 * reference of the repacked types' matmul_fast(): each row gathered back
 * to its GGUF blocks and multiplied by qdot_ref.c's arithmetic, so the ref
 * level gives the same bits for a repacked matrix as for the file's. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "kern_impl.h"
#include "env.h"
#include "qdot.h"
#include "qrepack.h"

#define Q40_BYTES 18
#define Q80_BYTES 34

enum qvl_dtype qvl_repack_type(const struct qvl_kernels *kt, enum qvl_dtype t, size_t n, size_t k)
{
	bool builtin = kt->matmul_fast == qvl_matmul_fast_ref;

#ifdef HAVE_AVX2_KERNELS
	builtin = builtin || kt->matmul_fast == qvl_matmul_fast_avx2;
#endif
#ifdef HAVE_AVX512_KERNELS
	builtin = builtin || kt->matmul_fast == qvl_matmul_fast_avx512;
#endif
	/* QVL_REPACK=0: the file's layout (A/B measurements) */
	if (!qvl_env_flag("QVL_REPACK", true))
		return t;
#ifdef HAVE_AVX512_KERNELS
	/* bf16 in 16-row panels for the AVX512-BF16 products (QVL_BF16_PANELS=0:
	 * the rows): decode batches of 16 at 1.36-1.70x the rows' tok/s, single
	 * decode and prefill the same (quiet A/B, docs/todo-b16p.md) */
	if (t == QVL_DT_BF16 && kt->matmul_fast == qvl_matmul_fast_avx512 &&
	    qvl_kernels_bf16dot(kt) && n % QVL_P16_ROWS == 0 && k % 2 == 0 && k > 0 &&
	    qvl_env_flag("QVL_BF16_PANELS", true))
		return QVL_DT_BF16_P16;
#endif
	if (builtin && t == QVL_DT_Q4_0 && n % QVL_X8_ROWS == 0 && k % 32 == 0 && k > 0)
		return QVL_DT_Q4_0_X8;
	if (builtin && t == QVL_DT_Q8_0 && n % QVL_X8_ROWS == 0 && k % 32 == 0 && k > 0)
		return QVL_DT_Q8_0_X8;
	if (builtin && t == QVL_DT_Q4_K && n % QVL_X8_ROWS == 0 && k % 256 == 0 && k > 0)
		return QVL_DT_Q4_K_X8;
	if (builtin && t == QVL_DT_Q6_K && n % QVL_X8_ROWS == 0 && k % 256 == 0 && k > 0)
		return QVL_DT_Q6_K_X8;
	return t;
}

/* The two 32-value layouts differ only in their quant bytes per row and
 * block: Q4_0_X8 4 chunks of 4 bytes (nibbles), Q8_0_X8 8 (int8). */
struct x32 {
	enum qvl_dtype t;
	size_t bytes, chunks, gblk; /* per row and block; per block of 8 rows */
};

static const struct x32 x32_q40 = {QVL_DT_Q4_0, Q40_BYTES, 4, QVL_X8_BLK};
static const struct x32 x32_q80 = {QVL_DT_Q8_0, Q80_BYTES, 8, QVL_Q8X_BLK};

/* Block i of row r of group g in the repacked layout <-> the plain one:
 * to_x8 copies the plain block at p into the group block at x, else back. */
static void move32(const struct x32 *f, uint8_t *x, uint8_t *p, int r, bool to_x8)
{
	if (to_x8) {
		memcpy(x + 2 * r, p, 2);
		for (size_t c = 0; c < f->chunks; c++)
			memcpy(x + 16 + 32 * c + 4 * (size_t)r, p + 2 + 4 * c, 4);
	} else {
		memcpy(p, x + 2 * r, 2);
		for (size_t c = 0; c < f->chunks; c++)
			memcpy(p + 2 + 4 * c, x + 16 + 32 * c + 4 * (size_t)r, 4);
	}
}

static int convert(uint8_t *x8, uint8_t *plain, enum qvl_dtype t, enum qvl_dtype rt, size_t n,
		   size_t k, bool to_x8)
{
	const struct x32 *f = t == QVL_DT_Q8_0 && rt == QVL_DT_Q8_0_X8	 ? &x32_q80
			      : t == QVL_DT_Q4_0 && rt == QVL_DT_Q4_0_X8 ? &x32_q40
									 : NULL;
	size_t nb = k / 32, wrow = nb * (f ? f->bytes : 0);

	if (t == QVL_DT_BF16 && rt == QVL_DT_BF16_P16) {
		if (n % QVL_P16_ROWS || k % 2 || !k)
			return -EINVAL;
		qvl_bf16p_convert((uint16_t *)x8, (uint16_t *)plain, n, k, to_x8);
		return 0;
	}
	if (t == QVL_DT_Q4_K && rt == QVL_DT_Q4_K_X8)
		return qvl_q4k_x8_convert(x8, plain, n, k, to_x8);
	if (t == QVL_DT_Q6_K && rt == QVL_DT_Q6_K_X8 && n % QVL_X8_ROWS == 0 && k % 256 == 0 && k) {
		qvl_q6x_convert(x8, plain, n, k, to_x8);
		return 0;
	}
	if (!f || n % QVL_X8_ROWS || k % 32 || !k)
		return -EINVAL;
	for (size_t g = 0; g < n / QVL_X8_ROWS; g++) {
		uint8_t *xg = x8 + g * QVL_X8_ROWS * wrow, *pg = plain + g * QVL_X8_ROWS * wrow;
		for (size_t i = 0; i < nb; i++)
			for (int r = 0; r < QVL_X8_ROWS; r++)
				move32(f, xg + i * f->gblk, pg + r * wrow + i * f->bytes, r, to_x8);
	}
	return 0;
}

int qvl_repack(void *dst, enum qvl_dtype rt, const void *src, enum qvl_dtype t, size_t n, size_t k)
{
	/* convert() only reads the side it copies from */
	return convert(dst, (uint8_t *)(uintptr_t)src, t, rt, n, k, true);
}

int qvl_unrepack(void *dst, enum qvl_dtype t, const void *src, enum qvl_dtype rt, size_t n,
		 size_t k)
{
	return convert((uint8_t *)(uintptr_t)src, dst, t, rt, n, k, false);
}

/* Row j (nb blocks) of a 32-value X8 matrix (row stride wrow) as plain
 * blocks. */
static void gather_row(const struct x32 *f, uint8_t *dst, const void *W, size_t wrow, size_t nb,
		       size_t j)
{
	const uint8_t *g = (const uint8_t *)W + j / QVL_X8_ROWS * QVL_X8_ROWS * wrow;

	for (size_t i = 0; i < nb; i++)
		move32(f, (uint8_t *)(uintptr_t)(g + i * f->gblk), dst + i * f->bytes,
		       (int)(j % QVL_X8_ROWS), false);
}

static void x32_ref(const struct x32 *f, float *Y, size_t ldy, const float *X, size_t ldx,
		    const void *W, size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	size_t nb = k / 32, wrow = ldw / 32 * f->bytes;
	size_t rb = qvl_qdot_act_bytes(f->t, k), xb = (m * rb + 63) & ~(size_t)63;
	uint8_t *xq = qvl_qact_scratch(xb + nb * f->bytes);
	uint8_t row[Q80_BYTES];

	if (!xq) {
		/* no scratch: the exact product, one block at a time */
		for (size_t j = 0; j < n; j++)
			for (size_t i = 0; i < m; i++) {
				float s = bias ? bias[j] : 0.0f, w[32];
				for (size_t b = 0; b < nb; b++) {
					gather_row(f, row, (const uint8_t *)W + b * f->gblk, wrow,
						   1, j);
					qvl_deq_block(w, row, f->t);
					for (int c = 0; c < 32; c++)
						s += w[c] * X[i * ldx + 32 * b + (size_t)c];
				}
				Y[i * ldy + j] = s;
			}
		return;
	}
	for (size_t i = 0; i < m; i++)
		qvl_qact_row_ref(xq + i * rb, f->t, X + i * ldx, k);
	for (size_t j = 0; j < n; j++) {
		gather_row(f, xq + xb, W, wrow, nb, j);
		for (size_t i = 0; i < m; i++)
			Y[i * ldy + j] = qvl_qdot_row_ref(f->t, xq + xb, xq + i * rb, k) +
					 (bias ? bias[j] : 0.0f);
	}
}

void qvl_qmatmul_x8_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			size_t k)
{
	if (wtype == QVL_DT_Q4_K_X8)
		qvl_qmatmul_q4k_x8_ref(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
	else if (wtype == QVL_DT_Q6_K_X8)
		qvl_q6x_matmul_ref(Y, ldy, X, ldx, W, ldw, bias, m, n, k);
	else
		x32_ref(wtype == QVL_DT_Q8_0_X8 ? &x32_q80 : &x32_q40, Y, ldy, X, ldx, W, ldw, bias,
			m, n, k);
}
