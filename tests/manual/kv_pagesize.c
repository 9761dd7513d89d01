/* How the KV page size affects decode attention (docs/kv-cache.md): one
 * decode row's attention over n cached positions, the 2b shape (8 KV heads
 * of 128 dims, 2 query heads per KV head, all 28 layers), read through
 * pages of 64..512 positions scattered at random in a pool (the worst
 * case: no two neighbouring pages adjacent) and through the contiguous
 * kernel (attn_gqa). One thread; median of REPS runs, the configurations
 * interleaved, in microseconds per step of 8 layers x 8 heads (the 2b's
 * 28 layers read 3.5 x as much; 8 keep the pools at 4096 positions under
 * 150 MB each, still far beyond the last-level cache).
 *
 * Build from a build directory:
 *   cc -O2 -I../src -I../simd -I. ../tests/manual/kv_pagesize.c libqvlengine.a \
 *      -lm -lpthread -lhwloc -linih -lisal -ljpeg -lnuma -lspng -luring -lutf8proc \
 *      -o kv_pagesize
 *   ./kv_pagesize [positions]   (default 4096) */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

#define HD    128
#define NKV   8
#define GROUP 2
#define L     8
#define REPS  31

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct cfg {
	size_t P, np, pb;
	uint8_t *pool;
	uint32_t *ids;
	double t[REPS];
};

/* Pages of P positions (P = n: the contiguous kernel), scattered. */
static int cfg_init(struct cfg *c, size_t P, size_t n)
{
	uint64_t x = 88172645463325252ull;
	size_t total, heads = (size_t)L * NKV;

	c->P = P;
	c->np = (n + P - 1) / P;
	/* a page here = K and V of one head (the rest of a real page, the
	 * other layers and heads, only spaces the pages further apart) */
	c->pb = 2 * P * HD * 2;
	total = c->np * c->pb * heads;
	c->pool = malloc(total);
	c->ids = malloc(c->np * heads * sizeof(uint32_t));
	if (!c->pool || !c->ids)
		return -1;
	/* a 64 KiB pattern of f16 values in [0, 1] repeated */
	for (size_t i = 0; i < 32768 && 2 * i < total; i++) {
		uint16_t h = qvl_f32_to_f16((float)((i * 2654435761u) % 2001) / 2000.0f);
		memcpy(c->pool + 2 * i, &h, 2);
	}
	for (size_t off = 65536; off < total; off += 65536)
		memcpy(c->pool + off, c->pool, total - off < 65536 ? total - off : 65536);
	for (size_t i = 0; i < c->np * heads; i++)
		c->ids[i] = (uint32_t)i;
	for (size_t i = c->np * heads - 1; i > 0; i--) { /* shuffle */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t j = x % (i + 1);
		uint32_t tmp = c->ids[i];
		c->ids[i] = c->ids[j];
		c->ids[j] = tmp;
	}
	return 0;
}

/* One decode step's attention over all layers and heads, in us. */
static double run(const struct cfg *c, size_t n, bool whole, const float *q, float *out)
{
	double t0 = now();

	for (size_t h = 0; h < (size_t)L * NKV; h++) {
		if (whole) {
			const uint8_t *pg = c->pool + (size_t)c->ids[h] * c->pb;
			qvl_kern.attn_gqa(out, q, GROUP, pg, pg + c->P * HD * 2, QVL_DT_F16, HD, n,
					  HD, 0.088f);
		} else {
			struct qvl_kv_view v = {.base = c->pool,
						.ids = c->ids + h * c->np,
						.page_bytes = c->pb,
						.page_rows = c->P,
						.k_off = 0,
						.v_off = c->P * HD * 2,
						.stride = HD,
						.type = QVL_DT_F16};
			qvl_kern.attn_paged(out, q, GROUP, &v, n, HD, 0.088f);
		}
	}
	return (now() - t0) * 1e6;
}

int main(int argc, char **argv)
{
	struct qvl_err err = {{0}};
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 4096;
	static const size_t sizes[] = {0, 64, 128, 256, 512};
	enum { NC = sizeof(sizes) / sizeof(sizes[0]) };
	struct cfg c[NC];
	float q[GROUP * HD], out[GROUP * HD];

	if (qvl_kernels_init(&err) < 0 || n < 64) {
		fprintf(stderr, "kv_pagesize: %s\n", n < 64 ? "at least 64 positions" : err.msg);
		return 1;
	}
	for (int i = 0; i < GROUP * HD; i++)
		q[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
	for (int i = 0; i < NC; i++)
		if (cfg_init(&c[i], sizes[i] ? sizes[i] : n, n) < 0)
			return 1;
	/* configurations interleaved, so the machine's noise spreads evenly */
	for (int r = 0; r < REPS; r++)
		for (int i = 0; i < NC; i++)
			c[i].t[r] = run(&c[i], n, !sizes[i], q, out);
	printf("level %s, %zu positions, KV f16, one thread, %d layers x %d KV heads\n",
	       qvl_kern.name, n, L, NKV);
	for (int i = 0; i < NC; i++) {
		char label[24] = "whole";

		qsort(c[i].t, REPS, sizeof(double), cmp);
		if (sizes[i])
			snprintf(label, sizeof(label), "%zu", sizes[i]);
		printf("page %5s: %8.0f us per step (min %.0f, max %.0f), %.2f x whole\n", label,
		       c[i].t[REPS / 2], c[i].t[0], c[i].t[REPS - 1],
		       c[i].t[REPS / 2] / c[0].t[REPS / 2]);
		free(c[i].pool);
		free(c[i].ids);
	}
	return out[0] == 12345.0f;
}
