/* AVX-512 element-wise and row kernels: norms, activations, softmax, RoPE,
 * conversions. Tails are handled with masked loads/stores, so any n works. */
#include "config.h"

#ifdef HAVE_AVX512_KERNELS
#include <math.h>

#include "vec_avx512.h"

#define FOR16(i, n, mk)                                                                            \
	for (size_t i = 0; i < (n); i += 16)                                                       \
		for (__mmask16 mk = v16_mask((n)-i), once_ = 1; once_; once_ = 0)

static T512 float sumsq(const float *x, size_t n)
{
	__m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m512 u = _mm512_loadu_ps(x + i), v = _mm512_loadu_ps(x + i + 16);
		a = _mm512_fmadd_ps(u, u, a);
		b = _mm512_fmadd_ps(v, v, b);
	}
	for (; i < n; i += 16) {
		__m512 u = _mm512_maskz_loadu_ps(v16_mask(n - i), x + i);
		a = _mm512_fmadd_ps(u, u, a);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a, b));
}

static T512 void scale_mul(float *y, const float *x, const float *w, float r, size_t n)
{
	__m512 rv = _mm512_set1_ps(r);

	FOR16(i, n, mk)
	{
		__m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + i), rv);
		_mm512_mask_storeu_ps(y + i, mk,
				      _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mk, w + i)));
	}
}

T512 void qvl_rmsnorm_avx512(float *y, const float *x, const float *w, size_t n, float eps)
{
	float r = 1.0f / sqrtf(sumsq(x, n) / (float)n + eps);
	scale_mul(y, x, w, r, n);
}

T512 void qvl_add_rmsnorm_avx512(float *y, float *x, const float *r, const float *w, size_t n,
				 float eps)
{
	__m512 a = _mm512_setzero_ps();

	/* one pass: x += r and the sum of squares of the new x */
	FOR16(i, n, mk)
	{
		__m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, x + i),
					 _mm512_maskz_loadu_ps(mk, r + i));
		_mm512_mask_storeu_ps(x + i, mk, v);
		a = _mm512_fmadd_ps(v, v, a);
	}
	float s = 1.0f / sqrtf(_mm512_reduce_add_ps(a) / (float)n + eps);
	scale_mul(y, x, w, s, n);
}

T512 void qvl_layernorm_avx512(float *y, const float *x, const float *w, const float *b, size_t n,
			       float eps)
{
	__m512 a = _mm512_setzero_ps();

	FOR16(i, n, mk)
	a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(mk, x + i));
	float mean = _mm512_reduce_add_ps(a) / (float)n;
	__m512 mv = _mm512_set1_ps(mean);
	a = _mm512_setzero_ps();
	FOR16(i, n, mk)
	{
		__m512 d = _mm512_maskz_sub_ps(mk, _mm512_maskz_loadu_ps(mk, x + i), mv);
		a = _mm512_fmadd_ps(d, d, a);
	}
	__m512 rv = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(a) / (float)n + eps));
	FOR16(i, n, mk)
	{
		__m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), mv), rv);
		d = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(mk, w + i),
				    _mm512_maskz_loadu_ps(mk, b + i));
		_mm512_mask_storeu_ps(y + i, mk, d);
	}
}

T512 void qvl_add_avx512(float *x, const float *y, size_t n)
{
	FOR16(i, n, mk)
	_mm512_mask_storeu_ps(
	    x + i, mk,
	    _mm512_add_ps(_mm512_maskz_loadu_ps(mk, x + i), _mm512_maskz_loadu_ps(mk, y + i)));
}

T512 void qvl_silu_mul_avx512(float *out, const float *gate, const float *up, size_t n)
{
	const __m512 one = _mm512_set1_ps(1.0f);

	FOR16(i, n, mk)
	{
		__m512 g = _mm512_maskz_loadu_ps(mk, gate + i);
		__m512 s = _mm512_div_ps(
		    g, _mm512_add_ps(one, v16_exp(_mm512_sub_ps(_mm512_setzero_ps(), g))));
		_mm512_mask_storeu_ps(out + i, mk,
				      _mm512_mul_ps(s, _mm512_maskz_loadu_ps(mk, up + i)));
	}
}

/* 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)): the same value without the
 * cancellation of 1 + tanh(u) for large negative u. */
T512 void qvl_gelu_tanh_avx512(float *x, size_t n)
{
	const __m512 c2 = _mm512_set1_ps(-2.0f * 0.7978845608028654f),
		     c3 = _mm512_set1_ps(0.044715f);
	const __m512 one = _mm512_set1_ps(1.0f);

	FOR16(i, n, mk)
	{
		__m512 v = _mm512_maskz_loadu_ps(mk, x + i);
		__m512 u = _mm512_fmadd_ps(_mm512_mul_ps(c3, v), _mm512_mul_ps(v, v), v);
		__m512 e = v16_exp(_mm512_mul_ps(c2, u));
		_mm512_mask_storeu_ps(x + i, mk, _mm512_div_ps(v, _mm512_add_ps(one, e)));
	}
}

