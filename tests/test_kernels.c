/* Every kernel at every SIMD level this CPU has, against the scalar _ref, on
 * random shapes with ragged tails (n, k not multiples of the vector width,
 * m = 1..9, odd row strides) and every weight type; attention also against
 * a naive two-pass softmax; the vector expf/erf paths against libm. */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_bf16.h"
#include "kern_impl.h"
#include "make_w.h"
#include "quant.h"
#include "pool.h"
#include "rng.h"
#include "tap.h"

static const enum qvl_dtype wtypes[] = {
    QVL_DT_F32,	 QVL_DT_BF16, QVL_DT_F16,  QVL_DT_Q8_0, QVL_DT_Q4_0,   QVL_DT_Q4_1,  QVL_DT_Q5_0,
    QVL_DT_Q5_1, QVL_DT_Q2_K, QVL_DT_Q3_K, QVL_DT_Q4_K, QVL_DT_Q5_K, QVL_DT_Q6_K, QVL_DT_IQ4_NL,
    QVL_DT_IQ4_XS};

static void test_matmul(const struct qvl_kernels *K, const struct qvl_kernels *R)
{
	for (size_t ti = 0; ti < sizeof(wtypes) / sizeof(wtypes[0]); ti++) {
		enum qvl_dtype t = wtypes[ti];
		int bad = 0, cases = 0;
		double worst = 0;

		for (int c = 0; c < 40; c++) {
			bool q = qvl_dtype_is_block(t);
			size_t blk = qvl_dtype_info(t)->blk;
			/* the last cases: several row blocks of the packed kernels
			 * (the smallest block the kernels allow) */
			size_t m = c < 9 ? (size_t)c + 1 : c >= 37 ? urand(130, 200) : urand(1, 40);
			size_t keep_x = qvl_gemm_blk.x_bytes;
			if (c >= 37)
				qvl_gemm_blk.x_bytes = 1;
			size_t n = urand(1, c % 4 == 0 ? 300 : 70);
			size_t k = q ? blk * urand(1, blk > 32 ? 3 : 12)
				     : urand(1, c % 5 == 0 ? 1100 : 200);
			size_t ldw = k + (q ? blk * urand(0, 1) : urand(0, 3));
			size_t ldx = k + urand(0, 5), ldy = n + urand(0, 5);
			float *X = xmalloc(m * ldx * 4), *Y = xmalloc(m * ldy * 4);
			float *Y0 = xmalloc(m * ldy * 4), *bias = c & 1 ? xmalloc(n * 4) : NULL;
			float *wr = xmalloc(k * 4);
			void *W = make_w(t, n, ldw);

			for (size_t i = 0; i < m * ldx; i++)
				X[i] = frand(2.0f);
			for (size_t i = 0; bias && i < n; i++)
				bias[i] = frand(1.0f);
			for (size_t i = 0; i < m * ldy; i++)
				Y[i] = Y0[i] = 12345.0f; /* the padding must stay untouched */
			R->matmul(Y0, ldy, X, ldx, W, t, ldw, bias, m, n, k);
			K->matmul(Y, ldy, X, ldx, W, t, ldw, bias, m, n, k);
			qvl_gemm_blk.x_bytes = keep_x;
			for (size_t j = 0; j < n; j++) {
				qvl_to_f32_ref(wr, qvl_wrow(W, t, ldw, j), t, k);
				for (size_t i = 0; i < m; i++) {
					double bound = bias ? fabs(bias[j]) : 0;
					for (size_t p = 0; p < k; p++)
						bound += fabs((double)X[i * ldx + p] * wr[p]);
					double e = fabs((double)Y[i * ldy + j] - Y0[i * ldy + j]);
					double rel = e / (bound + 1e-30);
					worst = rel > worst ? rel : worst;
					if (!(e <= 2e-6 * bound + 1e-30) && bad++ < 3)
						diag("%s m=%zu n=%zu k=%zu: Y[%zu][%zu]=%g ref %g",
						     qvl_dtype_name(t), m, n, k, i, j,
						     Y[i * ldy + j], Y0[i * ldy + j]);
				}
				for (size_t i = 0; i < m; i++)
					for (size_t p = n; p < ldy; p++)
						if (Y[i * ldy + p] != 12345.0f && bad++ < 3)
							diag("padding written at [%zu][%zu]", i, p);
			}
			cases++;
			free(X), free(Y), free(Y0), free(bias), free(W), free(wr);
		}
		ok(!bad, "%s matmul %s: %d random shapes (worst error %.2g of sum|x*w|)", K->name,
		   qvl_dtype_name(t), cases, worst);
	}
}

static bool close_rel(double a, double b, double rel, double abs_floor)
{
	return fabs(a - b) <= rel * fabs(b) + abs_floor || (isnan(a) && isnan(b)) || a == b;
}

/* Compare arrays; name what differs. */
static int cmp(const char *what, const float *a, const float *b, size_t n, double rel,
	       const float *floor_of, double floor_scale)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		double fl = floor_of ? floor_scale * fabs(floor_of[i]) : floor_scale;
		if (!close_rel(a[i], b[i], rel, fl) && bad++ < 3)
			diag("%s[%zu] = %.9g, ref %.9g", what, i, a[i], b[i]);
	}
	return bad;
}

