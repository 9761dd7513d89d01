/* AVX2 causal attention over the KV cache for a tile of query vectors (the
 * heads of one KV group at one or more consecutive positions), flash style,
 * as attn_avx512.c with 8 lanes: per block of ATT_B KV rows, K and V are
 * widened to f32 once, then every query vector of the tile takes its scores
 * (up to 4 vectors x 2 rows of fma chains per pass, one transposing
 * horizontal sum for the 8 of them), the online-softmax update and its p·V
 * from L1. Before, each K/V row was widened again for every query head and
 * every query row, and every score paid its own horizontal sum.
 *
 * The arithmetic of one query vector does not depend on the tile around it:
 * its score for KV row j is an fma chain over d in each of 8 lanes, summed
 * by one fixed tree (hsum8) and scaled; one max/exp/sum per block of ATT_B
 * rows (the rows past its own position masked out); out = out·corr +
 * Σ_j p_j V_j in j order. Decode (one position) runs the same code with a
 * tile of one row, so a row gives the same bits alone, in any prefill chunk
 * or in a batch. */
#include "config.h"

#ifdef HAVE_AVX2_KERNELS
#include <math.h>
#include <string.h>

#include "vec_avx2.h"

#define ATT_B 32  /* KV rows per block: four registers of scores */
#define ATT_D 128 /* dims of V widened per chunk */

/* F[j][d] (rows ld floats apart) = row jj + j of X, dims d0 + d, for
 * j < nb, d < dc (0 up to the next multiple of 8); t a constant in each
 * instantiation, no type switch per load. */
INL256 void widen_t(const enum qvl_dtype t, float *F, size_t ld, const void *X, size_t stride,
		    size_t jj, size_t nb, size_t d0, size_t dc)
{
	for (size_t j = 0; j < nb; j++)
		for (size_t c = 0; c < dc; c += 8)
			_mm256_store_ps(F + j * ld + c,
					v8_load(X, t, (jj + j) * stride + d0 + c, dc - c));
}

/* Sums of 8 accumulators, lane i = Σ of a[i]'s lanes, by one fixed tree
 * for every slot: ((l0 + l2) + (l1 + l3)) within each 128-bit half, then
 * the two halves. */
INL256 __m256 hsum8(const __m256 a[8])
{
	__m256 t[4], w[2];

#pragma GCC unroll 4
	for (int i = 0; i < 4; i++)
		t[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]),
				     _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 2
	for (int i = 0; i < 2; i++)
		w[i] = _mm256_add_ps(_mm256_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44),
				     _mm256_shuffle_ps(t[2 * i], t[2 * i + 1], 0xee));
	return _mm256_add_ps(_mm256_permute2f128_ps(w[0], w[1], 0x20),
			     _mm256_permute2f128_ps(w[0], w[1], 0x31));
}

/* Scores of R query vectors (R = 1, 2, 4) with the 8 / R KV rows from
 * block row j (rows past nb count as zero rows, never read): one fma chain
 * per (vector, row) over d in 8 lanes (lane l takes d = l mod 8), then
 * hsum8, whatever R. K rows are `ks` elements apart, of type t (f32 from
 * the widened block, or the cache's own rows: the same values).
 * s[r * ATT_B + j + i] = score of vector r with row j + i. */
INL256 void score8(const size_t R, const enum qvl_dtype t, float *s, const float *const *qv,
		   const void *K, size_t ks, size_t j, size_t nb, size_t dim, float scale)
{
	const size_t NR = 8 / R;
	__m256 a[8];
	_Alignas(32) float z[8];

#pragma GCC unroll 8
	for (int i = 0; i < 8; i++)
		a[i] = _mm256_setzero_ps();
	for (size_t d = 0; d < dim; d += 8) {
		__m256 qq[4];
#pragma GCC unroll 4
		for (size_t r = 0; r < R; r++)
			qq[r] = v8_loadf(qv[r] + d, dim - d);
#pragma GCC unroll 8
		for (size_t i = 0; i < NR; i++) {
			__m256 k = j + i < nb ? v8_load(K, t, (j + i) * ks + d, dim - d)
					      : _mm256_setzero_ps();
#pragma GCC unroll 4
			for (size_t r = 0; r < R; r++)
				a[r * NR + i] = _mm256_fmadd_ps(qq[r], k, a[r * NR + i]);
		}
	}
	_mm256_store_ps(z, _mm256_mul_ps(hsum8(a), _mm256_set1_ps(scale)));
	for (size_t r = 0; r < R; r++)
		memcpy(s + r * ATT_B + j, z + r * NR, NR * sizeof(float));
}

/* Scores of R vectors with all ATT_B rows of the block. */
INL256 void score_rows(const size_t R, const enum qvl_dtype t, float *s, const float *const *qv,
		       const void *K, size_t ks, size_t nb, size_t dim, float scale)
{
	for (size_t j = 0; j < ATT_B; j += 8 / R)
		score8(R, t, s, qv, K, ks, j, nb, dim, scale);
}

