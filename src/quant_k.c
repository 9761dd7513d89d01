/* Dequantization of the K-quants (256-value super-blocks; layouts in
 * quant.h). Each loop walks the block in element order e = 0..255 and finds
 * the bits of e where the layout puts them, so the code reads like the
 * layout description. Arithmetic order as ggml's ((d * sc) * q - dmin * mn),
 * which makes the values bit-identical to llama.cpp's. */
#include "quant_impl.h"

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
QUANT_HOT static void k4_scale_min(const uint8_t *s, int j, int *sc, int *mn)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*mn = s[j + 4] & 63;
	} else {
		*sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
		*mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
	}
}

/* Sub-blocks of 16 in the Q2_K/Q3_K qs layout: 128-value half h, 2-bit
 * field f (bits 2f..2f+1) of bytes qs[32 h + 16 k .. + 16] hold sub-block
 * s = 8 h + 2 f + k. Inner loops run over contiguous bytes (vectorizable). */
QUANT_HOT static void k_low2_sub(const uint8_t *qs, int s, int q[16])
{
	const uint8_t *p = qs + 32 * (s / 8) + 16 * (s % 2);
	int shift = 2 * ((s % 8) / 2);

	for (int l = 0; l < 16; l++)
		q[l] = (p[l] >> shift) & 3;
}

QUANT_HOT void quant_deq_q2_k(const uint8_t *b, float *y)
{
	const uint8_t *scales = b, *qs = b + 16;
	float d = quant_ld_f16(b + 80), dmin = quant_ld_f16(b + 82);
	int q[16];

	for (int s = 0; s < 16; s++) {
		float dl = d * (float)(scales[s] & 15), ml = dmin * (float)(scales[s] >> 4);

		k_low2_sub(qs, s, q);
		for (int l = 0; l < 16; l++)
			y[16 * s + l] = dl * (float)q[l] - ml;
	}
}

QUANT_HOT void quant_deq_q3_k(const uint8_t *b, float *y)
{
	const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
	float d = quant_ld_f16(b + 108);
	int q[16];

	for (int s = 0; s < 16; s++) {
		int lo = s < 8 ? sc[s] & 15 : sc[s - 8] >> 4;
		int hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
		float dl = d * (float)((lo | hi << 4) - 32);
		/* element e = 16 s + l: hmask bit e / 32 = s / 2 of byte e % 32 */
		const uint8_t *hm = hmask + 16 * (s % 2);

		k_low2_sub(qs, s, q);
		for (int l = 0; l < 16; l++)
			y[16 * s + l] = dl * (float)(q[l] - ((hm[l] >> (s / 2)) & 1 ? 0 : 4));
	}
}

/* Q4_K and Q5_K share everything but the 5th bit (qh NULL for Q4_K):
 * sub-block j is the low (j even) or high nibbles of qs[32 (j / 2) ..+32],
 * its 5th bits bit j of qh[0..32]. */
QUANT_HOT static void deq_k45(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y)
{
	float d = quant_ld_f16(b), dmin = quant_ld_f16(b + 2);

	for (int j = 0; j < 8; j++) {
		const uint8_t *p = qs + 32 * (j / 2);
		int sc, mn, sh = 4 * (j % 2);

		k4_scale_min(b + 4, j, &sc, &mn);
		float d1 = d * (float)sc, m1 = dmin * (float)mn;

		if (qh)
			for (int l = 0; l < 32; l++)
				y[32 * j + l] =
				    d1 * (float)(((p[l] >> sh) & 15) | ((qh[l] >> j) & 1) << 4) -
				    m1;
		else
			for (int l = 0; l < 32; l++)
				y[32 * j + l] = d1 * (float)((p[l] >> sh) & 15) - m1;
	}
}

QUANT_HOT void quant_deq_q4_k(const uint8_t *b, float *y)
{
	deq_k45(b, NULL, b + 16, y);
}

QUANT_HOT void quant_deq_q5_k(const uint8_t *b, float *y)
{
	deq_k45(b, b + 16, b + 48, y);
}

/* Quarter g (32 values) of half h: low (g < 2) or high nibbles of
 * ql[64 h + 32 (g & 1) ..+32], high bits 2g of qh[32 h ..+32]. */
QUANT_HOT void quant_deq_q6_k(const uint8_t *b, float *y)
{
	const int8_t *scales = (const int8_t *)(b + 192);
	float d = quant_ld_f16(b + 208);

	for (int h = 0; h < 2; h++)
		for (int g = 0; g < 4; g++) {
			const uint8_t *ql = b + 64 * h + 32 * (g & 1), *qh = b + 128 + 32 * h;
			int sh = g < 2 ? 0 : 4;
			float *o = y + 128 * h + 32 * g;
			float d0 = d * (float)scales[8 * h + 2 * g];
			float d1 = d * (float)scales[8 * h + 2 * g + 1];

			for (int l = 0; l < 16; l++)
				o[l] = d0 * (float)((((ql[l] >> sh) & 15) | ((qh[l] >> (2 * g)) & 3)
										<< 4) -
						    32);
			for (int l = 16; l < 32; l++)
				o[l] = d1 * (float)((((ql[l] >> sh) & 15) | ((qh[l] >> (2 * g)) & 3)
										<< 4) -
						    32);
		}
}
