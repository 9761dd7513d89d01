/* The non-linear 4-bit types IQ4_NL (32 values) and IQ4_XS (256 values with
 * 6-bit sub-block scales); layouts in quant.h. */
#include "quant_impl.h"

const int8_t quant_iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
				   1,	 13,   25,  38,	 53,  69,  89,	113};

/* 32 values from 16 nibble bytes scaled by dl. */
static void deq_iq4_32(const uint8_t *qs, float dl, float *y)
{
	for (int j = 0; j < 16; j++) {
		y[j] = dl * (float)quant_iq4_grid[qs[j] & 15];
		y[j + 16] = dl * (float)quant_iq4_grid[qs[j] >> 4];
	}
}

void quant_deq_iq4_nl(const uint8_t *b, float *y)
{
	deq_iq4_32(b + 2, quant_ld_f16(b), y);
}

void quant_deq_iq4_xs(const uint8_t *b, float *y)
{
	float d = quant_ld_f16(b);
	unsigned sh = (unsigned)b[2] | (unsigned)b[3] << 8;

	for (int ib = 0; ib < 8; ib++) {
		int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (int)((sh >> (2 * ib)) & 3)
									<< 4;

		deq_iq4_32(b + 8 + 16 * ib, d * (float)(ls - 32), y + 32 * ib);
	}
}
