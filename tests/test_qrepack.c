/* Weights repacked at load (simd/qrepack.h) at every SIMD level this CPU
 * has:
 * - the layout, byte for byte, from the format's description (scales, then
 *   4-byte lanes of 8 rows), and back to the file's blocks;
 * - which weights get repacked (Q4_0 with whole groups of 8 rows, only by
 *   the built-in matmul_fast tables);
 * - integer sums exactly: weights with power-of-two scales and activations
 *   whose blocks hold one ±127 (scale exactly 1) make every float operation
 *   exact, so every level's product of the repacked matrix must give the
 *   bits of the reference's product of the file's (decode with every group
 *   count, prefill panels with a tail of activation rows);
 * - random weights quantized by quant.c on ragged shapes (m 1..19, odd
 *   strides, bias) within a tight tolerance of the reference on the file's
 *   layout (only the float summation order differs). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern_impl.h"
#include "qdot.h"
#include "qrepack.h"
#include "quant.h"
#include "rng.h"
#include "tap.h"
#include "repack_check.h"

#define BB 18 /* bytes of a Q4_0 block */

static const struct rp_type q40 = {
    QVL_DT_Q4_0, QVL_DT_Q4_0_X8, "Q4_0", "Q4_0_X8", 32, BB, 40, {0}, 1};

static void test_layout(void)
{
	const size_t n = 16, k = 96, nb = k / 32, wrow = nb * BB;
	uint8_t *w = rp_make_w(&q40, n, k, false), *r = rp_repacked(&q40, w, n, k);
	bool lay = true;

	/* row j, block i: scale at group + 144 i + 2 (j % 8), nibble byte l
	 * at + 16 + 32 (l / 4) + 4 (j % 8) + l % 4 */
	for (size_t j = 0; j < n; j++)
		for (size_t i = 0; i < nb; i++) {
			const uint8_t *g = r + j / 8 * 8 * wrow + 144 * i,
				      *b = w + j * wrow + i * BB;
			if (memcmp(g + 2 * (j % 8), b, 2))
				lay = false;
			for (size_t l = 0; l < 16; l++)
				if (g[16 + 32 * (l / 4) + 4 * (j % 8) + l % 4] != b[2 + l])
					lay = false;
		}
	ok(lay, "Q4_0_X8 layout: scales of 8 rows, then 4-byte lanes of 8 rows");
	rp_test_roundtrip(&q40, w, r, n, k, QVL_DT_Q8_0);
	free(w);
	free(r);
}

/* beyond rp_test_type: Q4_1 and bf16 have no layout */
static void test_type(void)
{
	rp_test_type(&q40);
	ok(qvl_repack_type(&rp_lv[0], QVL_DT_Q4_1, 64, 2048) == QVL_DT_Q4_1 &&
	       qvl_repack_type(&rp_lv[0], QVL_DT_BF16, 64, 2048) == QVL_DT_BF16,
	   "Q4_1 and bf16 kept as they are");
}

int main(void)
{
	rng_seed(0x9d2c5680a5c3f1e7ull);
	rp_levels();
	test_layout();
	test_type();
	rp_test_kernels(&q40, 32 * 21);
	return done_testing();
}
