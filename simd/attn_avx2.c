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

#define ATT_B  32  /* KV rows per block: four registers of scores */
#define ATT_D  128 /* dims of V widened per chunk */
#define ATT_V  64  /* query vectors per pass over the KV rows */
#define ATT_R  4   /* query vectors sharing each load of a K row */
#define ATT_DK 256 /* head sizes up to this: K widened once per block */

/* Where the tile's K and V rows are: contiguous (kv == NULL) or paged. */
struct src {
	const void *K, *V;
	const struct qvl_kv_view *kv;
	enum qvl_dtype t;
	size_t stride;
};

/* Pages are not adjacent: at the start of each page the hardware
 * prefetcher has lost the stream. Ask for the first ATT_B rows of K and V
 * of the next page (at most `rows` rows) while this one is computed. */
static inline __attribute__((always_inline)) void prefetch_page(const struct qvl_kv_view *kv,
								size_t page, size_t rows)
{
	const uint8_t *pg = kv->base + (size_t)kv->ids[page] * kv->page_bytes;
	size_t es = kv->type == QVL_DT_F32 ? 4 : 2;
	size_t bytes = (rows < ATT_B ? rows : ATT_B) * kv->stride * es;

	for (size_t o = 0; o < bytes; o += 64) {
		_mm_prefetch((const char *)(pg + kv->k_off + o), _MM_HINT_T1);
		_mm_prefetch((const char *)(pg + kv->v_off + o), _MM_HINT_T1);
	}
}

/* K and V of the block at j0 (of `last` rows): its rows are rows *jj.. of
 * the returned bases. Pages hold whole blocks (page_rows % 64 == 0). */
INL256 void blk_base(const struct src *s, size_t j0, size_t last, const void **K, const void **V,
		     size_t *jj)
{
	if (!s->kv) {
		*K = s->K, *V = s->V, *jj = j0;
		return;
	}
	const struct qvl_kv_view *kv = s->kv;
	const uint8_t *pg = kv->base + (size_t)kv->ids[j0 / kv->page_rows] * kv->page_bytes;
	*K = pg + kv->k_off;
	*V = pg + kv->v_off;
	*jj = j0 % kv->page_rows;
	if (*jj == 0 && j0 + kv->page_rows < last)
		prefetch_page(kv, j0 / kv->page_rows + 1, last - j0 - kv->page_rows);
}

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

