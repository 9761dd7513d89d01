/* Q8_0 weights repacked at load (QVL_DT_Q8_0_X8, simd/qrepack.h) at every
 * SIMD level this CPU has:
 * - the layout, byte for byte, from the format's description (8 scales,
 *   then 8 chunks of 4-byte lanes of 8 rows), and back to the file's blocks;
 * - which weights get repacked (Q8_0 with whole groups of 8 rows, only by
 *   the built-in tables, not under QVL_REPACK=0);
 * - integer sums exactly: power-of-two scales and activations whose blocks
 *   hold one ±127 (scale exactly 1) make every float operation exact, so
 *   every level's product of the repacked matrix must give the bits of the
 *   reference's product of the file's, at decode (1, 3, 5 groups) and
 *   prefill (panels, passes of activation rows and their tails);
 * - the int16 and sign limits: quants -128, -127, 0 and 127 against
 *   activations ±127 (AVX2's |w| x ±x pairs: 2 x 128 x 127 < 2^15);
 * - random weights quantized by quant.c on ragged shapes (m 1..19, odd
 *   strides, bias) within a tight tolerance of the reference on the file's
 *   layout (only the float summation order differs). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qdot.h"
#include "quant.h"
#include "repack_check.h"

#define BB 34 /* bytes of a Q8_0 block */

static const struct rp_type q80 = {
    QVL_DT_Q8_0, QVL_DT_Q8_0_X8, "Q8_0", "Q8_0_X8", 32, BB, 40, {0}, 1};

static void test_layout(void)
{
	const size_t n = 16, k = 96, nb = k / 32, wrow = nb * BB;
	uint8_t *w = rp_make_w(&q80, n, k, false), *r = rp_repacked(&q80, w, n, k);
	bool sc = true, q = true;

	/* row j, block i: scale at group + 272 i + 2 (j % 8), quant l at
	 * + 16 + 32 (l / 4) + 4 (j % 8) + l % 4 */
	for (size_t j = 0; j < n; j++)
		for (size_t i = 0; i < nb; i++) {
			const uint8_t *g = r + j / 8 * 8 * wrow + 272 * i,
				      *b = w + j * wrow + i * BB;
			sc = sc && !memcmp(g + 2 * (j % 8), b, 2);
			for (size_t l = 0; l < 32; l++)
				q = q && g[16 + 32 * (l / 4) + 4 * (j % 8) + l % 4] == b[2 + l];
		}
	ok(sc, "Q8_0_X8 layout: the 8 rows' scales first");
	ok(q, "Q8_0_X8 layout: 8 chunks of 4-byte lanes of 8 rows");
	rp_test_roundtrip(&q80, w, r, n, k, QVL_DT_Q4_0);
	free(w);
	free(r);
}

/* quants at the extremes (-128, -127, 0, 127), scale 1, activations ±127:
 * every level bit for bit against ref, decode and prefill */
static void test_limits(void)
{
	static const uint8_t qs[] = {0x80, 0x81, 0, 0x7f};
	const size_t n = 24, k = 256, nblk = n * k / 32;
	uint8_t *w = rp_make_w(&q80, n, k, true), *r;
	float *x = xmalloc(9 * k * sizeof(float));

	for (size_t b = 0; b < nblk; b++) {
		w[b * BB] = 0, w[b * BB + 1] = 0x3c;
		for (int l = 0; l < 32; l++)
			w[b * BB + 2 + l] = qs[(b / 3 + (size_t)l / 8 + (b % 2) * l) % 4];
	}
	for (size_t i = 0; i < 9 * k; i++)
		x[i] = i % 7 == 3 ? -127.0f : 127.0f;
	r = rp_repacked(&q80, w, n, k);
	for (size_t m = 1; m <= 9; m += 8)
		rp_check(&q80, "limits (-128..127 x ±127)", w, r, x,
			 &(struct rp_shape){m, n, k, k, k, n, NULL}, 0, NULL);
	free(w);
	free(r);
	free(x);
}

int main(void)
{
	rng_seed(0x5a80c0de77e1b2d3ull);
	rp_levels();
	test_layout();
	rp_test_type(&q80);
	rp_test_kernels(&q80, 32 * 21);
	test_limits();
	return done_testing();
}
