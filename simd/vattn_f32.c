/* The exact vision attention at the AVX2 level (see vattn_f32.h): per tile
 * of up to 6 queries, the scores against every 16-key panel of Kp (12
 * accumulators: the f32 GEMM's 6x16 tile), scaled and softmaxed per row in
 * the scratch (6 rows of np floats: 18.8 KiB at 784 keys, in L1), then the
 * outputs 16 values at a time against every key of a V panel. V as rows
 * (the panel's 64 bytes of each key 256 bytes apart) stalled that loop on
 * its loads: the panels make each pass one sequential stream. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "vattn_f32.h"

#define KP VATTN_F32_KP
#define MR 6 /* queries per register tile */
_Static_assert(KP == 16, "a K panel is the tile's two vectors of keys");

size_t qvl_vattn_f32_kp_floats(size_t n, size_t hv)
{
	return (n + KP - 1) / KP * KP * hv;
}

size_t qvl_vattn_f32_vp_floats(size_t n, size_t hv)
{
	return (hv + 15) / 16 * 16 * n;
}

size_t qvl_vattn_f32_scratch_floats(size_t n)
{
	return MR * ((n + KP - 1) / KP * KP);
}

void qvl_vattn_f32_store_k(float *kph, const float *k, size_t r, size_t hv)
{
	float *d = kph + r / KP * KP * hv + r % KP;

	for (size_t i = 0; i < hv; i++)
		d[i * KP] = k[i];
}

void qvl_vattn_f32_store_v(float *vph, const float *v, size_t r, size_t n, size_t hv)
{
	for (size_t d0 = 0; d0 < hv; d0 += 16)
		memcpy(vph + d0 * n + r * 16, v + d0, (hv - d0 < 16 ? hv - d0 : 16) * sizeof(float));
}

void qvl_vattn_f32_ref(float *out, size_t ldo, const float *q, size_t ldq, size_t nq,
		       const float *kp, const float *v, size_t n, size_t hv, float scale,
		       qvl_softmax_fn softmax, float *scratch)
{
	for (size_t i = 0; i < nq; i++) {
		for (size_t j = 0; j < n; j++) {
			const float *kj = kp + j / KP * KP * hv + j % KP;
			float s = 0;
			for (size_t d = 0; d < hv; d++)
				s = fmaf(q[i * ldq + d], kj[d * KP], s);
			scratch[j] = s * scale;
		}
		softmax(scratch, n);
		for (size_t d = 0; d < hv; d++) {
			float o = 0;
			for (size_t j = 0; j < n; j++)
				o = fmaf(scratch[j], v[d / 16 * 16 * n + j * 16 + d % 16], o);
			out[i * ldo + d] = o;
		}
	}
}

#ifdef HAVE_AVX2_KERNELS
#include <immintrin.h>

#include "vec_avx2.h"

/* c0, c1 = the mr rows of a (lda apart) · the cnt rows of 16 floats at b:
 * one FMA chain per output over t in order, from zero */
INL256 void fma_tile(const int mr, __m256 c0[MR], __m256 c1[MR], const float *a, size_t lda,
		     const float *b, size_t cnt)
{
#pragma GCC unroll 6
	for (int r = 0; r < mr; r++)
		c0[r] = c1[r] = _mm256_setzero_ps();
	for (size_t t = 0; t < cnt; t++) {
		__m256 b0 = _mm256_loadu_ps(b + t * 16), b1 = _mm256_loadu_ps(b + t * 16 + 8);
#pragma GCC unroll 6
		for (int r = 0; r < mr; r++) {
			__m256 x = _mm256_broadcast_ss(a + r * lda + t);
			c0[r] = _mm256_fmadd_ps(x, b0, c0[r]);
			c1[r] = _mm256_fmadd_ps(x, b1, c1[r]);
		}
	}
}

/* S[r][0..np) for the mr queries at q: a chain over d per score, then the
 * scale (rounded on its own, as the GEMM path's separate pass did) */
INL256 void scores(const int mr, float *S, size_t np, const float *q, size_t ldq, const float *kp,
		   size_t hv, float scale)
{
	const __m256 sv = _mm256_set1_ps(scale);

	for (size_t p = 0; p < np; p += KP) {
		__m256 c0[MR], c1[MR];
		fma_tile(mr, c0, c1, q, ldq, kp + p * hv, hv);
#pragma GCC unroll 6
		for (int r = 0; r < mr; r++) {
			_mm256_storeu_ps(S + r * np + p, _mm256_mul_ps(c0[r], sv));
			_mm256_storeu_ps(S + r * np + p + 8, _mm256_mul_ps(c1[r], sv));
		}
	}
}

/* out[r][0..hv) = S rows · V: a chain over the keys per output */
INL256 void values(const int mr, float *out, size_t ldo, const float *S, size_t np,
		   const float *v, size_t n, size_t hv)
{
	for (size_t d0 = 0; d0 < hv; d0 += 16) {
		const size_t nr = hv - d0 < 16 ? hv - d0 : 16;
		__m256 c0[MR], c1[MR];
		fma_tile(mr, c0, c1, S, np, v + d0 * n, n);
#pragma GCC unroll 6
		for (int r = 0; r < mr; r++) {
			v8_storef(out + r * ldo + d0, c0[r], nr);
			if (nr > 8)
				v8_storef(out + r * ldo + d0 + 8, c1[r], nr - 8);
		}
	}
}

INL256 void tile(const int mr, float *out, size_t ldo, const float *q, size_t ldq,
		 const float *kp, const float *v, size_t n, size_t hv, float scale,
		 qvl_softmax_fn softmax, float *S)
{
	const size_t np = (n + KP - 1) / KP * KP;

	scores(mr, S, np, q, ldq, kp, hv, scale);
	for (int r = 0; r < mr; r++)
		softmax(S + r * np, n);
	values(mr, out, ldo, S, np, v, n, hv);
}

T256 void qvl_vattn_f32_avx2(float *out, size_t ldo, const float *q, size_t ldq, size_t nq,
			     const float *kp, const float *v, size_t n, size_t hv, float scale,
			     qvl_softmax_fn softmax, float *scratch)
{
	for (size_t i = 0; i < nq; i += MR) {
		switch (nq - i < MR ? nq - i : MR) {
#define C(R)                                                                                       \
	case R:                                                                                    \
		tile(R, out + i * ldo, ldo, q + i * ldq, ldq, kp, v, n, hv, scale, softmax,        \
		     scratch);                                                                     \
		break;
			C(6) C(5) C(4) C(3) C(2) C(1)
#undef C
		}
	}
}
#endif
