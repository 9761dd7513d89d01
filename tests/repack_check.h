/* The kernel checks every repacked weight type (simd/qrepack.h) passes,
 * shared by tests/test_qrepack*.c: exact integer sums bit for bit against
 * the reference on the file's layout, and random quantized weights on
 * ragged shapes within a tight tolerance of it, both through one
 * comparison (rp_check). A test fills struct rp_type and the level tables. */
#ifndef QVL_TEST_REPACK_CHECK_H
#define QVL_TEST_REPACK_CHECK_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kern_impl.h"
#include "make_w.h"
#include "qrepack.h"
#include "quant.h"
#include "rng.h"
#include "tap.h"

struct rp_type {
	enum qvl_dtype t, rt;  /* the file's type, the repacked one */
	const char *tn, *rtn;  /* their names */
	size_t blk, blk_bytes; /* values and bytes of one block */
	size_t kmax;	       /* random shapes: k up to kmax blocks */
	size_t d_off[2];       /* where a block's f16 scales are (make_w_blocks) */
	int nd;		       /* how many */
};

/* n rows of ldw values of type c->t: make_w_blocks() */
static uint8_t *rp_make_w(const struct rp_type *c, size_t n, size_t ldw, bool pow2)
{
	return make_w_blocks(c->t, c->blk, c->blk_bytes, c->d_off, c->nd, n, ldw, pow2);
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

/* what every repacked type shares past its layout: unrepack gives w (n
 * rows of k values, r its repacked copy) back; rows not whole groups, k not
 * whole blocks and a source of type other refused */
static void rp_test_roundtrip(const struct rp_type *c, const uint8_t *w, const uint8_t *r, size_t n,
			      size_t k, enum qvl_dtype other)
{
	size_t wrow = k / c->blk * c->blk_bytes, kbad = c->blk + c->blk / 2;
	uint8_t *back = xmalloc(n * wrow);

	ok(qvl_unrepack(back, c->t, r, c->rt, n, k) == 0 && !memcmp(back, w, n * wrow),
	   "unrepack gives the file's bytes back");
	ok(qvl_repack(back, c->rt, w, c->t, 12, k) == -EINVAL,
	   "12 rows (not whole groups) refused");
	ok(qvl_repack(back, c->rt, w, c->t, 8, kbad) == -EINVAL, "k %zu (not whole blocks) refused",
	   kbad);
	ok(qvl_repack(back, c->rt, w, other, n, k) == -EINVAL, "a %s source refused",
	   qvl_dtype_name(other));
	free(back);
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

/* A product's shape: m x n, k values, strides, bias (or NULL). */
struct rp_shape {
	size_t m, n, k, ldw, ldx, ldy;
	const float *bias;
};

/* Every level on the repacked w (r) against ref on w: bit for bit (tol 0)
 * or within tol of the largest |y|. what: an ok() per level named so;
 * lvl_ok: and-ed per level (NULL: none). The first disagreement of each
 * level is diag()'d. True if all agree. */
static bool rp_check(const struct rp_type *c, const char *what, const uint8_t *w, const uint8_t *r,
		     const float *x, const struct rp_shape *s, float tol, bool *lvl_ok)
{
	size_t m = s->m, n = s->n, ldy = s->ldy;
	float *y0 = xmalloc(m * ldy * sizeof(float)), *y = xmalloc(m * ldy * sizeof(float));
	float ymax = 0;
	bool all = true;

	rp_lv[0].matmul_fast(y0, ldy, x, s->ldx, w, c->t, s->ldw, s->bias, m, n, s->k);
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++)
			ymax = fmaxf(ymax, fabsf(y0[i * ldy + j]));
	for (int l = 0; l < rp_nlv; l++) {
		bool same = true;
		memset(y, 0xff, m * ldy * sizeof(float));
		rp_lv[l].matmul_fast(y, ldy, x, s->ldx, r, c->rt, s->ldw, s->bias, m, n, s->k);
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
		if (what && tol == 0)
			ok(same, "%s, m %zu n %zu k %zu: %s on %s == ref on %s bit for bit", what,
			   m, n, s->k, rp_lv[l].name, c->rtn, c->tn);
		else if (what)
			ok(same, "%s, m %zu n %zu k %zu: %s on %s within %g of ref on %s", what, m,
			   n, s->k, rp_lv[l].name, c->rtn, tol, c->tn);
		if (lvl_ok)
			lvl_ok[l] = lvl_ok[l] && same;
		all = all && same;
	}
	free(y0);
	free(y);
	return all;
}

/* every level on the repacked matrix == ref on the file's, bit for bit */
static void rp_test_exact(const struct rp_type *c, size_t m, size_t n, size_t k)
{
	uint8_t *w = rp_make_w(c, n, k, true), *r = rp_repacked(c, w, n, k);
	float *x = rp_exact_x(m, k, c->blk);

	rp_check(c, "exact", w, r, x, &(struct rp_shape){m, n, k, k, k, n, NULL}, 0, NULL);
	free(w);
	free(r);
	free(x);
}

static void rp_test_random(const struct rp_type *c)
{
	bool lvl_ok[3] = {true, true, true};
	static const size_t ms[] = {1, 1, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 19};

	for (size_t s = 0; s < sizeof(ms) / sizeof(ms[0]); s++) {
		size_t m = ms[s], n = 8 * urand(1, 7), k = c->blk * urand(1, c->kmax);
		size_t ldw = k + c->blk * (rnd() % 2), ldx = k + rnd() % 5, ldy = n + rnd() % 3;
		uint8_t *w = rp_make_w(c, n, ldw, false), *r = rp_repacked(c, w, n, ldw);
		float *x = xmalloc(m * ldx * sizeof(float)), *bias = xmalloc(n * sizeof(float));

		for (size_t i = 0; i < m * ldx; i++)
			x[i] = frand(2.0f) * (float)(1 + i % 7);
		for (size_t j = 0; j < n; j++)
			bias[j] = frand(1.0f);
		rp_check(c, NULL, w, r, x, &(struct rp_shape){m, n, k, ldw, ldx, ldy, bias}, 1e-5f,
			 lvl_ok);
		free(w);
		free(r);
		free(x);
		free(bias);
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
