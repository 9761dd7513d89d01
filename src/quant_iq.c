/* The non-linear 4-bit types IQ4_NL (32 values) and IQ4_XS (256 values with
 * 6-bit sub-block scales); layouts in quant.h. */
#include "quant_impl.h"

const int8_t quant_iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
				   1,	 13,   25,  38,	 53,  69,  89,	113};

/* 32 values from 16 nibble bytes scaled by dl. */
QUANT_HOT static void deq_iq4_32(const uint8_t *qs, float dl, float *y)
{
	for (int j = 0; j < 16; j++) {
		y[j] = dl * (float)quant_iq4_grid[qs[j] & 15];
		y[j + 16] = dl * (float)quant_iq4_grid[qs[j] >> 4];
	}
}

QUANT_HOT void quant_deq_iq4_nl(const uint8_t *b, float *y)
{
	deq_iq4_32(b + 2, quant_ld_f16(b), y);
}

QUANT_HOT void quant_deq_iq4_xs(const uint8_t *b, float *y)
{
	float d = quant_ld_f16(b);
	unsigned sh = (unsigned)b[2] | (unsigned)b[3] << 8;

	for (int ib = 0; ib < 8; ib++) {
		int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (int)((sh >> (2 * ib)) & 3)
									<< 4;

		deq_iq4_32(b + 8 + 16 * ib, d * (float)(ls - 32), y + 32 * ib);
	}
}

/* Index of the grid value nearest to v. */
static int iq4_nearest(float v)
{
	int best = 0;

	for (int i = 1; i < 16; i++)
		if (fabsf(v - (float)quant_iq4_grid[i]) < fabsf(v - (float)quant_iq4_grid[best]))
			best = i;
	return best;
}

/* Weighted least-squares scale for 32 values on the grid: as llama.cpp's
 * search, try the inverse scales that put the largest value at grid[0]
 * shifted by -7..7 and keep the fit with the smallest weighted error. */
static float iq4_search(const float *x, const float *w)
{
	float amax = 0, max = 0, best = -1, d = 0;

	for (int j = 0; j < 32; j++)
		if (fabsf(x[j]) > amax)
			amax = fabsf(x[j]), max = x[j];
	if (amax < 1e-15f)
		return 0;
	for (int t = -7; t <= 7; t++) {
		float id = ((float)t + (float)quant_iq4_grid[0]) / max, sqx = 0, sq2 = 0;

		for (int j = 0; j < 32; j++) {
			float q = (float)quant_iq4_grid[iq4_nearest(id * x[j])];

			sqx += w[j] * q * x[j];
			sq2 += w[j] * q * q;
		}
		if (sq2 > 0 && (best < 0 || sqx * sqx > best * sq2)) {
			d = sqx / sq2;
			best = d * sqx;
		}
	}
	return d;
}

static void iq4_weights(const float *x, const float *imp, int n, float sigma2, float *w)
{
	for (int j = 0; j < n; j++)
		w[j] = imp ? imp[j] * sqrtf(sigma2 + x[j] * x[j]) : x[j] * x[j];
}

static float iq4_sigma2(const float *x, int n)
{
	float s = 0;

	for (int j = 0; j < n; j++)
		s += x[j] * x[j];
	return 2 * s / (float)n;
}

/* 32 values with the decoding scale dl into 16 nibble bytes. */
static void iq4_pack(const float *x, float dl, uint8_t *qs)
{
	float id = dl != 0 ? 1 / dl : 0;

	for (int j = 0; j < 16; j++)
		qs[j] = (uint8_t)(iq4_nearest(id * x[j]) | iq4_nearest(id * x[j + 16]) << 4);
}

int quant_enc_iq4_nl(const float *x, uint8_t *b, const float *imp)
{
	float w[32];

	iq4_weights(x, imp, 32, iq4_sigma2(x, 32), w);
	int rc = quant_st_f16(b, iq4_search(x, w));

	iq4_pack(x, quant_ld_f16(b), b + 2);
	return rc;
}

int quant_enc_iq4_xs(const float *x, uint8_t *b, const float *imp)
{
	float w[32], sc[8], amax = 0, max = 0, s2 = iq4_sigma2(x, 256);

	for (int ib = 0; ib < 8; ib++) {
		iq4_weights(x + 32 * ib, imp ? imp + 32 * ib : NULL, 32, s2, w);
		sc[ib] = iq4_search(x + 32 * ib, w);
		if (fabsf(sc[ib]) > amax)
			amax = fabsf(sc[ib]), max = sc[ib];
	}
	int rc = quant_st_f16(b, -max / 32);
	float d = quant_ld_f16(b);
	unsigned sh = 0;

	b[4] = b[5] = b[6] = b[7] = 0;
	for (int ib = 0; ib < 8; ib++) {
		int ls = d != 0 ? quant_round(sc[ib] / d, -32, 31) : 0;

		iq4_pack(x + 32 * ib, d * (float)ls, b + 8 + 16 * ib);
		b[4 + ib / 2] |= (uint8_t)(((ls + 32) & 15) << (4 * (ib % 2)));
		sh |= (unsigned)((ls + 32) >> 4) << (2 * ib);
	}
	b[2] = (uint8_t)sh;
	b[3] = (uint8_t)(sh >> 8);
	return rc;
}
