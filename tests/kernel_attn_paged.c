/* attn_paged (simd/kernels.h) at every level: K and V scattered over pages
 * of 64 or 128 rows in a shuffled pool give bit for bit what attn_gqa of
 * the same level gives on the rows stored contiguously, for every KV type,
 * head sizes 32/64/128, 1..20 query heads per KV head and lengths that end
 * inside, at and past page boundaries. And attn_tile (causal prefill over
 * consecutive positions) gives for each row bit for bit what attn_paged
 * gives for that row alone (the decode step): tiles of 1..70 rows starting
 * anywhere, ragged head sizes (odd, past the 256 dims widened per block), 1..70 heads. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "tap.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static float frand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)(rng >> 40) / (float)(1u << 24) * 2.0f - 1.0f;
}

static void put(void *dst, enum qvl_dtype t, size_t i, float v)
{
	uint16_t h;

	if (t == QVL_DT_F32) {
		memcpy((float *)dst + i, &v, 4);
		return;
	}
	h = t == QVL_DT_F16 ? qvl_f32_to_f16(v) : qvl_f32_to_bf16(v);
	memcpy((uint16_t *)dst + i, &h, 2);
}

/* A paged pool holding n rows of random K and V: pages 2i + 1 in reverse
 * order, none adjacent, none in order. */
struct pages {
	uint8_t *pool;
	uint32_t *ids;
	struct qvl_kv_view v;
};

static void pages_make(struct pages *pg, enum qvl_dtype t, size_t dim, size_t n, size_t P)
{
	size_t es = t == QVL_DT_F32 ? 4 : 2, np = (n + P - 1) / P, pb = 2 * P * dim * es;

	pg->pool = calloc(2 * np + 1, pb);
	pg->ids = malloc((np ? np : 1) * sizeof(*pg->ids));
	for (size_t p = 0; p < np; p++)
		pg->ids[p] = (uint32_t)(2 * (np - 1 - p) + 1);
	for (size_t j = 0; j < n; j++) {
		uint8_t *b = pg->pool + (size_t)pg->ids[j / P] * pb;
		for (size_t d = 0; d < dim; d++) {
			put(b, t, (j % P) * dim + d, frand());
			put(b + P * dim * es, t, (j % P) * dim + d, frand());
		}
	}
	pg->v = (struct qvl_kv_view){.base = pg->pool,
				     .ids = pg->ids,
				     .page_bytes = pb,
				     .page_rows = P,
				     .k_off = 0,
				     .v_off = P * dim * es,
				     .stride = dim,
				     .type = t};
}

static void pages_free(struct pages *pg)
{
	free(pg->pool);
	free(pg->ids);
}

/* One case: returns true when paged == contiguous bit for bit. */
static bool one(const struct qvl_kernels *k, enum qvl_dtype t, size_t dim, size_t nq, size_t n,
		size_t P)
{
	size_t es = t == QVL_DT_F32 ? 4 : 2, pb = 2 * P * dim * es; /* K rows then V rows */
	uint8_t *K = malloc(n * dim * es + 1), *V = malloc(n * dim * es + 1);
	float *q = malloc(nq * dim * sizeof(float)), *a = malloc(nq * dim * sizeof(float));
	float *b = malloc(nq * dim * sizeof(float));
	struct pages pg;
	bool same;

	pages_make(&pg, t, dim, n, P);
	for (size_t i = 0; i < nq * dim; i++)
		q[i] = frand();
	/* the same rows stored contiguously */
	for (size_t j = 0; j < n; j++) {
		const uint8_t *r = pg.pool + (size_t)pg.ids[j / P] * pb + (j % P) * dim * es;
		memcpy(K + j * dim * es, r, dim * es);
		memcpy(V + j * dim * es, r + P * dim * es, dim * es);
	}
	struct qvl_kv_view v = pg.v;
	k->attn_gqa(a, q, nq, K, V, t, dim, n, dim, 0.125f);
	k->attn_paged(b, q, nq, &v, n, dim, 0.125f);
	same = !memcmp(a, b, nq * dim * sizeof(float));
	free(K);
	free(V);
	pages_free(&pg);
	free(q);
	free(a);
	free(b);
	return same;
}

