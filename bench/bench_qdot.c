/* Int8 dot-product kernels (simd/qdot.h) for the quantized weight types,
 * each figure beside a bound or the path it replaces, measured in the same
 * run on the same pool:
 *
 *   matvec GB/s (m == 1)       weight bytes read per second vs the measured
 *                              streaming read bandwidth (taken right before
 *                              each repetition), 2048x2048, 6144x2048 and
 *                              151936x2048; 128 MiB weight sets (> L3)
 *   prefill GOP/s (m = 512)    2mnk / time, vs the exact path (weights
 *                              widened to f32) where it takes the type
 *
 * on all pool threads and on one. One JSON object per line per figure on
 * stdout (median of the repetitions, min, max), a summary on stderr.
 * Usage: bench_qdot [--reps N] [--threads N] [--quick] */
#include "config.h"

#include <getopt.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kern_impl.h"
#include "pool.h"
#include "util.h"

static int reps = 7;

static void *xalloc(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
	if (!p) {
		fprintf(stderr, "bench_qdot: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct med3 {
	double med, lo, hi;
};

static struct med3 med3(const double *v, int n)
{
	double w[64];

	memcpy(w, v, (size_t)n * sizeof(double));
	qsort(w, (size_t)n, sizeof(double), cmp_dbl);
	return (struct med3){n % 2 ? w[n / 2] : 0.5 * (w[n / 2 - 1] + w[n / 2]), w[0], w[n - 1]};
}

/* ---- streaming read bandwidth -------------------------------------------- */

struct rd_task {
	const uint8_t *buf;
	size_t n;
	long long sink[64];
};

static __attribute__((target("avx2"))) long long read_avx2(const uint8_t *p, size_t n)
{
	__m256i a = _mm256_setzero_si256(), b = a;
	for (size_t i = 0; i + 64 <= n; i += 64) {
		a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(p + i)));
		b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
	}
	a = _mm256_add_epi64(a, b);
	return _mm256_extract_epi64(a, 0) + _mm256_extract_epi64(a, 3);
}

static void rd_run(void *arg, int ith, int nth)
{
	struct rd_task *t = arg;
	size_t lo, hi;

	qvl_split(t->n, 4096, ith, nth, &lo, &hi);
	t->sink[ith] = read_avx2(t->buf + lo, hi - lo);
}

static struct rd_task rd;

static double bw_once(struct qvl_pool *pool)
{
	double t0 = qvl_now();
	qvl_pool_run(pool, rd_run, &rd);
	return (double)rd.n / (qvl_now() - t0) / 1e9;
}

/* ---- matmul_fast over the pool (as qvl_matmul_pool splits matmul) ------- */

struct mf_task {
	float *Y;
	const float *X;
	const void *W;
	enum qvl_dtype t;
	size_t m, n, k;
	bool exact;
};

static void mf_run(void *arg, int ith, int nth)
{
	const struct mf_task *a = arg;
	size_t lo, hi;

	qvl_split(a->n, a->m == 1 ? 4 : 64, ith, nth, &lo, &hi);
	if (lo < hi)
		(a->exact ? qvl_kern.matmul : qvl_kern.matmul_fast)(
		    a->Y + lo, a->n, a->X, a->k, qvl_wrow(a->W, a->t, a->k, lo), a->t, a->k, NULL,
		    a->m, hi - lo, a->k);
}

/* n rows of type t, one row repeated */
static uint8_t *make_w(enum qvl_dtype t, size_t n, size_t k)
{
	size_t row = (size_t)(qvl_wrow(NULL, t, k, 1) - (const uint8_t *)NULL);
	uint8_t *w = xalloc(n * row);

	/* the speed does not depend on the values: a pattern whose every
	 * 16-bit field is a finite f16 (top byte 0x11..0x2f) */
	for (size_t i = 0; i < row; i++)
		w[i] = (uint8_t)(0x11 + (i * 7) % 31);
	for (size_t j = 1; j < n; j++)
		memcpy(w + j * row, w, row);
	return w;
}

