/* AVX2 attention for one query head over the KV cache, blockwise with an
 * online softmax: scores for a block of ATT_B positions, one max/rescale per
 * block instead of per position, then the block's V rows are accumulated
 * into `out` (which stays in L1). No score matrix, K and V read once.
 * Same algorithm as attn_avx512.c, 8 lanes. */
#include "config.h"

#ifdef HAVE_AVX2_KERNELS
#include <math.h>

#include "vec_avx2.h"

#define ATT_B	64
#define GQA_MAX 16

/* q · K_j for one row (scaled by the caller). */
static inline __attribute__((always_inline)) T256 float
dot_row(const float *q, const void *K, const enum qvl_dtype t, size_t off, size_t dim)
{
	__m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
	size_t d = 0;

	for (; d + 16 <= dim; d += 16) {
		a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), v8_load(K, t, off + d, 8), a);
		b = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), v8_load(K, t, off + d + 8, 8), b);
	}
	for (; d < dim; d += 8)
		a = _mm256_fmadd_ps(v8_loadf(q + d, dim - d), v8_load(K, t, off + d, dim - d), a);
	return v8_hsum(_mm256_add_ps(a, b));
}

/* One block of nb KV rows from j0 for one query head: scores, the online
 * softmax update of (*mp, *lp), out = out * corr + sum_j p_j V_j. */
static inline __attribute__((always_inline)) T256 void
attn_block(float *out, const float *q, const void *K, const void *V, const enum qvl_dtype kvtype,
	   size_t kv_stride, size_t j0, size_t nb, size_t dim, float scale, float *mp, float *lp,
	   float *s)
{
	float bm = -INFINITY;

	for (size_t j = 0; j < nb; j++) {
		s[j] = dot_row(q, K, kvtype, (j0 + j) * kv_stride, dim) * scale;
		bm = s[j] > bm ? s[j] : bm;
	}
	float m = *mp, mn = bm > m ? bm : m;
	__m256 mv = _mm256_set1_ps(mn), sum = _mm256_setzero_ps();
	for (size_t j = 0; j < nb; j += 8) {
		__m256 e = v8_exp(_mm256_sub_ps(v8_loadf(s + j, nb - j), mv));
		e = _mm256_and_ps(e, _mm256_castsi256_ps(v8_mask(nb - j)));
		v8_storef(s + j, e, nb - j);
		sum = _mm256_add_ps(sum, e);
	}
	float corr = expf(m - mn);
	*lp = *lp * corr + v8_hsum(sum);
	*mp = mn;
	/* 64 dims (8 registers) at a time: 8 independent FMA chains per V row */
	__m256 cv = _mm256_set1_ps(corr);
	for (size_t d0 = 0; d0 < dim; d0 += 64) {
		size_t dc = dim - d0 < 64 ? dim - d0 : 64;
		__m256 acc[8];
#pragma GCC unroll 8
		for (int v = 0; v < 8; v++) {
			size_t r = dc > 8 * (size_t)v ? dc - 8 * (size_t)v : 0;
			acc[v] = r ? _mm256_mul_ps(v8_loadf(out + d0 + 8 * v, r), cv)
				   : _mm256_setzero_ps();
		}
		for (size_t j = 0; j < nb; j++) {
			__m256 p = _mm256_set1_ps(s[j]);
			size_t off = (j0 + j) * kv_stride + d0;
#pragma GCC unroll 8
			for (int v = 0; v < 8; v++) {
				size_t r = dc > 8 * (size_t)v ? dc - 8 * (size_t)v : 0;
				if (r)
					acc[v] = _mm256_fmadd_ps(
					    p, v8_load(V, kvtype, off + 8 * (size_t)v, r), acc[v]);
			}
		}
#pragma GCC unroll 8
		for (int v = 0; v < 8; v++) {
			size_t r = dc > 8 * (size_t)v ? dc - 8 * (size_t)v : 0;
			if (r)
				v8_storef(out + d0 + 8 * v, acc[v], r);
		}
	}
}

#define ATTN_BLOCK_T(T)                                                                            \
	static T256 void attn_block_##T(float *out, const float *q, const void *K, const void *V,  \
					size_t kv_stride, size_t j0, size_t nb, size_t dim,        \
					float scale, float *mp, float *lp, float *s)               \
	{                                                                                          \
		attn_block(out, q, K, V, T, kv_stride, j0, nb, dim, scale, mp, lp, s);             \
	}
ATTN_BLOCK_T(QVL_DT_BF16)
ATTN_BLOCK_T(QVL_DT_F16)
ATTN_BLOCK_T(QVL_DT_F32)

