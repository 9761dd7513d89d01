/* The bf16 matrix products of `--precision bf16` (simd/matmul_bf16dot.c) on
 * one thread, in CPU time (CLOCK_THREAD_CPUTIME_ID: the figures hold while
 * other processes share the machine, as long as they do not share the
 * core), against the vdpbf16ps peak of the same thread measured by a
 * register-only loop (24 independent accumulators):
 *
 *   bf16dot_peak_core               GFLOP/s, register-only vdpbf16ps
 *   bf16dot_<shape>_m<M>            GFLOP/s of one call, ratio to that peak,
 *                                   and the weight bytes it streamed per s
 *
 * The shapes are the 2b decoder's (gate/up 6144x2048, down 2048x6144, q/o
 * 2048x2048); m = 1 is decode, 4..64 decode batches (the streamed tiles),
 * 512 prefill (the packed panels). The weights cycle through 6 matrices
 * (144 MiB for gate/up) so that they come from memory, as in a model.
 *
 * For 2 <= m <= 64 the same call also runs on 192 weight rows that stay in
 * L2 (the engine's claim size): "hot" is the products alone, and
 *   overlap = (t(m = 1) + t_hot - t) / min(t(m = 1), t_hot)
 * says how much of the weight stream (taken as the m = 1 time) runs under
 * the products: 0 when the call costs their sum, 1 when it costs their
 * maximum (docs/todo-smallm.md).
 * One JSON object per line on stdout, a summary on stderr.
 * With QVL_BENCH_GEMM=1 it measures instead the many-row GEMM
 * (simd/gemm_bf16_avx512.c) at one thread's share of the 2-thread shapes
 * (half the columns): the prefill chunk (m 256) on the 2b decoder's
 * matrices and the vision tower's 256-row blocks (qkv, proj, fc1, fc2),
 * plus ragged m (65, 100, 300).
 * Usage: bench_bf16dot [--reps N] [--quick] (--threads is ignored). */
#include "config.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../simd/kern_impl.h"
#include "probe.h"

#define NW 6

static int reps = 7;

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#ifdef HAVE_AVX512BF16_KERNELS
#define TBF	 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define PK_ITERS 20000000L

/* 24 chains of vdpbf16ps (64 flops each) on registers only; the empty asm
 * keeps x opaque without forcing the accumulators to memory. */
static TBF double peak_once(void)
{
	__m512 a[24];
	__m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80);
	float s = 0;

	for (int i = 0; i < 24; i++)
		a[i] = _mm512_set1_ps((float)i);
	double t0 = cpu_now();
	for (long it = 0; it < PK_ITERS; it++) {
#pragma GCC unroll 24
		for (int i = 0; i < 24; i++)
			a[i] = _mm512_dpbf16_ps(a[i], x, x);
		__asm__ volatile("" : "+v"(x));
	}
	double dt = cpu_now() - t0;
	for (int i = 0; i < 24; i++)
		s += _mm512_reduce_add_ps(a[i]);
	if (s == 0.5f) /* never: keeps the sums live */
		fprintf(stderr, ".");
	return 24.0 * 64 * PK_ITERS / dt / 1e9;
}

#define HOT_ROWS 192

static void emit(const char *name, struct bench_stat s, double peak, double gbs, size_t m, size_t n,
		 size_t k, double hot, double overlap)
{
	printf("{\"name\":\"%s\",\"value\":%.4g,\"unit\":\"GFLOP/s\",\"min\":%.4g,\"max\":%.4g,"
	       "\"reps\":%d,\"threads\":1,\"clock\":\"thread cpu time\"",
	       name, s.med, s.lo, s.hi, reps);
	if (peak > 0)
		printf(",\"bound\":\"bf16dot_peak_core\",\"bound_value\":%.4g,\"ratio\":%.3f,"
		       "\"m\":%zu,\"n\":%zu,\"k\":%zu,\"weight_gbs\":%.3g",
		       peak, s.med / peak, m, n, k, gbs);
	if (hot > 0)
		printf(",\"hot_gflops\":%.4g,\"overlap\":%.3f", hot, overlap);
	printf("}\n");
	fflush(stdout);
}

