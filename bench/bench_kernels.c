/* Kernel benchmark: each figure next to a bound or a peer measured in the
 * same run, on the same threads (the qvl pool, one per physical core):
 *
 *   memory read bandwidth     multi-threaded streaming read, buffer >> L3
 *   f32 FMA peak              per core and all threads (and bf16 dot peak)
 *   matmul GFLOP/s (m > 1)    vs FMA peak and vs OpenBLAS cblas_sgemm
 *   matvec GB/s (m == 1)      vs the measured bandwidth
 *
 * One JSON object per line per figure on stdout (name, value, unit, bound or
 * peer, ratio, median of reps with min/max), a human summary on stderr.
 * Usage: bench_kernels [--reps N] [--threads N] [--quick] */
#include "config.h"

#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "../simd/kern_impl.h"
#include "pool.h"
#include "probe.h"
#include "util.h"

#define T512   __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define T512BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define T256   __attribute__((target("avx2,fma")))

static struct qvl_pool *pool;
static int nthreads, reps = 7;
static enum qvl_simd_level level;
static double bf16_peak; /* 0: no AVX512-BF16 */

static void emit(const char *name, struct bench_stat s, const char *unit, const char *bound_name,
		 double bound, const char *extra)
{
	printf("{\"name\":\"%s\",\"value\":%.4g,\"unit\":\"%s\",\"min\":%.4g,\"max\":%.4g,"
	       "\"reps\":%d,\"threads\":%d",
	       name, s.med, unit, s.lo, s.hi, reps, nthreads);
	if (bound_name)
		printf(",\"bound\":\"%s\",\"bound_value\":%.4g,\"ratio\":%.3f", bound_name, bound,
		       bound > 0 ? s.med / bound : 0.0);
	if (extra)
		printf(",%s", extra);
	printf("}\n");
	fflush(stdout);
}

static void *xalloc(size_t n)
{
	return bench_xalloc("bench_kernels", n);
}

static double bw_once(void)
{
	return bench_bw_once(pool);
}

static double bench_bandwidth(size_t l3)
{
	size_t bytes = 8 * l3 > ((size_t)512 << 20) ? 8 * l3 : (size_t)512 << 20;
	double v[64];

	bench_bw_init(pool, bytes);
	for (int r = 0; r < reps; r++)
		v[r] = bw_once();
	struct bench_stat s = bench_stats(v, reps);
	char extra[96];
	snprintf(extra, sizeof(extra), "\"buffer_mib\":%zu", bytes >> 20);
	emit("mem_read_bw", s, "GB/s", NULL, 0, extra);
	fprintf(stderr,
		"memory read bandwidth: %.1f GB/s (min %.1f, max %.1f; %zu MiB, %d threads)\n",
		s.med, s.lo, s.hi, bytes >> 20, nthreads);
	return s.med;
}

/* Emit a GB/s figure whose ratio to the bandwidth was taken per repetition
 * (a bandwidth pass right before each measured pass). */
static void emit_vs_bw(const char *name, double *gbs, double *bws, const char *extra,
		       struct bench_stat *s_out, struct bench_stat *r_out)
{
	double ratio[64], g[64];
	char ex[320];

	for (int r = 0; r < reps; r++) {
		ratio[r] = gbs[r] / bws[r];
		g[r] = gbs[r];
	}
	*s_out = bench_stats(g, reps);
	*r_out = bench_stats(ratio, reps);
	snprintf(ex, sizeof(ex), "%s,\"bw_ratio\":%.3f,\"bw_ratio_min\":%.3f,\"bw_ratio_max\":%.3f",
		 extra, r_out->med, r_out->lo, r_out->hi);
	emit(name, *s_out, "GB/s", "mem_read_bw", bench_stats(bws, reps).med, ex);
}

/* ---- FMA peak ----------------------------------------------------------- */

#define FMA_ITERS 5000000L

