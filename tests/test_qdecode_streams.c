/* The repacked decode kernels (simd/qdot_x8.h, simd/qdot_x8_q6k.h) on a
 * matrix-vector product (m 1) whose row count is several groups of 8 rows,
 * with groups left over: every level's output on the repacked matrix
 * equals the reference on the file's layout bit for bit, at row counts of
 * 4, 8, 9, 11 and 38 groups, so that an output written to the wrong row or
 * a group read at the wrong offset fails. (Written for a kernel that read
 * 4 row streams at once, reverted: docs/todo-q4avx2.md; tests/test_qrepack*.c
 * check the layouts and the smaller shapes.) Then the activation
 * prepared once (kernels.h act_make, simd/qdot_x8_act.h) and taken by
 * matmul_act in the engine's chunks of weight rows: bit for bit
 * matmul_fast over the whole matrix, at m 1 (decode) and a batch; and one
 * x buffer changed in place between calls of every type in turn never
 * gives the last row's products (no state kept between calls). Last, the
 * level whose act kernels the avx512 table takes (simd/dispatch.c
 * act_level): AVX2's unless QVL_QDECODE_AVX512 is set, Q6_K_X8 and the
 * Q4_K_X8 decode on 512-bit vectors with AVX2's bits (the prepared-path
 * check above compares one row with the AVX2 level's matmul_fast), decode
 * batches on avx512's own products (compared with its matmul_fast). The
 * rows of a Q4_0_X8 or Q8_0_X8 decode batch equal those rows of a larger
 * product (the streamed and the panel paths agree). And the
 * far-apart row streams (QVL_QDECODE_STREAMS, qvl_gemm_blk.qdec_streams)
 * of every X8 type: 1 to 4 streams give the same bits per row, through
 * matmul_fast and the prepared path, on ragged shapes (groups left over,
 * fewer groups than streams, ldw > k). Q4_K_X8's decode reads its streams
 * a line at a time in turn (simd/qdot_x8_q4k.h qk_zx_rows, qk_rows_ymm
 * with G groups; docs/todo-qk4s.md), so its 1 to 4 streams are different
 * code over the same sums; Q6_K_X8's AVX2 decode reads its streams a unit
 * half (96 bytes) at a time in turn (simd/qdot_x8_q6k.h q6x_rows_ymm), its
 * 512-bit one reads one stream (docs/todo-kstream.md). */
#include "config.h"

#include "kern_impl.h"
#include "qdot.h"
#include "repack_check.h"

static const struct rp_type types[] = {
    {QVL_DT_Q4_0, QVL_DT_Q4_0_X8, "Q4_0", "Q4_0_X8", 32, 18, 40, {0}, 1},
    {QVL_DT_Q6_K, QVL_DT_Q6_K_X8, "Q6_K", "Q6_K_X8", 256, 210, 5, {208}, 1},
    {QVL_DT_Q4_K, QVL_DT_Q4_K_X8, "Q4_K", "Q4_K_X8", 256, 144, 6, {0, 2}, 2},
    {QVL_DT_Q8_0, QVL_DT_Q8_0_X8, "Q8_0", "Q8_0_X8", 32, 34, 40, {0}, 1},
};

/* One x buffer (same pointer, same k) for every type in turn, one value
 * changed before each call: a kernel keeping the last row's blocks (as
 * the per-thread cache before the prepared activation did, keyed on less
 * than the row's bytes) returns them and fails. */
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

/* Every level with act_make: X (m rows, ldx apart) prepared once, then
 * matmul_act over the n rows in chunks of `chunk` rows (the last one
 * shorter), Y and W offset as src/forward.c does == matmul_fast of the
 * whole matrix on the level the prepared kernels come from, bit for bit
 * (same code, same sums). */