/* One instantiation per KV type: no type switch per load. */
static T256 void attn_block_any(float *out, const float *q, const void *K, const void *V,
				enum qvl_dtype t, size_t kv_stride, size_t j0, size_t nb,
				size_t dim, float scale, float *mp, float *lp, float *s)
{
	if (t == QVL_DT_BF16)
		attn_block_QVL_DT_BF16(out, q, K, V, kv_stride, j0, nb, dim, scale, mp, lp, s);
	else if (t == QVL_DT_F16)
		attn_block_QVL_DT_F16(out, q, K, V, kv_stride, j0, nb, dim, scale, mp, lp, s);
	else
		attn_block_QVL_DT_F32(out, q, K, V, kv_stride, j0, nb, dim, scale, mp, lp, s);
}

static T256 void attn_zero(float *out, size_t dim)
{
	for (size_t d = 0; d < dim; d += 8)
		v8_storef(out + d, _mm256_setzero_ps(), dim - d);
}

static T256 void attn_finish(float *out, size_t dim, float l)
{
	if (l > 0.0f) {
		__m256 r = _mm256_set1_ps(1.0f / l);
		for (size_t d = 0; d < dim; d += 8)
			v8_storef(out + d, _mm256_mul_ps(v8_loadf(out + d, dim - d), r), dim - d);
	}
}

T256 void qvl_attn_head_avx2(float *out, const float *q, const void *K, const void *V,
			     enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			     float scale)
{
	_Alignas(64) float s[ATT_B];
	float m = -INFINITY, l = 0.0f;

	attn_zero(out, dim);
	for (size_t j0 = 0; j0 < nkv; j0 += ATT_B)
		attn_block_any(out, q, K, V, kvtype, kv_stride, j0,
			       nkv - j0 < ATT_B ? nkv - j0 : ATT_B, dim, scale, &m, &l, s);
	attn_finish(out, dim, l);
}

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

/* GQA: the query heads of a group take turns on each block of KV rows, so
 * the block is read from memory once and from L1/L2 by the other heads.
 * With a page view (kv != NULL) each block's rows are found through the
 * page table; pages hold whole blocks (page_rows % ATT_B == 0), so the
 * blocks, and the result, are those of a contiguous cache. */
INL256 void gqa(float *out, const float *q, size_t nq, const void *K, const void *V,
		enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim, float scale,
		const struct qvl_kv_view *kv)
{
	_Alignas(64) float s[ATT_B];
	float m[GQA_MAX], l[GQA_MAX];

	for (size_t h0 = 0; h0 < nq; h0 += GQA_MAX) {
		size_t g = nq - h0 < GQA_MAX ? nq - h0 : GQA_MAX;
		float *o = out + h0 * dim;
		const float *qq = q + h0 * dim;

		for (size_t h = 0; h < g; h++) {
			m[h] = -INFINITY;
			l[h] = 0.0f;
			attn_zero(o + h * dim, dim);
		}
		for (size_t j0 = 0; j0 < nkv; j0 += ATT_B) {
			size_t nb = nkv - j0 < ATT_B ? nkv - j0 : ATT_B, jj = j0;
			const void *Kb = K, *Vb = V;

			if (kv) {
				const uint8_t *pg =
				    kv->base + (size_t)kv->ids[j0 / kv->page_rows] * kv->page_bytes;
				Kb = pg + kv->k_off;
				Vb = pg + kv->v_off;
				jj = j0 % kv->page_rows;
				if (jj == 0 && j0 + kv->page_rows < nkv)
					prefetch_page(kv, j0 / kv->page_rows + 1,
						      nkv - j0 - kv->page_rows);
			}
			for (size_t h = 0; h < g; h++)
				attn_block_any(o + h * dim, qq + h * dim, Kb, Vb, kvtype, kv_stride,
					       jj, nb, dim, scale, &m[h], &l[h], s);
		}
		for (size_t h = 0; h < g; h++)
			attn_finish(o + h * dim, dim, l[h]);
	}
}

T256 void qvl_attn_gqa_avx2(float *out, const float *q, size_t nq, const void *K, const void *V,
			    enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			    float scale)
{
	gqa(out, q, nq, K, V, kvtype, kv_stride, nkv, dim, scale, NULL);
}

T256 void qvl_attn_paged_avx2(float *out, const float *q, size_t nq, const struct qvl_kv_view *kv,
			      size_t nkv, size_t dim, float scale)
{
	gqa(out, q, nq, NULL, NULL, kv->type, kv->stride, nkv, dim, scale, kv);
}
#endif
