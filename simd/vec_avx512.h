/* Inline AVX-512 helpers shared by the AVX-512 kernel files: masked loads of
 * f32/bf16/f16 as f32, and expf/erf approximations accurate to ~1 ulp.
 * Include only from files compiled under HAVE_AVX512_KERNELS. */
#ifndef QVL_VEC_AVX512_H
#define QVL_VEC_AVX512_H

#include <immintrin.h>

#include "kern_impl.h"

#define T512   __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define INL512 static inline __attribute__((always_inline)) T512

INL512 __mmask16 v16_mask(size_t r)
{
	return r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1);
}

/* 16 values of type t at element index i of p, masked, as f32. */
INL512 __m512 v16_load(const void *p, enum qvl_dtype t, size_t i, __mmask16 mk)
{
	const uint8_t *b = p;

	switch (t) {
	case QVL_DT_BF16:
		return _mm512_castsi512_ps(_mm512_slli_epi32(
		    _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mk, b + 2 * i)), 16));
	case QVL_DT_F16:
		return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, b + 2 * i));
	default:
		return _mm512_maskz_loadu_ps(mk, b + 4 * i);
	}
}

/* expf: x = n ln2 + r, |r| <= ln2/2, e^r by the Cephes minimax polynomial
 * (~1 ulp), 2^n by vscalefps, which also gives inf/0/subnormals right. The
 * clamp keeps n small so r stays exact; its operand order keeps NaN. */
INL512 __m512 v16_exp(__m512 x)
{
	x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
					_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}

/* 1 + erf(z), accurate also where erf(z) is close to -1 (there it is
 * computed directly as exp(...), not as 1 + (-1 + tiny)). Polynomials from
 * N. Juffa's erff (max error ~1 ulp on each branch). */
INL512 __m512 v16_one_plus_erf(__m512 z)
{
	__m512 t = _mm512_abs_ps(z), s = _mm512_mul_ps(z, z);
	/* |z| <= 0.927734375: erf = z + z * P(z^2) */
	__m512 p = _mm512_set1_ps(-5.96761703e-4f);
	p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(4.99119423e-3f));
	p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-2.67681349e-2f));
	p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(1.12819925e-1f));
	p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-3.76125336e-1f));
	p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(1.28379166e-1f));
	__m512 small = _mm512_add_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(p, z, z));
	/* |z| > 0.927734375: erf = sign(z) (1 - exp(Q(|z|))) */
	__m512 q =
	    _mm512_fmadd_ps(_mm512_set1_ps(-1.72853470e-5f), t, _mm512_set1_ps(3.83197126e-4f));
	__m512 u =
	    _mm512_fmadd_ps(_mm512_set1_ps(-3.88396438e-3f), t, _mm512_set1_ps(2.42546219e-2f));
	q = _mm512_fmadd_ps(q, s, u);
	q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.06777877e-1f));
	q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-6.34846687e-1f));
	q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.28717512e-1f));
	q = _mm512_fmadd_ps(q, t, _mm512_sub_ps(_mm512_setzero_ps(), t));
	__m512 e = v16_exp(q);
	__m512 big = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ),
					  _mm512_sub_ps(_mm512_set1_ps(2.0f), e), e);
	return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(0.927734375f), _CMP_GT_OQ),
				    small, big);
}

/* In-register 16x16 transpose of 32-bit lanes: r[c] becomes column c. Four rounds of
 * 16 shuffles (unpack ps, unpack pd, two 128-bit lane shuffles). */
INL512 void v16_transpose(__m512 r[16])
{
	__m512 t[16];

	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
	}
	for (int i = 0; i < 16; i += 4) {
		__m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
		__m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
		r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
		r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
		r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
		r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
	}
	/* r[4g + c]: column 4L + c of rows 4g..4g+3 in lane L */
	for (int h = 0; h < 2; h++)
		for (int c = 0; c < 4; c++) {
			t[8 * h + c] = _mm512_shuffle_f32x4(r[8 * h + c], r[8 * h + 4 + c], 0x88);
			t[8 * h + 4 + c] =
			    _mm512_shuffle_f32x4(r[8 * h + c], r[8 * h + 4 + c], 0xdd);
		}
	for (int c = 0; c < 8; c++) {
		r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
		r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
	}
}

INL512 float v16_hmax(__m512 v)
{
	return _mm512_reduce_max_ps(v);
}

#endif
