/* The kernel checks every repacked weight type (simd/qrepack.h) passes,
 * shared by tests/test_qrepack*.c: exact integer sums bit for bit against
 * the reference on the file's layout, and random quantized weights on
 * ragged shapes within a tight tolerance of it. A test fills struct
 * rp_type and the level tables. */
#ifndef QVL_TEST_REPACK_CHECK_H
#define QVL_TEST_REPACK_CHECK_H

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kern_impl.h"
#include "qrepack.h"
#include "quant.h"
#include "rng.h"
#include "tap.h"

struct rp_type {
	enum qvl_dtype t, rt;  /* the file's type, the repacked one */
	const char *tn, *rtn;  /* their names */
	size_t blk, blk_bytes; /* values and bytes of one block */
	size_t kmax;	       /* random shapes: k up to kmax blocks */
	/* n rows of ldw values of type t; pow2: every float operation of an
	 * exact product stays exact, else quantized from random data */
	uint8_t *(*make_w)(size_t n, size_t ldw, bool pow2);
};

/* n rows of ldw values of type t (blocks of blk values, bb bytes). pow2:
 * random bytes, each block's nd f16 scales (at the offsets d_off) 0.5 or
 * 1, so that every float operation of an exact product stays exact; else
 * quantized from random data. */
static uint8_t *rp_make_w(enum qvl_dtype t, size_t blk, size_t bb, const size_t *d_off, int nd,
			  size_t n, size_t ldw, bool pow2)
{
	size_t nblk = n * (ldw / blk);
	uint8_t *w = xmalloc(nblk * bb);
	float *f = xmalloc(ldw * sizeof(float));

	for (size_t i = 0; i < nblk * bb; i++)
		w[i] = (uint8_t)rnd();
	for (size_t b = 0; pow2 && b < nblk; b++)
		for (int h = 0; h < nd; h++) {
			uint16_t v = rnd() & 1 ? 0x3800 : 0x3c00;
			memcpy(w + b * bb + d_off[h], &v, 2);
		}
	for (size_t j = 0; !pow2 && j < n; j++) {
		for (size_t i = 0; i < ldw; i++)
			f[i] = frand(0.05f) + (i % 17 == 0 ? frand(0.3f) : 0.0f);
		if (qvl_quantize_row(t, f, w + j * (ldw / blk) * bb, ldw))
			exit(98);
	}
	free(f);
	return w;
}

static struct qvl_kernels rp_lv[3];
static int rp_nlv;

static void rp_levels(void)
{
	for (int l = QVL_SIMD_REF; l <= QVL_SIMD_AVX512; l++)
		if (!qvl_kernels_get(&rp_lv[rp_nlv], (enum qvl_simd_level)l))
			rp_nlv++;
	diag("levels: %d (%s), avx512vnni %d", rp_nlv, rp_lv[rp_nlv - 1].name,
	     qvl_cpu_has_avx512vnni());
}

static uint8_t *rp_repacked(const struct rp_type *c, const uint8_t *w, size_t n, size_t ldw)
{
	uint8_t *r = xmalloc(n * (ldw / c->blk) * c->blk_bytes);

	if (qvl_repack(r, c->rt, w, c->t, n, ldw) != 0)
		exit(97);
	return r;
}

/* which weights get repacked: type t with whole groups of 8 rows by every
 * built-in level's table, not by a custom table nor under QVL_REPACK=0 */
static void rp_test_type(const struct rp_type *c)
{
	struct qvl_kernels custom = rp_lv[0];
	bool all = true;

	for (int l = 0; l < rp_nlv; l++)
		all = all && qvl_repack_type(&rp_lv[l], c->t, 64, 2048) == c->rt;
	ok(all, "every level's table repacks %s [64][2048]", c->tn);
	ok(qvl_repack_type(&rp_lv[0], c->t, 60, 2048) == c->t, "%s with 60 rows kept as it is",
	   c->tn);
	custom.matmul_fast = custom.matmul;
	ok(qvl_repack_type(&custom, c->t, 64, 2048) == c->t,
	   "a table whose matmul_fast is not a built-in level's: no repacking");
	setenv("QVL_REPACK", "0", 1);
	ok(qvl_repack_type(&rp_lv[0], c->t, 64, 2048) == c->t, "QVL_REPACK=0: kept");
	unsetenv("QVL_REPACK");
	ok(qvl_dtype_is_repacked(c->rt) && !qvl_dtype_is_repacked(c->t),
	   "%s is a repacked type, %s is not", c->rtn, c->tn);
}

