/* AVX-512 attention for one query head over the KV cache, blockwise with an
 * online softmax: scores for a block of ATT_B positions, one max/rescale per
 * block instead of per position, then the block's V rows are accumulated
 * into `out` (which stays in L1). No score matrix, K and V read once. */
#include "config.h"

#ifdef HAVE_AVX512_KERNELS
#include <math.h>

#include "vec_avx512.h"

#define ATT_B	64
#define GQA_MAX 16

/* q · K_j for one row (scaled by the caller). */
static inline T512 float dot_row(const float *q, const void *K, enum qvl_dtype t, size_t off,
				 size_t dim)
{
	__m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
	size_t d = 0;

	for (; d + 32 <= dim; d += 32) {
		a = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), v16_load(K, t, off + d, 0xffff), a);
		b = _mm512_fmadd_ps(_mm512_loadu_ps(q + d + 16),
				    v16_load(K, t, off + d + 16, 0xffff), b);
	}
	for (; d < dim; d += 16) {
		__mmask16 mk = v16_mask(dim - d);
		a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, q + d), v16_load(K, t, off + d, mk),
				    a);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a, b));
}

/* One block of nb KV rows from j0 for one query head: scores, the online
 * softmax update of (*mp, *lp), out = out * corr + sum_j p_j V_j. */
static inline __attribute__((always_inline)) T512 void
attn_block(float *out, const float *q, const void *K, const void *V, enum qvl_dtype kvtype,
	   size_t kv_stride, size_t j0, size_t nb, size_t dim, float scale, float *mp, float *lp,
	   float *s)
{
	float bm = -INFINITY;

	for (size_t j = 0; j < nb; j++) {
		s[j] = dot_row(q, K, kvtype, (j0 + j) * kv_stride, dim) * scale;
		bm = s[j] > bm ? s[j] : bm;
	}
	float m = *mp, mn = bm > m ? bm : m;
	/* exp of the block's scores in place, and their sum */
	__m512 mv = _mm512_set1_ps(mn), sum = _mm512_setzero_ps();
	for (size_t j = 0; j < nb; j += 16) {
		__mmask16 mk = v16_mask(nb - j);
		__m512 e = v16_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + j), mv));
		_mm512_mask_storeu_ps(s + j, mk, e);
		sum = _mm512_mask_add_ps(sum, mk, sum, e);
	}
	float corr = expf(m - mn);
	*lp = *lp * corr + _mm512_reduce_add_ps(sum);
	*mp = mn;
	/* out = out * corr + sum_j p_j V_j, 16 dims at a time with the
	 * block's rows in the inner loop (out stays in a register) */
	__m512 cv = _mm512_set1_ps(corr);
	for (size_t d = 0; d < dim; d += 16) {
		__mmask16 mk = v16_mask(dim - d);
		__m512 acc = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, out + d), cv);
		__m512 acc2 = _mm512_setzero_ps();
		size_t j = 0;
		for (; j + 2 <= nb; j += 2) {
			acc =
			    _mm512_fmadd_ps(_mm512_set1_ps(s[j]),
					    v16_load(V, kvtype, (j0 + j) * kv_stride + d, mk), acc);
			acc2 = _mm512_fmadd_ps(
			    _mm512_set1_ps(s[j + 1]),
			    v16_load(V, kvtype, (j0 + j + 1) * kv_stride + d, mk), acc2);
		}
		if (j < nb)
			acc =
			    _mm512_fmadd_ps(_mm512_set1_ps(s[j]),
					    v16_load(V, kvtype, (j0 + j) * kv_stride + d, mk), acc);
		_mm512_mask_storeu_ps(out + d, mk, _mm512_add_ps(acc, acc2));
	}
}

static T512 void attn_zero(float *out, size_t dim)
{
	for (size_t d = 0; d < dim; d += 16)
		_mm512_mask_storeu_ps(out + d, v16_mask(dim - d), _mm512_setzero_ps());
}

static T512 void attn_finish(float *out, size_t dim, float l)
{
	if (l > 0.0f) {
		__m512 r = _mm512_set1_ps(1.0f / l);
		for (size_t d = 0; d < dim; d += 16) {
			__mmask16 mk = v16_mask(dim - d);
			_mm512_mask_storeu_ps(out + d, mk,
					      _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, out + d), r));
		}
	}
}

T512 void qvl_attn_head_avx512(float *out, const float *q, const void *K, const void *V,
			       enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			       float scale)
{
	_Alignas(64) float s[ATT_B];
	float m = -INFINITY, l = 0.0f;

	attn_zero(out, dim);
	for (size_t j0 = 0; j0 < nkv; j0 += ATT_B)
		attn_block(out, q, K, V, kvtype, kv_stride, j0, nkv - j0 < ATT_B ? nkv - j0 : ATT_B,
			   dim, scale, &m, &l, s);
	attn_finish(out, dim, l);
}

/* GQA: the query heads of a group take turns on each block of KV rows, so
 * the block is read from memory once and from L1/L2 by the other heads. */
T512 void qvl_attn_gqa_avx512(float *out, const float *q, size_t nq, const void *K, const void *V,
			      enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			      float scale)
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
			size_t nb = nkv - j0 < ATT_B ? nkv - j0 : ATT_B;
			for (size_t h = 0; h < g; h++)
				attn_block(o + h * dim, qq + h * dim, K, V, kvtype, kv_stride, j0,
					   nb, dim, scale, &m[h], &l[h], s);
		}
		for (size_t h = 0; h < g; h++)
			attn_finish(o + h * dim, dim, l[h]);
	}
}
#endif
