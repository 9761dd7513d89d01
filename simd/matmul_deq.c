/* The exact matmul for weight types a level does not widen in registers
 * (today: everything but F32/F16/BF16/Q8_0/Q4_0, i.e. Q4_1, Q5_x, the
 * K-quants and IQ4): a few W rows at a time are dequantized with the scalar
 * codec (src/quant.c) into a small f32 panel, and the level's own f32 matmul
 * multiplies it. The result is f32 math on the dequantized weights, so it
 * equals qvl_matmul_ref up to summation order. The int8 kernels
 * (matmul_fast) are the fast path; this one is the exact reference speed. */
#include "config.h"

#include <stdlib.h>

#include "kern_impl.h"
#include "quant.h"

void qvl_matmul_deq(qvl_matmul_fn f32mm, float *Y, size_t ldy, const float *X, size_t ldx,
		    const void *W, enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,
		    size_t n, size_t k)
{
	/* decode streams W: a small panel stays in L1/L2; prefill amortizes the
	 * f32 kernel's packing over more columns */
	size_t rows = m == 1 ? 16 : 64, bytes;
	float *panel;

	if (rows > n)
		rows = n;
	if (__builtin_mul_overflow(rows * sizeof(float), k, &bytes) || !(panel = malloc(bytes))) {
		/* no memory for a panel: the reference dequantizes block by block */
		qvl_matmul_ref(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
		return;
	}
	for (size_t j = 0; j < n; j += rows) {
		size_t r = n - j < rows ? n - j : rows;

		for (size_t i = 0; i < r; i++)
			qvl_dequant_row(wtype, qvl_wrow(W, wtype, ldw, j + i), panel + i * k, k);
		f32mm(Y + j, ldy, X, ldx, panel, QVL_DT_F32, k, bias ? bias + j : NULL, m, r, k);
	}
	free(panel);
}