static void test_rows(const struct qvl_kernels *K, const struct qvl_kernels *R)
{
	int bad_norm = 0, bad_act = 0, bad_sm = 0, bad_rope = 0, bad_add = 0;

	for (int c = 0; c < 60; c++) {
		size_t n = urand(1, c % 3 ? 70 : 3000);
		float *x = xmalloc(n * 4), *x2 = xmalloc(n * 4), *w = xmalloc(n * 4);
		float *b = xmalloc(n * 4), *y = xmalloc(n * 4), *y0 = xmalloc(n * 4);
		float *r = xmalloc(n * 4), *xa = xmalloc(n * 4), *xb = xmalloc(n * 4);
		float sc = c % 4 == 0 ? 30.0f : 4.0f;

		for (size_t i = 0; i < n; i++) {
			x[i] = frand(sc);
			w[i] = frand(2.0f);
			b[i] = frand(1.0f);
			r[i] = frand(3.0f);
		}
		R->rmsnorm(y0, x, w, n, 1e-6f);
		K->rmsnorm(y, x, w, n, 1e-6f);
		bad_norm += cmp("rmsnorm", y, y0, n, 1e-5, NULL, 1e-6);
		memcpy(y, x, n * 4); /* in place */
		K->rmsnorm(y, y, w, n, 1e-6f);
		bad_norm += cmp("rmsnorm in place", y, y0, n, 1e-5, NULL, 1e-6);
		R->layernorm(y0, x, w, b, n, 1e-5f);
		K->layernorm(y, x, w, b, n, 1e-5f);
		bad_norm += cmp("layernorm", y, y0, n, 1e-5, NULL, 1e-5);
		memcpy(xa, x, n * 4);
		memcpy(xb, x, n * 4);
		R->add_rmsnorm(y0, xa, r, w, n, 1e-6f);
		K->add_rmsnorm(y, xb, r, w, n, 1e-6f);
		bad_norm += cmp("add_rmsnorm y", y, y0, n, 1e-5, NULL, 1e-6);
		bad_add += cmp("add_rmsnorm x", xb, xa, n, 0, NULL, 0);
		memcpy(xb, x, n * 4);
		K->add(xb, r, n);
		bad_add += cmp("add", xb, xa, n, 0, NULL, 0);

		/* activations: relative 1e-6 of the libm reference, plus a floor
		 * of 1e-7 |x| where the reference itself loses digits to the
		 * cancellation 1 + tanh/erf(u) ~ 0 */
		R->silu_mul(y0, x, r, n);
		K->silu_mul(y, x, r, n);
		bad_act += cmp("silu_mul", y, y0, n, 1e-6, NULL, 1e-37);
		memcpy(y0, x, n * 4), memcpy(y, x, n * 4);
		R->gelu_tanh(y0, n), K->gelu_tanh(y, n);
		bad_act += cmp("gelu_tanh", y, y0, n, 1e-6, x, 1e-7);
		memcpy(y0, x, n * 4), memcpy(y, x, n * 4);
		R->gelu_erf(y0, n), K->gelu_erf(y, n);
		bad_act += cmp("gelu_erf", y, y0, n, 1e-6, x, 1e-7);
		memcpy(y0, x, n * 4), memcpy(y, x, n * 4);
		R->softmax(y0, n), K->softmax(y, n);
		bad_sm += cmp("softmax", y, y0, n, 1e-5, NULL, 1e-37);

		size_t half = n / 2 ? n / 2 : 1;
		if (2 * half <= n) {
			memcpy(y0, x, n * 4), memcpy(y, x, n * 4);
			for (size_t i = 0; i < half; i++) {
				w[i] = cosf((float)i * 0.37f + (float)c);
				b[i] = sinf((float)i * 0.37f + (float)c);
			}
			R->rope(y0, w, b, half), K->rope(y, w, b, half);
			bad_rope += cmp("rope", y, y0, 2 * half, 1e-6, NULL, 1e-6 * sc);
			/* fused norm + rope against the two reference kernels */
			for (size_t i = 0; i < 2 * half; i++)
				r[i] = 1.0f + frand(0.5f);
			memcpy(y0, x, n * 4), memcpy(y, x, n * 4);
			R->rmsnorm(y0, y0, r, 2 * half, 1e-6f);
			R->rope(y0, w, b, half);
			K->rmsnorm_rope(y, r, w, b, half, 1e-6f);
			bad_rope += cmp("rmsnorm_rope", y, y0, 2 * half, 1e-5, NULL, 1e-6);
		}
		memcpy(x2, x, n * 4);
		(void)x2;
		free(x), free(x2), free(w), free(b), free(y), free(y0), free(r), free(xa), free(xb);
	}
	ok(!bad_norm, "%s rmsnorm/layernorm/add_rmsnorm match ref", K->name);
	ok(!bad_add, "%s add exact", K->name);
	ok(!bad_act, "%s silu_mul/gelu_tanh/gelu_erf within 1e-6 of libm", K->name);
	ok(!bad_sm, "%s softmax matches ref", K->name);
	ok(!bad_rope, "%s rope and rmsnorm_rope match ref", K->name);
}

