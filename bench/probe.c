/* Shared by the kernel benchmarks: options, statistics, the bandwidth
 * probe (probe.h). */
#include "config.h"

#include <getopt.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kern_impl.h"
#include "probe.h"
#include "util.h"

int bench_parse_opts(struct bench_opts *o, const char *prog, int argc, char **argv)
{
	static const struct option opts[] = {{"reps", required_argument, NULL, 'r'},
					     {"threads", required_argument, NULL, 't'},
					     {"quick", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	char *end;
	long v;
	int c;

	*o = (struct bench_opts){.reps = 7, .prog = prog};
	while ((c = getopt_long(argc, argv, "r:t:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			v = strtol(optarg, &end, 10);
			o->reps = *end || v < 1 || v > 64 ? 0 : (int)v;
			if (!o->reps) {
				fprintf(stderr, "%s: --reps %s: out of range (1..64)\n", prog,
					optarg);
				return 2;
			}
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			o->threads = *end || v < 0 || v > 1024 ? -1 : (int)v;
			if (o->threads < 0) {
				fprintf(stderr, "%s: --threads %s: out of range (0..1024)\n", prog,
					optarg);
				return 2;
			}
			break;
		case 'q':
			o->quick = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [--reps N] [--threads N] [--quick]\n", prog);
			return c == 'h' ? 0 : 2;
		}
	}
	return -1;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct bench_stat bench_stats(const double *v, int n)
{
	double w[64];

	memcpy(w, v, (size_t)n * sizeof(double));
	qsort(w, (size_t)n, sizeof(double), cmp_dbl);
	return (struct bench_stat){n % 2 ? w[n / 2] : 0.5 * (w[n / 2 - 1] + w[n / 2]), w[0],
				   w[n - 1]};
}

void *bench_xalloc(const char *prog, size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);

	if (!p) {
		fprintf(stderr, "%s: out of memory (%zu bytes)\n", prog, n);
		exit(1);
	}
	return p;
}

/* ---- read bandwidth ------------------------------------------------------ */

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define T256 __attribute__((target("avx2,fma")))

static struct {
	float *buf;
	size_t n;
	float sink[64];
	int init;
} bw;

/* Streaming reads, 4 concurrent streams per thread (the quarters of its
 * slice): one sequential stream per core tops out ~20% lower on Zen 4
 * (26 vs 32 GB/s on 2 threads), and the kernels read several rows at once,
 * so one stream would understate the bound they are measured against. */
static T512 float read512(const float *p, size_t n)
{
	size_t q = n / 4 & ~(size_t)15;
	__m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
	for (size_t i = 0; i < q; i += 16) {
		a = _mm512_add_ps(a, _mm512_load_ps(p + i));
		b = _mm512_add_ps(b, _mm512_load_ps(p + q + i));
		c = _mm512_add_ps(c, _mm512_load_ps(p + 2 * q + i));
		d = _mm512_add_ps(d, _mm512_load_ps(p + 3 * q + i));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}

static T256 float read256(const float *p, size_t n)
{
	size_t q = n / 4 & ~(size_t)15;
	__m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
	float t[8];
	for (size_t i = 0; i < q; i += 8) {
		a = _mm256_add_ps(a, _mm256_load_ps(p + i));
		b = _mm256_add_ps(b, _mm256_load_ps(p + q + i));
		c = _mm256_add_ps(c, _mm256_load_ps(p + 2 * q + i));
		d = _mm256_add_ps(d, _mm256_load_ps(p + 3 * q + i));
	}
	_mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
	return t[0] + t[7];
}

static void bw_run(void *arg, int ith, int nth)
{
	size_t lo, hi;

	(void)arg;
	qvl_split(bw.n, 1024, ith, nth, &lo, &hi);
	if (bw.init) { /* first touch by the reading thread */
		for (size_t i = lo; i < hi; i++)
			bw.buf[i] = (float)(i & 7);
		return;
	}
	bw.sink[ith] = bench_read_streams(bw.buf + lo, hi - lo, qvl_kern.level);
}

float bench_read_streams(const float *p, size_t n, int level)
{
	return level >= QVL_SIMD_AVX512 ? read512(p, n) : level >= QVL_SIMD_AVX2 ? read256(p, n) : p[0];
}

void bench_bw_init(struct qvl_pool *pool, size_t bytes)
{
	bw.n = bytes / 4;
	bw.buf = bench_xalloc("bench", bytes);
	bw.init = 1;
	qvl_pool_run(pool, bw_run, NULL);
	bw.init = 0;
	bench_bw_once(pool); /* warm */
}

double bench_bw_once(struct qvl_pool *pool)
{
	double t0 = qvl_now();

	qvl_pool_run(pool, bw_run, NULL);
	return (double)bw.n * 4 / (qvl_now() - t0) / 1e9;
}

size_t bench_bw_bytes(void)
{
	return bw.n * 4;
}

void bench_bw_free(void)
{
	free(bw.buf);
	bw.buf = NULL;
}
