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

/* n rows of ldw values of Q6_K blocks; pow2: random quants and scales, d
 * 0.5 or 1; else quantized by quant.c from random data */
static uint8_t *make_w(size_t n, size_t ldw, bool pow2)
{
	static const size_t d_off[] = {208}; /* the block's f16 scales */

	return rp_make_w(QVL_DT_Q6_K, 256, BB, d_off, 1, n, ldw, pow2);
}

static const struct rp_type q6k = {QVL_DT_Q6_K, QVL_DT_Q6_K_X8, "Q6_K", "Q6_K_X8", 256, BB,
				   5,		make_w};

static uint8_t *repacked(const uint8_t *w, size_t n, size_t ldw)
{
	return rp_repacked(&q6k, w, n, ldw);
}

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
	uint8_t *w = make_w(n, k, false), *r = repacked(w, n, k), *back = xmalloc(n * wrow);
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
	ok(qvl_unrepack(back, QVL_DT_Q6_K, r, QVL_DT_Q6_K_X8, n, k) == 0 &&
	       !memcmp(back, w, n * wrow),
	   "unrepack gives the file's bytes back");
	ok(qvl_repack(back, QVL_DT_Q6_K_X8, w, QVL_DT_Q6_K, 12, k) == -EINVAL,
	   "12 rows (not whole groups) refused");
	ok(qvl_repack(back, QVL_DT_Q6_K_X8, w, QVL_DT_Q6_K, 8, 384) == -EINVAL,
	   "k 384 (not whole blocks) refused");
	ok(qvl_repack(back, QVL_DT_Q6_K_X8, w, QVL_DT_Q4_0, 16, k) == -EINVAL,
	   "a Q4_0 source refused");
	free(w);
	free(r);
	free(back);
}

/* A product's shape: m x n, k values, strides, bias (or NULL). */
struct shape {
	size_t m, n, k, ldw, ldx, ldy;
	const float *bias;
};

/* every level on the repacked w (r) against ref on w: bit for bit (tol 0)
 * or within tol of the largest |y|; true if all agree */
static bool check(const char *what, const uint8_t *w, const uint8_t *r, const float *x,
		  const struct shape *s, float tol)
{
	size_t m = s->m, n = s->n, ldy = s->ldy;
	float *y0 = xmalloc(m * ldy * sizeof(float)), *y = xmalloc(m * ldy * sizeof(float));
	float ymax = 0;
	bool all = true;

	rp_lv[0].matmul_fast(y0, ldy, x, s->ldx, w, QVL_DT_Q6_K, s->ldw, s->bias, m, n, s->k);
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++)
			ymax = fmaxf(ymax, fabsf(y0[i * ldy + j]));
	for (int l = 0; l < rp_nlv; l++) {
		bool same = true;
		memset(y, 0xff, m * ldy * sizeof(float));
		rp_lv[l].matmul_fast(y, ldy, x, s->ldx, r, QVL_DT_Q6_K_X8, s->ldw, s->bias, m, n,
				     s->k);
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++) {
				float a = y[i * ldy + j], b = y0[i * ldy + j];
				if (tol == 0 ? !memcmp(&a, &b, sizeof(a))
					     : fabsf(a - b) <= tol * ymax + 1e-6f)
					continue;
				if (same)
					diag("%s m %zu n %zu k %zu [%zu][%zu]: %s %.9g ref %.9g",
					     what ? what : "random", m, n, s->k, i, j,
					     rp_lv[l].name, a, b);
				same = false;
			}
		if (what)
			ok(same, "%s, m %zu n %zu k %zu: %s on Q6_K_X8 == ref on Q6_K%s", what, m,
			   n, s->k, rp_lv[l].name, tol == 0 ? " bit for bit" : " (1e-6)");
		all = all && same;
	}
	free(y0);
	free(y);
	return all;
}

/* the largest int16 pair sums: quants 63 or 0, scales -128 or 127, d 1,
 * activations ±127 */
static void test_limits(void)
{
	const size_t m = 5, n = 16, k = 512, nblk = n * k / 256;
	uint8_t *w = make_w(n, k, true), *r;
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
	r = repacked(w, n, k);
	check("limits", w, r, x, &(struct shape){m, n, k, k, k, n, NULL}, 1e-6f);
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
