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

#define BB 18 /* bytes of a Q4_0 block */

static struct qvl_kernels lv[3];
static int nlv;

/* n rows of ldw values of random Q4_0 blocks; pow2: scales 0.5 or 1,
 * else quantized by quant.c from random data */
static uint8_t *make_w(size_t n, size_t ldw, bool pow2)
{
	size_t nblk = n * (ldw / 32);
	uint8_t *w = xmalloc(nblk * BB);
	float *f = xmalloc(ldw * sizeof(float));

	for (size_t i = 0; i < nblk * BB; i++)
		w[i] = (uint8_t)rnd();
	for (size_t b = 0; pow2 && b < nblk; b++) {
		uint16_t h = rnd() & 1 ? 0x3800 : 0x3c00;
		memcpy(w + b * BB, &h, 2);
	}
	for (size_t j = 0; !pow2 && j < n; j++) {
		for (size_t i = 0; i < ldw; i++)
			f[i] = frand(0.05f) + (i % 17 == 0 ? frand(0.3f) : 0.0f);
		if (qvl_quantize_row(QVL_DT_Q4_0, f, w + j * (ldw / 32) * BB, ldw))
			exit(98);
	}
	free(f);
	return w;
}

static uint8_t *repacked(const uint8_t *w, size_t n, size_t ldw)
{
	uint8_t *r = xmalloc(n * (ldw / 32) * BB);

	if (qvl_repack(r, QVL_DT_Q4_0_X8, w, QVL_DT_Q4_0, n, ldw) != 0)
		exit(97);
	return r;
}

static void test_layout(void)
{
	const size_t n = 16, k = 96, nb = k / 32, wrow = nb * BB;
	uint8_t *w = make_w(n, k, false), *r = repacked(w, n, k), *back = xmalloc(n * wrow);
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
	ok(qvl_unrepack(back, QVL_DT_Q4_0, r, QVL_DT_Q4_0_X8, n, k) == 0 &&
	       !memcmp(back, w, n * wrow),
	   "unrepack gives the file's bytes back");
	ok(qvl_repack(back, QVL_DT_Q4_0_X8, w, QVL_DT_Q4_0, 12, k) == -EINVAL,
	   "12 rows (not whole groups) refused");
	ok(qvl_repack(back, QVL_DT_Q4_0_X8, w, QVL_DT_Q8_0, 16, k) == -EINVAL,
	   "a Q8_0 source refused");
	free(w);
	free(r);
	free(back);
}

static void test_type(void)
{
	struct qvl_kernels custom = lv[0];
	bool all = true;

	for (int l = 0; l < nlv; l++)
		all = all && qvl_repack_type(&lv[l], QVL_DT_Q4_0, 64, 2048) == QVL_DT_Q4_0_X8;
	ok(all, "every level's table repacks Q4_0 [64][2048]");
	ok(qvl_repack_type(&lv[0], QVL_DT_Q4_0, 60, 2048) == QVL_DT_Q4_0,
	   "Q4_0 with 60 rows kept as it is");
	ok(qvl_repack_type(&lv[0], QVL_DT_Q8_0, 64, 2048) == QVL_DT_Q8_0 &&
	       qvl_repack_type(&lv[0], QVL_DT_BF16, 64, 2048) == QVL_DT_BF16,
	   "Q8_0 and bf16 kept as they are");
	custom.matmul_fast = custom.matmul;
	ok(qvl_repack_type(&custom, QVL_DT_Q4_0, 64, 2048) == QVL_DT_Q4_0,
	   "a table whose matmul_fast is not a built-in level's: no repacking");
}

/* activations of scale exactly 1: small integers and one ±127 per block */
static float *exact_x(size_t m, size_t k)
{
	float *x = xmalloc(m * k * sizeof(float));

	for (size_t i = 0; i < m * k; i++)
		x[i] = (float)((int)(rnd() % 3) - 1);
	for (size_t i = 0; i < m * k; i += 32)
		x[i + rnd() % 32] = rnd() & 1 ? 127.0f : -127.0f;
	return x;
}

