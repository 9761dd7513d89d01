/* Q6_K weights repacked at load (QVL_DT_Q6_K_X8, simd/qrepack.h) at every
 * SIMD level this CPU has:
 * - the layout, byte for byte, from the format's description (8 scales d,
 *   the scale pairs per unit, the three planes with vector 3's bits in
 *   their top bits), each quant decoded here from ggml's block definition,
 *   and back to the file's blocks;
 * - which weights get repacked (Q6_K with whole groups of 8 rows, k a
 *   multiple of 256, only by the built-in tables, not under QVL_REPACK=0);
 * - integer sums exactly: power-of-two d and activations whose blocks hold
 *   one ±127 (scale exactly 1) make every float operation exact, so every
 *   level's product of the repacked matrix must give the bits of the
 *   reference's product of the file's, at decode (m 1: 1, 3, 5 groups) and
 *   prefill (passes of activation rows and their tail);
 * - the int16 limits: quants 63 and 0, scales -128 and 127, activations
 *   ±127 (the largest vpmaddubsw pair sums);
 * - random weights quantized by quant.c on ragged shapes (m 1..19, k 256
 *   .. 1280, odd strides, bias) within a tight tolerance of the reference
 *   on the file's layout (only the float summation order differs). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qdot.h"
#include "quant.h"
#include "repack_check.h"

#define BB 210 /* bytes of a Q6_K block */

static const struct rp_type q6k = {QVL_DT_Q6_K, QVL_DT_Q6_K_X8, "Q6_K", "Q6_K_X8", 256, BB,
				   5,		{208},		1};

/* value v of a Q6_K block as ggml's dequantize_row_q6_K reads it */
static int ggml_q6(const uint8_t *b, int v)
{
	int h = v / 128, l = v % 32, c = v % 128 / 32;
	const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
	int lo = c == 0	  ? ql[l] & 15
		 : c == 1 ? ql[l + 32] & 15
		 : c == 2 ? ql[l] >> 4
			  : ql[l + 32] >> 4;

	return lo | (qh[l] >> (2 * c) & 3) << 4;
}

/* the same value in the repacked block g of its group (row r) */
static int x8_q6(const uint8_t *g, int r, int v)
{
	int u = v / 32, w = v % 32, sub = w / 16, i = w % 16, vec = i / 4;
	int e = 4 * (i % 4 / 2) + 2 * sub + i % 2;
	const uint8_t *p = g + 144 + 192 * u + 8 * r + e;

	if (vec < 3)
		return p[64 * vec] & 63;
	return (p[0] >> 6) | (p[64] >> 6) << 2 | (p[128] >> 6) << 4;
}

static void test_layout(void)
{
	const size_t n = 16, k = 512, nb = k / 256, wrow = nb * BB;
	uint8_t *w = rp_make_w(&q6k, n, k, false), *r = rp_repacked(&q6k, w, n, k);
	bool d = true, sc = true, q = true;

	for (size_t j = 0; j < n; j++)
		for (size_t i = 0; i < nb; i++) {
			const uint8_t *g = r + j / 8 * 8 * wrow + 1680 * i,
				      *b = w + j * wrow + i * BB;
			int rr = (int)(j % 8);
			d = d && !memcmp(g + 2 * rr, b + 208, 2);
			for (int u = 0; u < 8; u++)
				sc = sc && !memcmp(g + 16 + 16 * u + 2 * rr, b + 192 + 2 * u, 2);
			for (int v = 0; v < 256; v++)
				q = q && x8_q6(g, rr, v) == ggml_q6(b, v);
		}
	ok(d, "Q6_K_X8 layout: the 8 rows' d first");
	ok(sc, "Q6_K_X8 layout: per unit, each row's two sub-block scales");
	ok(q, "Q6_K_X8 layout: every quant where the description puts it");
	rp_test_roundtrip(&q6k, w, r, n, k, QVL_DT_Q4_0);
	free(w);
	free(r);
}

/* the largest int16 pair sums: quants 63 or 0, scales -128 or 127, d 1,
 * activations ±127 */
static void test_limits(void)
{
	const size_t m = 5, n = 16, k = 512, nblk = n * k / 256;
	uint8_t *w = rp_make_w(&q6k, n, k, true), *r;
	float *x = xmalloc(m * k * sizeof(float));

	for (size_t b = 0; b < nblk; b++) {
		uint8_t *p = w + b * BB;
		memset(p, b % 3 ? 0xff : 0, 192);
		for (int j = 0; j < 16; j++)
			p[192 + j] = (rnd() & 1) ? 0x80 : 0x7f;
		p[208] = 0, p[209] = 0x3c;
	}
	for (size_t i = 0; i < m * k; i++)
		x[i] = i % 5 == 4 ? -127.0f : 127.0f;
	r = rp_repacked(&q6k, w, n, k);
	rp_check(&q6k, "limits", w, r, x, &(struct rp_shape){m, n, k, k, k, n, NULL}, 1e-6f, NULL);
	free(w);
	free(r);
	free(x);
}

int main(void)
{
	rng_seed(0x6b51c0de2f9a4417ull);
	rp_levels();
	test_layout();
	rp_test_type(&q6k);
	/* decode (1, 3, 5 groups), prefill (passes of 4 (VNNI) or 2 (AVX2)
	 * activation rows and their tails), then random ragged shapes */
	rp_test_kernels(&q6k, 3 * 256);
	test_limits();
	return done_testing();
}