/* Special values through the activations: huge, tiny, zero, inf. */
static void test_act_edges(const struct qvl_kernels *K, const struct qvl_kernels *R)
{
	float v[] = {0.0f,    -0.0f,	1e-30f, -1e-30f, 1e-3f, -1e-3f, 0.5f,	  -0.5f,
		     0.9277f, -0.9278f, 3.0f,	-3.0f,	 9.0f,	-9.0f,	15.0f,	  -15.0f,
		     80.0f,   -80.0f,	100.0f, -100.0f, 1e30f, -1e30f, INFINITY, -INFINITY};
	size_t n = sizeof(v) / sizeof(v[0]);
	float a[sizeof(v) / sizeof(v[0])], b[sizeof(v) / sizeof(v[0])], one[64];
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		one[i] = 1.0f;
	memcpy(a, v, sizeof(v)), memcpy(b, v, sizeof(v));
	K->gelu_erf(a, n), R->gelu_erf(b, n);
	bad += cmp("gelu_erf edge", a, b, n, 1e-6, v, 1e-7);
	memcpy(a, v, sizeof(v)), memcpy(b, v, sizeof(v));
	K->gelu_tanh(a, n), R->gelu_tanh(b, n);
	bad += cmp("gelu_tanh edge", a, b, n, 1e-6, v, 1e-7);
	K->silu_mul(a, v, one, n), R->silu_mul(b, v, one, n);
	bad += cmp("silu edge", a, b, n, 1e-6, NULL, 1e-37);
	ok(!bad, "%s activations on special values", K->name);

	/* exp over its whole range through softmax of two values */
	bad = 0;
	for (float d = -120.0f; d <= 0.0f; d += 0.37f) {
		float p[2] = {0.0f, d}, q[2] = {0.0f, d};
		K->softmax(p, 2), R->softmax(q, 2);
		if (!close_rel(p[1], q[1], 1e-6, 1e-44) && bad++ < 3)
			diag("softmax(0, %g)[1] = %g, ref %g", d, p[1], q[1]);
	}
	ok(!bad, "%s exp accurate from -120 to 0 (subnormal results included)", K->name);
}

/* Naive attention: all scores, max, exp, normalize, then weighted sum. */
static void attn_naive(float *out, const float *q, const float *Kf, const float *Vf, size_t stride,
		       size_t nkv, size_t dim, float scale)
{
	double *s = xmalloc((nkv ? nkv : 1) * sizeof(double)), mx = -INFINITY, sum = 0;

	for (size_t j = 0; j < nkv; j++) {
		double a = 0;
		for (size_t d = 0; d < dim; d++)
			a += (double)q[d] * Kf[j * stride + d];
		s[j] = a * scale;
		mx = s[j] > mx ? s[j] : mx;
	}
	for (size_t j = 0; j < nkv; j++)
		sum += s[j] = exp(s[j] - mx);
	for (size_t d = 0; d < dim; d++) {
		double a = 0;
		for (size_t j = 0; j < nkv; j++)
			a += s[j] * Vf[j * stride + d];
		out[d] = nkv ? (float)(a / sum) : 0.0f;
	}
	free(s);
}

static void test_attn(const struct qvl_kernels *K, const struct qvl_kernels *R)
{
	const enum qvl_dtype kt[] = {QVL_DT_F32, QVL_DT_BF16, QVL_DT_F16};
	int bad = 0, bad_naive = 0, bad_gqa = 0;

	for (int c = 0; c < 45; c++) {
		enum qvl_dtype t = kt[c % 3];
		size_t dim = c % 5 == 0	  ? 128
			     : c % 5 == 1 ? 64
					  : urand(1, 100),
		       nkv = urand(0, c % 4 ? 70 : 700);
		size_t stride = dim + urand(0, 9), es = t == QVL_DT_F32 ? 4 : 2;
		float *q = xmalloc(dim * 4), *o = xmalloc(dim * 4), *o0 = xmalloc(dim * 4);
		float *on = xmalloc(dim * 4), *Kf = xmalloc((nkv * stride + 1) * 4);
		float *Vf = xmalloc((nkv * stride + 1) * 4);
		void *Kc = xmalloc(nkv * stride * es + 1), *Vc = xmalloc(nkv * stride * es + 1);
		float scale = 1.0f / sqrtf((float)dim);

		for (size_t d = 0; d < dim; d++)
			q[d] = frand(c % 7 == 0 ? 20.0f : 2.0f);
		for (size_t i = 0; i < nkv * stride; i++) {
			Kf[i] = frand(2.0f);
			Vf[i] = frand(2.0f);
		}
		/* store as kvtype, then widen back so the naive ref sees the
		 * same values */
		R->from_f32(Kc, t, Kf, nkv * stride);
		R->from_f32(Vc, t, Vf, nkv * stride);
		R->to_f32(Kf, Kc, t, nkv * stride);
		R->to_f32(Vf, Vc, t, nkv * stride);
		R->attn_head(o0, q, Kc, Vc, t, stride, nkv, dim, scale);
		K->attn_head(o, q, Kc, Vc, t, stride, nkv, dim, scale);
		attn_naive(on, q, Kf, Vf, stride, nkv, dim, scale);
		/* f32 rounding of a score s is ~ sqrt(dim) * eps * |s|, and
		 * exp() turns that absolute error into a relative error of the
		 * weight: large scores (the c % 7 == 0 cases) widen the bound */
		double smax = 0;
		for (size_t j = 0; j < nkv; j++) {
			double a = 0;
			for (size_t d = 0; d < dim; d++)
				a += (double)q[d] * Kf[j * stride + d];
			smax = fmax(smax, fabs(a * scale));
		}
		double atol = 1e-5 + 2.0 * sqrt((double)dim) * FLT_EPSILON * smax;
		bad += cmp("attn vs ref", o, o0, dim, 1e-5, NULL, atol);
		/* a group of nq query heads over the same KV = nq single heads */
		size_t nq = urand(1, 20);
		float *qg = xmalloc(nq * dim * 4), *og = xmalloc(nq * dim * 4);
		for (size_t i = 0; i < nq * dim; i++)
			qg[i] = frand(2.0f);
		K->attn_gqa(og, qg, nq, Kc, Vc, t, stride, nkv, dim, scale);
		for (size_t h = 0; h < nq; h++) {
			R->attn_head(o0, qg + h * dim, Kc, Vc, t, stride, nkv, dim, scale);
			bad_gqa += cmp("attn_gqa", og + h * dim, o0, dim, 1e-5, NULL, 1e-5);
		}
		free(qg), free(og);
		bad_naive += cmp("attn vs naive", o, on, dim, 1e-5, NULL, atol);
		free(q), free(o), free(o0), free(on), free(Kf), free(Vf), free(Kc), free(Vc);
	}
	ok(!bad, "%s attn_head matches ref (f32/bf16/f16 KV, ragged dims)", K->name);
	ok(!bad_naive, "%s attn_head matches a naive two-pass softmax", K->name);
	ok(!bad_gqa, "%s attn_gqa = attn_head per query head (1..20 heads per group)", K->name);
}

