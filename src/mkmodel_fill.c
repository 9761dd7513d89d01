/* Fill kernels for the deterministic model: element i of a tensor is a pure
 * function of (key, i) (testmodel.md §4-§5), so any range can be generated
 * anywhere. A portable loop and an AVX-512 one (2.1 G elements for the 2b
 * shape: the per-element cost is what makes "seconds, not minutes").
 *
 * Both step the SplitMix64 state (z += GOLDEN per element) instead of
 * multiplying (i + 1) * GOLDEN: the same value modulo 2^64, one add. The
 * value v = r * 2^-(23+e) (+ c) is computed as in §5.1: the multiply is
 * exact, so only the add rounds, and FMA contraction cannot change it. For
 * tensors without a center, c = +0.0 is added: r * s is never -0.0 and x + 0
 * is exact, so the result equals the no-center rule. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "mkmodel.h"

static inline uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static inline uint16_t one(uint64_t z, float scale, float center)
{
	int32_t r = (int32_t)(mix(z) >> 40) - (1 << 23);
	float v = (float)r * scale + center;
	uint32_t b;

	memcpy(&b, &v, sizeof(b));
	return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

static void params(const struct qvl_mk_tensor *t, float *scale, float *center)
{
	*scale = ldexpf(1.0f, -23 - t->exp);
	*center = t->has_center ? ldexpf(1.0f, t->center) : 0.0f;
}

void qvl_mk_fill_scalar(const struct qvl_mk_tensor *t, uint64_t start, size_t count, uint16_t *out)
{
	uint64_t z = t->key + (start + 1) * QVL_MK_GOLDEN;
	float scale, center;

	params(t, &scale, &center);
	for (size_t i = 0; i < count; i++, z += QVL_MK_GOLDEN)
		out[i] = one(z, scale, center);
}

#if defined(__x86_64__)
#define MK_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))

MK_AVX512 static inline __m512i mix8(__m512i z)
{
	const __m512i m1 = _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ULL);
	const __m512i m2 = _mm512_set1_epi64((long long)0x94D049BB133111EBULL);

	z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), m1);
	z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), m2);
	return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

MK_AVX512 static void fill_avx512(const struct qvl_mk_tensor *t, uint64_t start, size_t count,
				  uint16_t *out)
{
	uint64_t z0 = t->key + (start + 1) * QVL_MK_GOLDEN;
	float scale, center;
	size_t i = 0;

	params(t, &scale, &center);
	const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
	const __m512i g = _mm512_set1_epi64((long long)QVL_MK_GOLDEN);
	const __m512i step = _mm512_set1_epi64((long long)(16 * QVL_MK_GOLDEN));
	const __m512i half = _mm512_set1_epi64((long long)(8 * QVL_MK_GOLDEN));
	const __m512i bias = _mm512_set1_epi32(1 << 23);
	const __m512i rnd = _mm512_set1_epi32(0x7FFF);
	const __m512i one1 = _mm512_set1_epi32(1);
	const __m512 vs = _mm512_set1_ps(scale), vc = _mm512_set1_ps(center);
	/* lanes 0..7: z0 + lane * G; lanes 8..15: + 8 G */
	__m512i za =
	    _mm512_add_epi64(_mm512_set1_epi64((long long)z0), _mm512_mullo_epi64(lane, g));
	__m512i zb = _mm512_add_epi64(za, half);

	for (; i + 16 <= count; i += 16) {
		__m256i ra = _mm512_cvtepi64_epi32(_mm512_srli_epi64(mix8(za), 40));
		__m256i rb = _mm512_cvtepi64_epi32(_mm512_srli_epi64(mix8(zb), 40));
		__m512i r = _mm512_inserti64x4(_mm512_castsi256_si512(ra), rb, 1);

		r = _mm512_sub_epi32(r, bias);
		__m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(r), vs), vc);
		__m512i b = _mm512_castps_si512(v);
		__m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), one1);

		b = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, rnd), lsb), 16);
		_mm256_storeu_si256((void *)(out + i), _mm512_cvtepi32_epi16(b));
		za = _mm512_add_epi64(za, step);
		zb = _mm512_add_epi64(zb, step);
	}
	for (uint64_t z = z0 + i * QVL_MK_GOLDEN; i < count; i++, z += QVL_MK_GOLDEN)
		out[i] = one(z, scale, center);
}
#endif

typedef void (*fill_fn)(const struct qvl_mk_tensor *, uint64_t, size_t, uint16_t *);

static fill_fn pick(void)
{
#if defined(__x86_64__)
	const char *env = getenv("QVL_SIMD");

	/* QVL_SIMD=ref forces the portable path, as for the engine's kernels */
	if (!(env && !strcmp(env, "ref")) && __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512bw"))
		return fill_avx512;
#endif
	return qvl_mk_fill_scalar;
}

void qvl_mk_fill(const struct qvl_mk_tensor *t, uint64_t start, size_t count, uint16_t *out)
{
	/* benign race: every thread computes the same pointer */
	static fill_fn fn;
	fill_fn f = __atomic_load_n(&fn, __ATOMIC_RELAXED);

	if (!f) {
		f = pick();
		__atomic_store_n(&fn, f, __ATOMIC_RELAXED);
	}
	f(t, start, count, out);
}

void qvl_mk_fill_range(const struct qvl_mk_plan *p, uint64_t off, size_t len, void *out)
{
	uint16_t *o = out;
	size_t lo = 0, hi = p->n;

	if (!p->n)
		return;
	/* last tensor whose offset <= off */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->t[mid].offset <= off)
			lo = mid;
		else
			hi = mid;
	}
	for (size_t k = lo; len && k < p->n; k++) {
		const struct qvl_mk_tensor *t = &p->t[k];
		uint64_t end = t->offset + 2 * t->numel;

		if (off >= end)
			continue;
		uint64_t first = (off - t->offset) / 2;
		size_t cnt = (size_t)((end - off) / 2);

		if (cnt > len / 2)
			cnt = len / 2;
		qvl_mk_fill(t, first, cnt, o);
		o += cnt;
		off += 2 * (uint64_t)cnt;
		len -= 2 * cnt;
	}
}