static void run_matvec(struct qvl_pool *pool, const char *tag, enum qvl_dtype t, size_t n, size_t k)
{
	size_t row = (size_t)(qvl_wrow(NULL, t, k, 1) - (const uint8_t *)NULL), one = n * row;
	/* about 128 MiB of weights in turn, as a model's layers are: well past
	 * any L3 (hwloc's L3 figure on a VM can be the whole socket's) */
	size_t nmat = (((size_t)128 << 20) + one - 1) / one;
	uint8_t **W = xalloc(nmat * sizeof(*W));
	float *x = xalloc(k * 4), *y = xalloc(n * 4);
	double g[64], r[64];

	for (size_t j = 0; j < nmat; j++)
		W[j] = make_w(t, n, k);
	for (size_t i = 0; i < k; i++)
		x[i] = 0.001f * (float)(i % 100);
	struct mf_task a = {y, x, NULL, t, 1, n, k, false};
	for (size_t j = 0; j < nmat; j++) { /* warm: page tables */
		a.W = W[j];
		qvl_pool_run(pool, mf_run, &a);
	}
	for (int i = 0; i < reps; i++) {
		double bw = bw_once(pool), t0 = qvl_now();
		for (size_t j = 0; j < nmat; j++) {
			a.W = W[j];
			qvl_pool_run(pool, mf_run, &a);
		}
		g[i] = (double)(one * nmat) / (qvl_now() - t0) / 1e9;
		r[i] = g[i] / bw;
	}
	struct med3 sg = med3(g, reps), sr = med3(r, reps);
	int nth = qvl_pool_size(pool);
	printf("{\"name\":\"qdot_matvec_%s\",\"type\":\"%s\",\"n\":%zu,\"k\":%zu,\"threads\":%d,"
	       "\"value\":%.4g,\"unit\":\"GB/s\",\"min\":%.4g,\"max\":%.4g,\"reps\":%d,"
	       "\"bound\":\"mem_read_bw\",\"ratio\":%.3f,\"ratio_min\":%.3f,\"ratio_max\":%.3f}\n",
	       tag, qvl_dtype_name(t), n, k, nth, sg.med, sg.lo, sg.hi, reps, sr.med, sr.lo, sr.hi);
	fprintf(stderr,
		"matvec %-6s %6zux%zu %dT: %5.1f GB/s [%5.1f-%5.1f] = %.2f of read bw "
		"[%.2f-%.2f]\n",
		qvl_dtype_name(t), n, k, nth, sg.med, sg.lo, sg.hi, sr.med, sr.lo, sr.hi);
	for (size_t j = 0; j < nmat; j++)
		free(W[j]);
	free(W), free(x), free(y);
}

static double prefill_once(struct qvl_pool *pool, struct mf_task *a)
{
	double t0 = qvl_now();
	qvl_pool_run(pool, mf_run, a);
	return 2.0 * (double)a->m * (double)a->n * (double)a->k / (qvl_now() - t0) / 1e9;
}

