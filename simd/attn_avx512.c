/* AVX-512 causal attention over the KV cache for a tile of query vectors
 * (the heads of one KV group at one or more consecutive positions), flash
 * style: per block of ATT_B KV rows, K and V are widened to f32 once, then
 * every query vector of the tile takes its scores (4 vectors x 4 rows of
 * fma chains per pass, one transposing horizontal sum for the 16 of them),
 * the online-softmax update and its p·V from L1. Before, each K/V row was
 * widened again for every query head and every query row, and every score
 * paid its own horizontal sum.
 *
 * The arithmetic of one query vector does not depend on the tile around it:
 * its score for KV row j is an fma chain over d in each of 16 lanes, summed
 * by one fixed tree (hsum16) and scaled; one max/exp/sum per block of ATT_B
 * rows (the rows past its own position masked out); out = out·corr +
 * Σ_j p_j V_j in j order. Decode (one position) runs the same code with a
 * tile of one row, so a row gives the same bits alone, in any prefill chunk
 * or in a batch. */
#include "config.h"

#ifdef HAVE_AVX512_KERNELS
#include <math.h>
#include <string.h>

#include "vec_avx512.h"

#define ATT_B 32  /* KV rows per block: two registers of scores */
#define ATT_D 128 /* dims of V widened per chunk */

/* F[j][d] (rows ld floats apart) = row jj + j of X, dims d0 + d, for
 * j < nb, d < dc (0 up to the next multiple of 16); t a constant in each
 * instantiation, no type switch per load. */
INL512 void widen_t(const enum qvl_dtype t, float *F, size_t ld, const void *X, size_t stride,
		    size_t jj, size_t nb, size_t d0, size_t dc)
{
	for (size_t j = 0; j < nb; j++)
		for (size_t c = 0; c < dc; c += 16)
			_mm512_store_ps(F + j * ld + c, v16_load(X, t, (jj + j) * stride + d0 + c,
								 v16_mask(dc - c)));
}

/* Sums of 16 accumulators, lane i = Σ of a[i]'s lanes, by one fixed tree
 * for every slot: ((l0 + l2) + (l1 + l3)) within each 128-bit lane, then
 * (L0 + L1) + (L2 + L3) across them. */
INL512 __m512 hsum16(const __m512 a[16])
{
	__m512 t[8], w[4];

#pragma GCC unroll 8
	for (int i = 0; i < 8; i++)
		t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
				     _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++)
		w[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44),
				     _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0xee));
	__m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88),
				 _mm512_shuffle_f32x4(w[0], w[1], 0xdd));
	__m512 y = _mm512_add_ps(_mm512_shuffle_f32x4(w[2], w[3], 0x88),
				 _mm512_shuffle_f32x4(w[2], w[3], 0xdd));
	return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xdd));
}

/* Scores of R query vectors (R = 1, 2, 4) with the 16 / R KV rows from
 * block row j (rows past nb count as zero rows, never read, not even by a
 * load with an empty mask: past the last row of a page's head run such a
 * load can address a 4 KiB page of the KV pool nobody touched yet, and
 * there an empty-mask load took 164 ns instead of 0.7 (Zen 5, session
 * 13): 40 % of a 16-sequence decode step once rows passed the first
 * block, the q/k/v + attention stage 53-59 -> 16-22 ms): one fma
 * chain per (vector, row) over d in 16 lanes (lane l takes d = l mod 16),
 * then hsum16, whatever R. K rows are `ks` elements apart, of type t (f32
 * from the widened block, or the cache's own rows: the same values).
 * s[r * ATT_B + j + i] = score of vector r with row j + i. */
INL512 void score16(const size_t R, const enum qvl_dtype t, float *s, const float *const *qv,
		    const void *K, size_t ks, size_t j, size_t nb, size_t dim, float scale)
{
	const size_t NR = 16 / R;
	__m512 a[16];
	_Alignas(64) float z[16];

#pragma GCC unroll 16
	for (int i = 0; i < 16; i++)
		a[i] = _mm512_setzero_ps();
	for (size_t d = 0; d < dim; d += 16) {
		__mmask16 md = v16_mask(dim - d);
		__m512 qq[4];
#pragma GCC unroll 4
		for (size_t r = 0; r < R; r++)
			qq[r] = _mm512_maskz_loadu_ps(md, qv[r] + d);
#pragma GCC unroll 16
		for (size_t i = 0; i < NR; i++) {
			__m512 k = j + i < nb ? v16_load(K, t, (j + i) * ks + d, md)
					      : _mm512_setzero_ps();
#pragma GCC unroll 4
			for (size_t r = 0; r < R; r++)
				a[r * NR + i] = _mm512_fmadd_ps(qq[r], k, a[r * NR + i]);
		}
	}
	_mm512_store_ps(z, _mm512_mul_ps(hsum16(a), _mm512_set1_ps(scale)));
	for (size_t r = 0; r < R; r++)
		memcpy(s + r * ATT_B + j, z + r * NR, NR * sizeof(float));
}