static void test_prepared(const struct rp_type *c, size_t m, size_t n, size_t k, size_t chunk)
{
	size_t ldw = k + c->blk, ldx = k + 3, ldy = n + 5, wrow = ldw / c->blk * c->blk_bytes;
	uint8_t *w = rp_make_w(c, n, ldw, false), *r = rp_repacked(c, w, n, ldw);
	float *x = xmalloc(m * ldx * sizeof(float)), *bias = xmalloc(n * sizeof(float));
	float *y0 = xmalloc(m * ldy * sizeof(float)), *y = xmalloc(m * ldy * sizeof(float));

	for (size_t i = 0; i < m * ldx; i++)
		x[i] = frand(2.0f) * (float)(1 + i % 7);
	for (size_t j = 0; j < n; j++)
		bias[j] = frand(1.0f);
	for (int l = 0; l < rp_nlv; l++) {
		const struct qvl_kernels *kt = &rp_lv[l];
		size_t ab;
		void *xa;

		if (!kt->act_bytes) {
			ok(!kt->act_make && !kt->matmul_act, "%s: no prepared activation", kt->name);
			continue;
		}
		/* the reference: for one row, matmul_fast of the level whose
		 * act_make this is (the avx512 table takes the avx2 one,
		 * simd/dispatch.c, and its one-row matmul_act must give that
		 * level's bits); for a batch, the table's own matmul_fast
		 * (avx512 runs batches on its VNNI products, qdot_avx512.c) */
		const struct qvl_kernels *kf = kt;
		for (int j = 0; j < rp_nlv && m == 1; j++)
			if (rp_lv[j].act_make == kt->act_make) {
				kf = &rp_lv[j];
				break;
			}
		ab = kt->act_bytes(c->rt, m, k);
		xa = xmalloc(ab ? ab : 1);
		kf->matmul_fast(y0, ldy, x, ldx, r, c->rt, ldw, bias, m, n, k);
		memset(y, 0xff, m * ldy * sizeof(float));
		kt->act_make(xa, c->rt, x, ldx, m, k);
		for (size_t lo = 0; lo < n; lo += chunk) {
			size_t nn = n - lo < chunk ? n - lo : chunk;
			kt->matmul_act(y + lo, ldy, x, ldx, xa, r + lo * wrow, c->rt, ldw, bias + lo,
				       m, nn, k);
		}
		bool same = ab > 0;
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++)
				same = same && !memcmp(&y[i * ldy + j], &y0[i * ldy + j], sizeof(float));
		ok(same, "%s %s m %zu n %zu k %zu: prepared once, %zu-row calls == matmul_fast bit "
			 "for bit",
		   kt->name, c->rtn, m, n, k, chunk);
		ok(kt->act_bytes(c->t, m, k) == 0 && kt->act_bytes(c->rt, m, k + c->blk / 2) == 0,
		   "%s: act_bytes 0 for %s (not repacked) and for k not whole blocks", kt->name,
		   c->tn);
		free(xa);
	}
	free(w);
	free(r);
	free(x);
	free(bias);
	free(y0);
	free(y);
}

/* The avx512 table's prepared-activation kernels are the AVX2 level's
 * (the faster decode), its own with QVL_QDECODE_AVX512 set; the rest of
 * the table is avx512's either way. */
static void test_act_level(void)
{
	struct qvl_kernels k2, k5, k5own;

	if (qvl_kernels_get(&k2, QVL_SIMD_AVX2) || qvl_kernels_get(&k5, QVL_SIMD_AVX512)) {
		skip(2, "no avx512 level here");
		return;
	}
	setenv("QVL_QDECODE_AVX512", "1", 1);
	int rc = qvl_kernels_get(&k5own, QVL_SIMD_AVX512);
	unsetenv("QVL_QDECODE_AVX512");
	bool a2 = false;
#if defined(HAVE_AVX2_KERNELS) && defined(HAVE_AVX512_KERNELS)
	a2 = k5.matmul_act == qvl_matmul_act_avx512a2 && k2.matmul_act == qvl_matmul_act_avx2;
#endif
	ok(k5.act_bytes == k2.act_bytes && k5.act_make == k2.act_make && a2 &&
	       k5.matmul_fast != k2.matmul_fast,
	   "avx512: the AVX2 act kernels (two types on 512-bit vectors, same bits), its own "
	   "matmul_fast");
	ok(!rc && k5own.act_make && k5own.act_make != k2.act_make &&
	       k5own.matmul_act != k2.matmul_act && k5own.matmul_fast == k5.matmul_fast,
	   "avx512 with QVL_QDECODE_AVX512: its own act kernels");
}

/* y[m 1] = row x times the n rows of r: matmul_fast (act 0) or prepared
 * once and taken in chunks of `chunk` rows (act 1) */
static void streams_run(const struct qvl_kernels *kt, const struct rp_type *c, const uint8_t *r,
			const float *x, size_t n, size_t k, size_t ldw, size_t chunk, int act,
			float *y)
{
	size_t wrow = ldw / c->blk * c->blk_bytes;

	if (!act) {
		kt->matmul_fast(y, n, x, k, r, c->rt, ldw, NULL, 1, n, k);
		return;
	}
	void *xa = xmalloc(kt->act_bytes(c->rt, 1, k));
	kt->act_make(xa, c->rt, x, k, 1, k);
	for (size_t lo = 0; lo < n; lo += chunk) {
		size_t nn = n - lo < chunk ? n - lo : chunk;
		kt->matmul_act(y + lo, n, x, k, xa, r + lo * wrow, c->rt, ldw, NULL, 1, nn, k);
	}
	free(xa);
}

/* Every level, one row against n rows: 2, 3 and 4 streams == 1 stream bit
 * for bit (each group's sums do not depend on the groups read beside it),
 * through matmul_fast and the prepared path in chunks; random (not exact)
 * x so that a changed float order shows. */