T512 void qvl_gelu_erf_avx512(float *x, size_t n)
{
	const __m512 half = _mm512_set1_ps(0.5f), r2 = _mm512_set1_ps(0.70710678118654752f);

	FOR16(i, n, mk)
	{
		__m512 v = _mm512_maskz_loadu_ps(mk, x + i);
		__m512 h = v16_one_plus_erf(_mm512_mul_ps(v, r2));
		_mm512_mask_storeu_ps(x + i, mk, _mm512_mul_ps(_mm512_mul_ps(half, v), h));
	}
}

T512 void qvl_softmax_avx512(float *x, size_t n)
{
	__m512 mx = _mm512_set1_ps(-INFINITY), s = _mm512_setzero_ps();

	FOR16(i, n, mk)
	mx = _mm512_mask_max_ps(mx, mk, mx, _mm512_maskz_loadu_ps(mk, x + i));
	__m512 m = _mm512_set1_ps(v16_hmax(mx));
	FOR16(i, n, mk)
	{
		__m512 e = v16_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), m));
		_mm512_mask_storeu_ps(x + i, mk, e);
		s = _mm512_mask_add_ps(s, mk, s, e);
	}
	__m512 r = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
	FOR16(i, n, mk)
	_mm512_mask_storeu_ps(x + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + i), r));
}

T512 void qvl_rope_avx512(float *x, const float *cos, const float *sin, size_t half)
{
	FOR16(i, half, mk)
	{
		__m512 a = _mm512_maskz_loadu_ps(mk, x + i),
		       b = _mm512_maskz_loadu_ps(mk, x + half + i);
		__m512 c = _mm512_maskz_loadu_ps(mk, cos + i),
		       s = _mm512_maskz_loadu_ps(mk, sin + i);
		_mm512_mask_storeu_ps(x + i, mk, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
		_mm512_mask_storeu_ps(x + half + i, mk, _mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)));
	}
}

T512 void qvl_rmsnorm_rope_avx512(float *x, const float *w, const float *cos, const float *sin,
				  size_t half, float eps)
{
	__m512 r = _mm512_set1_ps(1.0f / sqrtf(sumsq(x, 2 * half) / (float)(2 * half) + eps));

	FOR16(i, half, mk)
	{
		__m512 a = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + i), r),
					 _mm512_maskz_loadu_ps(mk, w + i));
		__m512 b = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + half + i), r),
					 _mm512_maskz_loadu_ps(mk, w + half + i));
		__m512 c = _mm512_maskz_loadu_ps(mk, cos + i),
		       s = _mm512_maskz_loadu_ps(mk, sin + i);
		_mm512_mask_storeu_ps(x + i, mk, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
		_mm512_mask_storeu_ps(x + half + i, mk, _mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)));
	}
}

T512 void qvl_to_f32_avx512(float *dst, const void *src, enum qvl_dtype type, size_t n)
{
	if (type != QVL_DT_F32 && type != QVL_DT_BF16 && type != QVL_DT_F16) {
		qvl_to_f32_ref(dst, src, type, n);
		return;
	}
	FOR16(i, n, mk)
	_mm512_mask_storeu_ps(dst + i, mk, v16_load(src, type, i, mk));
}

/* f32 -> bf16 with integer round-to-nearest-even, exactly like
 * qvl_f32_to_bf16 (vcvtneps2bf16 would flush subnormal inputs to zero). */
INL512 __m256i bf16_round(__m512 v)
{
	__m512i u = _mm512_castps_si512(v);
	__m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
	__m512i r = _mm512_srli_epi32(
	    _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd), 16);
	__m512i nanq = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
	__mmask16 isnan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
	return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(isnan, r, nanq));
}

T512 void qvl_from_f32_avx512(void *dst, enum qvl_dtype type, const float *src, size_t n)
{
	uint8_t *d = dst;

	switch (type) {
	case QVL_DT_BF16:
		FOR16(i, n, mk)
		_mm256_mask_storeu_epi16(d + 2 * i, mk,
					 bf16_round(_mm512_maskz_loadu_ps(mk, src + i)));
		break;
	case QVL_DT_F16: {
		/* Converted in registers, then stored: the compiler would fold a
		 * store of one vcvtps2ph into its memory form, which is slow on
		 * Zen 4/5 (2.8x the register form in L1, a measured 2.4 % of
		 * pp512's CPU as the KV append). Two conversions are joined into
		 * one 64-byte store; the tail keeps a masked store behind an
		 * empty asm so it cannot be folded either. The rounding is a
		 * macro: clang wants the immediate a constant expression. */
#define F16_RC (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
		size_t i = 0;

		for (; i + 32 <= n; i += 32) {
			__m256i a = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), F16_RC);
			__m256i b = _mm512_cvtps_ph(_mm512_loadu_ps(src + i + 16), F16_RC);
			_mm512_storeu_si512(d + 2 * i,
					    _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1));
		}
		for (; i < n; i += 16) {
			__mmask16 mk = v16_mask(n - i);
			__m256i a = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mk, src + i), F16_RC);

			__asm__("" : "+v"(a));
			_mm256_mask_storeu_epi16(d + 2 * i, mk, a);
		}
#undef F16_RC
		break;
	}
	default:
		qvl_from_f32_ref(dst, type, src, n);
		break;
	}
}
#endif