/* Scores of R vectors with all ATT_B rows of the block. */
INL512 void score_rows(const size_t R, const enum qvl_dtype t, float *s, const float *const *qv,
		       const void *K, size_t ks, size_t nb, size_t dim, float scale)
{
	for (size_t j = 0; j < ATT_B; j += 16 / R)
		score16(R, t, s, qv, K, ks, j, nb, dim, scale);
}

/* Online-softmax update of one vector with its block scores a[0..32):
 * a becomes p_j = exp(s_j - m_new) (0 past its position); returns corr. */
INL512 float block_softmax(float *a, size_t lim, float *mp, float *lp)
{
	const __m512 ninf = _mm512_set1_ps(-INFINITY);
	__mmask16 k0 = v16_mask(lim), k1 = v16_mask(lim > 16 ? lim - 16 : 0);
	/* rows past the vector's position: -inf, out of the max */
	__m512 s0 = _mm512_mask_blend_ps(k0, ninf, _mm512_load_ps(a));
	__m512 s1 = _mm512_mask_blend_ps(k1, ninf, _mm512_load_ps(a + 16));
	float bm = _mm512_reduce_max_ps(_mm512_max_ps(s0, s1));
	float m = *mp, mn = bm > m ? bm : m;
	__m512 mv = _mm512_set1_ps(mn);
	__m512 e0 = _mm512_maskz_mov_ps(k0, v16_exp(_mm512_sub_ps(s0, mv)));
	__m512 e1 = _mm512_maskz_mov_ps(k1, v16_exp(_mm512_sub_ps(s1, mv)));
	/* the vector exp on one value: no libm call per vector and block */
	float corr = _mm512_cvtss_f32(v16_exp(_mm512_set1_ps(m - mn)));

	_mm512_store_ps(a, e0);
	_mm512_store_ps(a + 16, e1);
	*lp = fmaf(*lp, corr, _mm512_reduce_add_ps(_mm512_add_ps(e0, e1)));
	*mp = mn;
	return corr;
}

/* out = out * corr + Σ_{j < nb} p_j V_j over dc dims, for NP (1 or 2)
 * vectors with the same nb: each V load feeds NP fma chains. V rows are
 * ld elements apart, of type t (the widened block, or the cache's rows
 * when only one or two vectors read them: the same values). */
INL512 void block_pv(const size_t NP, const enum qvl_dtype t, float *const *out,
		     const float *const *pj, const float *corr, const void *V, size_t ld, size_t nb,
		     size_t dc)
{
	__m512 acc[2][8];
	__mmask16 mk[8];

#pragma GCC unroll 8
	for (int k = 0; k < 8; k++) {
		mk[k] = v16_mask(dc > 16 * (size_t)k ? dc - 16 * (size_t)k : 0);
#pragma GCC unroll 2
		for (size_t n = 0; n < NP; n++)
			acc[n][k] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk[k], out[n] + 16 * k),
						  _mm512_set1_ps(corr[n]));
	}
	for (size_t j = 0; j < nb; j++) {
		__m512 p[2];
#pragma GCC unroll 2
		for (size_t n = 0; n < NP; n++)
			p[n] = _mm512_set1_ps(pj[n][j]);
#pragma GCC unroll 8
		for (int k = 0; k < 8; k++)
			if (mk[k]) {
				__m512 w = v16_load(V, t, j * ld + 16 * (size_t)k, mk[k]);
#pragma GCC unroll 2
				for (size_t n = 0; n < NP; n++)
					acc[n][k] = _mm512_fmadd_ps(p[n], w, acc[n][k]);
			}
	}
#pragma GCC unroll 8
	for (int k = 0; k < 8; k++)
#pragma GCC unroll 2
		for (size_t n = 0; n < NP; n++)
			_mm512_mask_storeu_ps(out[n] + 16 * k, mk[k], acc[n][k]);
}

#define PV_T(T)                                                                                    \
	static T512 void pv_##T(size_t np, float *const *out, const float *const *pj,              \
				const float *corr, const void *V, size_t ld, size_t nb, size_t dc) \
	{                                                                                          \
		if (np == 2)                                                                       \
			block_pv(2, T, out, pj, corr, V, ld, nb, dc);                              \
		else                                                                               \
			block_pv(1, T, out, pj, corr, V, ld, nb, dc);                              \
	}
PV_T(QVL_DT_F32)
PV_T(QVL_DT_F16)
PV_T(QVL_DT_BF16)

INL512 void out_zero(float *o, size_t dim)
{
	for (size_t d = 0; d < dim; d += 16)
		_mm512_mask_storeu_ps(o + d, v16_mask(dim - d), _mm512_setzero_ps());
}

INL512 void out_scale(float *o, size_t dim, float r)
{
	for (size_t d = 0; d < dim; d += 16) {
		__mmask16 mk = v16_mask(dim - d);
		_mm512_mask_storeu_ps(
		    o + d, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + d), _mm512_set1_ps(r)));
	}
}

#define ATT_INL	  INL512
#define ATT_T	  T512
#define ATT_FN(x) qvl_attn_##x##_avx512
#include "attn_tile.h"
#endif
