/* The vision tower's bf16 attention kernel (simd/vattn.h) against a double
 * reference on the same bf16-rounded Q, K and V: key counts that fill no,
 * one and many 32-key panels, odd counts (the zero half of the last V pair),
 * head sizes that are not multiples of 32, two heads (the per-head strides)
 * and rows stored in a scrambled order by qvl_vattn_store_row() (and by
 * qvl_vattn_store_head(), which must store the same words). The kernel
 * rounds the probabilities to bf16 too, so it may differ from the reference
 * by a few bf16 ulps of the output; a layout mistake (a key or value in the
 * wrong place) is off by the size of the values themselves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "rng.h"
#include "tap.h"
#include "vattn.h"

#define NH 2

static float bf(float x)
{
	return qvl_bf16_to_f32(qvl_f32_to_bf16(x));
}

/* max |kernel - reference| over all heads, queries, dims, relative to max |V| */
static double run_case(size_t n, size_t hv, size_t nq, int scramble)
{
	const size_t D = NH * hv, kps = qvl_vattn_kp_words(n, hv), vps = qvl_vattn_vp_words(n, hv);
	const float scale = 1.0f / sqrtf((float)hv);
	float *qkv = xmalloc(n * 3 * D * sizeof(float)), *out = xmalloc(nq * D * sizeof(float));
	uint16_t *qb = xmalloc(n * D * sizeof(uint16_t));
	uint32_t *kp = xmalloc(NH * kps * 4), *vp = xmalloc(NH * vps * 4);
	float *sc = xmalloc(qvl_vattn_scratch_floats(n) * sizeof(float));
	double *s = xmalloc(n * sizeof(double)), worst = 0, vmax = 0;

	/* scores of a few units: a softmax that is neither flat nor one-hot */
	for (size_t i = 0; i < n * 3 * D; i++)
		qkv[i] = frand(2.0f);
	memset(kp, 0xff, NH * kps * 4); /* NaN garbage where the kernel must not look */
	memset(vp, 0x5a, NH * vps * 4);
	for (size_t t = 0; t < n; t++) {
		size_t r = scramble ? (t * 7919) % n : t; /* a permutation when n % 7919 != 0 */
		const float *row = qkv + r * 3 * D;
		qvl_vattn_store_row(qb + r * D, kp, kps, vp, vps, row, row + D, row + 2 * D, scale,
				    r, n, NH, hv);
	}
	for (size_t h = 0; h < NH; h++) {
		qvl_vattn_bf16(out + h * hv, D, qb + h * hv, D, nq, kp + h * kps, vp + h * vps, n,
			       hv, sc);
		for (size_t i = 0; i < nq; i++) {
			double mx = -INFINITY, sum = 0;
			for (size_t j = 0; j < n; j++) {
				double a = 0;
				for (size_t d = 0; d < hv; d++)
					a += (double)bf(qkv[i * 3 * D + h * hv + d] * scale) *
					     bf(qkv[j * 3 * D + D + h * hv + d]);
				s[j] = a;
				mx = a > mx ? a : mx;
			}
			for (size_t j = 0; j < n; j++)
				sum += (s[j] = exp(s[j] - mx));
			for (size_t d = 0; d < hv; d++) {
				double o = 0;
				for (size_t j = 0; j < n; j++) {
					double vv = bf(qkv[j * 3 * D + 2 * D + h * hv + d]);
					o += s[j] / sum * vv;
					vmax = fabs(vv) > vmax ? fabs(vv) : vmax;
				}
				double e = fabs(o - out[i * D + h * hv + d]);
				worst = e > worst || isnan(e) ? e : worst;
			}
		}
	}
	free(qkv), free(out), free(qb), free(kp), free(vp), free(sc), free(s);
	return worst / vmax;
}

/* qvl_vattn_store_head() for every head of every row (in a scrambled
 * order) = qvl_vattn_store_row(), word for word, untouched words too */
static int heads_same(size_t n, size_t hv)
{
	const size_t D = NH * hv, kps = qvl_vattn_kp_words(n, hv), vps = qvl_vattn_vp_words(n, hv);
	const float scale = 1.0f / sqrtf((float)hv);
	float *qkv = xmalloc(n * 3 * D * sizeof(float));
	uint16_t *qb[2] = {xmalloc(n * D * 2), xmalloc(n * D * 2)};
	uint32_t *kp[2] = {xmalloc(NH * kps * 4), xmalloc(NH * kps * 4)};
	uint32_t *vp[2] = {xmalloc(NH * vps * 4), xmalloc(NH * vps * 4)};
	int same;

	for (size_t i = 0; i < n * 3 * D; i++)
		qkv[i] = frand(2.0f);
	for (int b = 0; b < 2; b++) {
		memset(qb[b], 0x33, n * D * 2);
		memset(kp[b], 0xff, NH * kps * 4);
		memset(vp[b], 0x5a, NH * vps * 4);
	}
	for (size_t t = 0; t < n; t++) {
		size_t r = (t * 7919) % n;
		const float *row = qkv + r * 3 * D;
		qvl_vattn_store_row(qb[0] + r * D, kp[0], kps, vp[0], vps, row, row + D, row + 2 * D,
				    scale, r, n, NH, hv);
		for (size_t h = 0; h < NH; h++) {
			qvl_vattn_store_head(qb[1] + r * D + h * hv, NULL, NULL, row + h * hv, scale,
					     r, n, hv);
			qvl_vattn_store_head(NULL, kp[1] + h * kps, NULL, row + D + h * hv, scale, r,
					     n, hv);
			qvl_vattn_store_head(NULL, NULL, vp[1] + h * vps, row + 2 * D + h * hv,
					     scale, r, n, hv);
		}
	}
	same = !memcmp(qb[0], qb[1], n * D * 2) && !memcmp(kp[0], kp[1], NH * kps * 4) &&
	       !memcmp(vp[0], vp[1], NH * vps * 4);
	free(qkv);
	for (int b = 0; b < 2; b++)
		free(qb[b]), free(kp[b]), free(vp[b]);
	return same;
}

int main(void)
{
	static const size_t cases[][3] = {
	    /* n, hv, queries */
	    {1, 16, 1},	 {2, 16, 2},	{3, 16, 3},    {31, 32, 9},
	    {33, 64, 8}, {100, 72, 17}, {784, 64, 20},
	};
	const int nc = (int)(sizeof(cases) / sizeof(cases[0]));

	if (!qvl_vattn_bf16_available())
		skip_all("no AVX512-BF16 on this CPU or in this build: the kernel is never used");
	plan(3 * nc);
	rng_seed(16);
	for (int c = 0; c < nc; c++)
		for (int scr = 0; scr < 2; scr++) {
			size_t n = cases[c][0], hv = cases[c][1], nq = cases[c][2];
			double e = run_case(n, hv, nq, scr);
			/* probabilities rounded to 8 significant bits: measured <= 1e-3 of max |V|
			 */
			ok(e <= 5e-3,
			   "n %zu, hv %zu, %zu queries%s: max |d| %.3g of max |V| (<= 5e-3)", n, hv,
			   nq, scr ? ", rows stored out of order" : "", e);
		}
	for (int c = 0; c < nc; c++)
		ok(heads_same(cases[c][0], cases[c][1]),
		   "n %zu, hv %zu: qvl_vattn_store_head() head by head = qvl_vattn_store_row()",
		   cases[c][0], cases[c][1]);
	return done_testing();
}