static T512 double fma512(void)
{
	/* distinct starting values: equal ones let the compiler merge the 12
	 * chains into one (it did, and the "peak" came out 3x too high) */
	__m512 a0 = _mm512_set1_ps(1), a1 = _mm512_set1_ps(2), a2 = _mm512_set1_ps(3),
	       a3 = _mm512_set1_ps(4), a4 = _mm512_set1_ps(5), a5 = _mm512_set1_ps(6),
	       a6 = _mm512_set1_ps(7), a7 = _mm512_set1_ps(8), a8 = _mm512_set1_ps(9),
	       a9 = _mm512_set1_ps(10), a10 = _mm512_set1_ps(11), a11 = _mm512_set1_ps(12);
	__m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
	for (long i = 0; i < FMA_ITERS; i++) {
#define F(a) a = _mm512_fmadd_ps(a, x, y)
		F(a0), F(a1), F(a2), F(a3), F(a4), F(a5), F(a6), F(a7), F(a8), F(a9), F(a10),
		    F(a11);
		__asm__ volatile("" ::: "memory");
	}
	__m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
				 _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
	s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
	return _mm512_reduce_add_ps(s);
#undef F
}

static T256 double fma256(void)
{
	__m256 a0 = _mm256_set1_ps(1), a1 = _mm256_set1_ps(2), a2 = _mm256_set1_ps(3),
	       a3 = _mm256_set1_ps(4), a4 = _mm256_set1_ps(5), a5 = _mm256_set1_ps(6),
	       a6 = _mm256_set1_ps(7), a7 = _mm256_set1_ps(8), a8 = _mm256_set1_ps(9),
	       a9 = _mm256_set1_ps(10), a10 = _mm256_set1_ps(11), a11 = _mm256_set1_ps(12);
	__m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
	float t[8];
	for (long i = 0; i < FMA_ITERS; i++) {
#define F(a) a = _mm256_fmadd_ps(a, x, y)
		F(a0), F(a1), F(a2), F(a3), F(a4), F(a5), F(a6), F(a7), F(a8), F(a9), F(a10),
		    F(a11);
		__asm__ volatile("" ::: "memory");
	}
	__m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
				 _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
	s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
	_mm256_storeu_ps(t, s);
	return t[0];
#undef F
}

#ifdef HAVE_AVX512BF16_KERNELS
static T512BF double bf16dot512(void)
{
	__m512 a0 = _mm512_set1_ps(1), a1 = _mm512_set1_ps(2), a2 = _mm512_set1_ps(3),
	       a3 = _mm512_set1_ps(4), a4 = _mm512_set1_ps(5), a5 = _mm512_set1_ps(6),
	       a6 = _mm512_set1_ps(7), a7 = _mm512_set1_ps(8), a8 = _mm512_set1_ps(9),
	       a9 = _mm512_set1_ps(10), a10 = _mm512_set1_ps(11), a11 = _mm512_set1_ps(12);
	__m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = x;
	for (long i = 0; i < FMA_ITERS; i++) {
#define F(a) a = _mm512_dpbf16_ps(a, x, y)
		F(a0), F(a1), F(a2), F(a3), F(a4), F(a5), F(a6), F(a7), F(a8), F(a9), F(a10),
		    F(a11);
		__asm__ volatile("" ::: "memory");
	}
	__m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
				 _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
	s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
	return _mm512_reduce_add_ps(s);
#undef F
}
#endif

struct fma_task {
	int kind; /* 0: f32 FMA at the kernel level, 1: bf16 dot */
	int only0;
	double t[64];
	double sink[64];
};

static void fma_run(void *arg, int ith, int nth)
{
	struct fma_task *t = arg;
	(void)nth;
	if (t->only0 && ith)
		return;
	double t0 = qvl_now(), s = 0;
#ifdef HAVE_AVX512BF16_KERNELS
	if (t->kind == 1)
		s = bf16dot512();
	else
#endif
		s = level >= QVL_SIMD_AVX512 ? fma512() : fma256();
	t->t[ith] = qvl_now() - t0;
	t->sink[ith] = s;
}

