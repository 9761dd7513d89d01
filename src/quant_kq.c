/* Quantization to the K-quants (layouts in quant.h), after the ideas of
 * llama.cpp's imatrix-free reference quantizers: each 16- or 32-value
 * sub-block gets a scale (and for Q2_K/Q4_K/Q5_K a min) from a weighted
 * least-squares search over a few candidate scales; the sub-block scales are
 * then quantized against the super-block's f16 scale, and every value is
 * re-rounded with the scale it will actually be decoded with, which bounds
 * each in-range element's error by half a step. */
#include <string.h>

#include "quant_impl.h"

#define NEAR_ZERO 1e-15f

/* Symmetric levels -nmax..nmax-1: try the scales that map the largest value
 * onto -(nmax + 0.1 i) (i = -9..9) and keep the one with the smallest
 * weighted squared error, the least-squares scale for its levels. L gets the
 * levels; returns the scale (sign as the largest value's, negated). */
static float search_sym(int n, int nmax, const float *x, const float *w, int8_t *L)
{
	float amax = 0, max = 0, best = -1, scale = 0;

	for (int i = 0; i < n; i++)
		if (fabsf(x[i]) > amax)
			amax = fabsf(x[i]), max = x[i];
	if (amax < NEAR_ZERO) {
		memset(L, 0, (size_t)n);
		return 0;
	}
	for (int t = -9; t <= 9; t++) {
		float is = -((float)nmax + 0.1f * (float)t) / max, slx = 0, sl2 = 0;

		for (int i = 0; i < n; i++) {
			int l = quant_round(is * x[i], -nmax, nmax - 1);

			slx += w[i] * x[i] * (float)l;
			sl2 += w[i] * (float)(l * l);
		}
		/* error = sum w x^2 - slx^2 / sl2: maximize slx^2 / sl2 */
		if (sl2 > 0 && (best < 0 || slx * slx > best * sl2)) {
			scale = slx / sl2;
			best = scale * slx;
			for (int i = 0; i < n; i++)
				L[i] = (int8_t)quant_round(is * x[i], -nmax, nmax - 1);
		}
	}
	return scale;
}

/* Levels 0..nmax with an offset: x ~ scale * l - negmin. Start from the
 * range, then try nstep + 1 stretched grids (rmin + rdelta i extra levels)
 * and for each fit scale and min by weighted least squares (min kept <= 0,
 * as the format stores -min unsigned), keeping the smallest weighted error
 * (absolute when mad, squared otherwise). Returns the scale, *negmin = -min. */
static float search_asym(int n, int nmax, const float *x, const float *w, uint8_t *L, float *negmin,
			 float rmin, float rdelta, int nstep, bool mad)
{
	float lo = x[0], hi = x[0], sw = 0, sx = 0;
	uint8_t La[32];

	for (int i = 0; i < n; i++) {
		lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
		sw += w[i], sx += w[i] * x[i];
	}
	lo = fminf(lo, 0);
	if (hi == lo) {
		memset(L, 0, (size_t)n);
		*negmin = -lo;
		return 0;
	}
	float scale = (hi - lo) / (float)nmax, min = lo, best = 0;

	for (int i = 0; i < n; i++) {
		L[i] = (uint8_t)quant_round((x[i] - lo) / scale, 0, nmax);
		float e = scale * (float)L[i] + lo - x[i];

		best += w[i] * (mad ? fabsf(e) : e * e);
	}
	for (int s = 0; s <= nstep; s++) {
		float is = (rmin + rdelta * (float)s + (float)nmax) / (hi - lo);
		float sl = 0, sl2 = 0, sxl = 0;

		for (int i = 0; i < n; i++) {
			int l = quant_round(is * (x[i] - lo), 0, nmax);

			La[i] = (uint8_t)l;
			sl += w[i] * (float)l, sl2 += w[i] * (float)(l * l);
			sxl += w[i] * (float)l * x[i];
		}
		float D = sw * sl2 - sl * sl;

		if (!(D > 0))
			continue;
		float sc = (sw * sxl - sx * sl) / D, mn = (sl2 * sx - sl * sxl) / D, err = 0;

		if (mn > 0) {
			mn = 0;
			sc = sxl / sl2;
		}
		for (int i = 0; i < n; i++) {
			float e = sc * (float)La[i] + mn - x[i];

			err += w[i] * (mad ? fabsf(e) : e * e);
		}
		if (err < best) {
			memcpy(L, La, (size_t)n);
			best = err, scale = sc, min = mn;
		}
	}
	*negmin = -min;
	return scale;
}

