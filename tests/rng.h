/* Random numbers and allocation for the kernel tests (test_kernels,
 * test_qdot): a xorshift64 generator, so every run draws the same cases,
 * and malloc that exits 99 (a hard error for the TAP driver) on failure.
 * Each test may reseed with rng_seed() to keep its own sequence. */
#ifndef QVL_TESTS_RNG_H
#define QVL_TESTS_RNG_H

#include <stdint.h>
#include <stdlib.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static inline void rng_seed(uint64_t s)
{
	rng = s;
}

static inline uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static inline float frand(float a) /* uniform in [-a, a) */
{
	return ((float)(rnd() & 0xffffff) / 16777216.0f * 2.0f - 1.0f) * a;
}

static inline size_t urand(size_t lo, size_t hi) /* [lo, hi] */
{
	return lo + rnd() % (hi - lo + 1);
}

static inline void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		exit(99);
	return p;
}

#endif