static T256 void widen_rows(float *F, size_t ld, const void *X, enum qvl_dtype t, size_t stride,
			    size_t jj, size_t nb, size_t d0, size_t dc)
{
	if (t == QVL_DT_F16)
		widen_t(QVL_DT_F16, F, ld, X, stride, jj, nb, d0, dc);
	else if (t == QVL_DT_BF16)
		widen_t(QVL_DT_BF16, F, ld, X, stride, jj, nb, d0, dc);
	else
		widen_t(QVL_DT_F32, F, ld, X, stride, jj, nb, d0, dc);
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

/* One pass: query vectors v < nv (vector v = head v % nq of row v / nq,
 * row r seeing lim0 + r KV rows). */
struct pass {
	float *out;
	const float *q;
	size_t ldo, ldq, nq, nv, lim0, dim;
	float scale;
};

INL256 size_t vec_lim(const struct pass *p, size_t v)
{
	return p->lim0 + v / p->nq;
}

/* Scores of the block at j0 for every live vector into acc[v][0..32):
 * from the block widened once into Kf when several vectors share it, else
 * straight from the cache's rows (the same values, so the same bits). */
INL256 void block_scores(const struct pass *p, float *acc, float *Kf, const void *K,
			 const struct src *s, size_t jj, size_t nb, size_t v0)
{
	const float *qv[ATT_R];
	const void *Kb;
	enum qvl_dtype t = s->t;
	size_t ks = s->stride;

	if (p->nv - v0 > 2 && p->dim <= ATT_DK) {
		widen_rows(Kf, ATT_DK, K, s->t, s->stride, jj, nb, 0, p->dim);
		Kb = Kf, t = QVL_DT_F32, ks = ATT_DK;
	} else {
		Kb = (const uint8_t *)K + jj * s->stride * (s->t == QVL_DT_F32 ? 4 : 2);
	}
	for (size_t v = v0; v < p->nv;) {
		size_t R = p->nv - v >= 4 ? 4 : p->nv - v >= 2 ? 2 : 1;
		float *a = acc + v * ATT_B;

		/* 4 vectors per pass over widened rows, at most 2 while
		 * widening in the loop (its registers) */
		if (t != QVL_DT_F32 && R == 4)
			R = 2;
		for (size_t r = 0; r < R; r++)
			qv[r] = p->q + (v + r) / p->nq * p->ldq + (v + r) % p->nq * p->dim;
		if (t == QVL_DT_F32 && R == 4)
			score_rows(4, QVL_DT_F32, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (t == QVL_DT_F32 && R == 2)
			score_rows(2, QVL_DT_F32, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (t == QVL_DT_F32)
			score_rows(1, QVL_DT_F32, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (t == QVL_DT_F16 && R == 2)
			score_rows(2, QVL_DT_F16, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (t == QVL_DT_F16)
			score_rows(1, QVL_DT_F16, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (R == 2)
			score_rows(2, QVL_DT_BF16, a, qv, Kb, ks, nb, p->dim, p->scale);
		else
			score_rows(1, QVL_DT_BF16, a, qv, Kb, ks, nb, p->dim, p->scale);
		v += R;
	}
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

static T256 void run_pass(const struct pass *p, const struct src *s)
{
	_Alignas(64) float Kf[ATT_B * ATT_DK];
	_Alignas(64) float Vf[ATT_B * ATT_D];
	_Alignas(64) float acc[ATT_V * ATT_B];
	float m[ATT_V], l[ATT_V], corr[ATT_V];
	size_t last = vec_lim(p, p->nv - 1), v0 = 0;

	for (size_t v = 0; v < p->nv; v++) {
		float *o = p->out + v / p->nq * p->ldo + v % p->nq * p->dim;

		m[v] = -INFINITY;
		l[v] = 0.0f;
		for (size_t d = 0; d < p->dim; d += 8)
			v8_storef(o + d, _mm256_setzero_ps(), p->dim - d);
	}
	for (size_t j0 = 0; j0 < last; j0 += ATT_B) {
		size_t nb = last - j0 < ATT_B ? last - j0 : ATT_B, jj;
		const void *K, *V;

		/* vectors whose rows end before this block are done */
		while (vec_lim(p, v0) <= j0)
			v0++;
		blk_base(s, j0, last, &K, &V, &jj);
		block_scores(p, acc, Kf, K, s, jj, nb, v0);
		for (size_t v = v0; v < p->nv; v++)
			corr[v] = block_softmax(acc + v * ATT_B, vec_lim(p, v) - j0, &m[v], &l[v]);
		/* V widened once when more than two vectors read it */
		bool wide = p->nv - v0 > 2;
		size_t es = s->t == QVL_DT_F32 ? 4 : 2;
		for (size_t d0 = 0; d0 < p->dim; d0 += ATT_D) {
			size_t dc = p->dim - d0 < ATT_D ? p->dim - d0 : ATT_D;
			const void *Vb = (const uint8_t *)V + (jj * s->stride + d0) * es;

			if (wide)
				widen_rows(Vf, ATT_D, V, s->t, s->stride, jj, nb, d0, dc);
			for (size_t v = v0; v < p->nv;) {
				size_t lim = vec_lim(p, v) - j0, nbv = lim < ATT_B ? lim : ATT_B;
				size_t np = v + 1 < p->nv && (v + 1) / p->nq == v / p->nq ? 2 : 1;
				float *o[2];
				const float *pj[2] = {acc + v * ATT_B, acc + (v + 1) * ATT_B};

				o[0] = p->out + v / p->nq * p->ldo + v % p->nq * p->dim + d0;
				o[1] = o[0] + p->dim;
				if (wide)
					pv_QVL_DT_F32(np, o, pj, corr + v, Vf, ATT_D, nbv, dc);
				else if (s->t == QVL_DT_F16)
					pv_QVL_DT_F16(np, o, pj, corr + v, Vb, s->stride, nbv, dc);
				else if (s->t == QVL_DT_BF16)
					pv_QVL_DT_BF16(np, o, pj, corr + v, Vb, s->stride, nbv, dc);
				else
					pv_QVL_DT_F32(np, o, pj, corr + v, Vb, s->stride, nbv, dc);
				v += np;
			}
		}
	}
	for (size_t v = 0; v < p->nv; v++) {
		float *o = p->out + v / p->nq * p->ldo + v % p->nq * p->dim;

		if (l[v] > 0.0f) {
			__m256 r = _mm256_set1_ps(1.0f / l[v]);
			for (size_t d = 0; d < p->dim; d += 8)
				v8_storef(o + d, _mm256_mul_ps(v8_loadf(o + d, p->dim - d), r),
					  p->dim - d);
		}
	}
}

/* Rows [0, rows) with nq heads each, row r seeing nkv0 + r KV rows, in
 * passes of at most ATT_V vectors (whole rows, or heads of one row). */
static T256 void tile(float *out, size_t ldo, const float *q, size_t ldq, size_t nq, size_t rows,
		      const struct src *s, size_t nkv0, size_t dim, float scale)
{
	if (!nq || !rows)
		return;
	if (nq > ATT_V) { /* more heads than a pass holds: groups of heads */
		for (size_t r = 0; r < rows; r++)
			for (size_t h = 0; h < nq; h += ATT_V)
				tile(out + r * ldo + h * dim, ldo, q + r * ldq + h * dim, ldq,
				     nq - h < ATT_V ? nq - h : ATT_V, 1, s, nkv0 + r, dim, scale);
		return;
	}
	size_t per = ATT_V / nq;

	for (size_t r = 0; r < rows; r += per) {
		size_t nr = rows - r < per ? rows - r : per;
		struct pass p = {.out = out + r * ldo,
				 .q = q + r * ldq,
				 .ldo = ldo,
				 .ldq = ldq,
				 .nq = nq,
				 .nv = nr * nq,
				 .lim0 = nkv0 + r,
				 .dim = dim,
				 .scale = scale};
		run_pass(&p, s);
	}
}

T256 void qvl_attn_tile_avx2(float *out, size_t ldo, const float *q, size_t ldq, size_t nq,
			     size_t rows, const struct qvl_kv_view *kv, size_t nkv0, size_t dim,
			     float scale)
{
	struct src s = {.kv = kv, .t = kv->type, .stride = kv->stride};

	tile(out, ldo, q, ldq, nq, rows, &s, nkv0, dim, scale);
}

T256 void qvl_attn_paged_avx2(float *out, const float *q, size_t nq, const struct qvl_kv_view *kv,
			      size_t nkv, size_t dim, float scale)
{
	qvl_attn_tile_avx2(out, 0, q, 0, nq, 1, kv, nkv, dim, scale);
}

T256 void qvl_attn_gqa_avx2(float *out, const float *q, size_t nq, const void *K, const void *V,
			    enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			    float scale)
{
	struct src s = {.K = K, .V = V, .t = kvtype, .stride = kv_stride};

	tile(out, 0, q, 0, nq, 1, &s, nkv, dim, scale);
}

T256 void qvl_attn_head_avx2(float *out, const float *q, const void *K, const void *V,
			     enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			     float scale)
{
	qvl_attn_gqa_avx2(out, q, 1, K, V, kvtype, kv_stride, nkv, dim, scale);
}
#endif