/* Online-softmax update of one vector with its block scores a[0..32):
 * a becomes p_j = exp(s_j - m_new) (0 past its position); returns corr. */
INL256 float block_softmax(float *a, size_t lim, float *mp, float *lp)
{
	__m256 s[4], e[4], mk[4];

	/* rows past the vector's position: -inf, out of the max */
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++) {
		mk[i] = _mm256_castsi256_ps(v8_mask(lim > 8 * (size_t)i ? lim - 8 * (size_t)i : 0));
		s[i] =
		    _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_load_ps(a + 8 * i), mk[i]);
	}
	float bm = v8_hmax(_mm256_max_ps(_mm256_max_ps(s[0], s[1]), _mm256_max_ps(s[2], s[3])));
	float m = *mp, mn = bm > m ? bm : m;
	__m256 mv = _mm256_set1_ps(mn);
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++) {
		e[i] = _mm256_and_ps(v8_exp(_mm256_sub_ps(s[i], mv)), mk[i]);
		_mm256_store_ps(a + 8 * i, e[i]);
	}
	/* the vector exp on one value: no libm call per vector and block */
	float corr = _mm256_cvtss_f32(v8_exp(_mm256_set1_ps(m - mn)));
	*lp = fmaf(*lp, corr,
		   v8_hsum(_mm256_add_ps(_mm256_add_ps(e[0], e[1]), _mm256_add_ps(e[2], e[3]))));
	*mp = mn;
	return corr;
}

/* out = out * corr + Σ_{j < nb} p_j V_j over dims [c, c + 32) ∩ [0, dc),
 * for NP (1 or 2) vectors with the same nb: each V load feeds NP chains.
 * V rows are ld elements apart, of type t (the widened block, or the
 * cache's rows when only one or two vectors read them: the same values). */
INL256 void block_pv(const size_t NP, const enum qvl_dtype t, float *const *out,
		     const float *const *pj, const float *corr, const void *V, size_t ld, size_t nb,
		     size_t c, size_t dc)
{
	__m256 acc[2][4];
	size_t rem[4];

#pragma GCC unroll 4
	for (int k = 0; k < 4; k++) {
		size_t d = c + 8 * (size_t)k;
		rem[k] = dc > d ? dc - d : 0;
#pragma GCC unroll 2
		for (size_t n = 0; n < NP; n++)
			acc[n][k] = rem[k] ? _mm256_mul_ps(v8_loadf(out[n] + d, rem[k]),
							   _mm256_set1_ps(corr[n]))
					   : _mm256_setzero_ps();
	}
	for (size_t j = 0; j < nb; j++) {
		__m256 p[2];
#pragma GCC unroll 2
		for (size_t n = 0; n < NP; n++)
			p[n] = _mm256_broadcast_ss(pj[n] + j);
#pragma GCC unroll 4
		for (int k = 0; k < 4; k++)
			if (rem[k]) {
				__m256 w = v8_load(V, t, j * ld + c + 8 * (size_t)k, rem[k]);
#pragma GCC unroll 2
				for (size_t n = 0; n < NP; n++)
					acc[n][k] = _mm256_fmadd_ps(p[n], w, acc[n][k]);
			}
	}
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++)
#pragma GCC unroll 2
		for (size_t n = 0; n < NP; n++)
			if (rem[k])
				v8_storef(out[n] + c + 8 * (size_t)k, acc[n][k], rem[k]);
}

#define PV_T(T)                                                                                    \
	static T256 void pv_##T(size_t np, float *const *out, const float *const *pj,              \
				const float *corr, const void *V, size_t ld, size_t nb, size_t dc) \
	{                                                                                          \
		for (size_t c = 0; c < dc; c += 32) {                                              \
			if (np == 2)                                                               \
				block_pv(2, T, out, pj, corr, V, ld, nb, c, dc);                   \
			else                                                                       \
				block_pv(1, T, out, pj, corr, V, ld, nb, c, dc);                   \
		}                                                                                  \
	}
PV_T(QVL_DT_F32)
PV_T(QVL_DT_F16)
PV_T(QVL_DT_BF16)

INL256 void out_zero(float *o, size_t dim)
{
	for (size_t d = 0; d < dim; d += 8)
		v8_storef(o + d, _mm256_setzero_ps(), dim - d);
}

INL256 void out_scale(float *o, size_t dim, float r)
{
	for (size_t d = 0; d < dim; d += 8)
		v8_storef(o + d, _mm256_mul_ps(v8_loadf(o + d, dim - d), _mm256_set1_ps(r)),
			  dim - d);
}

#define ATT_INL	  INL256
#define ATT_T	  T256
#define ATT_FN(x) qvl_attn_##x##_avx2
#include "attn_tile.h"
#endif