/* Weights for the scale-min searches: llama.cpp's choice (|x| for Q2_K, rms
 * + |x| for Q4_K/Q5_K), times the importance when given. */
static void asym_weights(const float *x, const float *imp, int n, bool with_rms, float *w)
{
	float s2 = 0;

	for (int i = 0; i < n; i++)
		s2 += x[i] * x[i];
	float rms = with_rms ? sqrtf(s2 / (float)n) : 0;

	for (int i = 0; i < n; i++)
		w[i] = (rms + fabsf(x[i])) * (imp ? imp[i] : 1);
}

/* Weights for the symmetric searches: x^2, or imp * sqrt(2 var + x^2). */
static void sym_weights(const float *x, const float *imp, int n, float *w)
{
	float s2 = 0;

	for (int i = 0; i < n; i++)
		s2 += x[i] * x[i];
	for (int i = 0; i < n; i++)
		w[i] = imp ? imp[i] * sqrtf(2 * s2 / (float)n + x[i] * x[i]) : x[i] * x[i];
}

/* The largest of v[0..n) (all >= 0). */
static float vmax(const float *v, int n)
{
	float m = 0;

	for (int i = 0; i < n; i++)
		m = fmaxf(m, v[i]);
	return m;
}

/* The value of largest magnitude, with its sign. */
static float signed_max(const float *v, int n)
{
	float a = 0, m = 0;

	for (int i = 0; i < n; i++)
		if (fabsf(v[i]) > a)
			a = fabsf(v[i]), m = v[i];
	return m;
}

/* Store the super-block scale v as f16 at p and return what it decodes to. */
static float store_scale(uint8_t *p, float v, int *rc)
{
	if (quant_st_f16(p, v))
		*rc = -ERANGE;
	return quant_ld_f16(p);
}

/* Final levels 0..nmax for x ~ d * l - m (all zero when d is 0). */
static void requant_asym(const float *x, int n, float d, float m, int nmax, uint8_t *L)
{
	for (int i = 0; i < n; i++)
		L[i] = d != 0 ? (uint8_t)quant_round((x[i] + m) / d, 0, nmax) : 0;
}

static void put_low2(uint8_t *qs, int e, int v)
{
	int r = e % 128;

	qs[32 * (e / 128) + r % 32] |= (uint8_t)(v << (2 * (r / 32)));
}

int quant_enc_q2_k(const float *x, uint8_t *b, const float *imp)
{
	float sc[16], mn[16], w[16];
	uint8_t L[256];
	int rc = 0;

	memset(b, 0, 84);
	for (int s = 0; s < 16; s++) {
		asym_weights(x + 16 * s, imp ? imp + 16 * s : NULL, 16, false, w);
		sc[s] = search_asym(16, 3, x + 16 * s, w, L, &mn[s], -0.5f, 0.1f, 15, true);
	}
	float d = store_scale(b + 80, vmax(sc, 16) / 15, &rc);
	float dm = store_scale(b + 82, vmax(mn, 16) / 15, &rc);

	for (int s = 0; s < 16; s++) {
		int ls = d != 0 ? quant_round(sc[s] / d, 0, 15) : 0;
		int lm = dm != 0 ? quant_round(mn[s] / dm, 0, 15) : 0;

		b[s] = (uint8_t)(ls | lm << 4);
		requant_asym(x + 16 * s, 16, d * (float)ls, dm * (float)lm, 3, L + 16 * s);
	}
	for (int e = 0; e < 256; e++)
		put_low2(b + 16, e, L[e]);
	return rc;
}

/* Q3_K and Q6_K: the scale of each of the 16 sub-blocks of 16 values (the
 * symmetric search with levels -nmax..nmax-1), before the super-block's
 * scale that quantizes them; L is the search's scratch. */
static void sym_scales16(const float *x, const float *imp, int nmax, float sc[16], int8_t *L)
{
	float w[16];

	for (int s = 0; s < 16; s++) {
		sym_weights(x + 16 * s, imp ? imp + 16 * s : NULL, 16, w);
		sc[s] = search_sym(16, nmax, x + 16 * s, w, L);
	}
}