/* FLOP per loop iteration: 12 vector FMAs (2 flops per lane), or 12 dot
 * products of 32 bf16 pairs (64 flops). */
/* One FMA-peak measurement (GFLOP/s): kind 0 f32 FMA, 1 bf16 dot; only0:
 * thread 0 alone (per core), else all threads at once. */
static double fma_once(int kind, int only0)
{
	double lanes = kind == 1 ? 32 : level >= QVL_SIMD_AVX512 ? 16 : 8;
	struct fma_task t = {.kind = kind, .only0 = only0};
	double tmax = 0;

	qvl_pool_run(pool, fma_run, &t);
	for (int i = 0; i < (only0 ? 1 : nthreads); i++)
		tmax = t.t[i] > tmax ? t.t[i] : tmax;
	return 12.0 * 2 * lanes * FMA_ITERS * (only0 ? 1 : nthreads) / tmax / 1e9;
}

static struct bench_stat bench_fma(int kind, int only0)
{
	double v[64];

	for (int r = 0; r < reps; r++)
		v[r] = fma_once(kind, only0);
	return bench_stats(v, reps);
}

/* ---- matmul ------------------------------------------------------------- */

typedef void (*matmul_fn)(float *, size_t, const float *, size_t, const void *, enum qvl_dtype,
			  size_t, const float *, size_t, size_t, size_t);

/* One timed run of ours on the pool with a given kernel. */
static double ours_once(matmul_fn fn, size_t m, size_t n, size_t k, const float *X, const void *W,
			enum qvl_dtype t, float *Y)
{
	matmul_fn keep = qvl_kern.matmul;
	qvl_kern.matmul = fn;
	double t0 = qvl_now();
	qvl_matmul_pool(pool, Y, n, X, k, W, t, k, NULL, m, n, k);
	double dt = qvl_now() - t0;
	qvl_kern.matmul = keep;
	return dt;
}

#ifdef HAVE_OPENBLAS
static double blas_once(size_t m, size_t n, size_t k, const float *X, const float *Wf, float *Y)
{
	double t0 = qvl_now();
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, X,
		    (int)k, Wf, (int)k, 0.0f, Y, (int)n);
	return qvl_now() - t0;
}
#endif

/* GFLOP/s statistics from run times. */
static struct bench_stat gflops(double *t, int n, double flop)
{
	double v[64];
	for (int i = 0; i < n; i++)
		v[i] = flop / t[i] / 1e9;
	return bench_stats(v, n);
}

/* Emit one of our matmul figures with its ratio to OpenBLAS computed per
 * repetition (ours and OpenBLAS alternate, so both see the same load on a
 * shared machine), median and spread of those ratios. */
static void emit_mm(const char *kind, const char *label, size_t m, size_t n, size_t k,
		    double *t_ours, double *t_blas, double flop, const char *bound_name,
		    double *peak, struct bench_stat *g_out, struct bench_stat *r_out,
		    struct bench_stat *f_out)
{
	char name[96], extra[400];
	double ratio[64], frac[64];
	struct bench_stat g = gflops(t_ours, reps, flop), r = {0, 0, 0};

	/* fraction of the FMA peak measured right before each repetition */
	for (int i = 0; i < reps; i++)
		frac[i] = flop / t_ours[i] / 1e9 / peak[i];
	*f_out = bench_stats(frac, reps);
	double bound = bench_stats(peak, reps).med;

