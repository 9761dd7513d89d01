/* Q4_K repacked at load (QVL_DT_Q4_K_X8, simd/qrepack.h) at every SIMD
 * level this CPU has:
 * - the layout, byte for byte, from the format's description (d, dmin,
 *   the scales and mins split in nibbles and top bits, 4-byte lanes of 8
 *   rows), and back to the file's blocks;
 * - which weights get repacked (Q4_K in whole groups of 8 rows, only by
 *   the built-in matmul_fast tables, not with QVL_REPACK=0);
 * - integer sums exactly: power-of-two d and dmin and activations whose
 *   256-blocks hold one ±127 and otherwise -1, 0, 1 (scale exactly 1, every
 *   sum below 2^21) make every float operation exact, so every level's
 *   product of the repacked matrix must give the bits of the reference's
 *   product of the file's (decode with 1, 3 and 5 groups, prefill with
 *   panels of two groups, a group left over and a tail of activation rows);
 * - random weights quantized by quant.c on ragged shapes (m 1..19, k 256..
 *   1536, odd strides, bias) within a tight tolerance of the reference on
 *   the file's layout (only the float summation order differs). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern_impl.h"
#include "qdot.h"
#include "qdot_blocks.h"
#include "qrepack.h"
#include "quant.h"
#include "rng.h"
#include "tap.h"
#include "repack_check.h"

#define BB 144 /* bytes of a Q4_K block */

static const struct rp_type q4k = {QVL_DT_Q4_K, QVL_DT_Q4_K_X8, "Q4_K", "Q4_K_X8", 256, BB,
				   6,		{0, 2},		2};

/* 6-bit value at index i of SC (mn false) or MN of a block, as the
 * description in qrepack.h spells it */
static unsigned six(const uint8_t *x, int i, bool mn)
{
	unsigned lo = mn ? x[32 + i] >> 4 : x[32 + i] & 15u;
	unsigned hi = x[96 + i % 32] >> (2 * (i / 32) + (mn ? 4 : 0)) & 3u;

	return lo | hi << 4;
}

static void test_layout(void)
{
	const size_t n = 16, k = 768, nb = k / 256, wrow = nb * BB;
	uint8_t *w = rp_make_w(&q4k, n, k, false), *r = rp_repacked(&q4k, w, n, k),
		*back = xmalloc(n * wrow);
	uint8_t *rnd_w = xmalloc(n * wrow), *rr = xmalloc(n * wrow);
	bool lay = true;

	for (size_t j = 0; j < n; j++)
		for (size_t i = 0; i < nb; i++) {
			const uint8_t *g = r + j / 8 * 8 * wrow + 1152 * i,
				      *b = w + j * wrow + i * BB;
			int jr = (int)(j % 8);
			uint8_t sc[8], mn[8];
			qb_k4_scales(b + 4, sc, mn);
			if (memcmp(g + 2 * jr, b, 2) || memcmp(g + 16 + 2 * jr, b + 2, 2))
				lay = false;
			for (int s = 0; s < 8; s++)
				if (six(g, 8 * s + jr, false) != sc[s] ||
				    six(g, 16 * (s / 2) + 2 * jr + s % 2, true) != mn[s])
					lay = false;
			for (size_t l = 0; l < 128; l++)
				if (g[128 + 32 * (l / 4) + 4 * (size_t)jr + l % 4] != b[16 + l])
					lay = false;
		}
	ok(lay, "Q4_K_X8 layout: d, dmin, scales and mins split, 4-byte lanes of 8 rows");
	rp_test_roundtrip(&q4k, w, r, n, k, QVL_DT_Q4_0);
	for (size_t i = 0; i < n * wrow; i++)
		rnd_w[i] = (uint8_t)rnd();
	ok(qvl_repack(rr, QVL_DT_Q4_K_X8, rnd_w, QVL_DT_Q4_K, n, k) == 0 &&
	       qvl_unrepack(back, QVL_DT_Q4_K, rr, QVL_DT_Q4_K_X8, n, k) == 0 &&
	       !memcmp(back, rnd_w, n * wrow),
	   "random bytes (every scale bit set somewhere) round-trip exactly");
	ok(qvl_repack(back, QVL_DT_Q4_0_X8, w, QVL_DT_Q4_K, 16, k) == -EINVAL,
	   "a Q4_K source for Q4_0_X8 refused");
	free(w);
	free(r);
	free(back);
	free(rnd_w);
	free(rr);
}

/* beyond rp_test_type: Q5_K has no layout, Q4_K_X8 is not Q4_0_X8 */
static void test_type(void)
{
	rp_test_type(&q4k);
	ok(qvl_repack_type(&rp_lv[0], QVL_DT_Q5_K, 64, 2048) == QVL_DT_Q5_K, "Q5_K kept as it is");
	ok(QVL_DT_Q4_K_X8 != QVL_DT_Q4_0_X8, "Q4_K_X8 is a repacked type of its own");
}

int main(void)
{
	rng_seed(0x4b1d9e07c3a25f61ull);
	rp_levels();
	test_layout();
	test_type();
	rp_test_kernels(&q4k, 256 * 3);
	return done_testing();
}