static void test_convert(const struct qvl_kernels *K, const struct qvl_kernels *R)
{
	const enum qvl_dtype kt[] = {QVL_DT_BF16, QVL_DT_F16, QVL_DT_F32};
	int bad = 0;

	for (int c = 0; c < 30; c++) {
		size_t n = urand(1, 300);
		float *x = xmalloc(n * 4), *y = xmalloc(n * 4), *y0 = xmalloc(n * 4);
		uint8_t *a = xmalloc(n * 4 + 64), *b = xmalloc(n * 4);
		enum qvl_dtype t = kt[c % 3];
		size_t es = t == QVL_DT_F32 ? 4 : 2;

		memset(a + n * es, 0xab, 64); /* nothing past n may be written */

		for (size_t i = 0; i < n; i++) {
			uint32_t u = rnd();
			memcpy(&x[i], &u, 4); /* any bit pattern: subnormals, inf */
			if (isnan(x[i]))
				x[i] = frand(1e5f);
			if (c % 2)
				x[i] = frand(c % 4 == 1 ? 1e-5f : 7e4f);
		}
		K->from_f32(a, t, x, n);
		R->from_f32(b, t, x, n);
		if (memcmp(a, b, n * es) && bad++ < 3)
			diag("%s from_f32 %s differs", K->name, qvl_dtype_name(t));
		for (size_t i = 0; i < 64; i++)
			if (a[n * es + i] != 0xab && bad++ < 3) {
				diag("%s from_f32 %s wrote past n = %zu", K->name,
				     qvl_dtype_name(t), n);
				break;
			}
		K->to_f32(y, a, t, n);
		R->to_f32(y0, b, t, n);
		if (memcmp(y, y0, n * 4) && bad++ < 3)
			diag("%s to_f32 %s differs", K->name, qvl_dtype_name(t));
		free(x), free(y), free(y0), free(a), free(b);
	}
	ok(!bad, "%s to_f32/from_f32 bit-exact with ref (incl. subnormals, inf)", K->name);
}

/* The scalar f16 conversion against the definition. */
static void test_f16(void)
{
	int bad = 0;

	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = qvl_f16_to_f32((uint16_t)h);
		int e = (h >> 10) & 31, m = h & 0x3ff;
		double want = e == 0	? ldexp(m, -24)
			      : e == 31 ? (m ? NAN : INFINITY)
					: ldexp(1024 + m, e - 25);
		if (h & 0x8000)
			want = -want;
		if (!(f == want || (isnan(f) && isnan(want))) && bad++ < 3)
			diag("f16 %#x -> %g, want %g", h, f, want);
		if (!isnan(f) && qvl_f32_to_f16(f) != h && bad++ < 3)
			diag("f16 %#x does not round-trip", h);
	}
	/* ties to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 */
	if (qvl_f32_to_f16(1.0f + 0x1p-11f) != 0x3c00 ||
	    qvl_f32_to_f16(1.0f + 3 * 0x1p-11f) != 0x3c02 || qvl_f32_to_f16(65520.0f) != 0x7c00 ||
	    qvl_f32_to_f16(65519.0f) != 0x7bff || qvl_f32_to_f16(0x1p-25f) != 0 ||
	    qvl_f32_to_f16(0x1.8p-25f) != 1)
		bad++;
	ok(!bad, "f16 <-> f32 scalar conversions exact, round to nearest even");
}

