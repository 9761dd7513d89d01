/* The AVX2 exact matmul for m > 1 (simd/matmul_avx2.c) against scalar
 * models of its orders, bit for bit:
 * - the packed kernel (X packed into 6-row strips, W into 16-column f32
 *   panels, a 6x16 register tile): every output is bias (or 0) plus the
 *   products added one fused multiply-add at a time in k order, whatever
 *   the tile, the panel depth or the block of rows it falls in;
 * - the streaming kernel of m <= small_m (4 X rows x 3 W rows): 8 lanes of
 *   fmaf chains, added as v8_hsum adds them, then the bias.
 * Ragged shapes (m, n, k not multiples of the tiles, 8 or the panel depth),
 * padded strides, several row blocks, every type the level widens itself. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kern_impl.h"
#include "make_w.h"
#include "rng.h"
#include "tap.h"

/* Random weights of type t (n rows, ldw apart) and their exact f32 values. */
static void *make_w_f32(enum qvl_dtype t, size_t n, size_t ldw, float *wf)
{
	void *w = make_w(t, n, ldw);

	for (size_t j = 0; j < n; j++)
		qvl_to_f32_ref(wf + j * ldw, qvl_wrow(w, t, ldw, j), t, ldw);
	return w;
}

/* The reference order: one fmaf per product, k ascending, from the bias. */
static float ref_dot(const float *x, const float *w, size_t k, float b)
{
	float y = b;

	for (size_t p = 0; p < k; p++)
		y = fmaf(x[p], w[p], y);
	return y;
}

/* The streaming kernel's order (m <= small_m, matmul_avx2.c small_tile):
 * lane l one fmaf chain over the p = l (mod 8) from zero, the lanes added
 * as v8_hsum adds them, then the bias. */
static float small_dot(const float *x, const float *w, size_t k, float b)
{
	float l[8] = {0};

	for (size_t p = 0; p < k; p++)
		l[p % 8] = fmaf(x[p], w[p], l[p % 8]);
	return (((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))) + b;
}

/* m rows of random X against n random rows of type t (ldw apart) through
 * K's matmul, every output compared with dot()'s order; the padding past
 * n must stay untouched. Returns the mismatches (the first few told). */
static int check_shape(const struct qvl_kernels *K, enum qvl_dtype t, size_t m, size_t n, size_t k,
		       size_t ldw, bool with_bias, float (*dot)(const float *, const float *, size_t,
							       float))
{
	size_t ldx = k + urand(0, 5), ldy = n + urand(0, 5);
	float *X = xmalloc(m * ldx * 4), *Y = xmalloc(m * ldy * 4);
	float *wf = xmalloc(n * ldw * 4), *bias = with_bias ? xmalloc(n * 4) : NULL;
	void *W = make_w_f32(t, n, ldw, wf);
	int bad = 0;

	for (size_t i = 0; i < m * ldx; i++)
		X[i] = frand(2.0f);
	for (size_t i = 0; bias && i < n; i++)
		bias[i] = frand(1.0f);
	for (size_t i = 0; i < m * ldy; i++)
		Y[i] = 12345.0f;
	K->matmul(Y, ldy, X, ldx, W, t, ldw, bias, m, n, k);
	for (size_t i = 0; i < m; i++) {
		for (size_t j = 0; j < n; j++) {
			float want = dot(X + i * ldx, wf + j * ldw, k, bias ? bias[j] : 0.0f);
			if (memcmp(&want, &Y[i * ldy + j], 4) && bad++ < 3)
				diag("%s m=%zu n=%zu k=%zu: Y[%zu][%zu] = %.9g, reference order "
				     "%.9g",
				     qvl_dtype_name(t), m, n, k, i, j, Y[i * ldy + j], want);
		}
		for (size_t p = n; p < ldy; p++)
			if (Y[i * ldy + p] != 12345.0f && bad++ < 3)
				diag("padding written at [%zu][%zu]", i, p);
	}
	free(X), free(Y), free(wf), free(bias), free(W);
	return bad;
}

static const enum qvl_dtype types[] = {QVL_DT_F32, QVL_DT_BF16, QVL_DT_F16, QVL_DT_Q8_0,
				       QVL_DT_Q4_0};

int main(void)
{
	struct qvl_kernels K;

	if (qvl_kernels_get(&K, QVL_SIMD_AVX2) < 0)
		skip_all("no AVX2 level on this CPU");
	diag("panel depth kc %zu, X block %zu bytes", qvl_gemm_blk.kc, qvl_gemm_blk.x_bytes);
	/* every m > 1 through the packed kernel, not the streaming one */
	size_t keep_sm = qvl_gemm_blk.small_m_avx2, keep_x = qvl_gemm_blk.x_bytes;
	qvl_gemm_blk.small_m_avx2 = 1;
	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
		enum qvl_dtype t = types[ti];
		bool q = qvl_dtype_is_block(t);
		int bad = 0, cases = 0;

		for (int c = 0; c < 24; c++) {
			size_t m = c < 8 ? (size_t)c + 2 : urand(2, c % 3 ? 60 : 200);
			size_t n = urand(1, c % 4 == 0 ? 100 : 40);
			size_t k = q ? 32 * urand(1, 40) : urand(1, c % 2 ? 1300 : 100);
			size_t ldw = k + (q ? 32 * urand(0, 1) : urand(0, 3));
			/* a third of the cases: the smallest row blocks (48 rows) */
			qvl_gemm_blk.x_bytes = c % 3 == 2 ? 1 : keep_x;
			bad += check_shape(&K, t, m, n, k, ldw, c & 1, ref_dot);
			cases++;
		}
		ok(!bad, "avx2 matmul %s: %d ragged shapes bit-identical to the fmaf order",
		   qvl_dtype_name(t), cases);
	}
	qvl_gemm_blk.x_bytes = keep_x;
	/* 2..64 rows through the streaming kernel (W rows in tiles of 3, X
	 * rows of 4): every row and column remainder, k past and short of
	 * its 64-byte steps */
	qvl_gemm_blk.small_m_avx2 = 64;
	for (size_t ti = 0; ti < 3; ti++) {
		enum qvl_dtype t = types[ti];
		int bad = 0, cases = 0;

		for (int c = 0; c < 30; c++) {
			size_t m = c < 15 ? (size_t)c + 2 : urand(2, 64), n = urand(1, c % 4 ? 14 : 50);
			size_t k = urand(1, c % 2 ? 1300 : 100);
			bad += check_shape(&K, t, m, n, k, k + urand(0, 3), c & 1, small_dot);
			cases++;
		}
		ok(!bad, "avx2 matmul %s, m <= 64: %d ragged shapes bit-identical to the "
		   "8-lane fmaf order", qvl_dtype_name(t), cases);
	}
	qvl_gemm_blk.small_m_avx2 = keep_sm;
	return done_testing();
}