static void test_streams(const struct rp_type *c, size_t n, size_t k, size_t ldw, size_t chunk)
{
	uint8_t *w = rp_make_w(c, n, ldw, false), *r = rp_repacked(c, w, n, ldw);
	float *x = xmalloc(k * sizeof(float)), *y1 = xmalloc(n * sizeof(float));
	float *y = xmalloc(n * sizeof(float));
	int keep = qvl_gemm_blk.qdec_streams;

	for (size_t i = 0; i < k; i++)
		x[i] = frand(2.0f) * (float)(1 + i % 5);
	for (int l = 0; l < rp_nlv; l++) {
		const struct qvl_kernels *kt = &rp_lv[l];
		if (!kt->matmul_fast || !kt->act_bytes)
			continue;
		for (int act = 0; act < 2; act++) {
			bool same = true;
			qvl_gemm_blk.qdec_streams = 1;
			streams_run(kt, c, r, x, n, k, ldw, chunk, act, y1);
			for (int S = 2; S <= 4; S++) {
				qvl_gemm_blk.qdec_streams = S;
				memset(y, 0xff, n * sizeof(float));
				streams_run(kt, c, r, x, n, k, ldw, chunk, act, y);
				same = same && !memcmp(y, y1, n * sizeof(float));
			}
			ok(same,
			   "%s %s n %zu k %zu ldw %zu %s: 2, 3, 4 streams == 1 bit for bit",
			   kt->name, c->rtn, n, k, ldw, act ? "prepared, chunks" : "matmul_fast");
		}
	}
	qvl_gemm_blk.qdec_streams = keep;
	free(w);
	free(r);
	free(x);
	free(y1);
	free(y);
}

/* Every X8 type at every level: the rows of a decode batch (m 2 to 16: at
 * avx512 the streamed qx_small, qdot_x8.h, and the 1-3-row passes of
 * qk_gemm16 and q6x_tile) == the same rows of a 24-row product (the
 * scratch panels, qx_gemm16 / qd_gemm32; 4-row passes) bit for bit:
 * the same integer sums and float steps per row, whichever path. n has a
 * group left over (pairs of groups, then one). */
static void test_batch_rows(const struct rp_type *c, size_t n, size_t k)
{
	static const size_t ms[] = {2, 3, 4, 5, 8, 9, 13, 16};
	const size_t big = 24, ldx = k + 3, ldy = n + 5;
	uint8_t *w = rp_make_w(c, n, k, false), *r = rp_repacked(c, w, n, k);
	float *x = xmalloc(big * ldx * sizeof(float)), *y0 = xmalloc(big * ldy * sizeof(float));
	float *y = xmalloc(big * ldy * sizeof(float));

	for (size_t i = 0; i < big * ldx; i++)
		x[i] = frand(2.0f) * (float)(1 + i % 7);
	for (int l = 0; l < rp_nlv; l++) {
		const struct qvl_kernels *kt = &rp_lv[l];
		bool same = true;

		if (!kt->matmul_fast)
			continue;
		kt->matmul_fast(y0, ldy, x, ldx, r, c->rt, k, NULL, big, n, k);
		for (size_t t = 0; t < sizeof(ms) / sizeof(ms[0]); t++) {
			memset(y, 0xff, big * ldy * sizeof(float));
			kt->matmul_fast(y, ldy, x, ldx, r, c->rt, k, NULL, ms[t], n, k);
			for (size_t i = 0; i < ms[t]; i++)
				same = same && !memcmp(y + i * ldy, y0 + i * ldy, n * sizeof(float));
		}
		ok(same, "%s %s n %zu k %zu: rows of batches of 2-16 == those rows of 24 bit for bit",
		   kt->name, c->rtn, n, k);
	}
	free(w);
	free(r);
	free(x);
	free(y0);
	free(y);
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
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		size_t k = types[t].blk == 32 ? 96 : 512;
		test_prepared(&types[t], 1, 304, k, 64);
		test_prepared(&types[t], 1, 304, k, 256);
		test_prepared(&types[t], 3, 88, k, 16);
		test_prepared(&types[t], 16, 200, k, 192);
	}
	test_batch_rows(&types[0], 88, 160);
	test_batch_rows(&types[3], 88, 160);
	test_batch_rows(&types[2], 88, 512);
	test_batch_rows(&types[1], 88, 512);
	/* rows long enough that fewer than 16 fit the activation chunk
	 * (qx_prefill's mc): a batch spans chunks */
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		test_batch_rows(&types[t], 24, 16384);
	test_cached_row();
	/* groups: 37 (4 streams of 9, 1 over), 6 (fewer per stream than
	 * streams), 3 (fewer than streams), 64 in 512-row chunks of 44 + 20 */
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		size_t b = types[t].blk, k = b == 32 ? 160 : 768;
		test_streams(&types[t], 296, k, k, 1 << 20);
		test_streams(&types[t], 48, k, k + b, 1 << 20);
		test_streams(&types[t], 24, k, k, 1 << 20);
		test_streams(&types[t], 512, k, k + 2 * b, 352);
	}
	unsetenv("QVL_QDECODE_AVX512"); /* the default table first */
	test_act_level();
	return done_testing();
}
