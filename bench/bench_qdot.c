/* Int8 dot-product kernels (simd/qdot.h) for the quantized weight types,
 * each figure beside a bound or the path it replaces, measured in the same
 * run on the same pool:
 *
 *   matvec GB/s (m == 1)       weight bytes read per second (64-row calls,
 *                              as the engine makes them) vs the measured
 *                              streaming read bandwidth (taken right before
 *                              each repetition), 2048x2048, 6144x2048 and
 *                              151936x2048; 128 MiB weight sets (> L3)
 *   prefill GOP/s (m = 512)    2mnk / time, vs the exact path (weights
 *                              widened to f32) where it takes the type
 *
 * on all pool threads and on one. One JSON object per line per figure on
 * stdout (median of the repetitions, min, max), a summary on stderr.
 * --bandwidth measures only the read bandwidth (N repetitions on the pool):
 * bench/bench_llama.sh takes it in the same run as its decode figures, as
 * the bound `bandwidth / bytes per token` they are a fraction of.
 * Usage: bench_qdot [--bandwidth] [--reps N] [--threads N] [--quick] */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kern_impl.h"
#include "../simd/qrepack.h"
#include "pool.h"
#include "probe.h"
#include "util.h"

static int reps = 7;

static void *xalloc(size_t n)
{
	return bench_xalloc("bench_qdot", n);
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

/* the file type a repacked weight type is made from (its bytes per row) */
static enum qvl_dtype file_type(enum qvl_dtype t)
{
	return t == QVL_DT_Q4_0_X8   ? QVL_DT_Q4_0
	       : t == QVL_DT_Q4_K_X8 ? QVL_DT_Q4_K
	       : t == QVL_DT_Q6_K_X8 ? QVL_DT_Q6_K
	       : t == QVL_DT_Q8_0_X8 ? QVL_DT_Q8_0
				     : t;
}

static const char *type_name(enum qvl_dtype t)
{
	return t == QVL_DT_Q4_0_X8   ? "Q4_0_X8"
	       : t == QVL_DT_Q4_K_X8 ? "Q4_K_X8"
	       : t == QVL_DT_Q6_K_X8 ? "Q6_K_X8"
	       : t == QVL_DT_Q8_0_X8 ? "Q8_0_X8"
				     : qvl_dtype_name(t);
}

/* Decode (m == 1) calls the kernel per MF_CHUNK rows of the thread's slice,
 * as the engine's work sharing does (src/forward.c SHARE_CHUNK): a kernel's
 * rate per call over a whole slice was ~10 % above the engine's, and a
 * change that only helps long calls (far-apart row streams, 8e0b666) looked
 * like a gain here and lost in the engine (docs/todo-qfar.md). */
#define MF_CHUNK 64

static void mf_run(void *arg, int ith, int nth)
{
	const struct mf_task *a = arg;
	size_t lo, hi, step;

	/* a repacked matrix is split at its groups of 8 rows */
	qvl_split(a->n, a->m == 1 ? 8 : 64, ith, nth, &lo, &hi);
	step = a->m == 1 ? MF_CHUNK : hi - lo;
	for (size_t j = lo; j < hi; j += step)
		(a->exact ? qvl_kern.matmul : qvl_kern.matmul_fast)(
		    a->Y + j, a->n, a->X, a->k, qvl_wrow(a->W, file_type(a->t), a->k, j), a->t,
		    a->k, NULL, a->m, hi - j < step ? hi - j : step, a->k);
}

/* n rows of type t, one row repeated (a repacked type: of its file type,
 * then repacked) */
static uint8_t *make_w(enum qvl_dtype t, size_t n, size_t k)
{
	size_t row = (size_t)(qvl_wrow(NULL, file_type(t), k, 1) - (const uint8_t *)NULL);
	uint8_t *w = xalloc(n * row);

	/* the speed does not depend on the values: a pattern whose every
	 * 16-bit field is a finite f16 (top byte 0x11..0x2f) */
	for (size_t i = 0; i < row; i++)
		w[i] = (uint8_t)(0x11 + (i * 7) % 31);
	for (size_t j = 1; j < n; j++)
		memcpy(w + j * row, w, row);
	if (t != file_type(t)) {
		uint8_t *r = xalloc(n * row);
		if (qvl_repack(r, t, w, file_type(t), n, k) < 0) {
			fprintf(stderr, "bench_qdot: cannot repack %zu x %zu\n", n, k);
			exit(1);
		}
		free(w);
		w = r;
	}
	return w;
}

static void run_matvec(struct qvl_pool *pool, const char *tag, enum qvl_dtype t, size_t n, size_t k)
{
	size_t row = (size_t)(qvl_wrow(NULL, file_type(t), k, 1) - (const uint8_t *)NULL);
	size_t one = n * row;
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
		double bw = bench_bw_once(pool), t0 = qvl_now();
		for (size_t j = 0; j < nmat; j++) {
			a.W = W[j];
			qvl_pool_run(pool, mf_run, &a);
		}
		g[i] = (double)(one * nmat) / (qvl_now() - t0) / 1e9;
		r[i] = g[i] / bw;
	}
	struct bench_stat sg = bench_stats(g, reps), sr = bench_stats(r, reps);
	int nth = qvl_pool_size(pool);
	printf("{\"name\":\"qdot_matvec_%s\",\"type\":\"%s\",\"n\":%zu,\"k\":%zu,\"threads\":%d,"
	       "\"value\":%.4g,\"unit\":\"GB/s\",\"min\":%.4g,\"max\":%.4g,\"reps\":%d,"
	       "\"bound\":\"mem_read_bw\",\"ratio\":%.3f,\"ratio_min\":%.3f,\"ratio_max\":%.3f}\n",
	       tag, type_name(t), n, k, nth, sg.med, sg.lo, sg.hi, reps, sr.med, sr.lo, sr.hi);
	fprintf(stderr,
		"matvec %-6s %6zux%zu %dT: %5.1f GB/s [%5.1f-%5.1f] = %.2f of read bw "
		"[%.2f-%.2f]\n",
		type_name(t), n, k, nth, sg.med, sg.lo, sg.hi, sr.med, sr.lo, sr.hi);
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
	struct bench_stat sg = bench_stats(g, reps), se = bench_stats(e, reps);
	printf("{\"name\":\"qdot_prefill\",\"type\":\"%s\",\"m\":%zu,\"n\":%zu,\"k\":%zu,"
	       "\"threads\":%d,\"value\":%.4g,\"unit\":\"GOP/s\",\"min\":%.4g,\"max\":%.4g,"
	       "\"reps\":%d",
	       type_name(t), m, n, k, nth, sg.med, sg.lo, sg.hi, reps);
	if (has_exact)
		printf(
		    ",\"peer\":\"exact matmul (f32-widened)\",\"peer_value\":%.4g,\"ratio\":%.3f",
		    se.med, sg.med / se.med);
	printf("}\n");
	fprintf(stderr, "prefill %-6s m %zu %zux%zu %dT: %6.1f GOP/s [%.1f-%.1f]", type_name(t), m,
		n, k, nth, sg.med, sg.lo, sg.hi);
	if (has_exact)
		fprintf(stderr, " vs exact %.1f (%.2fx)", se.med, sg.med / se.med);
	fprintf(stderr, "\n");
	free(W), free(X), free(Y);
}

