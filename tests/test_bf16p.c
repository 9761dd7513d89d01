/* The bf16 panels (QVL_DT_BF16_P16, simd/qrepack.h): the layout both ways,
 * when the engine's repacking picks it (QVL_BF16_PANELS, QVL_REPACK), and
 * the AVX512-BF16 kernel (simd/matmul_bf16p_avx512.c) on ragged shapes
 * against the scalar reference of its order and against the row-layout
 * bf16 kernel, with the bits of every output independent of the call's
 * other rows (batch invariance: m == 1 and every m up to 130) and of the
 * columns beside it (the pool's column split), and the same bits from its
 * activation prepared once (kernels.h act_make) in the decode's chunks,
 * also when prepared in parts (act_part). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern_impl.h"
#include "qrepack.h"
#include "rng.h"
#include "tap.h"

static uint16_t *rand_w(size_t n, size_t k)
{
	uint16_t *w = xmalloc(n * k * 2);

	for (size_t i = 0; i < n * k; i++)
		w[i] = qvl_f32_to_bf16(frand(1.0f));
	return w;
}

static void test_layout(void)
{
	size_t n = 48, k = 130;
	uint16_t *w = rand_w(n, k), *p = xmalloc(n * k * 2), *back = xmalloc(n * k * 2);

	ok(qvl_repack(p, QVL_DT_BF16_P16, w, QVL_DT_BF16, n, k) == 0 &&
	       qvl_unrepack(back, QVL_DT_BF16, p, QVL_DT_BF16_P16, n, k) == 0 &&
	       !memcmp(back, w, n * k * 2),
	   "rows -> panels -> rows gives the rows back");
	/* row 16 + 5's values 2 * 7, 2 * 7 + 1: panel 1, pair 7, word 5 */
	ok(p[16 * k + (7 * 16 + 5) * 2] == w[21 * k + 14] &&
	       p[16 * k + (7 * 16 + 5) * 2 + 1] == w[21 * k + 15],
	   "pair p of a panel's row c is word c of the panel's 16 at 64 p bytes");
	ok(qvl_repack(p, QVL_DT_BF16_P16, w, QVL_DT_BF16, 40, k) == -EINVAL &&
	       qvl_repack(p, QVL_DT_BF16_P16, w, QVL_DT_BF16, 16, 129) == -EINVAL &&
	       qvl_repack(p, QVL_DT_BF16_P16, w, QVL_DT_F16, 16, k) == -EINVAL,
	   "rows not whole panels, odd k and a non-bf16 source refused");
	free(w), free(p), free(back);
}

static void test_choice(void)
{
	struct qvl_kernels kt;
	bool bf = !qvl_kernels_get(&kt, QVL_SIMD_AVX512) && qvl_kernels_bf16dot(&kt);

	unsetenv("QVL_BF16_PANELS");
	unsetenv("QVL_REPACK");
	if (!bf) {
		skip(4, "no AVX512-BF16 here");
		return;
	}
	ok(qvl_repack_type(&kt, QVL_DT_BF16, 64, 128) == QVL_DT_BF16_P16,
	   "bf16 in panels by default");
	setenv("QVL_BF16_PANELS", "0", 1);
	ok(qvl_repack_type(&kt, QVL_DT_BF16, 64, 128) == QVL_DT_BF16,
	   "QVL_BF16_PANELS=0 keeps the rows");
	setenv("QVL_BF16_PANELS", "1", 1);
	ok(qvl_repack_type(&kt, QVL_DT_BF16, 64, 128) == QVL_DT_BF16_P16 &&
	       qvl_repack_type(&kt, QVL_DT_BF16, 72, 128) == QVL_DT_BF16 &&
	       qvl_repack_type(&kt, QVL_DT_BF16, 64, 127) == QVL_DT_BF16,
	   "QVL_BF16_PANELS=1: panels for whole panels and even k only");
	setenv("QVL_REPACK", "0", 1);
	ok(qvl_repack_type(&kt, QVL_DT_BF16, 64, 128) == QVL_DT_BF16,
	   "QVL_REPACK=0 keeps the rows whatever QVL_BF16_PANELS says");
	unsetenv("QVL_REPACK");
	unsetenv("QVL_BF16_PANELS");
}

/* |Y - ref| within 1e-5 of sum |x w| (+ |bias|): the same bf16-rounded
 * products, only the rounding inside a pair may differ */
