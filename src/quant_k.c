/* Dequantization of the K-quants (256-value super-blocks; layouts in
 * quant.h). Each loop walks the block in element order e = 0..255 and finds
 * the bits of e where the layout puts them, so the code reads like the
 * layout description. Arithmetic order as ggml's ((d * sc) * q - dmin * mn),
 * which makes the values bit-identical to llama.cpp's. */
#include "quant_impl.h"

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *mn)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*mn = s[j + 4] & 63;
	} else {
		*sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
		*mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
	}
}

/* Low two bits of element e in a Q2_K/Q3_K qs[64] array. */
static int k_low2(const uint8_t *qs, int e)
{
	int r = e % 128;

	return (qs[32 * (e / 128) + r % 32] >> (2 * (r / 32))) & 3;
}

void quant_deq_q2_k(const uint8_t *b, float *y)
{
	const uint8_t *scales = b, *qs = b + 16;
	float d = quant_ld_f16(b + 80), dmin = quant_ld_f16(b + 82);

	for (int s = 0; s < 16; s++) {
		float dl = d * (float)(scales[s] & 15), ml = dmin * (float)(scales[s] >> 4);

		for (int e = 16 * s; e < 16 * s + 16; e++)
			y[e] = dl * (float)k_low2(qs, e) - ml;
	}
}

void quant_deq_q3_k(const uint8_t *b, float *y)
{
	const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
	float d = quant_ld_f16(b + 108);

	for (int s = 0; s < 16; s++) {
		int lo = s < 8 ? sc[s] & 15 : sc[s - 8] >> 4;
		int hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
		float dl = d * (float)((lo | hi << 4) - 32);

		for (int e = 16 * s; e < 16 * s + 16; e++) {
			int high = (hmask[e % 32] >> (e / 32)) & 1;

			y[e] = dl * (float)(k_low2(qs, e) - (high ? 0 : 4));
		}
	}
}

/* Q4_K and Q5_K share everything but the 5th bit (qh NULL for Q4_K). */
static void deq_k45(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y)
{
	float d = quant_ld_f16(b), dmin = quant_ld_f16(b + 2);

	for (int j = 0; j < 8; j++) {
		int sc, mn;

		k4_scale_min(b + 4, j, &sc, &mn);
		float d1 = d * (float)sc, m1 = dmin * (float)mn;

		for (int e = 32 * j; e < 32 * j + 32; e++) {
			uint8_t byte = qs[32 * (e / 64) + e % 32];
			int q = e % 64 < 32 ? byte & 15 : byte >> 4;

			if (qh)
				q |= ((qh[e % 32] >> (e / 32)) & 1) << 4;
			y[e] = d1 * (float)q - m1;
		}
	}
}

void quant_deq_q4_k(const uint8_t *b, float *y)
{
	deq_k45(b, NULL, b + 16, y);
}

void quant_deq_q5_k(const uint8_t *b, float *y)
{
	deq_k45(b, b + 16, b + 48, y);
}

void quant_deq_q6_k(const uint8_t *b, float *y)
{
	const uint8_t *ql = b, *qh = b + 128;
	const int8_t *scales = (const int8_t *)(b + 192);
	float d = quant_ld_f16(b + 208);

	for (int e = 0; e < 256; e++) {
		int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
		uint8_t lb = ql[64 * h + l + 32 * (g & 1)];
		int q = (g < 2 ? lb & 15 : lb >> 4) | ((qh[32 * h + l] >> (2 * g)) & 3) << 4;

		y[e] = d * (float)scales[e / 16] * (float)(q - 32);
	}
}
