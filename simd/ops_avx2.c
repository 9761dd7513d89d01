/* AVX2 element-wise and row kernels: the AVX-512 ones (ops_avx512.c) with
 * 8-wide vectors; tails through maskload/maskstore. */
#include "config.h"

#ifdef HAVE_AVX2_KERNELS
#include <math.h>

#include "vec_avx2.h"

static T256 float sumsq(const float *x, size_t n)
{
	__m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
		a = _mm256_fmadd_ps(u, u, a);
		b = _mm256_fmadd_ps(v, v, b);
	}
	for (; i < n; i += 8) {
		__m256 u = v8_loadf(x + i, n - i);
		a = _mm256_fmadd_ps(u, u, a);
	}
	return v8_hsum(_mm256_add_ps(a, b));
}

static T256 void scale_mul(float *y, const float *x, const float *w, float r, size_t n)
{
	__m256 rv = _mm256_set1_ps(r);

	for (size_t i = 0; i < n; i += 8) {
		__m256 v = _mm256_mul_ps(v8_loadf(x + i, n - i), rv);
		v8_storef(y + i, _mm256_mul_ps(v, v8_loadf(w + i, n - i)), n - i);
	}
}

T256 void qvl_rmsnorm_avx2(float *y, const float *x, const float *w, size_t n, float eps)
{
	scale_mul(y, x, w, 1.0f / sqrtf(sumsq(x, n) / (float)n + eps), n);
}

T256 void qvl_add_rmsnorm_avx2(float *y, float *x, const float *r, const float *w, size_t n,
			       float eps)
{
	__m256 a = _mm256_setzero_ps();

	for (size_t i = 0; i < n; i += 8) {
		__m256 v = _mm256_add_ps(v8_loadf(x + i, n - i), v8_loadf(r + i, n - i));
		v8_storef(x + i, v, n - i);
		a = _mm256_fmadd_ps(v, v, a);
	}
	scale_mul(y, x, w, 1.0f / sqrtf(v8_hsum(a) / (float)n + eps), n);
}

T256 void qvl_layernorm_avx2(float *y, const float *x, const float *w, const float *b, size_t n,
			     float eps)
{
	__m256 a = _mm256_setzero_ps();

	for (size_t i = 0; i < n; i += 8)
		a = _mm256_add_ps(a, v8_loadf(x + i, n - i));
	__m256 mv = _mm256_set1_ps(v8_hsum(a) / (float)n);
	a = _mm256_setzero_ps();
	for (size_t i = 0; i < n; i += 8) {
		__m256 d = _mm256_sub_ps(v8_loadf(x + i, n - i), mv);
		d = _mm256_and_ps(d, _mm256_castsi256_ps(v8_mask(n - i)));
		a = _mm256_fmadd_ps(d, d, a);
	}
	__m256 rv = _mm256_set1_ps(1.0f / sqrtf(v8_hsum(a) / (float)n + eps));
	for (size_t i = 0; i < n; i += 8) {
		__m256 d = _mm256_mul_ps(_mm256_sub_ps(v8_loadf(x + i, n - i), mv), rv);
		d = _mm256_fmadd_ps(d, v8_loadf(w + i, n - i), v8_loadf(b + i, n - i));
		v8_storef(y + i, d, n - i);
	}
}

T256 void qvl_add_avx2(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i += 8)
		v8_storef(x + i, _mm256_add_ps(v8_loadf(x + i, n - i), v8_loadf(y + i, n - i)),
			  n - i);
}

T256 void qvl_silu_mul_avx2(float *out, const float *gate, const float *up, size_t n)
{
	const __m256 one = _mm256_set1_ps(1.0f);

	for (size_t i = 0; i < n; i += 8) {
		__m256 g = v8_loadf(gate + i, n - i);
		__m256 e = v8_exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
		__m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
		v8_storef(out + i, _mm256_mul_ps(s, v8_loadf(up + i, n - i)), n - i);
	}
}

/* x / (1 + exp(-2u)): see qvl_gelu_tanh_avx512. */
T256 void qvl_gelu_tanh_avx2(float *x, size_t n)
{
	const __m256 c2 = _mm256_set1_ps(-2.0f * 0.7978845608028654f),
		     c3 = _mm256_set1_ps(0.044715f);
	const __m256 one = _mm256_set1_ps(1.0f);

	for (size_t i = 0; i < n; i += 8) {
		__m256 v = v8_loadf(x + i, n - i);
		__m256 u = _mm256_fmadd_ps(_mm256_mul_ps(c3, v), _mm256_mul_ps(v, v), v);
		__m256 e = v8_exp(_mm256_mul_ps(c2, u));
		v8_storef(x + i, _mm256_div_ps(v, _mm256_add_ps(one, e)), n - i);
	}
}