/* rows x nq heads from position nkv0 - 1: tile = attn_paged row by row. */
static bool tile_one(const struct qvl_kernels *k, enum qvl_dtype t, size_t dim, size_t nq,
		     size_t nkv0, size_t rows, size_t P)
{
	struct pages pg;
	size_t ld = nq * dim + 3; /* rows not adjacent: the strides are honoured */
	float *q = malloc(rows * ld * sizeof(float)), *a = malloc(rows * ld * sizeof(float));
	float *b = malloc(nq * dim * sizeof(float));
	bool same = true;

	pages_make(&pg, t, dim, nkv0 + rows, P);
	for (size_t i = 0; i < rows * ld; i++)
		q[i] = frand() * 4.0f;
	k->attn_tile(a, ld, q, ld, nq, rows, &pg.v, nkv0, dim, 0.09f);
	for (size_t r = 0; r < rows && same; r++) {
		k->attn_paged(b, q + r * ld, nq, &pg.v, nkv0 + r, dim, 0.09f);
		same = !memcmp(a + r * ld, b, nq * dim * sizeof(float));
	}
	pages_free(&pg);
	free(q);
	free(a);
	free(b);
	return same;
}

static void test_tile(const struct qvl_kernels *k)
{
	static const enum qvl_dtype types[] = {QVL_DT_F32, QVL_DT_F16, QVL_DT_BF16};
	static const size_t dims[] = {128, 64, 17, 300}, nqs[] = {2, 1, 7, 70};
	static const size_t starts[] = {1, 5, 31, 32, 33, 64, 100, 300};
	static const size_t rows[] = {1, 2, 16, 31, 33, 70};
	size_t cases = 0, bad = 0;

	for (size_t c = 0; c < 3 * 4 * 4 * 8; c++) {
		enum qvl_dtype t = types[c % 3];
		size_t dim = dims[c / 3 % 4], nq = nqs[c / 12 % 4], s = starts[c / 48];
		size_t n = rows[c % 6], P = c % 2 ? 128 : 64;

		if (nq == 70 && n > 2)
			n = 2; /* keep the case small */
		cases++;
		if (!tile_one(k, t, dim, nq, s, n, P)) {
			if (!bad)
				diag("%s %s dim %zu nq %zu from %zu rows %zu page %zu differs",
				     k->name, qvl_dtype_name(t), dim, nq, s, n, P);
			bad++;
		}
	}
	ok(bad == 0, "%s: attn_tile = attn_paged per row bit for bit on %zu cases (%zu differ)",
	   k->name, cases, bad);
}

int main(void)
{
	static const enum qvl_dtype types[] = {QVL_DT_F32, QVL_DT_F16, QVL_DT_BF16};
	static const size_t dims[] = {32, 64, 128}, nqs[] = {1, 2, 7, 20};
	static const size_t lens[] = {1, 63, 64, 65, 128, 200, 1000};

	for (int lv = QVL_SIMD_REF; lv <= QVL_SIMD_AVX512; lv++) {
		struct qvl_kernels k;
		size_t cases = 0, bad = 0;

		if (qvl_kernels_get(&k, (enum qvl_simd_level)lv) < 0) {
			skip(2, "%s: not supported by this CPU", qvl_simd_name(lv));
			continue;
		}
		for (size_t ti = 0; ti < 3; ti++)
			for (size_t di = 0; di < 3; di++)
				for (size_t qi = 0; qi < 4; qi++)
					for (size_t li = 0; li < 7; li++)
						for (size_t P = 64; P <= 128; P += 64) {
							cases++;
							if (!one(&k, types[ti], dims[di], nqs[qi],
								 lens[li], P)) {
								if (!bad)
									diag("%s %s dim %zu nq %zu "
									     "n "
									     "%zu page %zu differs",
									     k.name,
									     qvl_dtype_name(
										 types[ti]),
									     dims[di], nqs[qi],
									     lens[li], P);
								bad++;
							}
						}
		ok(bad == 0, "%s: attn_paged = attn_gqa bit for bit on %zu cases (%zu differ)",
		   k.name, cases, bad);
		test_tile(&k);
	}
	return done_testing();
}