/* --bandwidth: the probe alone, one JSON line */
static void run_bandwidth(struct qvl_pool *pool)
{
	double g[64];

	bench_bw_init(pool, (size_t)256 << 20);
	for (int i = 0; i < reps; i++)
		g[i] = bench_bw_once(pool);
	bench_bw_free();
	struct bench_stat s = bench_stats(g, reps);
	printf("{\"name\":\"mem_read_bw\",\"threads\":%d,\"value\":%.4g,\"unit\":\"GB/s\","
	       "\"min\":%.4g,\"max\":%.4g,\"reps\":%d}\n",
	       qvl_pool_size(pool), s.med, s.lo, s.hi, reps);
}

/* Takes --bandwidth out of argv (the shared parser does not know it);
 * returns whether it was there. */
static bool take_bandwidth_opt(int *argc, char **argv)
{
	bool seen = false;
	int j = 1;

	for (int i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], "--bandwidth"))
			seen = true;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	argv[j] = NULL;
	return seen;
}

int main(int argc, char **argv)
{
	/* the _X8 types: the file's types as the engine repacks them at load
	 * (simd/qrepack.h) */
	static const enum qvl_dtype types[] = {QVL_DT_Q8_0,    QVL_DT_Q8_0_X8, QVL_DT_Q4_0,
					       QVL_DT_Q4_0_X8, QVL_DT_Q6_K,    QVL_DT_Q6_K_X8,
					       QVL_DT_Q4_K,    QVL_DT_Q4_K_X8, QVL_DT_Q5_K};
	struct qvl_err err = {{0}};
	struct qvl_pool *pools[2] = {NULL, NULL};
	struct qvl_cache_info ci;
	struct bench_opts o;
	bool bw_only = take_bandwidth_opt(&argc, argv);
	int rc = bench_parse_opts(&o, "bench_qdot", argc, argv), quick = o.quick;

	if (rc >= 0)
		return rc;
	reps = o.reps;
	if (qvl_kernels_init(&err) < 0 || qvl_pool_create(&pools[0], o.threads, NULL, &err) < 0 ||
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
	if (bw_only) {
		run_bandwidth(pools[0]);
		qvl_pool_destroy(pools[1]);
		qvl_pool_destroy(pools[0]);
		return 0;
	}
	qvl_cache_info(&ci);
	fprintf(stderr, "bench_qdot: kernels %s, %d threads (and 1), L3 %zu MiB\n", qvl_kern.name,
		qvl_pool_size(pools[0]), ci.l3 >> 20);
	bench_bw_init(pools[0], (size_t)256 << 20);
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
	bench_bw_free();
	qvl_pool_destroy(pools[1]);
	qvl_pool_destroy(pools[0]);
	return 0;
}
