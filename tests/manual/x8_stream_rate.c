/* Manual measurement (not in make check): the four repacked decode kernels
 * (Q4_0_X8, Q4_K_X8, Q6_K_X8, Q8_0_X8) at AVX-512 and AVX2, alternating
 * sample by sample in one process, CPU time; the weights are ~110 MB per
 * thread of 6144-row matrices taken in turn (2 MiB aligned, MADV_HUGEPAGE,
 * as the engine's copies). What a type streams per byte beside the others
 * is the question (docs/todo-q4dec2.md).
 *   threads 1: "cache" (512 rows x 40) and "stream" rates of one thread
 *   threads 2: a pool of 2 split at groups of 8 as the engine splits: the
 *              sum of the two threads' rates in their own CPU time, and the
 *              pair's wall rate (meaningful on a quiet machine only)
 * Arguments: samples (9, at most 64), k (2048), threads (1).
 * Build from a build directory:
 *   cc -O2 -I../src -I../simd -I. ../tests/manual/x8_stream_rate.c \
 *      libqvlengine.a -luring -lhwloc -lnuma -lisal -lutf8proc -lspng -ljpeg \
 *      -lm -lpthread -o x8_stream_rate */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kern_impl.h"
#include "pool.h"
#include "qrepack.h"
#include "quant.h"
#include "util.h"

#define NT 4

static double cpu(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct task {
	struct qvl_kernels *K;
	enum qvl_dtype t;
	const uint8_t *w;
	size_t n, k, rb;
	const float *x;
	float *y;
	double ct[2];
};

static void run(void *arg, int ith, int nth)
{
	struct task *a = arg;
	size_t lo, hi;
	double t0;

	qvl_split(a->n, 8, ith, nth, &lo, &hi);
	t0 = cpu();
	a->K->matmul_fast(a->y + lo, a->n, a->x, a->k, a->w + lo * a->rb, a->t, a->k, NULL, 1,
			  hi - lo, a->k);
	a->ct[ith] += cpu() - t0;
}

static void report(const char *lvl, const char *type, const char *fig, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmpd);
	printf("%-7s %-8s %-26s median %6.1f GB/s [%5.1f-%5.1f]\n", lvl, type, fig, v[n / 2],
	       v[n > 2 ? 1 : 0], v[n > 2 ? n - 2 : n - 1]);
}

int main(int argc, char **argv)
{
	int ns_ = argc > 1 ? atoi(argv[1]) : 9, nth = argc > 3 ? atoi(argv[3]) : 1;
	size_t k = argc > 2 ? (size_t)atol(argv[2]) : 2048;
	const enum qvl_dtype ft[NT] = {QVL_DT_Q4_0, QVL_DT_Q4_K, QVL_DT_Q6_K, QVL_DT_Q8_0};
	const enum qvl_dtype xt[NT] = {QVL_DT_Q4_0_X8, QVL_DT_Q4_K_X8, QVL_DT_Q6_K_X8,
				       QVL_DT_Q8_0_X8};
	const char *name[NT] = {"Q4_0_X8", "Q4_K_X8", "Q6_K_X8", "Q8_0_X8"};
	const size_t rb[NT] = {18 * k / 32, 144 * k / 256, 210 * k / 256, 34 * k / 32};
	const size_t nc = 512, ns = 6144;
	static double r[2][NT][2][64];
	struct qvl_kernels kt[2];
	struct qvl_err err = {{0}};
	struct qvl_pool *pool = NULL;
	uint8_t *w[NT];
	size_t nm[NT];

	if (ns_ < 1 || ns_ > 64 || k % 256 || k == 0 || (nth != 1 && nth != 2)) {
		fprintf(stderr,
			"usage: x8_stream_rate [samples 1..64] [k, a multiple of 256] [1|2]\n");
		return 2;
	}
	if (qvl_kernels_get(&kt[0], QVL_SIMD_AVX512) || qvl_kernels_get(&kt[1], QVL_SIMD_AVX2) ||
	    (nth == 2 && qvl_pool_create(&pool, 2, NULL, &err))) {
		fprintf(stderr, "x8_stream_rate: needs AVX-512 and AVX2 kernels and a pool\n");
		return 1;
	}
	float *x = malloc(k * 4), *y = malloc(ns * 4), *f = malloc(k * 4);
	srand(1);
	for (size_t i = 0; i < k; i++)
		x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
	for (int t = 0; t < NT; t++) {
		size_t tot, al = (size_t)1 << 21;
		uint8_t *wf = malloc(256 * rb[t]), *src = malloc(ns * rb[t]);

		nm[t] = (size_t)nth * (110u << 20) / (ns * rb[t]) + 1;
		tot = nm[t] * ns * rb[t];
		w[t] = aligned_alloc(al, (tot + al - 1) & ~(al - 1));
		madvise(w[t], tot, MADV_HUGEPAGE);
		for (size_t j = 0; j < 256; j++) {
			for (size_t i = 0; i < k; i++)
				f[i] = (float)rand() / (float)RAND_MAX - 0.5f;
			qvl_quantize_row(ft[t], f, wf + j * rb[t], k);
		}
		for (size_t j = 0; j < ns; j++)
			memcpy(src + j * rb[t], wf + (j % 256) * rb[t], rb[t]);
		for (size_t c = 0; c < nm[t]; c++)
			if (qvl_repack(w[t] + c * ns * rb[t], xt[t], src, ft[t], ns, k))
				return 1;
		free(src), free(wf);
	}
	for (int s = 0; s < ns_; s++)
		for (int t = 0; t < NT; t++)
			for (int l0 = 0; l0 < 2; l0++) {
				int l = l0 ^ (s & 1); /* which level goes first alternates */
				double tot = (double)nm[t] * (double)(ns * rb[t]), t0 = cpu();
				struct task a = {&kt[l], xt[t], NULL, ns, k, rb[t], x, y, {0, 0}};

				if (nth == 1) {
					for (int it = 0; it < 40; it++)
						kt[l].matmul_fast(y, nc, x, k, w[t], xt[t], k, NULL,
								  1, nc, k);
					r[0][t][l][s] =
					    40.0 * (double)(nc * rb[t]) / (cpu() - t0) / 1e9;
					t0 = cpu();
					for (size_t c = 0; c < nm[t]; c++)
						kt[l].matmul_fast(y, ns, x, k,
								  w[t] + c * ns * rb[t], xt[t], k,
								  NULL, 1, ns, k);
					r[1][t][l][s] = tot / (cpu() - t0) / 1e9;
					continue;
				}
				t0 = qvl_now();
				for (size_t c = 0; c < nm[t]; c++) {
					a.w = w[t] + c * ns * rb[t];
					qvl_pool_run(pool, run, &a);
				}
				r[1][t][l][s] = tot / (qvl_now() - t0) / 1e9;
				r[0][t][l][s] = (tot / 2 / a.ct[0] + tot / 2 / a.ct[1]) / 1e9;
			}
	for (int q = 0; q < 2; q++)
		for (int t = 0; t < NT; t++)
			for (int l = 0; l < 2; l++)
				report(kt[l].name, name[t],
				       nth == 1 ? (q ? "stream" : "cache")
				       : q	? "wall, 2 threads"
						: "sum of 2 threads' CPU rates",
				       r[q][t][l], ns_);
	if (pool)
		qvl_pool_destroy(pool);
	return 0;
}
