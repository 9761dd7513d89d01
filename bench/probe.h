/* What the kernel benchmarks (bench_kernels, bench_qdot) share: their
 * options, the median and range of repetitions, aligned allocation that
 * exits on failure, and the streaming read-bandwidth probe every decode
 * figure is compared with. */
#ifndef QVL_BENCH_PROBE_H
#define QVL_BENCH_PROBE_H

#include <stddef.h>

#include "pool.h"

struct bench_opts {
	int reps;	  /* 1..64 (default 7) */
	int threads;	  /* 0: the pool's default */
	int quick;	  /* --quick: fewer shapes */
	const char *prog; /* for messages */
};

/* Parse --reps N, --threads N, --quick, --help into o (defaults first).
 * Returns -1 to go on, or the exit status (0 for --help, 2 for a usage
 * error, after printing why). */
int bench_parse_opts(struct bench_opts *o, const char *prog, int argc, char **argv);

struct bench_stat {
	double med, lo, hi;
};

/* Median, min and max of v[0..n) (v is not reordered: callers pair v[i]
 * with other arrays); n <= 64. */
struct bench_stat bench_stats(const double *v, int n);

/* 64-byte aligned, rounded up to 64; prints and exits on failure. */
void *bench_xalloc(const char *prog, size_t n);

/* The read-bandwidth probe: a buffer of `bytes` first touched by the pool
 * threads that read it, then each bench_bw_once() is one multi-threaded
 * streaming read of all of it (4 concurrent streams per thread, at the
 * widest SIMD level the kernels run). */
void bench_bw_init(struct qvl_pool *pool, size_t bytes);
double bench_bw_once(struct qvl_pool *pool); /* GB/s */
size_t bench_bw_bytes(void);
/* The probe's read of p[0..n) (64-byte aligned): 4 concurrent streams with
 * the vectors of `level` (a QVL_SIMD_*); returns a sum so that it is not
 * optimised out. For benchmarks that probe their own buffer (bench_engine). */
float bench_read_streams(const float *p, size_t n, int level);
void bench_bw_free(void);

#endif