	if (t_blas) {
		for (int i = 0; i < reps; i++)
			ratio[i] = t_blas[i] / t_ours[i];
		r = bench_stats(ratio, reps);
	}
	snprintf(extra, sizeof(extra),
		 "\"m\":%zu,\"n\":%zu,\"k\":%zu,\"peer\":\"openblas_sgemm\",\"peer_ratio\":%.3f,"
		 "\"peer_ratio_min\":%.3f,\"peer_ratio_max\":%.3f,\"peak_frac\":%.3f,"
		 "\"peak_frac_min\":%.3f,\"peak_frac_max\":%.3f",
		 m, n, k, r.med, r.lo, r.hi, f_out->med, f_out->lo, f_out->hi);
	snprintf(name, sizeof(name), "matmul_%s_%s", kind, label);
	emit(name, g, "GFLOP/s", bound_name, bound, extra);
	*g_out = g;
	*r_out = r;
}

static void bench_gemm(const char *label, size_t m, size_t n, size_t k)
{
	float *X = xalloc(m * k * 4), *Wf = xalloc(n * k * 4), *Y = xalloc(m * n * 4);
	uint16_t *Wb = xalloc(n * k * 2);
	double flop = 2.0 * (double)m * (double)n * (double)k;
	double tb[64], tf[64], to[64], td[64], pk[64], pkb[64];
	bool dot = false, blas = false;
	matmul_fn exact = qvl_kern.matmul, bf16dot = NULL;

	for (size_t i = 0; i < m * k; i++)
		X[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
	for (size_t i = 0; i < n * k; i++) {
		Wb[i] = qvl_f32_to_bf16((float)((i * 40503u) % 997) / 997.0f - 0.5f);
		Wf[i] = qvl_bf16_to_f32(Wb[i]);
	}
#ifdef HAVE_AVX512BF16_KERNELS
	dot = bf16_peak > 0;
	bf16dot = qvl_matmul_bf16dot_avx512;
#endif
#ifdef HAVE_OPENBLAS
	blas = true;
	{
		/* agreement check, then warm-up of every contender */
		float *Yb = xalloc(m * n * 4);
		double maxd = 0, maxy = 0;
		ours_once(exact, m, n, k, X, Wb, QVL_DT_BF16, Y);
		blas_once(m, n, k, X, Wf, Yb);
		for (size_t i = 0; i < m * n; i++) {
			maxd = fmax(maxd, fabs((double)Y[i] - Yb[i]));
			maxy = fmax(maxy, fabs((double)Yb[i]));
		}
		if (maxd > 1e-4 * maxy)
			fprintf(stderr,
				"WARNING: %s: ours differs from OpenBLAS by %g (max |y| %g)\n",
				label, maxd, maxy);
		free(Yb);
	}
#endif
	ours_once(exact, m, n, k, X, Wf, QVL_DT_F32, Y);
	if (dot)
		ours_once(bf16dot, m, n, k, X, Wb, QVL_DT_BF16, Y);
	for (int r = 0; r < reps; r++) {
		pk[r] = fma_once(0, 0);
		if (dot)
			pkb[r] = fma_once(1, 0);
		tb[r] = ours_once(exact, m, n, k, X, Wb, QVL_DT_BF16, Y);
		tf[r] = ours_once(exact, m, n, k, X, Wf, QVL_DT_F32, Y);
		if (dot)
			td[r] = ours_once(bf16dot, m, n, k, X, Wb, QVL_DT_BF16, Y);
#ifdef HAVE_OPENBLAS
		to[r] = blas_once(m, n, k, X, Wf, Y);
#endif
	}
	struct bench_stat gb, rb, fb, gf, rf, ff, gd, rd, fd;
	emit_mm("bf16", label, m, n, k, tb, blas ? to : NULL, flop, "fma_peak_all", pk, &gb, &rb,
		&fb);
	emit_mm("f32", label, m, n, k, tf, blas ? to : NULL, flop, "fma_peak_all", pk, &gf, &rf,
		&ff);
	if (blas) {
		char name[96];
		snprintf(name, sizeof(name), "sgemm_openblas_%s", label);
		emit(name, gflops(to, reps, flop), "GFLOP/s", "fma_peak_all",
		     bench_stats(pk, reps).med, NULL);
	}
	fprintf(stderr,
		"matmul %-10s m=%-4zu n=%-5zu k=%-5zu bf16 %6.1f GFLOP/s (%.2f of peak, %.2fx "
		"OpenBLAS [%.2f-%.2f]) f32 %6.1f (%.2fx)\n",
		label, m, n, k, gb.med, fb.med, rb.med, rb.lo, rb.hi, gf.med, rf.med);
	if (dot) {
		emit_mm("bf16dot", label, m, n, k, td, blas ? to : NULL, flop, "bf16dot_peak_all",
			pkb, &gd, &rd, &fd);
		fprintf(stderr,
			"  opt-in bf16dot (not exact): %6.1f GFLOP/s (%.2f of bf16 peak, %.2fx "
			"OpenBLAS)\n",
			gd.med, fd.med, rd.med);
	}
	free(X), free(Wf), free(Y), free(Wb);
}

/* Decode-like matvec over a weight set much larger than L3: NMAT copies of
 * an n×k bf16 matrix used in turn, as the layers of a model are. */
static void bench_matvec(size_t n, size_t k, size_t l3, double bw)
{
	size_t one = n * k * 2, nmat = (8 * l3) / one + 1;
	uint16_t **W = xalloc(nmat * sizeof(*W));
	float *x = xalloc(k * 4), *y = xalloc(n * 4);
	double v[64];
	char extra[160];

	for (size_t j = 0; j < nmat; j++) {
		W[j] = xalloc(one);
		memset(W[j], 0x3c, one); /* one NUMA node here; see pool.c */
	}
	for (size_t i = 0; i < k; i++)
		x[i] = 0.001f * (float)i;
	for (size_t j = 0; j < nmat; j++) /* warm: page tables */
		qvl_matmul_pool(pool, y, n, x, k, W[j], QVL_DT_BF16, k, NULL, 1, n, k);
	double bws[64];
	for (int r = 0; r < reps; r++) {
		bws[r] = bw_once();
		double t0 = qvl_now();
		for (size_t j = 0; j < nmat; j++)
			qvl_matmul_pool(pool, y, n, x, k, W[j], QVL_DT_BF16, k, NULL, 1, n, k);
		v[r] = (double)(one * nmat) / (qvl_now() - t0) / 1e9;
	}
	struct bench_stat s, ratio;
	snprintf(extra, sizeof(extra), "\"n\":%zu,\"k\":%zu,\"matrices\":%zu", n, k, nmat);
	emit_vs_bw("matvec_bf16", v, bws, extra, &s, &ratio);
	fprintf(stderr,
		"matvec bf16 %zux%zu (x%zu, %zu MiB): %.1f GB/s = %.2f of bandwidth [%.2f-%.2f] "
		"(per-rep ratio)\n",
		n, k, nmat, one * nmat >> 20, s.med, ratio.med, ratio.lo, ratio.hi);
	(void)bw;
	for (size_t j = 0; j < nmat; j++)
		free(W[j]);
	free(W), free(x), free(y);
}

/* Decode attention over a long context as the engine runs it: one query
 * row (attn_tile), 2 query heads per KV head (the 2b shape), K and V in f16
 * (the default KV type) in 64-position pages laid out as the engine's pool
 * ([page][layer][K, V][head][64][128]) and handed out in shuffled order,
 * 4096 positions, the KV heads of each layer spread over the pool; enough
 * sequences that the cache does not fit in L3. Reported as GB/s of KV
 * read vs the bandwidth. */
#define ATT_PAGE 64
struct att_task {
	const uint8_t *base;
	const uint32_t *ids; /* [seq][page] */
	const float *q;
	float *out;
	size_t seq, layer, nl, nkvh, npos, dim, nq;
};

static void att_run(void *arg, int ith, int nth)
{
	struct att_task *t = arg;
	size_t lo, hi, head = ATT_PAGE * t->dim * 2, np = t->npos / ATT_PAGE;

	qvl_split(t->nkvh, 1, ith, nth, &lo, &hi);
	for (size_t g = lo; g < hi; g++) {
		struct qvl_kv_view kv = {.base = t->base,
					 .ids = t->ids + t->seq * np,
					 .page_bytes = t->nl * 2 * t->nkvh * head,
					 .page_rows = ATT_PAGE,
					 .k_off = (t->layer * 2 * t->nkvh + g) * head,
					 .v_off = (t->layer * 2 * t->nkvh + t->nkvh + g) * head,
					 .stride = t->dim,
					 .type = QVL_DT_F16};

		qvl_kern.attn_tile(t->out + g * t->nq * t->dim, 0, t->q + g * t->nq * t->dim, 0,
				   t->nq, 1, &kv, t->npos, t->dim, 0.088f);
	}
}

static void bench_attn(size_t l3, double bw)
{
	struct att_task t = {.nkvh = 8, .npos = 4096, .dim = 128, .nq = 2, .nl = 28};
	size_t np = t.npos / ATT_PAGE, page = t.nl * 2 * t.nkvh * ATT_PAGE * t.dim * 2;
	size_t seq_bytes = np * page, nseq = 4 * l3 / seq_bytes + 1;
	uint8_t *kv = xalloc(nseq * seq_bytes);
	uint32_t *ids = xalloc(nseq * np * sizeof(*ids));
	float *q = xalloc(t.nkvh * t.nq * t.dim * 4), *out = xalloc(t.nkvh * t.nq * t.dim * 4);
	double v[64], bws[64];
	char extra[192];
	uint64_t rnd = 0x9e3779b97f4a7c15u;
	uint16_t h[101]; /* the fill's values, converted once, not per element */

	for (size_t i = 0; i < 101; i++)
		h[i] = qvl_f32_to_f16((float)i * 0.01f - 0.5f);
	for (size_t i = 0; i < nseq * seq_bytes / 2; i++)
		((uint16_t *)kv)[i] = h[i % 101];
	for (size_t i = 0; i < nseq * np; i++)
		ids[i] = (uint32_t)i;
	for (size_t i = nseq * np - 1; i > 0; i--) { /* pages out of order, as a pool's */
		rnd = rnd * 6364136223846793005u + 1442695040888963407u;
		size_t j = (size_t)(rnd >> 33) % (i + 1);
		uint32_t x = ids[i];

		ids[i] = ids[j], ids[j] = x;
	}
	for (size_t i = 0; i < t.nkvh * t.nq * t.dim; i++)
		q[i] = (float)(i % 17) * 0.05f;
	t.base = kv, t.ids = ids, t.q = q, t.out = out;
	for (int r = -1; r < reps; r++) {
		double b = bw_once(), t0 = qvl_now();
		for (t.seq = 0; t.seq < nseq; t.seq++)
			for (t.layer = 0; t.layer < t.nl; t.layer++)
				qvl_pool_run(pool, att_run, &t);
		if (r >= 0) {
			v[r] = (double)(nseq * seq_bytes) / (qvl_now() - t0) / 1e9;
			bws[r] = b;
		}
	}
	struct bench_stat s, ratio;
	snprintf(extra, sizeof(extra),
		 "\"kv_type\":\"f16\",\"page_positions\":%d,\"kv_heads\":%zu,\"q_per_kv\":%zu,"
		 "\"positions\":%zu,\"dim\":%zu,\"layers\":%zu,\"sequences\":%zu",
		 ATT_PAGE, t.nkvh, t.nq, t.npos, t.dim, t.nl, nseq);
	emit_vs_bw("attn_decode_paged", v, bws, extra, &s, &ratio);
	fprintf(stderr,
		"decode attention, f16 KV in shuffled 64-position pages, 4096 positions, %zu "
		"sequences of %zu layers (%zu MiB): %.1f GB/s of KV = %.2f of bandwidth "
		"[%.2f-%.2f]\n",
		nseq, t.nl, nseq * seq_bytes >> 20, s.med, ratio.med, ratio.lo, ratio.hi);
	(void)bw;
	free(kv), free(ids), free(q), free(out);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct qvl_err err = {{0}};
	struct qvl_cache_info ci;
	int rc = bench_parse_opts(&o, "bench_kernels", argc, argv), quick = o.quick;

	if (rc >= 0)
		return rc;
	reps = o.reps;
	if (qvl_kernels_init(&err) < 0) {
		fprintf(stderr, "bench_kernels: %s\n", err.msg);
		return 1;
	}
	if (qvl_pool_create(&pool, o.threads, NULL, &err) < 0) {
		fprintf(stderr, "bench_kernels: %s\n", err.msg);
		return 1;
	}
	level = qvl_kern.level;
	nthreads = qvl_pool_size(pool);
	qvl_cache_info(&ci);
	fprintf(stderr,
		"bench_kernels: kernels %s, %d threads, L1d %zu KiB L2 %zu KiB L3 %zu MiB\n",
		qvl_kern.name, nthreads, ci.l1d >> 10, ci.l2 >> 10, ci.l3 >> 20);
#ifdef HAVE_OPENBLAS
	openblas_set_num_threads(nthreads);
	const char *ct = getenv("OPENBLAS_CORETYPE");
	fprintf(stderr, "OpenBLAS: %s, core %s (OPENBLAS_CORETYPE=%s), %d threads\n",
		openblas_get_config(), openblas_get_corename(), ct ? ct : "(unset)", nthreads);
	printf("{\"name\":\"openblas_config\",\"config\":\"%s\",\"core\":\"%s\","
	       "\"OPENBLAS_CORETYPE\":\"%s\"}\n",
	       openblas_get_config(), openblas_get_corename(), ct ? ct : "");
#endif
	if (level == QVL_SIMD_REF) {
		fprintf(stderr, "bench_kernels: reference kernels only; nothing to measure\n");
		qvl_pool_destroy(pool);
		return 0;
	}
	double bw = bench_bandwidth(ci.l3);
	struct bench_stat p1 = bench_fma(0, 1), pa = bench_fma(0, 0);
	emit("fma_peak_core", p1, "GFLOP/s", NULL, 0, "\"kind\":\"f32 fma\"");
	emit("fma_peak_all", pa, "GFLOP/s", NULL, 0, "\"kind\":\"f32 fma\"");
	fprintf(stderr, "f32 FMA peak: %.1f GFLOP/s per core, %.1f all %d threads\n", p1.med,
		pa.med, nthreads);
#ifdef HAVE_AVX512BF16_KERNELS
	if (qvl_cpu_has_avx512bf16()) {
		struct bench_stat pb = bench_fma(1, 0);
		bf16_peak = pb.med;
		emit("bf16dot_peak_all", pb, "GFLOP/s", "fma_peak_all", pa.med,
		     "\"kind\":\"vdpbf16ps\"");
		fprintf(stderr, "bf16 dot (vdpbf16ps) peak: %.1f GFLOP/s all threads\n", pb.med);
	}
#endif
	static const struct {
		const char *label;
		size_t m, n, k;
	} shapes[] = {
	    {"qo_2b", 512, 2048, 2048},	    {"kv_2b", 512, 1024, 2048},
	    {"gateup_2b", 512, 6144, 2048}, {"down_2b", 512, 2048, 6144},
	    {"vis_qkv", 1024, 3072, 1024},  {"vis_fc1", 1024, 4096, 1024},
	    {"vis_fc2", 1024, 1024, 4096},
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		if (quick && i > 0 && i != 3)
			continue;
		bench_gemm(shapes[i].label, shapes[i].m, shapes[i].n, shapes[i].k);
	}
	bench_matvec(6144, 2048, ci.l3, bw);
	bench_attn(ci.l3, bw);
	bench_bw_free();
	qvl_pool_destroy(pool);
	return 0;
}
