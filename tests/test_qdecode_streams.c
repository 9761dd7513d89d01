/* The repacked decode kernels that read several row streams at once
 * (simd/qdot_x8.h's QX_S, simd/qdot_x8_q6k.h's Q6X_S): a matrix-vector
 * product (m 1) cut into streams of whole groups of 8 rows with groups
 * left over. Every level's output on the repacked matrix equals the
 * reference on the file's layout bit for bit, for row counts that give
 * streams of 1, 2 and 9 groups with 0 to 3 groups left over, so that an
 * output written to the wrong row or a group read from the wrong stream
 * fails. (tests/test_qrepack*.c check the layouts and the shapes below
 * one group per stream.) */
#include "config.h"

#include "qdot.h"
#include "repack_check.h"

static const struct rp_type types[] = {
    {QVL_DT_Q4_0, QVL_DT_Q4_0_X8, "Q4_0", "Q4_0_X8", 32, 18, 40, {0}, 1},
    {QVL_DT_Q6_K, QVL_DT_Q6_K_X8, "Q6_K", "Q6_K_X8", 256, 210, 5, {208}, 1},
    {QVL_DT_Q4_K, QVL_DT_Q4_K_X8, "Q4_K", "Q4_K_X8", 256, 144, 6, {0, 2}, 2},
    {QVL_DT_Q8_0, QVL_DT_Q8_0_X8, "Q8_0", "Q8_0_X8", 32, 34, 40, {0}, 1},
};

int main(void)
{
	/* groups: 4 streams of 1 / 2 / 2 + 1 left / 2 + 3 left / 9 + 2 left */
	static const size_t ns[] = {32, 64, 72, 88, 304};

	/* the layouts and small shapes: tests/test_qrepack*.c */
	(void)rp_test_type, (void)rp_test_kernels, (void)rp_test_roundtrip;
	rng_seed(0x51e7a2b6c0d49e13ull);
	rp_levels();
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
			rp_test_exact(&types[t], 1, ns[i], types[t].blk == 32 ? 96 : 512);
	return done_testing();
}
