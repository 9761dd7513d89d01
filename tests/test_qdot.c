/* The int8 dot-product kernels (simd/qdot.h) for every block type at every
 * SIMD level this CPU has:
 * - activation quantization: the AVX2 bytes equal the scalar ones, and
 *   d * q is within 0.57 d of x (d / 2, and the f16 rounding of d);
 * - integer sums exactly: weights with power-of-two scales and activations
 *   whose blocks hold one ±127 (scale exactly 1) and small integers make
 *   every float operation exact, so every level must give the same bits;
 *   and the same bits as the double product of quant.c's dequantized
 *   weights and the activations;
 * - weights quantized by quant.c from random data (random bytes where it
 *   has no quantizer) on ragged shapes (n not a multiple of the 4- or 2-row tile,
 *   m = 1..7, several blocks, odd strides) against the reference within a
 *   tight tolerance (only the float summation order differs);
 * - the reference against f32 arithmetic on the dequantized weights with
 *   the int8-rounded activations. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern_impl.h"
#include "qdot.h"
#include "quant.h"
#include "rng.h"
#include "tap.h"

/* Byte offsets of each type's f16 scale fields (ggml-common.h), written
 * here independently of the kernels. */
static int scale_fields(enum qvl_dtype t, int off[2])
{
	switch (t) {
	case QVL_DT_Q4_1:
	case QVL_DT_Q5_1:
	case QVL_DT_Q4_K:
	case QVL_DT_Q5_K:
		off[0] = 0, off[1] = 2;
		return 2;
	case QVL_DT_Q2_K:
		off[0] = 80, off[1] = 82;
		return 2;
	case QVL_DT_Q3_K:
		off[0] = 108;
		return 1;
	case QVL_DT_Q6_K:
		off[0] = 208;
		return 1;
	default:
		off[0] = 0;
		return 1;
	}
}

/* n rows of random blocks, ldw values apart; scale fields from scale() */
static uint8_t *make_w(enum qvl_dtype t, size_t n, size_t ldw, uint16_t (*scale)(void))
{
	const struct qvl_dtype_info *di = qvl_dtype_info(t);
	size_t nblk = n * (ldw / di->blk), bb = di->blk_bytes;
	uint8_t *w = xmalloc(nblk * bb);
	int off[2], nf = scale_fields(t, off);

	for (size_t i = 0; i < nblk * bb; i++)
		w[i] = (uint8_t)rnd();
	for (size_t b = 0; b < nblk; b++)
		for (int f = 0; f < nf; f++) {
			uint16_t h = scale();
			memcpy(w + b * bb + off[f], &h, 2);
		}
	return w;
}

static uint16_t scale_pow2(void) /* 0.5 or 1 */
{
	return rnd() & 1 ? 0x3800 : 0x3c00;
}

static uint16_t scale_rand(void) /* about 0.001 .. 0.03 */
{
	return qvl_f32_to_f16(0.001f + (float)(rnd() % 1000) * 3e-5f);
}