/* GFLOP/s of m rows against HOT_ROWS weight rows called again and again
 * (they stay in L2 after the first call): the products without the stream.
 * Median of reps timings of enough calls to fill ~1 ms each. */
static double hot_gflops(float *Y, const float *X, const uint16_t *W, size_t m, size_t k)
{
	double v[64];
	double fl = 2.0 * (double)m * HOT_ROWS * (double)k;
	int calls = (int)(2e8 / fl) + 1;

	qvl_matmul_bf16dot_avx512(Y, HOT_ROWS, X, k, W, QVL_DT_BF16, k, NULL, m, HOT_ROWS, k);
	for (int r = 0; r < reps; r++) {
		double t0 = cpu_now();
		for (int c = 0; c < calls; c++)
			qvl_matmul_bf16dot_avx512(Y, HOT_ROWS, X, k, W, QVL_DT_BF16, k, NULL, m,
						  HOT_ROWS, k);
		v[r] = fl * calls / (cpu_now() - t0) / 1e9;
	}
	return bench_stats(v, reps).med;
}

static void run_shape(const char *label, size_t n, size_t k, double peak, int quick)
{
	static const size_t ms[] = {1, 4, 8, 16, 32, 48, 64, 512};
	uint16_t *W[NW];
	float *X = bench_xalloc("bench_bf16dot", 512 * k * 4),
	      *Y = bench_xalloc("bench_bf16dot", 512 * n * 4);
	int wi = 0;
	double t1 = 0; /* s per call at m = 1: the weight stream */

	for (int w = 0; w < NW; w++) {
		W[w] = bench_xalloc("bench_bf16dot", n * k * 2);
		for (size_t i = 0; i < n * k; i++)
			W[w][i] = (uint16_t)(0x3f40 + (i * 40503u) % 127);
	}
	for (size_t i = 0; i < 512 * k; i++)
		X[i] = (float)((i * 7u) % 13) / 13.0f - 0.5f;
	for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++) {
		size_t m = ms[mi];
		int calls = m >= 128 ? 1 : NW;
		double v[64], gb[64];
		char name[64];

		if (quick && m != 1 && m != 16 && m != 512)
			continue;
		double hot = 0, overlap = 0, t = 0;

		for (int r = 0; r < reps; r++) {
			double t0 = cpu_now();
			for (int c = 0; c < calls; c++) {
				qvl_matmul_bf16dot_avx512(Y, n, X, k, W[wi], QVL_DT_BF16, k, NULL,
							  m, n, k);
				wi = (wi + 1) % NW;
			}
			double dt = (cpu_now() - t0) / calls;
			v[r] = 2.0 * (double)m * (double)n * (double)k / dt / 1e9;
			gb[r] = (double)n * (double)k * 2 / dt / 1e9;
		}
		struct bench_stat s = bench_stats(v, reps), g = bench_stats(gb, reps);
		t = 2.0 * (double)m * (double)n * (double)k / s.med / 1e9; /* s per call */
		if (m == 1)
			t1 = t;
		if (m >= 2 && m <= 64 && n >= HOT_ROWS) {
			hot = hot_gflops(Y, X, W[0], m, k);
			double th = 2.0 * (double)m * (double)n * (double)k / hot / 1e9;
			overlap = (t1 + th - t) / (t1 < th ? t1 : th);
		}
		snprintf(name, sizeof(name), "bf16dot_%s_m%zu", label, m);
		emit(name, s, peak, g.med, m, n, k, hot, overlap);
		fprintf(stderr,
			"%-9s m=%-4zu %6.1f GFLOP/s [%.1f-%.1f] = %.2f of peak, weights %5.1f GB/s",
			label, m, s.med, s.lo, s.hi, s.med / peak, g.med);
		if (hot > 0)
			fprintf(stderr, "; hot %.1f (%.2f), overlap %.2f", hot, hot / peak,
				overlap);
		fprintf(stderr, "\n");
	}
	for (int w = 0; w < NW; w++)
		free(W[w]);
	free(X), free(Y);
}

/* One GEMM shape: GFLOP/s per CPU second of one call, W, X and Y reused
 * (W beyond L2 for every shape but vision proj: it comes from L3). */