static void test_dispatch(void)
{
	struct qvl_err err = {{0}};
	enum qvl_simd_level best = qvl_simd_detect();

	setenv("QVL_SIMD", "ref", 1);
	ok(qvl_kernels_init(&err) == 0 && qvl_kern.level == QVL_SIMD_REF &&
	       qvl_kern.matmul == qvl_matmul_ref,
	   "QVL_SIMD=ref selects the reference kernels");
	setenv("QVL_SIMD", "bogus", 1);
	int rc = qvl_kernels_init(&err);
	ok(rc == -EINVAL && strstr(err.msg, "bogus"), "QVL_SIMD=bogus rejected: %s", err.msg);
	if (best < QVL_SIMD_AVX512) {
		setenv("QVL_SIMD", "avx512", 1);
		rc = qvl_kernels_init(&err);
		ok(rc == -EINVAL, "QVL_SIMD=avx512 on a CPU without it rejected: %s", err.msg);
	} else {
		setenv("QVL_SIMD", "avx2", 1);
		ok(qvl_kernels_init(&err) == 0 && qvl_kern.level == QVL_SIMD_AVX2,
		   "QVL_SIMD=avx2 honoured on an AVX-512 CPU");
	}
	unsetenv("QVL_SIMD");
	ok(qvl_kernels_init(&err) == 0 && qvl_kern.level == best, "default level is %s",
	   qvl_simd_name(best));
	/* QVL_MATMUL is gone (--precision replaced it): setting it changes nothing */
	setenv("QVL_MATMUL", "bf16dot", 1);
	ok(qvl_kernels_init(&err) == 0 && qvl_kern.matmul != qvl_kern.matmul_fast,
	   "the global table's matmul is the exact one, whatever the environment");
	unsetenv("QVL_MATMUL");
	enum qvl_precision p = QVL_PREC_EXACT;
	ok(qvl_precision_parse("bf16", &p) == 0 && p == QVL_PREC_BF16 &&
	       qvl_precision_parse("exact", &p) == 0 && p == QVL_PREC_EXACT &&
	       qvl_precision_parse("fast", &p) == -EINVAL && p == QVL_PREC_EXACT &&
	       !strcmp(qvl_precision_name(QVL_PREC_BF16), "bf16") &&
	       !strcmp(qvl_precision_name(QVL_PREC_EXACT), "exact"),
	   "precision names parse and print both ways; others rejected");
	ok(qvl_kernels_bf16dot(&qvl_kern) ==
	       (qvl_kern.level == QVL_SIMD_AVX512 && qvl_cpu_has_avx512bf16()),
	   "bf16 dot products where the avx512 level has AVX512-BF16 (%s here)",
	   qvl_kernels_bf16dot(&qvl_kern) ? "yes" : "no");
	qvl_kernels_init(&err);
}

#ifdef HAVE_AVX512BF16_KERNELS
/* The bf16 kernel on random X (and bias) against the reference: |Y - ref|
 * of every output within 4e-3 of its sum |x w| (+ |bias|), the bf16 rounding
 * of each x and f32 accumulation. Returns how many are off; Y0 holds the
 * reference. */
static int bf16_run(float *Y, float *Y0, size_t ldy, float *X, size_t ldx, const uint16_t *W,
		    size_t ldw, float *bias, size_t m, size_t n, size_t k)
{
	int bad = 0;

	for (size_t i = 0; i < m * ldx; i++)
		X[i] = frand(2.0f);
	for (size_t i = 0; bias && i < n; i++)
		bias[i] = frand(1.0f);
	qvl_matmul_ref(Y0, ldy, X, ldx, W, QVL_DT_BF16, ldw, bias, m, n, k);
	qvl_matmul_bf16dot_avx512(Y, ldy, X, ldx, W, QVL_DT_BF16, ldw, bias, m, n, k);
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++) {
			double bound = bias ? fabs(bias[j]) : 0;
			for (size_t p = 0; p < k; p++)
				bound += fabs(X[i * ldx + p] * qvl_bf16_to_f32(W[j * ldw + p]));
			double e = fabs((double)Y[i * ldy + j] - Y0[i * ldy + j]);
			if (!(e <= 4e-3 * bound + 1e-30) && bad++ < 3)
				diag("bf16dot m=%zu n=%zu k=%zu [%zu][%zu] %g ref %g", m, n, k, i,
				     j, Y[i * ldy + j], Y0[i * ldy + j]);
		}
	return bad;
}

/* The packed GEMM (more than 64 rows, simd/gemm_bf16_avx512.c) at its
 * edges: row panels of 13-14 and ragged ones (m 65..300, one case beyond
 * its 512-row blocks), n not a multiple of its 32-column panels, odd k and
 * several 256-pair k blocks (k up to 1300); and its sums do not depend on
 * the other rows of the call (the last rows alone, still > 64, bit for
 * bit) nor on the columns beside them (the pool's column split). */
/* struct qvl_gemm_bf16_out's pair: the two tiles into Z (rows zld apart) */
struct pair_sink {
	float *z;
	size_t zld;
};

static void pair_copy(void *ctx, const float *lo, const float *hi, size_t row, int mr, size_t col)
{
	const struct pair_sink *ps = ctx;

	for (int r = 0; r < mr; r++) {
		memcpy(ps->z + (row + (size_t)r) * ps->zld + col, lo + r * 32, 32 * sizeof(float));
		memcpy(ps->z + (row + (size_t)r) * ps->zld + col + 32, hi + r * 32,
		       32 * sizeof(float));
	}
}

/* The output handed over as pairs of tiles (the vision tower's qkv heads):
 * every value once, the bits of the per-call GEMM, from rows a.. and
 * columns split at a multiple of 64. */