static int near(const float *Y, const float *R, size_t ldy, const float *X, size_t ldx,
		const uint16_t *w, const float *bias, size_t m, size_t n, size_t k, double rel)
{
	int bad = 0;

	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++) {
			double bound = bias ? fabs(bias[j]) : 0;
			for (size_t p = 0; p < k; p++)
				bound += fabs(X[i * ldx + p] * qvl_bf16_to_f32(w[j * k + p]));
			double e = fabs((double)Y[i * ldy + j] - R[i * ldy + j]);
			if (!(e <= rel * bound + 1e-30) && bad++ < 3)
				diag("m=%zu n=%zu k=%zu [%zu][%zu] %g ref %g", m, n, k, i, j,
				     Y[i * ldy + j], R[i * ldy + j]);
		}
	return bad;
}

static void test_kernel(void)
{
	struct qvl_kernels kt;
	int bad_ref = 0, bad_rows = 0, bad_inv = 0, bad_cols = 0, bad_pad = 0, bad_act = 0, bad_part = 0;
	int cases = 0;

	if (qvl_kernels_get(&kt, QVL_SIMD_AVX512) || !qvl_kernels_bf16dot(&kt)) {
		skip(6, "no AVX512-BF16 here");
		return;
	}
	for (int c = 0; c < 24; c++) {
		/* n: 1 to 26 panels (odd counts: a panel read twice), k even
		 * from 2 to 2100 (partial k blocks of 64 pairs), m 1..130 (the
		 * 8-row passes, the 64-row calls) */
		size_t n = 16 * (c < 4 ? (size_t)c + 1 : urand(1, 26)),
		       k = c == 5 ? 2048 : 2 * urand(1, c % 3 ? 200 : 1050),
		       m = c < 8	? (size_t)c + 1
			   : c % 4 == 0 ? urand(60, 130)
					: urand(1, 40);
		size_t ldx = k + urand(0, 3), ldy = n + urand(1, 3);
		uint16_t *w = rand_w(n, k), *p = xmalloc(n * k * 2);
		float *X = xmalloc(m * ldx * 4), *Y = xmalloc(m * ldy * 4),
		      *R = xmalloc(m * ldy * 4), *Y1 = xmalloc(ldy * 4),
		      *bias = c & 1 ? xmalloc(n * 4) : NULL;

		cases++;
		for (size_t i = 0; i < m * ldx; i++)
			X[i] = frand(2.0f);
		for (size_t j = 0; bias && j < n; j++)
			bias[j] = frand(1.0f);
		if (qvl_repack(p, QVL_DT_BF16_P16, w, QVL_DT_BF16, n, k))
			exit(97);
		for (size_t i = 0; i < m * ldy; i++)
			Y[i] = -7.0f;
		kt.matmul_fast(Y, ldy, X, ldx, p, QVL_DT_BF16_P16, k, bias, m, n, k);
		for (size_t i = 0; i < m; i++)
			for (size_t j = n; j < ldy; j++)
				bad_pad += Y[i * ldy + j] != -7.0f;
		qvl_matmul_bf16p_ref(R, ldy, X, ldx, p, k, bias, m, n, k);
		bad_ref += near(Y, R, ldy, X, ldx, w, bias, m, n, k, 1e-5) != 0;
		kt.matmul_fast(R, ldy, X, ldx, w, QVL_DT_BF16, k, bias, m, n, k);
		bad_rows += near(Y, R, ldy, X, ldx, w, bias, m, n, k, 1e-5) != 0;
		/* every row alone (m == 1: the matvec) and rows a.. of the
		 * call (another m), bit for bit; the matvec with its prefetch
		 * off, at the default distance and at a random one in turn */
		size_t a = urand(0, m - 1), pf0 = qvl_gemm_blk.bf16p_pf;
		for (size_t i = 0; i < m; i++) {
			qvl_gemm_blk.bf16p_pf = i % 3 == 0 ? 0 : i % 3 == 1 ? pf0 : 64 * urand(1, 64);
			kt.matmul_fast(Y1, ldy, X + i * ldx, ldx, p, QVL_DT_BF16_P16, k, bias, 1, n,
				       k);
			if (memcmp(Y1, Y + i * ldy, n * 4) && bad_inv++ < 3)
				diag("m %zu n %zu k %zu: row %zu alone differs (prefetch %zu)", m, n,
				     k, i, qvl_gemm_blk.bf16p_pf);
		}
		qvl_gemm_blk.bf16p_pf = pf0;
		kt.matmul_fast(R, ldy, X + a * ldx, ldx, p, QVL_DT_BF16_P16, k, bias, m - a, n, k);
		for (size_t i = a; i < m; i++)
			if (memcmp(R + (i - a) * ldy, Y + i * ldy, n * 4) && bad_inv++ < 3)
				diag("m %zu n %zu k %zu: rows %zu.. differ", m, n, k, a);
		/* the columns from panel j0 on, ending inside a panel */
		size_t j0 = 16 * urand(0, n / 16 - 1), nc = urand(1, n - j0);
		kt.matmul_fast(R, ldy, X, ldx, p + j0 * k, QVL_DT_BF16_P16, k,
			       bias ? bias + j0 : NULL, m, nc, k);
		for (size_t i = 0; i < m; i++)
			bad_cols += memcmp(R + i * ldy, Y + i * ldy + j0, nc * 4) != 0;
		/* prepared once, then chunks of whole panels (the last one
		 * ragged) as the decode's claims; one row is not prepared */
		size_t ab = kt.act_bytes(QVL_DT_BF16_P16, m, k), ch = 16 * urand(1, 12);
		if ((m == 1) != (ab == 0) && bad_act++ < 3)
			diag("m %zu k %zu: act_bytes %zu", m, k, ab);
		if (ab) {
			void *xa = xmalloc(ab);
			kt.act_make(xa, QVL_DT_BF16_P16, X, ldx, m, k);
			for (size_t j = 0; j < n; j += ch)
				kt.matmul_act(R + j, ldy, X, ldx, xa, p + j * k, QVL_DT_BF16_P16, k,
					      bias ? bias + j : NULL, m, n - j < ch ? n - j : ch, k);
			for (size_t i = 0; i < m; i++)
				if (memcmp(R + i * ldy, Y + i * ldy, n * 4) && bad_act++ < 3)
					diag("m %zu n %zu k %zu: prepared row %zu differs", m, n, k, i);
			/* the same bytes made in parts: random row ranges by
			 * random column cuts, as the stage writing X does */
			uint8_t *xm = xmalloc(ab), *xp = xmalloc(ab);
			memset(xm, 0, ab), memset(xp, 0, ab);
			kt.act_make(xm, QVL_DT_BF16_P16, X, ldx, m, k);
			for (size_t r0 = 0, r1; r0 < m; r0 = r1) {
				r1 = r0 + urand(1, m - r0);
				for (size_t c0 = 0, c1; c0 < k; c0 = c1) {
					c1 = c0 + urand(1, k - c0);
					if (!kt.act_part(xp, QVL_DT_BF16_P16, X, ldx, m, k, r0, r1, c0, c1) &&
					    bad_part++ < 3)
						diag("m %zu k %zu: act_part refused", m, k);
				}
			}
			if (memcmp(xm, xp, ab) && bad_part++ < 3)
				diag("m %zu k %zu: act_part's parts differ from act_make", m, k);
			if (kt.act_part(xp, QVL_DT_Q8_0, X, ldx, m, k, 0, 0, 0, 0) && bad_part++ < 3)
				diag("act_part takes Q8_0");
			free(xa), free(xm), free(xp);
		}
		free(w), free(p), free(X), free(Y), free(R), free(Y1), free(bias);
	}
	ok(!bad_ref, "panel kernel within 1e-5 of the reference's order (%d of %d shapes off)",
	   bad_ref, cases);
	ok(!bad_rows, "panel kernel within 1e-5 of the row-layout bf16 kernel (%d off)", bad_rows);
	ok(!bad_inv,
	   "each output's bits independent of the call's other rows and of the matvec's "
	   "prefetch (%d differ)",
	   bad_inv);
	ok(!bad_cols, "and of the columns beside it (%d rows differ)", bad_cols);
	ok(!bad_pad, "nothing written past n (%d)", bad_pad);
	ok(!bad_act, "prepared activation: the same bits in chunks of columns (%d off)", bad_act);
	ok(!bad_part, "prepared in parts (act_part): act_make's bytes (%d off)", bad_part);
}

int main(void)
{
	rng_seed(16);
	test_layout();
	test_choice();
	test_kernel();
	return done_testing();
}