static void run_gemm(const char *label, size_t m, size_t n, size_t k, double peak)
{
	uint16_t *W = bench_xalloc("bench_bf16dot", n * k * 2);
	float *X = bench_xalloc("bench_bf16dot", m * k * 4),
	      *Y = bench_xalloc("bench_bf16dot", m * n * 4);
	double v[64];
	char name[64];

	for (size_t i = 0; i < n * k; i++)
		W[i] = (uint16_t)(0x3f40 + (i * 40503u) % 127);
	for (size_t i = 0; i < m * k; i++)
		X[i] = (float)((i * 7u) % 13) / 13.0f - 0.5f;
	qvl_matmul_bf16dot_avx512(Y, n, X, k, W, QVL_DT_BF16, k, NULL, m, n, k); /* warm */
	for (int r = 0; r < reps; r++) {
		double t0 = cpu_now();
		qvl_matmul_bf16dot_avx512(Y, n, X, k, W, QVL_DT_BF16, k, NULL, m, n, k);
		v[r] = 2.0 * (double)m * (double)n * (double)k / (cpu_now() - t0) / 1e9;
	}
	struct bench_stat s = bench_stats(v, reps);
	snprintf(name, sizeof(name), "gemm_%s_m%zu", label, m);
	emit(name, s, peak, 0, m, n, k, 0, 0);
	fprintf(stderr, "%-12s m=%-4zu n=%-5zu k=%-5zu %6.1f GFLOP/s [%.1f-%.1f] = %.2f of peak\n",
		label, m, n, k, s.med, s.lo, s.hi, s.med / peak);
	free(W), free(X), free(Y);
}

static void run_gemms(double peak, int quick)
{
	static const struct {
		const char *label;
		size_t m, n, k;
	} sh[] = {
	    {"pf_qo", 256, 1024, 2048},	     {"pf_gateup", 256, 3072, 2048},
	    {"pf_down", 256, 1024, 6144},    {"vis_qkv", 256, 1536, 1024},
	    {"vis_proj", 256, 512, 1024},    {"vis_fc1", 256, 2048, 1024},
	    {"vis_fc2", 256, 512, 4096},     {"rag_gateup", 65, 3072, 2048},
	    {"rag_gateup", 100, 3072, 2048}, {"rag_fc1", 300, 2048, 1024},
	};
	for (size_t i = 0; i < sizeof(sh) / sizeof(sh[0]); i++)
		if (!quick || i < 7)
			run_gemm(sh[i].label, sh[i].m, sh[i].n, sh[i].k, peak);
}
#endif

int main(int argc, char **argv)
{
	struct qvl_err err = {{0}};
	struct bench_opts o;
	int rc = bench_parse_opts(&o, "bench_bf16dot", argc, argv);

	if (rc >= 0)
		return rc;
	reps = o.reps;
	if (qvl_kernels_init(&err) < 0) {
		fprintf(stderr, "bench_bf16dot: %s\n", err.msg);
		return 1;
	}
#ifdef HAVE_AVX512BF16_KERNELS
	if (qvl_cpu_has_avx512bf16()) {
		double pv[64];

		for (int r = 0; r < reps; r++)
			pv[r] = peak_once();
		struct bench_stat p = bench_stats(pv, reps);
		emit("bf16dot_peak_core", p, 0, 0, 0, 0, 0, 0, 0);
		fprintf(stderr, "vdpbf16ps peak, one thread: %.1f GFLOP/s [%.1f-%.1f]\n", p.med,
			p.lo, p.hi);
		const char *g = getenv("QVL_BENCH_GEMM");
		if (g && *g == '1') {
			run_gemms(p.med, o.quick);
			return 0;
		}
		run_shape("gateup_2b", 6144, 2048, p.med, o.quick);
		if (!o.quick) {
			run_shape("down_2b", 2048, 6144, p.med, 0);
			run_shape("qo_2b", 2048, 2048, p.med, 0);
		}
		return 0;
	}
#endif
	fprintf(stderr, "bench_bf16dot: no AVX512-BF16 kernels here; nothing to measure\n");
	return 0;
}