static void test_bf16_gemm_pairs(void)
{
	int bad = 0;

	for (int c = 0; c < 6; c++) {
		size_t m = c == 5 ? urand(513, 1100) : urand(65, 300), n = 64 * urand(1, 5),
		       k = c & 1 ? 2 * urand(1, 400) - 1 : urand(1, 1100), ldx = k + urand(0, 3);
		size_t jp = 64 * urand(0, n / 64 - 1), xw = qvl_gemm_bf16_x_words(m, k);
		float *X = xmalloc(m * ldx * 4), *Y = xmalloc(m * n * 4), *Z = xmalloc(m * n * 4);
		float *bias = c & 2 ? xmalloc(n * 4) : NULL;
		uint16_t *W = make_w(QVL_DT_BF16, n, k);
		uint32_t *Wp = aligned_alloc(64, (qvl_gemm_bf16_packed_words(n, k) * 4 + 63) & ~63ul);
		uint32_t *Xp = xmalloc(xw * 4);
		size_t pw = qvl_gemm_bf16_packed_words(32, k);

		for (size_t i = 0; i < m * ldx; i++)
			X[i] = frand(2);
		for (size_t i = 0; bias && i < n; i++)
			bias[i] = frand(1);
		qvl_gemm_bf16_pack(Wp, W, k, n, k);
		qvl_gemm_bf16_pack_x(Xp, X, ldx, m, k, 0, 1);
		if (qvl_gemm_bf16_packed_avx512(Y, n, X, ldx, Wp, bias, m, n, k))
			bad++;
		memset(Z, 0xff, m * n * 4);
		struct pair_sink ps = {Z, n};
		struct qvl_gemm_bf16_out o0 = {.pair = pair_copy, .ctx = &ps},
					 o1 = {.pair = pair_copy, .ctx = &ps, .xc = jp};
		if ((jp && qvl_gemm_bf16_packed_xw_avx512(&o0, Xp, Wp, bias, m, jp, k)) ||
		    qvl_gemm_bf16_packed_xw_avx512(&o1, Xp, Wp + jp / 32 * pw,
						   bias ? bias + jp : NULL, m, n - jp, k))
			bad++;
		if (memcmp(Y, Z, m * n * 4) && bad++ < 3)
			diag("bf16 gemm pairs m=%zu n=%zu k=%zu (split at %zu): differs", m, n, k,
			     jp);
		/* X packed by the call (qvl_gemm_bf16_packed_out_avx512) */
		memset(Z, 0xff, m * n * 4);
		o1.xc = 0;
		if (qvl_gemm_bf16_packed_out_avx512(&o1, X, ldx, Wp, bias, m, n, k))
			bad++;
		else if (memcmp(Y, Z, m * n * 4) && bad++ < 3)
			diag("bf16 gemm pairs m=%zu n=%zu k=%zu, X packed per call: differs", m, n,
			     k);
		/* rows from a.. (the row argument; X packed for those rows) */
		size_t a = urand(0, m - 65);
		memset(Z, 0xff, m * n * 4);
		qvl_gemm_bf16_pack_x(Xp, X + a * ldx, ldx, m - a, k, 0, 1);
		o1.xc = 0, o1.row = a;
		if (qvl_gemm_bf16_packed_xw_avx512(&o1, Xp, Wp, bias, m - a, n, k) == 0 &&
		    memcmp(Y + a * n, Z + a * n, (m - a) * n * 4) && bad++ < 3)
			diag("bf16 gemm pairs m=%zu n=%zu k=%zu from row %zu: differs", m, n, k, a);
		/* not whole pairs: refused, nothing written */
		o1.row = 0;
		if (qvl_gemm_bf16_packed_xw_avx512(&o1, Xp, Wp, bias, m, n - 32, k) != -EINVAL)
			bad++;
		free(X), free(Y), free(Z), free(bias), free(W), free(Wp), free(Xp);
	}
	ok(!bad, "bf16 GEMM output as pairs of tiles (y NULL) = the per-call GEMM, bit for bit");
}