static const enum qvl_dtype types[] = {
    QVL_DT_Q8_0, QVL_DT_Q4_0, QVL_DT_Q4_1, QVL_DT_Q5_0, QVL_DT_Q5_1, QVL_DT_IQ4_NL,
    QVL_DT_Q4_K, QVL_DT_Q5_K, QVL_DT_Q6_K, QVL_DT_Q3_K, QVL_DT_Q2_K, QVL_DT_IQ4_XS,
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

static struct qvl_kernels lv[3];
static int nlv;

/* dequantized row of weights by quant.c's codec (written apart from the
 * kernels, from ggml's definitions) */
static bool dequant(float *dst, enum qvl_dtype t, const uint8_t *w, size_t k)
{
	return qvl_dequant_row(t, w, dst, k) == 0;
}

/* n rows of weights quantized by quant.c from random data (realistic
 * scales and mins), or random bytes where it has no quantizer */
static uint8_t *make_wq(enum qvl_dtype t, size_t n, size_t ldw)
{
	const struct qvl_dtype_info *di = qvl_dtype_info(t);
	uint8_t *w = make_w(t, n, ldw, scale_rand);
	float *f = xmalloc(ldw * sizeof(float));

	if (qvl_quant_supported(t))
		for (size_t j = 0; j < n; j++) {
			for (size_t i = 0; i < ldw; i++)
				f[i] = frand(0.05f) + (i % 17 == 0 ? frand(0.3f) : 0.0f);
			if (qvl_quantize_row(t, f, w + j * (ldw / di->blk) * di->blk_bytes, ldw))
				exit(98);
		}
	free(f);
	return w;
}

static void test_act(void)
{
	const size_t k = 512;
	float *x = xmalloc(k * sizeof(float));
	uint8_t *a = xmalloc(qvl_qdot_act_bytes(QVL_DT_Q8_0, k) + 1024);
	uint8_t *b = xmalloc(qvl_qdot_act_bytes(QVL_DT_Q8_0, k) + 1024);

	for (int pass = 0; pass < 2; pass++) {
		enum qvl_dtype t = pass ? QVL_DT_Q4_K : QVL_DT_Q8_0;
		size_t bytes = qvl_qdot_act_bytes(t, k), blk = qvl_qdot_act_blk(t);
		for (size_t i = 0; i < k; i++)
			x[i] = frand(3.0f) * (float)(1 + (i / 64) % 5);
		for (size_t i = 0; i < blk; i++) /* a zero block */
			x[i] = 0.0f;
		/* a block with scale 1: ties round to even, as cvtps2dq does */
		for (size_t i = blk; i < 2 * blk; i++)
			x[i] = (float)(int)frand(100.0f);
		x[blk] = 127.0f, x[blk + 1] = 2.5f, x[blk + 2] = -3.5f;
		qvl_qact_row_ref(a, t, x, k);
		const int8_t *q1 = blk == QVL_QA_BLK ? ((const struct qvl_q8a *)a)[1].q
						     : ((const struct qvl_q8k *)a)[1].q;
		ok(q1[1] == 2 && q1[2] == -4, "act: ties to even (2.5 -> %d, -3.5 -> %d)", q1[1],
		   q1[2]);
		bool close = true;
		for (size_t i = 0; i < k; i++) {
			float d, v;
			int q;
			if (blk == QVL_QA_BLK) {
				const struct qvl_q8a *qa = (const struct qvl_q8a *)a + i / blk;
				d = qa->d, q = qa->q[i % blk];
			} else {
				const struct qvl_q8k *qk = (const struct qvl_q8k *)a + i / blk;
				d = qk->d, q = qk->q[i % blk];
			}
			v = d * (float)q;
			/* q = rint(x * 127 / amax); d is amax / 127 rounded to
			 * f16 for the 32-blocks (2^-11 relative, times |q| <= 127) */
			if (fabsf(v - x[i]) > d * 0.57f + 1e-30f)
				close = false;
		}
		ok(close, "act %s: d * q within 0.57 d of x",
		   qvl_qdot_act_blk(t) == 32 ? "q8a" : "q8k");
#ifdef HAVE_AVX2_KERNELS
		if (qvl_simd_detect() >= QVL_SIMD_AVX2) {
			memset(b, 0x55, bytes);
			qvl_qact_row_avx2(b, t, x, k);
			ok(!memcmp(a, b, bytes), "act %s: AVX2 bytes equal the scalar ones",
			   blk == 32 ? "q8a" : "q8k");
		}
#endif
	}
	free(x);
	free(a);
	free(b);
}

/* exact: every level bit-identical, and to the dequantized double product;
 * m == 1 is decode's kernels, m == 9 the prefill panels and the 8-row
 * tiles with a tail */
static void test_exact(enum qvl_dtype t, size_t m)
{
	const size_t n = 11, k = 768;
	uint8_t *w = make_w(t, n, k, scale_pow2);
	float *x = xmalloc(m * k * sizeof(float)), *y[3], *wd = xmalloc(k * sizeof(float));
	size_t blk = qvl_qdot_act_blk(t);

	for (size_t i = 0; i < m * k; i++)
		x[i] = (float)((int)(rnd() % 3) - 1);
	for (size_t i = 0; i < m * k; i += blk)
		x[i + rnd() % blk] = rnd() & 1 ? 127.0f : -127.0f;
	for (int l = 0; l < nlv; l++) {
		y[l] = xmalloc(m * n * sizeof(float));
		lv[l].matmul_fast(y[l], n, x, k, w, t, k, NULL, m, n, k);
	}
	for (int l = 1; l < nlv; l++)
		ok(!memcmp(y[0], y[l], m * n * sizeof(float)),
		   "%s exact, m %zu: %s == ref bit for bit", qvl_dtype_name(t), m, lv[l].name);
	if (dequant(wd, t, w, k)) {
		bool same = true;
		for (size_t j = 0; j < n; j++) {
			dequant(wd, t, qvl_wrow(w, t, k, j), k);
			for (size_t i = 0; i < m; i++) {
				double s = 0;
				for (size_t c = 0; c < k; c++)
					s += (double)wd[c] * x[i * k + c];
				if ((float)s != y[0][i * n + j]) {
					diag("%s [%zu][%zu]: %.9g vs %.9g", qvl_dtype_name(t), i, j,
					     s, y[0][i * n + j]);
					same = false;
				}
			}
		}
		ok(same, "%s exact, m %zu: ref == dequantized weights x activations",
		   qvl_dtype_name(t), m);
	}
	for (int l = 0; l < nlv; l++)
		free(y[l]);
	free(w);
	free(x);
	free(wd);
}

/* random data, ragged shapes, every level within a tight tolerance of ref;
 * ref against f32 arithmetic on the dequantized operands */
static void test_random(enum qvl_dtype t)
{
	size_t blk = qvl_qdot_act_blk(t), k = blk == 32 ? 32 * 13 : 256 * 3;
	bool lvl_ok[3] = {true, true, true}, deq_ok = true, have_deq = false;

	for (size_t m = 1; m <= 7; m++) {
		size_t n = m < 4 ? 1 + rnd() % 13 : 8 + rnd() % 9, ldw = k + blk * (rnd() % 2), ldx = k + rnd() % 5,
		       ldy = n + rnd() % 3;
		uint8_t *w = make_wq(t, n, ldw);
		float *x = xmalloc(m * ldx * sizeof(float)), *bias = xmalloc(n * sizeof(float));
		float *y0 = xmalloc(m * ldy * sizeof(float)), *y = xmalloc(m * ldy * sizeof(float));
		float *wd = xmalloc(k * sizeof(float)), *xd = xmalloc(k * sizeof(float));
		uint8_t *xq = xmalloc(qvl_qdot_act_bytes(t, k));
		float ymax = 0;

		for (size_t i = 0; i < m * ldx; i++)
			x[i] = frand(2.0f) * (float)(1 + i % 7);
		for (size_t j = 0; j < n; j++)
			bias[j] = frand(1.0f);
		lv[0].matmul_fast(y0, ldy, x, ldx, w, t, ldw, bias, m, n, k);
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++)
				ymax = fmaxf(ymax, fabsf(y0[i * ldy + j]));
		for (int l = 1; l < nlv; l++) {
			lv[l].matmul_fast(y, ldy, x, ldx, w, t, ldw, bias, m, n, k);
			for (size_t i = 0; i < m; i++)
				for (size_t j = 0; j < n; j++)
					if (!(fabsf(y[i * ldy + j] - y0[i * ldy + j]) <=
					      1e-5f * ymax + 1e-6f)) {
						if (lvl_ok[l])
							diag("%s m %zu n %zu [%zu][%zu]: %s %.8g "
							     "ref "
							     "%.8g",
							     qvl_dtype_name(t), m, n, i, j,
							     lv[l].name, y[i * ldy + j],
							     y0[i * ldy + j]);
						lvl_ok[l] = false;
					}
		}
		for (size_t i = 0; i < m; i++) {
			qvl_qact_row_ref(xq, t, x + i * ldx, k);
			for (size_t c = 0; c < k; c++) {
				if (blk == 32) {
					const struct qvl_q8a *b =
					    (const struct qvl_q8a *)xq + c / 32;
					xd[c] = b->d * (float)b->q[c % 32];
				} else {
					const struct qvl_q8k *b =
					    (const struct qvl_q8k *)xq + c / 256;
					xd[c] = b->d * (float)b->q[c % 256];
				}
			}
			for (size_t j = 0; j < n; j++) {
				if (!dequant(wd, t, qvl_wrow(w, t, ldw, j), k))
					break;
				have_deq = true;
				double s = bias[j], a = fabsf(bias[j]);
				for (size_t c = 0; c < k; c++) {
					s += (double)wd[c] * xd[c];
					a += fabs((double)wd[c] * xd[c]);
				}
				if (!(fabs(s - y0[i * ldy + j]) <= 2e-6 * a)) {
					diag("%s: ref %.8g dequantized %.8g", qvl_dtype_name(t),
					     y0[i * ldy + j], s);
					deq_ok = false;
				}
			}
		}
		free(w);
		free(x);
		free(bias);
		free(y0);
		free(y);
		free(wd);
		free(xd);
		free(xq);
	}
	for (int l = 1; l < nlv; l++)
		ok(lvl_ok[l], "%s random, m 1..7, ragged n: %s within 1e-5 of ref",
		   qvl_dtype_name(t), lv[l].name);
	if (have_deq)
		ok(deq_ok, "%s random: ref == f32 math on dequantized operands (2e-6 rel)",
		   qvl_dtype_name(t));
}

int main(void)
{
	rng_seed(0x2545f4914f6cdd1dull);
	for (int l = QVL_SIMD_REF; l <= QVL_SIMD_AVX512; l++)
		if (!qvl_kernels_get(&lv[nlv], (enum qvl_simd_level)l))
			nlv++;
	diag("levels: %d (%s), avx512vnni %d", nlv, lv[nlv - 1].name, qvl_cpu_has_avx512vnni());
	test_act();
	for (size_t i = 0; i < NTYPES; i++) {
		test_exact(types[i], 1);
		test_exact(types[i], 9);
		test_random(types[i]);
	}
	return done_testing();
}