static void run_prefill(struct qvl_pool *pool, enum qvl_dtype t, size_t m, size_t n, size_t k)
{
	uint8_t *W = make_w(t, n, k);
	float *X = xalloc(m * k * 4), *Y = xalloc(m * n * 4);
	double g[64], e[64];
	bool has_exact = t == QVL_DT_Q8_0 || t == QVL_DT_Q4_0;
	int nth = qvl_pool_size(pool);

	for (size_t i = 0; i < m * k; i++)
		X[i] = 0.001f * (float)(i % 1000) - 0.5f;
	struct mf_task a = {Y, X, W, t, m, n, k, false}, ex = a;
	ex.exact = true;
	prefill_once(pool, &a);
	for (int i = 0; i < reps; i++) {
		g[i] = prefill_once(pool, &a);
		e[i] = has_exact ? prefill_once(pool, &ex) : 0;
	}
	struct med3 sg = med3(g, reps), se = med3(e, reps);
	printf("{\"name\":\"qdot_prefill\",\"type\":\"%s\",\"m\":%zu,\"n\":%zu,\"k\":%zu,"
	       "\"threads\":%d,\"value\":%.4g,\"unit\":\"GOP/s\",\"min\":%.4g,\"max\":%.4g,"
	       "\"reps\":%d",
	       qvl_dtype_name(t), m, n, k, nth, sg.med, sg.lo, sg.hi, reps);
	if (has_exact)
		printf(
		    ",\"peer\":\"exact matmul (f32-widened)\",\"peer_value\":%.4g,\"ratio\":%.3f",
		    se.med, sg.med / se.med);
	printf("}\n");
	fprintf(stderr, "prefill %-6s m %zu %zux%zu %dT: %6.1f GOP/s [%.1f-%.1f]",
		qvl_dtype_name(t), m, n, k, nth, sg.med, sg.lo, sg.hi);
	if (has_exact)
		fprintf(stderr, " vs exact %.1f (%.2fx)", se.med, sg.med / se.med);
	fprintf(stderr, "\n");
	free(W), free(X), free(Y);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"reps", required_argument, NULL, 'r'},
					     {"threads", required_argument, NULL, 't'},
					     {"quick", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	static const enum qvl_dtype types[] = {QVL_DT_Q8_0, QVL_DT_Q4_0, QVL_DT_Q6_K, QVL_DT_Q4_K,
					       QVL_DT_Q5_K};
	struct qvl_err err = {{0}};
	struct qvl_pool *pools[2] = {NULL, NULL};
	struct qvl_cache_info ci;
	int c, quick = 0, want_threads = 0;

	while ((c = getopt_long(argc, argv, "r:t:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			reps = atoi(optarg);
			if (reps < 1 || reps > 64) {
				fprintf(stderr, "bench_qdot: --reps %s: 1..64\n", optarg);
				return 2;
			}
			break;
		case 't':
			want_threads = atoi(optarg);
			break;
		case 'q':
			quick = 1;
			break;
		default:
			fprintf(stderr, "usage: bench_qdot [--reps N] [--threads N] [--quick]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (qvl_kernels_init(&err) < 0 ||
	    qvl_pool_create(&pools[0], want_threads, NULL, &err) < 0 ||
	    qvl_pool_create(&pools[1], 1, NULL, &err) < 0) {
		fprintf(stderr, "bench_qdot: %s\n", err.msg);
		return 1;
	}
	if (qvl_kern.level == QVL_SIMD_REF) {
		fprintf(stderr, "bench_qdot: reference kernels only; nothing to measure\n");
		qvl_pool_destroy(pools[1]);
		qvl_pool_destroy(pools[0]);
		return 0;
	}
	qvl_cache_info(&ci);
	fprintf(stderr, "bench_qdot: kernels %s, %d threads (and 1), L3 %zu MiB\n", qvl_kern.name,
		qvl_pool_size(pools[0]), ci.l3 >> 20);
	rd.n = (size_t)256 << 20;
	rd.buf = xalloc(rd.n);
	memset((void *)rd.buf, 1, rd.n);
	static const size_t shapes[][2] = {{2048, 2048}, {6144, 2048}, {151936, 2048}};
	static const char *const tags[] = {"2048x2048", "6144x2048", "151936x2048"};
	for (int p = 0; p < 2; p++) {
		if (p == 1 && qvl_pool_size(pools[0]) == 1)
			break;
		for (size_t s = 0; s < 3; s++)
			for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
				if (!quick || s == 0)
					run_matvec(pools[p], tags[s], types[i], shapes[s][0],
						   shapes[s][1]);
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			run_prefill(pools[p], types[i], quick ? 64 : 512, 2048, 2048);
	}
	free((void *)rd.buf);
	qvl_pool_destroy(pools[1]);
	qvl_pool_destroy(pools[0]);
	return 0;
}
