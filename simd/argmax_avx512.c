/* AVX-512 argmax (kernels.h): per lane the first largest value and its
 * index (an ordered > never takes a NaN, and keeps the first of equal
 * values), then the largest lane value and the lowest index holding it. */
#include "config.h"

#ifdef HAVE_AVX512_KERNELS
#include <math.h>
#include <stdint.h>

#include "vec_avx512.h"

T512 size_t qvl_argmax_avx512(const float *x, size_t n, float *max)
{
	const __m512 ninf = _mm512_set1_ps(-INFINITY);
	__m512 best = ninf;
	__m512i bidx = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	__m512i idx = bidx;
	const __m512i step = _mm512_set1_epi32(16);
	size_t i = 0;

	if (n > INT32_MAX) /* lane indexes are 32-bit */
		return qvl_argmax_ref(x, n, max);
	for (; i + 16 <= n; i += 16) {
		__m512 v = _mm512_loadu_ps(x + i);
		__mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
		best = _mm512_mask_mov_ps(best, gt, v);
		bidx = _mm512_mask_mov_epi32(bidx, gt, idx);
		idx = _mm512_add_epi32(idx, step);
	}
	if (i < n) {
		__m512 v = _mm512_mask_loadu_ps(ninf, v16_mask(n - i), x + i);
		__mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
		best = _mm512_mask_mov_ps(best, gt, v);
		bidx = _mm512_mask_mov_epi32(bidx, gt, idx);
	}
	float m = _mm512_reduce_max_ps(best);
	__mmask16 at = _mm512_cmp_ps_mask(best, _mm512_set1_ps(m), _CMP_EQ_OQ);
	/* every lane is -inf when nothing beat it: lane 0's index, 0, as ref */
	uint32_t b = _mm512_mask_reduce_min_epu32(at, bidx);

	*max = m;
	return n ? b : 0;
}
#endif
