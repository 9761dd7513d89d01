/* The repacked decode kernels (simd/qdot_x8.h, simd/qdot_x8_q6k.h) on a
 * matrix-vector product (m 1) whose row count is several groups of 8 rows,
 * with groups left over: every level's output on the repacked matrix
 * equals the reference on the file's layout bit for bit, at row counts of
 * 4, 8, 9, 11 and 38 groups, so that an output written to the wrong row or
 * a group read at the wrong offset fails. (Written for a kernel that read
 * 4 row streams at once, reverted: docs/todo-q4avx2.md; tests/test_qrepack*.c
 * check the layouts and the smaller shapes.) Then the thread's cached
 * activation row (qvl_qact_row_cached): one buffer changed in place between
 * calls of every type in turn must never give the last row's products. */
#include "config.h"

#include "qdot.h"
#include "repack_check.h"

static const struct rp_type types[] = {
    {QVL_DT_Q4_0, QVL_DT_Q4_0_X8, "Q4_0", "Q4_0_X8", 32, 18, 40, {0}, 1},
    {QVL_DT_Q6_K, QVL_DT_Q6_K_X8, "Q6_K", "Q6_K_X8", 256, 210, 5, {208}, 1},
    {QVL_DT_Q4_K, QVL_DT_Q4_K_X8, "Q4_K", "Q4_K_X8", 256, 144, 6, {0, 2}, 2},
    {QVL_DT_Q8_0, QVL_DT_Q8_0_X8, "Q8_0", "Q8_0_X8", 32, 34, 40, {0}, 1},
};

/* One x buffer (same pointer, same k) for every type in turn, one value
 * changed before each call: a cache keyed on less than the row's bytes
 * returns the last row's blocks and fails; a Q6_K call that rearranged the
 * cached blocks in place fails at its next hit. */
static void test_cached_row(void)
{
	enum { N = 64, K = 512, ROUNDS = 3 };
	const size_t nt = sizeof(types) / sizeof(types[0]);
	uint8_t *w[4], *r[4];
	float *x = rp_exact_x(1, K, 32);
	bool same[4] = {true, true, true, true};

	for (size_t t = 0; t < nt; t++) {
		w[t] = rp_make_w(&types[t], N, K, true);
		r[t] = rp_repacked(&types[t], w[t], N, K);
	}
	for (int round = 0; round < ROUNDS; round++)
		for (size_t t = 0; t < nt; t++) {
			size_t i;
			do
				i = rnd() % K;
			while (fabsf(x[i]) > 1.0f);
			/* -1, 0, 1 stay of scale 1 (exact sums) */
			x[i] = x[i] == 1.0f ? -1.0f : x[i] + 1.0f;
			same[t] = rp_check(&types[t], NULL, w[t], r[t], x,
					   &(struct rp_shape){1, N, K, K, K, N, NULL}, 0, NULL) &&
				  same[t];
			/* the same bytes again: the cached blocks, unchanged */
			same[t] = rp_check(&types[t], NULL, w[t], r[t], x,
					   &(struct rp_shape){1, N, K, K, K, N, NULL}, 0, NULL) &&
				  same[t];
		}
	for (size_t t = 0; t < nt; t++) {
		ok(same[t],
		   "%s: one x changed in place between calls of every type: every level "
		   "== ref bit for bit",
		   types[t].rtn);
		free(w[t]);
		free(r[t]);
	}
	free(x);
}

int main(void)
{
	/* 4, 8, 9, 11 and 38 groups of 8 rows */
	static const size_t ns[] = {32, 64, 72, 88, 304};

	/* the layouts and small shapes: tests/test_qrepack*.c */
	(void)rp_test_type, (void)rp_test_kernels, (void)rp_test_roundtrip;
	rng_seed(0x51e7a2b6c0d49e13ull);
	rp_levels();
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
			rp_test_exact(&types[t], 1, ns[i], types[t].blk == 32 ? 96 : 512);
	test_cached_row();
	return done_testing();
}