static void test_bf16_gemm(void)
{
	int bad = 0, variant = 0, packed = 0, xpk = 0, xonly = 0;

	/* c 8, 9: 513..1100 rows (2-3 row blocks of up to 512) over k <= 1024,
	 * n across several 32-column panels; their rows a.. alone are often
	 * one block */
	for (int c = 0; c < 10; c++) {
		size_t m = c == 7 ? urand(513, 600) : c >= 8 ? urand(513, 1100) : urand(65, 300),
		       n = c >= 8 ? urand(65, 200) : c % 4 ? urand(33, 100) : 32,
		       k = c >= 8 ? 2 * urand(1, 512) - (size_t)(c & 1) :
			   c % 2 ? 2 * urand(1, 650) - 1 : urand(1, 1300);
		size_t ldw = k + urand(0, 3), ldx = k + urand(0, 3), ldy = n + urand(0, 3);
		float *X = xmalloc(m * ldx * 4), *Y = xmalloc(m * ldy * 4),
		      *Y0 = xmalloc(m * ldy * 4);
		float *bias = c & 2 ? xmalloc(n * 4) : NULL;
		uint16_t *W = make_w(QVL_DT_BF16, n, ldw);
		size_t a = urand(0, m - 65), j0 = urand(1, n - 1);

		bad += bf16_run(Y, Y0, ldy, X, ldx, W, ldw, bias, m, n, k);
		/* rows a.. alone, columns j0.. apart from the first ones */
		qvl_matmul_bf16dot_avx512(Y0, ldy, X + a * ldx, ldx, W, QVL_DT_BF16, ldw, bias,
					  m - a, j0, k);
		qvl_matmul_bf16dot_avx512(Y0 + j0, ldy, X + a * ldx, ldx, W + j0 * ldw, QVL_DT_BF16,
					  ldw, bias ? bias + j0 : NULL, m - a, n - j0, k);
		for (size_t i = a; i < m; i++)
			if (memcmp(Y0 + (i - a) * ldy, Y + i * ldy, n * sizeof(float)) &&
			    variant++ < 3)
				diag("bf16 gemm m=%zu n=%zu k=%zu: row %zu differs in rows %zu.. "
				     "columns split at %zu",
				     m, n, k, i, a, j0);
		/* W packed once (the vision tower's weights): the same bits, all
		 * columns and from a 32-column panel on */
		size_t pw = qvl_gemm_bf16_packed_words(32, k), jp = 32 * urand(0, (n - 1) / 32);
		uint32_t *Wp = aligned_alloc(64, (qvl_gemm_bf16_packed_words(n, k) * 4 + 63) & ~63ul);
		memset(Y0, 0xff, m * ldy * 4);
		qvl_gemm_bf16_pack(Wp, W, ldw, n, k);
		if (qvl_gemm_bf16_packed_avx512(Y0, ldy, X, ldx, Wp, bias, m, jp, k) ||
		    qvl_gemm_bf16_packed_avx512(Y0 + jp, ldy, X, ldx, Wp + jp / 32 * pw,
						bias ? bias + jp : NULL, m, n - jp, k))
			packed++;
		for (size_t i = 0; i < m; i++)
			if (memcmp(Y0 + i * ldy, Y + i * ldy, n * sizeof(float)) && packed++ < 3)
				diag("bf16 gemm packed m=%zu n=%zu k=%zu: row %zu differs "
				     "(columns split at %zu)",
				     m, n, k, i, jp);
		/* X packed once by two "threads" (the vision tower's column
		 * split), the GELU on each tile and the output packed as the
		 * next product's X: = the per-call GEMM, the GELU over the rows
		 * and qvl_gemm_bf16_pack_x() of them, bit for bit */
		size_t xw = qvl_gemm_bf16_x_words(m, k), hw = qvl_gemm_bf16_x_words(m, n);
		uint32_t *Xp = xmalloc(xw * 4), *Xo = xmalloc(hw * 4), *Xr = xmalloc(hw * 4);
		memset(Xp, 0xff, xw * 4), memset(Xo, 0xff, hw * 4), memset(Y0, 0xff, m * ldy * 4);
		qvl_gemm_bf16_pack_x(Xp, X, ldx, m, k, 1, 2);
		qvl_gemm_bf16_pack_x(Xp, X, ldx, m, k, 0, 2);
		struct qvl_gemm_bf16_out o0 = {.y = Y0, .ldy = ldy, .act = qvl_gelu_tanh_avx512,
					       .xo = Xo, .kn = n},
					 o1 = {.y = Y0 + jp, .ldy = ldy, .act = qvl_gelu_tanh_avx512,
					       .xo = Xo, .kn = n, .xc = jp};
		if (qvl_gemm_bf16_packed_xw_avx512(&o0, Xp, Wp, bias, m, jp, k) ||
		    qvl_gemm_bf16_packed_xw_avx512(&o1, Xp, Wp + jp / 32 * pw,
						   bias ? bias + jp : NULL, m, n - jp, k))
			xpk++;
		for (size_t i = 0; i < m; i++)
			qvl_gelu_tanh_avx512(Y + i * ldy, n);
		qvl_gemm_bf16_pack_x(Xr, Y, ldy, m, n, 0, 1);
		for (size_t i = 0; i < m; i++)
			if (memcmp(Y0 + i * ldy, Y + i * ldy, n * sizeof(float)) && xpk++ < 3)
				diag("bf16 gemm on packed X m=%zu n=%zu k=%zu: row %zu differs", m,
				     n, k, i);
		if (memcmp(Xo, Xr, hw * 4) && xpk++ < 3)
			diag("bf16 gemm m=%zu n=%zu k=%zu: output packed differs", m, n, k);
		/* the packed output alone (y NULL: the tiles left in the
		 * accumulators, fc1 -> fc2): the same words, no row written */
		memset(Xo, 0xff, hw * 4), memset(Y0, 0xff, m * ldy * 4);
		o0.y = o1.y = NULL;
		if (qvl_gemm_bf16_packed_xw_avx512(&o0, Xp, Wp, bias, m, jp, k) ||
		    qvl_gemm_bf16_packed_xw_avx512(&o1, Xp, Wp + jp / 32 * pw,
						   bias ? bias + jp : NULL, m, n - jp, k))
			xonly++;
		if (memcmp(Xo, Xr, hw * 4) && xonly++ < 3)
			diag("bf16 gemm m=%zu n=%zu k=%zu: output packed alone differs", m, n, k);
		for (size_t i = 0; i < m * ldy; i++)
			if (((uint32_t *)(void *)Y0)[i] != 0xffffffffu && xonly++ < 3) {
				diag("bf16 gemm m=%zu n=%zu k=%zu: y written with y NULL", m, n, k);
				break;
			}
		/* the same with X packed per call (qvl_gemm_bf16_packed_out_avx512) */
		memset(Xo, 0xff, hw * 4);
		if (qvl_gemm_bf16_packed_out_avx512(&o0, X, ldx, Wp, bias, m, jp, k) ||
		    qvl_gemm_bf16_packed_out_avx512(&o1, X, ldx, Wp + jp / 32 * pw,
						    bias ? bias + jp : NULL, m, n - jp, k))
			xonly++;
		else if (memcmp(Xo, Xr, hw * 4) && xonly++ < 3)
			diag("bf16 gemm m=%zu n=%zu k=%zu: output packed alone, X packed per call, "
			     "differs",
			     m, n, k);
		free(Xp), free(Xo), free(Xr);
		free(X), free(Y), free(Y0), free(bias), free(W), free(Wp);
	}
	ok(!bad, "bf16 GEMM (m 65..1100, ragged n, odd k) within bf16 rounding of the exact result");
	ok(!variant,
	   "bf16 GEMM: a row's sums do not depend on the other rows or columns of the call");
	ok(!packed, "bf16 GEMM on W packed once = packed per call, bit for bit");
	ok(!xpk, "bf16 GEMM on X packed in parts, GELU and output packed on the tiles = "
		 "per call + GELU + packing, bit for bit");
	ok(!xonly, "bf16 GEMM with the packed output alone (y NULL) = the same words, y "
		   "untouched");
}
#endif