T256 void qvl_gelu_erf_avx2(float *x, size_t n)
{
	const __m256 half = _mm256_set1_ps(0.5f), r2 = _mm256_set1_ps(0.70710678118654752f);

	for (size_t i = 0; i < n; i += 8) {
		__m256 v = v8_loadf(x + i, n - i);
		__m256 h = v8_one_plus_erf(_mm256_mul_ps(v, r2));
		v8_storef(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), h), n - i);
	}
}

/* The whole vectors first, then the masked tail: each lane sees the same
 * values in the same order as one masked loop (the bits do not change), but
 * the main loops carry no mask (the vision tower's attention runs this on
 * every row of scores). */
T256 void qvl_softmax_avx2(float *x, size_t n)
{
	const size_t nf = n & ~(size_t)7, rem = n - nf;
	const __m256 tail = _mm256_castsi256_ps(v8_mask(rem));
	__m256 mx = _mm256_set1_ps(-INFINITY), s = _mm256_setzero_ps();

	for (size_t i = 0; i < nf; i += 8)
		mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
	if (rem)
		mx = _mm256_max_ps(mx, _mm256_blendv_ps(mx, v8_loadf(x + nf, rem), tail));
	__m256 m = _mm256_set1_ps(v8_hmax(mx));
	for (size_t i = 0; i < nf; i += 8) {
		__m256 e = v8_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
		_mm256_storeu_ps(x + i, e);
		s = _mm256_add_ps(s, e);
	}
	if (rem) {
		__m256 e = _mm256_and_ps(v8_exp(_mm256_sub_ps(v8_loadf(x + nf, rem), m)), tail);
		v8_storef(x + nf, e, rem);
		s = _mm256_add_ps(s, e);
	}
	__m256 r = _mm256_set1_ps(1.0f / v8_hsum(s));
	for (size_t i = 0; i < nf; i += 8)
		_mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), r));
	if (rem)
		v8_storef(x + nf, _mm256_mul_ps(v8_loadf(x + nf, rem), r), rem);
}

T256 void qvl_rope_avx2(float *x, const float *cos, const float *sin, size_t half)
{
	for (size_t i = 0; i < half; i += 8) {
		size_t r = half - i;
		__m256 a = v8_loadf(x + i, r), b = v8_loadf(x + half + i, r);
		__m256 c = v8_loadf(cos + i, r), s = v8_loadf(sin + i, r);
		v8_storef(x + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)), r);
		v8_storef(x + half + i, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)), r);
	}
}

T256 void qvl_rmsnorm_rope_avx2(float *x, const float *w, const float *cos, const float *sin,
				size_t half, float eps)
{
	__m256 rv = _mm256_set1_ps(1.0f / sqrtf(sumsq(x, 2 * half) / (float)(2 * half) + eps));

	for (size_t i = 0; i < half; i += 8) {
		size_t r = half - i;
		__m256 a = _mm256_mul_ps(_mm256_mul_ps(v8_loadf(x + i, r), rv), v8_loadf(w + i, r));
		__m256 b = _mm256_mul_ps(_mm256_mul_ps(v8_loadf(x + half + i, r), rv),
					 v8_loadf(w + half + i, r));
		__m256 c = v8_loadf(cos + i, r), s = v8_loadf(sin + i, r);
		v8_storef(x + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)), r);
		v8_storef(x + half + i, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)), r);
	}
}

T256 void qvl_to_f32_avx2(float *dst, const void *src, enum qvl_dtype type, size_t n)
{
	if (type != QVL_DT_F32 && type != QVL_DT_BF16 && type != QVL_DT_F16) {
		qvl_to_f32_ref(dst, src, type, n);
		return;
	}
	for (size_t i = 0; i < n; i += 8)
		v8_storef(dst + i, v8_load(src, type, i, n - i), n - i);
}

/* f32 -> bf16 rounding like qvl_f32_to_bf16 (NaN kept quiet). */
INL256 __m128i bf16_round(__m256 v)
{
	__m256i u = _mm256_castps_si256(v);
	__m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
	__m256i r = _mm256_srli_epi32(
	    _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), odd), 16);
	__m256i nanq = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
	__m256 isnan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
	r = _mm256_castps_si256(
	    _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(nanq), isnan));
	r = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
	return _mm256_castsi256_si128(r);
}

T256 void qvl_from_f32_avx2(void *dst, enum qvl_dtype type, const float *src, size_t n)
{
	uint8_t *d = dst;

	if (type != QVL_DT_BF16 && type != QVL_DT_F16) {
		qvl_from_f32_ref(dst, type, src, n);
		return;
	}
	for (size_t i = 0; i < n; i += 8) {
		size_t r = n - i < 8 ? n - i : 8;
		__m256 v = v8_loadf(src + i, r);
		__m128i h = type == QVL_DT_BF16
				? bf16_round(v)
				: _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		if (r == 8) {
			_mm_storeu_si128((__m128i *)(d + 2 * i), h);
		} else {
			uint16_t tmp[8];
			_mm_storeu_si128((__m128i *)tmp, h);
			memcpy(d + 2 * i, tmp, 2 * r);
		}
	}
}
#endif
