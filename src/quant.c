/* Scalar dequantization of the GGUF block types (layouts in quant.h). This is
 * the reference the SIMD kernels are checked against, so it stays simple. */
#include "quant.h"

#include <string.h>

#include "kernels.h"

static float block_scale(const uint8_t *b)
{
	return qvl_f16_to_f32((uint16_t)(b[0] | b[1] << 8));
}

void qvl_dequant_q8_0(float *dst, const void *src, size_t n)
{
	const uint8_t *b = src;

	for (size_t i = 0; i < n; i += QVL_QBLOCK, b += QVL_Q8_0_BYTES) {
		float d = block_scale(b);

		for (int j = 0; j < QVL_QBLOCK; j++)
			dst[i + j] = d * (float)(int8_t)b[2 + j];
	}
}

void qvl_dequant_q4_0(float *dst, const void *src, size_t n)
{
	const uint8_t *b = src;

	for (size_t i = 0; i < n; i += QVL_QBLOCK, b += QVL_Q4_0_BYTES) {
		float d = block_scale(b);

		for (int j = 0; j < QVL_QBLOCK / 2; j++) {
			dst[i + j] = d * (float)((b[2 + j] & 0x0f) - 8);
			dst[i + j + QVL_QBLOCK / 2] = d * (float)((b[2 + j] >> 4) - 8);
		}
	}
}
