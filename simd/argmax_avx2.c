/* AVX2 argmax (kernels.h): argmax_avx512.c with 8 lanes; the lanes are
 * reduced in scalar code (ties: lowest index). */
#include "config.h"

#ifdef HAVE_AVX2_KERNELS
#include <math.h>
#include <stdint.h>

#include "vec_avx2.h"

T256 size_t qvl_argmax_avx2(const float *x, size_t n, float *max)
{
	__m256 best = _mm256_set1_ps(-INFINITY);
	__m256i bidx = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), idx = bidx;
	const __m256i step = _mm256_set1_epi32(8);
	float bv[8];
	int32_t bi[8];
	size_t i = 0, b = 0;
	float m = -INFINITY;

	if (n > INT32_MAX) /* lane indexes are 32-bit */
		return qvl_argmax_ref(x, n, max);
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(x + i);
		__m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
		best = _mm256_blendv_ps(best, v, gt);
		bidx = _mm256_castps_si256(
		    _mm256_blendv_ps(_mm256_castsi256_ps(bidx), _mm256_castsi256_ps(idx), gt));
		idx = _mm256_add_epi32(idx, step);
	}
	_mm256_storeu_ps(bv, best);
	_mm256_storeu_si256((__m256i *)bi, bidx);
	for (int l = 0; l < 8; l++)
		if (bv[l] > m || (bv[l] == m && (size_t)bi[l] < b)) {
			m = bv[l];
			b = (size_t)bi[l];
		}
	for (; i < n; i++) /* the tail comes after every vector index */
		if (x[i] > m) {
			m = x[i];
			b = i;
		}
	*max = m;
	return b;
}
#endif