static void test_exact(size_t m, size_t n)
{
	const size_t k = 32 * 21;
	uint8_t *w = make_w(n, k, true), *r = repacked(w, n, k);
	float *x = exact_x(m, k), *y0 = xmalloc(m * n * sizeof(float));
	float *y = xmalloc(m * n * sizeof(float));

	lv[0].matmul_fast(y0, n, x, k, w, QVL_DT_Q4_0, k, NULL, m, n, k);
	for (int l = 0; l < nlv; l++) {
		memset(y, 0xff, m * n * sizeof(float));
		lv[l].matmul_fast(y, n, x, k, r, QVL_DT_Q4_0_X8, k, NULL, m, n, k);
		ok(!memcmp(y0, y, m * n * sizeof(float)),
		   "exact, m %zu n %zu: %s on Q4_0_X8 == ref on Q4_0 bit for bit", m, n,
		   lv[l].name);
	}
	free(w);
	free(r);
	free(x);
	free(y0);
	free(y);
}

static void test_random(void)
{
	bool lvl_ok[3] = {true, true, true};
	static const size_t ms[] = {1, 1, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 19};

	for (size_t c = 0; c < sizeof(ms) / sizeof(ms[0]); c++) {
		size_t m = ms[c], n = 8 * urand(1, 7), k = 32 * urand(1, 40);
		size_t ldw = k + 32 * (rnd() % 2), ldx = k + rnd() % 5, ldy = n + rnd() % 3;
		uint8_t *w = make_w(n, ldw, false), *r = repacked(w, n, ldw);
		float *x = xmalloc(m * ldx * sizeof(float)), *bias = xmalloc(n * sizeof(float));
		float *y0 = xmalloc(m * ldy * sizeof(float)), *y = xmalloc(m * ldy * sizeof(float));
		float ymax = 0;

		for (size_t i = 0; i < m * ldx; i++)
			x[i] = frand(2.0f) * (float)(1 + i % 7);
		for (size_t j = 0; j < n; j++)
			bias[j] = frand(1.0f);
		lv[0].matmul_fast(y0, ldy, x, ldx, w, QVL_DT_Q4_0, ldw, bias, m, n, k);
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++)
				ymax = fmaxf(ymax, fabsf(y0[i * ldy + j]));
		for (int l = 0; l < nlv; l++) {
			lv[l].matmul_fast(y, ldy, x, ldx, r, QVL_DT_Q4_0_X8, ldw, bias, m, n, k);
			for (size_t i = 0; i < m; i++)
				for (size_t j = 0; j < n; j++)
					if (!(fabsf(y[i * ldy + j] - y0[i * ldy + j]) <=
					      1e-5f * ymax + 1e-6f)) {
						if (lvl_ok[l])
							diag(
							    "m %zu n %zu k %zu [%zu][%zu]: %s %.8g "
							    "ref %.8g",
							    m, n, k, i, j, lv[l].name,
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
	for (int l = 0; l < nlv; l++)
		ok(lvl_ok[l],
		   "random, ragged m, k, strides: %s on Q4_0_X8 within 1e-5 of ref on Q4_0",
		   lv[l].name);
}

int main(void)
{
	rng_seed(0x9d2c5680a5c3f1e7ull);
	for (int l = QVL_SIMD_REF; l <= QVL_SIMD_AVX512; l++)
		if (!qvl_kernels_get(&lv[nlv], (enum qvl_simd_level)l))
			nlv++;
	diag("levels: %d (%s), avx512vnni %d", nlv, lv[nlv - 1].name, qvl_cpu_has_avx512vnni());
	test_layout();
	test_type();
	/* decode: one group, the 2-group passes and their tail */
	test_exact(1, 8);
	test_exact(1, 24);
	test_exact(1, 40);
	/* prefill: 8-row panels, activation rows in passes of 4 or 8 and a tail */
	test_exact(9, 16);
	test_exact(20, 8);
	test_random();
	return done_testing();
}
