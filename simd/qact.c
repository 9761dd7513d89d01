/* Activation quantization for the int8 dot products (qdot.h): one row of f32
 * to int8 blocks of 32 or 256 with an f32 scale and the block (or 16-value)
 * sums the weight types with an offset or a min need. The scalar and AVX2
 * versions give identical bytes (same products, round to nearest even, the
 * max ignores NaN the same way), so every SIMD level sees the same integers.
 * Also the per-thread scratch the quantized rows live in. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qdot.h"

/* ---- scratch ------------------------------------------------------------ */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local struct {
	void *p;
	size_t cap;
} scratch;

static void scratch_free(void *p)
{
	free(p);
}

static void scratch_key_init(void)
{
	if (pthread_key_create(&scratch_key, scratch_free))
		scratch_key = (pthread_key_t)-1;
}

void *qvl_qact_scratch(size_t bytes)
{
	void *p;

	if (bytes <= scratch.cap)
		return scratch.p;
	pthread_once(&scratch_once, scratch_key_init);
	bytes = (bytes + 4095) & ~(size_t)4095;
	p = aligned_alloc(64, bytes);
	if (!p)
		return NULL;
	free(scratch.p);
	scratch.p = p;
	scratch.cap = bytes;
	/* the key's destructor frees it when a pool thread exits */
	if (scratch_key != (pthread_key_t)-1)
		pthread_setspecific(scratch_key, p);
	return p;
}

/* ---- scalar ------------------------------------------------------------- */

/* The 32-block scale rounded to f16 as llama.cpp's Q8_0/Q8_1 activation
 * blocks store it (the quants still use the unrounded 127 / amax): the
 * products then match llama.cpp's on the same file more closely. */
static float qa_scale(float d)
{
	return qvl_f16_to_f32(qvl_f32_to_f16(d));
}

/* round(v) to nearest even as cvtps2dq does; out of range and NaN give
 * -128 as the SIMD pack of 0x80000000 does (only for non-finite input) */
static int8_t q_round(float v)
{
	if (!(v >= -127.5f && v <= 127.5f))
		return -128;
	return (int8_t)rintf(v);
}

/* amax of n values; NaN never wins (as maxps(x, acc) in the AVX2 code) */
static float amax_ref(const float *x, size_t n)
{
	float a = 0.0f;

	for (size_t i = 0; i < n; i++) {
		float v = fabsf(x[i]);
		if (v > a)
			a = v;
	}
	return a;
}

static void quant_block_ref(int8_t *q, float *d, const float *x, size_t n)
{
	float a = amax_ref(x, n), id = a > 0.0f ? 127.0f / a : 0.0f;

	*d = a / 127.0f;
	for (size_t i = 0; i < n; i++)
		q[i] = q_round(x[i] * id);
}

void qvl_qact_row_ref(void *dst, enum qvl_dtype t, const float *x, size_t k)
{
	if (qvl_qdot_act_blk(t) == QVL_QA_BLK) {
		struct qvl_q8a *b = dst;
		for (size_t i = 0; i < k / QVL_QA_BLK; i++, b++, x += QVL_QA_BLK) {
			int32_t s = 0;
			quant_block_ref(b->q, &b->d, x, QVL_QA_BLK);
			b->d = qa_scale(b->d);
			for (int j = 0; j < QVL_QA_BLK; j++)
				s += b->q[j];
			b->s = s;
		}
		return;
	}
	struct qvl_q8k *b = dst;
	for (size_t i = 0; i < k / QVL_QK_BLK; i++, b++, x += QVL_QK_BLK) {
		quant_block_ref(b->q, &b->d, x, QVL_QK_BLK);
		for (int j = 0; j < QVL_QK_BLK / 16; j++) {
			int s = 0;
			for (int l = 0; l < 16; l++)
				s += b->q[16 * j + l];
			b->bsum[j] = (int16_t)s;
		}
	}
}

/* ---- AVX2 --------------------------------------------------------------- */

#ifdef HAVE_AVX2_KERNELS
#include "vec_avx2.h"

INL256 float amax_avx2(const float *x, size_t n)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 a = _mm256_setzero_ps();

	for (size_t i = 0; i < n; i += 8)
		a = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), a);
	return v8_hmax(a);
}

/* 32 floats times id to 32 int8 in order (packs interleave the 128-bit
 * lanes; the final permute restores the order) */
INL256 __m256i quant32_avx2(const float *x, __m256 id)
{
	__m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
	__m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
	__m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
	__m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
	__m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
	__m256i q = _mm256_packs_epi16(ab, cd);
	return _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Σ of the 32 int8 as 16-bit sums of 16-value halves: [lo16, hi16] */
INL256 __m256i sum16_avx2(__m256i q)
{
	/* maddubs(1, q) adds pairs; madd(.,1) adds pairs again: 8 x int32 */
	__m256i p =
	    _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
	return p;
}

T256 void qvl_qact_row_avx2(void *dst, enum qvl_dtype t, const float *x, size_t k)
{
	if (qvl_qdot_act_blk(t) == QVL_QA_BLK) {
		struct qvl_q8a *b = dst;
		for (size_t i = 0; i < k / QVL_QA_BLK; i++, b++, x += QVL_QA_BLK) {
			float a = amax_avx2(x, QVL_QA_BLK);
			__m256 id = _mm256_set1_ps(a > 0.0f ? 127.0f / a : 0.0f);
			__m256i q = quant32_avx2(x, id);
			__m256i p = sum16_avx2(q);
			__m128i s = _mm_add_epi32(_mm256_castsi256_si128(p),
						  _mm256_extracti128_si256(p, 1));
			s = _mm_hadd_epi32(s, s);
			s = _mm_hadd_epi32(s, s);
			b->d = qa_scale(a / 127.0f);
			_mm256_storeu_si256((__m256i *)b->q, q);
			b->s = _mm_cvtsi128_si32(s);
		}
		return;
	}
	struct qvl_q8k *b = dst;
	for (size_t i = 0; i < k / QVL_QK_BLK; i++, b++, x += QVL_QK_BLK) {
		float a = amax_avx2(x, QVL_QK_BLK);
		__m256 id = _mm256_set1_ps(a > 0.0f ? 127.0f / a : 0.0f);
		b->d = a / 127.0f;
		for (int c = 0; c < QVL_QK_BLK / 32; c++) {
			__m256i q = quant32_avx2(x + 32 * c, id);
			__m256i p = sum16_avx2(q);
			/* lanes 0-3: first 16 values, 4-7: the next 16 */
			__m128i lo = _mm256_castsi256_si128(p), hi = _mm256_extracti128_si256(p, 1);
			__m128i h = _mm_hadd_epi32(lo, hi);
			h = _mm_hadd_epi32(h, h);
			_mm256_storeu_si256((__m256i *)(b->q + 32 * c), q);
			b->bsum[2 * c] = (int16_t)_mm_cvtsi128_si32(h);
			b->bsum[2 * c + 1] = (int16_t)_mm_extract_epi32(h, 1);
		}
	}
}

#endif
