/* Inline AVX2 helpers shared by the AVX2 kernel files: partial loads and
 * stores (AVX2 has no 16-bit masked loads, so tails of bf16/f16 go through
 * a small buffer) and the expf/erf approximations of vec_avx512.h with the
 * 2^n scaling done in two integer steps. Include only from files compiled
 * under HAVE_AVX2_KERNELS. */
#ifndef QVL_VEC_AVX2_H
#define QVL_VEC_AVX2_H

#include <immintrin.h>

#include "kern_impl.h"

#define T256   __attribute__((target("avx2,fma,f16c")))
#define INL256 static inline __attribute__((always_inline)) T256

/* Mask of the first r lanes (r <= 8). */
INL256 __m256i v8_mask(size_t r)
{
	const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r > 8 ? 8 : r)), idx);
}

INL256 __m256 v8_loadf(const float *p, size_t r)
{
	return r >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, v8_mask(r));
}

INL256 void v8_storef(float *p, __m256 v, size_t r)
{
	if (r >= 8)
		_mm256_storeu_ps(p, v);
	else
		_mm256_maskstore_ps(p, v8_mask(r), v);
}

/* Up to 8 values of type t at element index i of p (r of them) as f32. */
INL256 __m256 v8_load(const void *p, enum qvl_dtype t, size_t i, size_t r)
{
	const uint8_t *b = p;
	__m128i h;

	if (t != QVL_DT_BF16 && t != QVL_DT_F16)
		return v8_loadf((const float *)p + i, r);
	if (r >= 8) {
		h = _mm_loadu_si128((const __m128i *)(b + 2 * i));
	} else {
		uint16_t tmp[8] = {0};
		memcpy(tmp, b + 2 * i, 2 * r);
		h = _mm_loadu_si128((const __m128i *)tmp);
	}
	if (t == QVL_DT_F16)
		return _mm256_cvtph_ps(h);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

INL256 float v8_hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

INL256 float v8_hmax(__m256 v)
{
	__m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_max_ps(s, _mm_movehl_ps(s, s));
	s = _mm_max_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* expf as in vec_avx512.h; 2^n = 2^(n/2) * 2^(n - n/2) so that n in
 * [-150, 129] (subnormal results and overflow to inf) needs no special case. */
INL256 __m256 v8_exp(__m256 x)
{
	x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
	__m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
				   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	__m256i ni = _mm256_cvtps_epi32(n);
	__m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
	__m256i b = _mm256_set1_epi32(127);
	__m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, b), 23));
	__m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, b), 23));
	return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* 1 + erf(z); see v16_one_plus_erf. */
INL256 __m256 v8_one_plus_erf(__m256 z)
{
	__m256 t = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z), s = _mm256_mul_ps(z, z);
	__m256 p = _mm256_set1_ps(-5.96761703e-4f);
	p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(4.99119423e-3f));
	p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-2.67681349e-2f));
	p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.12819925e-1f));
	p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-3.76125336e-1f));
	p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.28379166e-1f));
	__m256 small = _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(p, z, z));
	__m256 q =
	    _mm256_fmadd_ps(_mm256_set1_ps(-1.72853470e-5f), t, _mm256_set1_ps(3.83197126e-4f));
	__m256 u =
	    _mm256_fmadd_ps(_mm256_set1_ps(-3.88396438e-3f), t, _mm256_set1_ps(2.42546219e-2f));
	q = _mm256_fmadd_ps(q, s, u);
	q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-1.06777877e-1f));
	q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-6.34846687e-1f));
	q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-1.28717512e-1f));
	q = _mm256_fmadd_ps(q, t, _mm256_sub_ps(_mm256_setzero_ps(), t));
	__m256 e = v8_exp(q);
	__m256 big = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), e), e,
				      _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ));
	return _mm256_blendv_ps(small, big,
				_mm256_cmp_ps(t, _mm256_set1_ps(0.927734375f), _CMP_GT_OQ));
}

#endif