int quant_enc_q3_k(const float *x, uint8_t *b, const float *imp)
{
	float sc[16];
	int8_t L[256];
	int rc = 0;

	memset(b, 0, 110);
	sym_scales16(x, imp, 4, sc, L);
	float d = store_scale(b + 108, signed_max(sc, 16) / -32, &rc);

	for (int s = 0; s < 16; s++) {
		int ls = d != 0 ? quant_round(sc[s] / d, -32, 31) : 0;
		float dl = d * (float)ls;
		uint8_t u = (uint8_t)(ls + 32);

		b[96 + s % 8] |= (uint8_t)((u & 15) << (s < 8 ? 0 : 4));
		b[96 + 8 + s % 4] |= (uint8_t)((u >> 4) << (2 * (s / 4)));
		for (int e = 16 * s; e < 16 * s + 16; e++)
			L[e] = (int8_t)(dl != 0 ? quant_round(x[e] / dl, -4, 3) + 4 : 4);
	}
	for (int e = 0; e < 256; e++) {
		put_low2(b + 32, e, L[e] & 3);
		b[e % 32] |= (uint8_t)((L[e] >> 2) << (e / 32));
	}
	return rc;
}

/* Q4_K (nmax 15) and Q5_K (nmax 31): qh NULL for Q4_K. */
static int enc_k45(const float *x, uint8_t *b, const float *imp, int nmax, uint8_t *qh, uint8_t *qs)
{
	float sc[8], mn[8], w[32];
	uint8_t L[256];
	int rc = 0;

	for (int j = 0; j < 8; j++) {
		asym_weights(x + 32 * j, imp ? imp + 32 * j : NULL, 32, true, w);
		sc[j] = search_asym(32, nmax, x + 32 * j, w, L, &mn[j], nmax == 15 ? -1.f : -0.5f,
				    0.1f, nmax == 15 ? 20 : 15, false);
	}
	float d = store_scale(b, vmax(sc, 8) / 63, &rc);
	float dm = store_scale(b + 2, vmax(mn, 8) / 63, &rc);
	uint8_t *s6 = b + 4;

	memset(s6, 0, 12);
	for (int j = 0; j < 8; j++) {
		int ls = d != 0 ? quant_round(sc[j] / d, 0, 63) : 0;
		int lm = dm != 0 ? quant_round(mn[j] / dm, 0, 63) : 0;

		if (j < 4) {
			s6[j] |= (uint8_t)ls;
			s6[j + 4] |= (uint8_t)lm;
		} else {
			s6[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
			s6[j - 4] |= (uint8_t)((ls >> 4) << 6);
			s6[j] |= (uint8_t)((lm >> 4) << 6);
		}
		requant_asym(x + 32 * j, 32, d * (float)ls, dm * (float)lm, nmax, L + 32 * j);
	}
	if (qh)
		memset(qh, 0, 32);
	memset(qs, 0, 128);
	for (int e = 0; e < 256; e++) {
		qs[32 * (e / 64) + e % 32] |= (uint8_t)((L[e] & 15) << (e % 64 < 32 ? 0 : 4));
		if (qh)
			qh[e % 32] |= (uint8_t)((L[e] >> 4) << (e / 32));
	}
	return rc;
}

int quant_enc_q4_k(const float *x, uint8_t *b, const float *imp)
{
	return enc_k45(x, b, imp, 15, NULL, b + 16);
}

int quant_enc_q5_k(const float *x, uint8_t *b, const float *imp)
{
	return enc_k45(x, b, imp, 31, b + 16, b + 48);
}

int quant_enc_q6_k(const float *x, uint8_t *b, const float *imp)
{
	float sc[16];
	int8_t L[256];
	int rc = 0;

	memset(b, 0, 210);
	sym_scales16(x, imp, 32, sc, L);
	float d = store_scale(b + 208, signed_max(sc, 16) / -128, &rc);

	for (int s = 0; s < 16; s++) {
		int ls = d != 0 ? quant_round(sc[s] / d, -128, 127) : 0;
		float dl = d * (float)ls;

		b[192 + s] = (uint8_t)(int8_t)ls;
		for (int e = 16 * s; e < 16 * s + 16; e++)
			L[e] = (int8_t)(dl != 0 ? quant_round(x[e] / dl, -32, 31) + 32 : 32);
	}
	for (int e = 0; e < 256; e++) {
		int h = e / 128, r = e % 128, g = r / 32, l = r % 32;

		b[64 * h + l + 32 * (g & 1)] |= (uint8_t)((L[e] & 15) << (g < 2 ? 0 : 4));
		b[128 + 32 * h + l] |= (uint8_t)((L[e] >> 4) << (2 * g));
	}
	return rc;
}
