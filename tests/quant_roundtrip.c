/* Quantize -> dequantize round trips for every block type, against a
 * documented per-type error bound, on random and adversarial data.
 *
 * Bounds asserted, per block (amax = largest |x| in the block, range =
 * max - min, f = 2^-10 covers the f16 rounding of the stored scales):
 *   Q8_0   |e| <= amax / 254 (1 + f) + 127 * 2^-25   (half a step)
 *   Q4_0   |e| <= amax / 8 (1 + f) + 8 * 2^-24       (the largest value maps
 *   Q5_0   |e| <= amax / 16 (1 + f) + 16 * 2^-24      to the lowest level, so
 *                                                     its opposite may clamp
 *                                                     one full step)
 *   Q4_1   |e| <= range / 30 + (|min| + range) f + 2^-20   (half a step)
 *   Q5_1   |e| <= range / 62 + (|min| + range) f + 2^-20
 *   K-quants and IQ4 (searched scales, quantized sub-block scales): |e| <=
 *   c * amax of the 256- (IQ4_NL: 32-) value block + z * 2^-24, with c =
 *   Q2_K 0.5, Q3_K 0.25, Q4_K 0.125, Q5_K 0.0625, Q6_K 0.03, IQ4_NL 0.16,
 *   IQ4_XS 0.16 (measured worst over the data sets below: 0.36, 0.17,
 *   0.087, 0.050, 0.017, 0.15, 0.13; uniform data is the hardest) and
 *   z twice the largest |sub-scale * level| (+ min) the format can decode
 *   from one f16 step of d: below that the f16 super-block scale has no
 *   resolution left (tiny data, amax ~1e-6: the scales are f16 subnormals).
 * Q4_1/Q5_1 store the min as f16, so |min| must stay below 65504: the
 * "large" set uses N(0, 1e4) (Q8_0 takes amax up to 127 * 65504).
 * And on N(0, 1) data the relative RMS error is at most 1.1 times what
 * llama.cpp's reference quantizers give on the same kind of data (their
 * figures, measured with libggml-base: Q8_0 .0054, Q4_0 .085, Q4_1 .078,
 * Q5_0 .043, Q5_1 .038, Q2_K .299, Q3_K .151, Q4_K .071, Q5_K .036,
 * Q6_K .018, IQ4_NL .078, IQ4_XS .076). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "tap.h"

#define N 8192 /* values per data set: 32 super-blocks */

static uint64_t rs = 0x9e3779b97f4a7c15ull;

static double urand(void)
{
	rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
	return (double)(rs >> 11) * 0x1p-53;
}

static float gauss(void)
{
	return (float)(sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()));
}

static const struct {
	enum qvl_dtype t;
	double c;	  /* K/IQ bound factor (0: analytic bound below) */
	double z;	  /* K/IQ absolute floor, in units of 2^-24 */
	double llama_rms; /* llama.cpp's relative RMS error on N(0,1) */
} types[] = {
    {QVL_DT_Q8_0, 0, 0, .0054},
    {QVL_DT_Q4_0, 0, 0, .085},
    {QVL_DT_Q4_1, 0, 0, .078},
    {QVL_DT_Q5_0, 0, 0, .043},
    {QVL_DT_Q5_1, 0, 0, .038},
    {QVL_DT_Q2_K, 0.5, 2 * (15 * 3 + 15), .299},
    {QVL_DT_Q3_K, 0.25, 2 * 32 * 4, .151},
    {QVL_DT_Q4_K, 0.125, 2 * (63 * 15 + 63), .071},
    {QVL_DT_Q5_K, 0.0625, 2 * (63 * 31 + 63), .036},
    {QVL_DT_Q6_K, 0.03, 2 * 128 * 32, .018},
    {QVL_DT_IQ4_NL, 0.16, 2 * 127, .078},
    {QVL_DT_IQ4_XS, 0.16, 2 * 32 * 127, .076},
};

/* The bound on |e| over one block x[0..blk) (see the top comment). */
static double bound(int ti, const float *x, size_t blk)
{
	double amax = 0, lo = x[0], hi = x[0], f = 0x1p-10;

	for (size_t i = 0; i < blk; i++) {
		amax = fmax(amax, fabs(x[i]));
		lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
	}
	switch (types[ti].t) {
	case QVL_DT_Q8_0:
		return amax / 254 * (1 + f) + 127 * 0x1p-25;
	case QVL_DT_Q4_0:
		return amax / 8 * (1 + f) + 8 * 0x1p-24;
	case QVL_DT_Q5_0:
		return amax / 16 * (1 + f) + 16 * 0x1p-24;
	case QVL_DT_Q4_1:
		return (hi - lo) / 30 + (fabs(lo) + hi - lo) * f + 0x1p-20;
	case QVL_DT_Q5_1:
		return (hi - lo) / 62 + (fabs(lo) + hi - lo) * f + 0x1p-20;
	default:
		return types[ti].c * amax + types[ti].z * 0x1p-24;
	}
}

static float xs[N], ys[N], imp[N];
static uint8_t qb[N * 2];

/* Round trip x through type ti; worst |e| / bound over the blocks, or -1
 * when quantizing failed. */