/* activations of scale exactly 1: -1, 0, 1 and one ±127 per block of blk */
static float *rp_exact_x(size_t m, size_t k, size_t blk)
{
	float *x = xmalloc(m * k * sizeof(float));

	for (size_t i = 0; i < m * k; i++)
		x[i] = (float)((int)(rnd() % 3) - 1);
	for (size_t i = 0; i < m * k; i += blk)
		x[i + rnd() % blk] = rnd() & 1 ? 127.0f : -127.0f;
	return x;
}

/* every level on the repacked matrix == ref on the file's, bit for bit */
static void rp_test_exact(const struct rp_type *c, size_t m, size_t n, size_t k)
{
	uint8_t *w = c->make_w(n, k, true), *r = rp_repacked(c, w, n, k);
	float *x = rp_exact_x(m, k, c->blk), *y0 = xmalloc(m * n * sizeof(float));
	float *y = xmalloc(m * n * sizeof(float));

	rp_lv[0].matmul_fast(y0, n, x, k, w, c->t, k, NULL, m, n, k);
	for (int l = 0; l < rp_nlv; l++) {
		memset(y, 0xff, m * n * sizeof(float));
		rp_lv[l].matmul_fast(y, n, x, k, r, c->rt, k, NULL, m, n, k);
		ok(!memcmp(y0, y, m * n * sizeof(float)),
		   "exact, m %zu n %zu: %s on %s == ref on %s bit for bit", m, n, rp_lv[l].name,
		   c->rtn, c->tn);
	}
	free(w);
	free(r);
	free(x);
	free(y0);
	free(y);
}

static void rp_test_random(const struct rp_type *c)
{
	bool lvl_ok[3] = {true, true, true};
	static const size_t ms[] = {1, 1, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 19};

	for (size_t s = 0; s < sizeof(ms) / sizeof(ms[0]); s++) {
		size_t m = ms[s], n = 8 * urand(1, 7), k = c->blk * urand(1, c->kmax);
		size_t ldw = k + c->blk * (rnd() % 2), ldx = k + rnd() % 5, ldy = n + rnd() % 3;
		uint8_t *w = c->make_w(n, ldw, false), *r = rp_repacked(c, w, n, ldw);
		float *x = xmalloc(m * ldx * sizeof(float)), *bias = xmalloc(n * sizeof(float));
		float *y0 = xmalloc(m * ldy * sizeof(float)), *y = xmalloc(m * ldy * sizeof(float));
		float ymax = 0;

		for (size_t i = 0; i < m * ldx; i++)
			x[i] = frand(2.0f) * (float)(1 + i % 7);
		for (size_t j = 0; j < n; j++)
			bias[j] = frand(1.0f);
		rp_lv[0].matmul_fast(y0, ldy, x, ldx, w, c->t, ldw, bias, m, n, k);
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++)
				ymax = fmaxf(ymax, fabsf(y0[i * ldy + j]));
		for (int l = 0; l < rp_nlv; l++) {
			rp_lv[l].matmul_fast(y, ldy, x, ldx, r, c->rt, ldw, bias, m, n, k);
			for (size_t i = 0; i < m; i++)
				for (size_t j = 0; j < n; j++)
					if (!(fabsf(y[i * ldy + j] - y0[i * ldy + j]) <=
					      1e-5f * ymax + 1e-6f)) {
						if (lvl_ok[l])
							diag(
							    "m %zu n %zu k %zu [%zu][%zu]: %s %.8g "
							    "ref %.8g",
							    m, n, k, i, j, rp_lv[l].name,
							    y[i * ldy + j], y0[i * ldy + j]);
						lvl_ok[l] = false;
					}
		}
		free(w);
		free(r);
		free(x);
		free(bias);
		free(y0);
		free(y);
	}
	for (int l = 0; l < rp_nlv; l++)
		ok(lvl_ok[l], "random, ragged m, k, strides: %s on %s within 1e-5 of ref on %s",
		   rp_lv[l].name, c->rtn, c->tn);
}

/* exact at decode (1, 3 and 5 groups) and prefill (panels with passes of
 * activation rows and their tails, two groups, a group of 8 left over),
 * then the random shapes; k values per row in the exact cases */
static void rp_test_kernels(const struct rp_type *c, size_t k)
{
	static const size_t mn[][2] = {{1, 8}, {1, 24}, {1, 40}, {9, 16}, {20, 8}, {6, 24}};

	for (size_t i = 0; i < sizeof(mn) / sizeof(mn[0]); i++)
		rp_test_exact(c, mn[i][0], mn[i][1], k);
	rp_test_random(c);
}

#endif
