/* The bf16 panels (QVL_DT_BF16_P16, layout in qrepack.h): the load-time
 * conversion and the scalar reference of their product. */
#include "config.h"

#include <string.h>

#include "qrepack.h"

void qvl_bf16p_convert(uint16_t *p16, uint16_t *rows, size_t n, size_t k, bool to)
{
	size_t kp = k / 2;

	/* 32-bit pairs, the 16 rows read (or written) side by side: 16
	 * sequential streams and one, at engine creation over every bf16
	 * matrix (element by element it added ~10 s to a 2b load) */
	for (size_t b = 0; b < n / QVL_P16_ROWS; b++) {
		uint8_t *pb = (uint8_t *)(p16 + b * QVL_P16_ROWS * k);
		uint8_t *rb = (uint8_t *)(rows + b * QVL_P16_ROWS * k);
		for (size_t p = 0; p < kp; p++)
			for (size_t c = 0; c < QVL_P16_ROWS; c++) {
				uint8_t *pp = pb + (p * QVL_P16_ROWS + c) * 4,
					*rp = rb + (c * kp + p) * 4;
				if (to)
					memcpy(pp, rp, 4);
				else
					memcpy(rp, pp, 4);
			}
	}
}

void qvl_matmul_bf16p_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			  size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	const uint16_t *P = W;

	(void)ldw; /* == k: the panels have no row stride of their own */
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++) {
			const uint16_t *w =
			    P + j / QVL_P16_ROWS * QVL_P16_ROWS * k + j % QVL_P16_ROWS * 2;
			float s = 0.0f;

			for (size_t p = 0; p < k / 2; p++) {
				const uint16_t *wp = w + p * QVL_P16_ROWS * 2;
				float x0 = qvl_bf16_to_f32(qvl_f32_to_bf16(X[i * ldx + 2 * p]));
				float x1 = qvl_bf16_to_f32(qvl_f32_to_bf16(X[i * ldx + 2 * p + 1]));
				s += qvl_bf16_to_f32(wp[0]) * x0 + qvl_bf16_to_f32(wp[1]) * x1;
			}
			Y[i * ldy + j] = s + (bias ? bias[j] : 0.0f);
		}
}