/* The bf16 dot-product matmul (--precision bf16) rounds X to bf16: error within
 * 2^-8 of sum |x w| (one rounding of each x, f32 accumulation). */
static void test_bf16dot(void)
{
#ifdef HAVE_AVX512BF16_KERNELS
	int bad = 0, variant = 0;
	/* how many values this test draws depends on its shapes: the later
	 * tests get the sequence they would get without it */
	uint64_t rng_after = rng;

	if (!qvl_cpu_has_avx512bf16()) {
		skip(6, "no AVX512-BF16");
		return;
	}
	for (int c = 0; c < 30; c++) {
		/* m: the streamed tiles (up to 64 rows, 4 at a time, ragged) and,
		 * one case in five, the packed panels beyond 64 */
		size_t m = c % 5 ? urand(1, 20) : urand(20, 80), n = urand(1, 100),
		       k = urand(1, c % 3 ? 80 : 1200);
		size_t ldw = k + urand(0, 3), ldx = k + urand(0, 3), ldy = n + urand(0, 3);
		float *X = xmalloc(m * ldx * 4), *Y = xmalloc(m * ldy * 4),
		      *Y0 = xmalloc(m * ldy * 4);
		float *bias = c & 1 ? xmalloc(n * 4) : NULL;
		uint16_t *W = make_w(QVL_DT_BF16, n, ldw);

		bad += bf16_run(Y, Y0, ldy, X, ldx, W, ldw, bias, m, n, k);
		/* batch invariance: up to 64 rows, each row as if alone (m = 1) */
		for (size_t i = 0; m <= 64 && i < m; i++) {
			qvl_matmul_bf16dot_avx512(Y0, ldy, X + i * ldx, ldx, W, QVL_DT_BF16, ldw,
						  bias, 1, n, k);
			if (memcmp(Y0, Y + i * ldy, n * sizeof(float)) && variant++ < 3)
				diag("bf16dot m=%zu n=%zu k=%zu: row %zu differs from itself alone",
				     m, n, k, i);
		}
		free(X), free(Y), free(Y0), free(bias), free(W);
	}
	ok(!bad, "bf16dot matmul (--precision bf16) within bf16 rounding of the exact result");
	ok(!variant,
	   "bf16dot: every row of a batch of up to 64 equals that row alone, bit for bit");
	test_bf16_gemm();
	test_bf16_gemm_pairs();
	rng_seed(rng_after);
#else
	skip(8, "AVX512-BF16 kernels not built");
#endif
}

/* qvl_matmul_pool splits by W panels (or by X rows when n is small) over
 * 3 threads (more than this machine may have: oversubscribed is fine). */
static void test_matmul_pool(void)
{
	struct qvl_err err = {{0}};
	struct qvl_pool *pool;
	int bad = 0;

	if (qvl_kernels_init(&err) < 0 || qvl_pool_create(&pool, 3, NULL, &err) < 0) {
		skip(1, "no pool: %s", err.msg);
		return;
	}
	for (int c = 0; c < 24; c++) {
		size_t m = c % 3 == 0 ? 1 : urand(1, 70), n = urand(1, c % 2 ? 40 : 700);
		size_t k = urand(1, 300);
		float *X = xmalloc(m * k * 4), *Y = xmalloc(m * n * 4), *Y0 = xmalloc(m * n * 4);
		float *bias = xmalloc(n * 4);
		void *W = make_w(QVL_DT_BF16, n, k);

		for (size_t i = 0; i < m * k; i++)
			X[i] = frand(1.0f);
		for (size_t i = 0; i < n; i++)
			bias[i] = frand(1.0f);
		qvl_matmul_ref(Y0, n, X, k, W, QVL_DT_BF16, k, bias, m, n, k);
		qvl_matmul_pool(pool, Y, n, X, k, W, QVL_DT_BF16, k, bias, m, n, k);
		bad += cmp("matmul_pool", Y, Y0, m * n, 1e-4, NULL, 1e-4);
		free(X), free(Y), free(Y0), free(bias), free(W);
	}
	ok(!bad, "qvl_matmul_pool on 3 threads matches the reference");
	qvl_pool_destroy(pool);
}

int main(void)
{
	struct qvl_kernels R, K;
	const char *seed = getenv("QVL_TEST_SEED");

	if (seed)
		rng = strtoull(seed, NULL, 0) | 1;
	diag("seed %#llx (QVL_TEST_SEED to change), best level %s", (unsigned long long)rng,
	     qvl_simd_name(qvl_simd_detect()));
	qvl_kernels_get(&R, QVL_SIMD_REF);
	test_f16();
	test_dispatch();
	for (int lv = QVL_SIMD_AVX2; lv <= QVL_SIMD_AVX512; lv++) {
		if (qvl_kernels_get(&K, (enum qvl_simd_level)lv) < 0) {
			skip(16, "level %s not supported here",
			     qvl_simd_name((enum qvl_simd_level)lv));
			continue;
		}
		test_matmul(&K, &R);
		test_rows(&K, &R);
		test_act_edges(&K, &R);
		test_attn(&K, &R);
		test_convert(&K, &R);
	}
	test_bf16dot();
	test_matmul_pool();
	/* the reference against the naive attention too */
	test_attn(&R, &R);
	return done_testing();
}