static double trip(int ti, const float *x, const float *w)
{
	enum qvl_dtype t = types[ti].t;
	size_t blk = qvl_dtype_info(t)->blk;
	double worst = 0;

	if (qvl_quantize_row_imp(t, x, qb, N, w) || qvl_dequant_row(t, qb, ys, N))
		return -1;
	for (size_t b = 0; b < N; b += blk) {
		double bd = bound(ti, x + b, blk);

		for (size_t i = b; i < b + blk; i++)
			worst = fmax(worst, fabs((double)ys[i] - x[i]) / bd);
	}
	return worst;
}

/* The adversarial and random data sets, by index. */
static const char *fill(int set, float *x)
{
	for (size_t i = 0; i < N; i++) {
		float g = gauss();

		switch (set) {
		case 0:
			x[i] = g;
			break;
		case 1:
			x[i] = (float)(urand() * 2 - 1);
			break;
		case 2:
			x[i] = i % 61 == 0 ? 40 * g : g;
			break; /* outliers */
		case 3:
			x[i] = 0;
			break;
		case 4:
			x[i] = 0.3f;
			break;
		case 5:
			x[i] = -7.5f;
			break;
		case 6:
			x[i] = 1e-6f * g;
			break; /* scales go subnormal in f16 */
		case 7:
			x[i] = 1e-9f * g;
			break; /* scales underflow to 0 */
		case 8:
			x[i] = 1e4f * g;
			break; /* large, still representable */
		case 9:
			x[i] = (i / 32) % 2 ? 1000 * g : 0.001f * g;
			break; /* mixed sub-blocks */
		case 10:
			x[i] = i % 97 == 0 ? 3 : 0;
			break; /* sparse spikes */
		case 11:
			x[i] = (float)(urand() + 1);
			break; /* all positive, away from 0 */
		}
	}
	static const char *names[] = {
	    "N(0,1)",	 "uniform",	      "outliers",      "zeros",
	    "constant",	 "negative constant", "tiny 1e-6",     "tiny 1e-9",
	    "large 1e4", "mixed magnitudes",  "sparse spikes", "positive offset"};
	return names[set];
}

#define NSETS 12

static void test_type(int ti)
{
	enum qvl_dtype t = types[ti].t;
	const char *tn = qvl_dtype_info(t)->name;
	double worst = 0;
	int bad = 0;

	for (int s = 0; s < NSETS; s++) {
		const char *what = fill(s, xs);
		double r = trip(ti, xs, NULL);

		if (!(r >= 0 && r <= 1) && bad++ < 3)
			diag("%s on %s: error %.3g of the bound", tn, what, r);
		worst = fmax(worst, r);
		if (s == 3 && r != 0 && bad++ < 3)
			diag("%s: zeros do not come back as zeros", tn);
	}
	ok(!bad, "%s: %d data sets within the bound (worst %.3f of it)", tn, NSETS, worst);

	/* relative RMS on N(0,1) against llama.cpp's figure */
	double se = 0, sx = 0;

	fill(0, xs);
	trip(ti, xs, NULL);
	for (size_t i = 0; i < N; i++)
		se += ((double)ys[i] - xs[i]) * ((double)ys[i] - xs[i]),
		    sx += (double)xs[i] * xs[i];
	double rms = sqrt(se / sx);

	ok(rms <= 1.1 * types[ti].llama_rms, "%s: relative RMS %.4f on N(0,1) (llama.cpp %.4f)", tn,
	   rms, types[ti].llama_rms);

	/* importance weights: the weighted error must not grow (the bound is
	 * for uniform weights: weighting trades the other elements' error) */
	double e_uni = 0, e_imp = 0;

	for (size_t i = 0; i < N; i++)
		imp[i] = i % 8 == 0 ? 50.f : 1.f;
	double r = trip(ti, xs, imp);

	for (size_t i = 0; i < N; i++)
		e_imp += imp[i] * ((double)ys[i] - xs[i]) * ((double)ys[i] - xs[i]);
	trip(ti, xs, NULL);
	for (size_t i = 0; i < N; i++)
		e_uni += imp[i] * ((double)ys[i] - xs[i]) * ((double)ys[i] - xs[i]);
	ok(r >= 0 && e_imp <= e_uni * 1.001,
	   "%s: importance weights used (weighted error %.4g vs %.4g uniform)", tn, e_imp, e_uni);
}

static void test_refusals(void)
{
	int bad = 0;

	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
		enum qvl_dtype t = types[ti].t;
		size_t blk = qvl_dtype_info(t)->blk;

		fill(0, xs);
		xs[blk / 2] = NAN;
		bad += qvl_quantize_row(t, xs, qb, blk) != -EINVAL;
		xs[blk / 2] = -INFINITY;
		bad += qvl_quantize_row(t, xs, qb, blk) != -EINVAL;
		xs[blk / 2] = 1e30f;
		bad += qvl_quantize_row(t, xs, qb, blk) != -ERANGE;
		xs[blk / 2] = 0;
		bad += qvl_quantize_row(t, xs, qb, blk + 1) != -EINVAL;
		imp[0] = -1;
		bad += qvl_quantize_row_imp(t, xs, qb, blk, imp) != -EINVAL;
		imp[0] = 1;
		if (bad)
			diag("%s: a refusal missing", qvl_dtype_info(t)->name);
	}
	ok(!bad, "NaN, Inf, a scale beyond f16, a partial block, a negative weight: refused");
	ok(!qvl_quant_supported(QVL_DT_F32) && qvl_quantize_row(QVL_DT_BF16, xs, qb, 32) == -EINVAL,
	   "plain types are not quantizer targets");
}

int main(void)
{
	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
		test_type((int)ti);
	test_refusals();
	return done_testing();
}
