/* Engine benchmark: decode and prefill on the 2B-shaped test model, each as a
 * fraction of a bound measured in the same run on the same threads.
 *
 *   decode  tok/s  vs  memory read bandwidth / weight bytes read per token
 *   prefill GFLOP/s vs  FMA peak (f32 FMA: the exact path prefill uses)
 *   peak RSS       vs  model size (weights are mmapped, never copied)
 *   our bf16 GEMM  vs  OpenBLAS sgemm on the prefill shapes (if available)
 *
 * One JSON object per line per figure (name, value, unit, bound, ratio),
 * then a human summary on stderr. The bandwidth and FMA probes run in a
 * forked child so their 1 GiB buffer does not count in the peak RSS. */
#include "config.h"

#include <getopt.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "../simd/kernels.h"
#include "engine.h"
#include "pool.h"
#include "run_common.h"
#include "sample.h"
#include "util.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define REPS 5

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *x, int n)
{
	qsort(x, (size_t)n, sizeof(double), cmp_dbl);
	return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* ---- memory read bandwidth ------------------------------------------- */

struct bw {
	const float *buf;
	size_t n;
	float sink[64];
};

static T512 float read_avx512(const float *p, size_t n)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;

	for (size_t i = 0; i + 64 <= n; i += 64) {
		a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
		a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
		a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
		a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static void bw_task(void *arg, int ith, int nth)
{
	struct bw *b = arg;
	size_t lo, hi;

	qvl_split(b->n, 4096, ith, nth, &lo, &hi);
	b->sink[ith % 64] += read_avx512(b->buf + lo, hi - lo);
}

static void touch_task(void *arg, int ith, int nth)
{
	struct bw *b = arg;
	size_t lo, hi;

	qvl_split(b->n, 4096, ith, nth, &lo, &hi);
	memset((float *)b->buf + lo, 1, (hi - lo) * sizeof(float));
}

/* ---- FMA peak --------------------------------------------------------- */

/* 12 independent FMA chains: latency 4 x 2 pipes needs >= 8 in flight. */
static T512 float fma_loop(long iters)
{
	__m512 a[12], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);

	for (int i = 0; i < 12; i++)
		a[i] = _mm512_set1_ps((float)i);
	for (long it = 0; it < iters; it++)
		for (int i = 0; i < 12; i++)
			a[i] = _mm512_fmadd_ps(a[i], x, y);
	for (int i = 1; i < 12; i++)
		a[0] = _mm512_add_ps(a[0], a[i]);
	return _mm512_reduce_add_ps(a[0]);
}

struct fma {
	long iters;
	float sink[64];
};

static void fma_task(void *arg, int ith, int nth)
{
	struct fma *f = arg;
	(void)nth;
	f->sink[ith % 64] += fma_loop(f->iters);
}

struct probes {
	double bw_gbs, fma_gflops;
};

static int run_probes(int threads, const char *cpus, struct probes *out)
{
	struct qvl_err err = {{0}};
	struct qvl_pool *p;
	struct bw b = {0};
	struct fma f = {.iters = 20000000};
	double t[REPS];
	void *buf;

	if (qvl_pool_create(&p, threads, cpus, &err) < 0) {
		fprintf(stderr, "bench_engine: %s\n", err.msg);
		return -1;
	}
	b.n = (size_t)1 << 28; /* 1 GiB of floats: far beyond any L3 */
	if (posix_memalign(&buf, 64, b.n * sizeof(float)))
		return -1;
	b.buf = buf;
	qvl_pool_run(p, touch_task, &b);
	qvl_pool_run(p, bw_task, &b); /* warm */
	for (int r = 0; r < REPS; r++) {
		double t0 = qvl_now();
		qvl_pool_run(p, bw_task, &b);
		t[r] = (double)b.n * sizeof(float) / (qvl_now() - t0) / 1e9;
	}
	out->bw_gbs = median(t, REPS);
	free(buf);
	for (int r = 0; r < REPS; r++) {
		double t0 = qvl_now();
		qvl_pool_run(p, fma_task, &f);
		/* 12 FMAs x 16 lanes x 2 flops per iteration per thread */
		t[r] = (double)f.iters * 12 * 16 * 2 * qvl_pool_size(p) / (qvl_now() - t0) / 1e9;
	}
	out->fma_gflops = median(t, REPS);
	qvl_pool_destroy(p);
	return 0;
}

/* ---- GEMM vs OpenBLAS on one prefill shape ----------------------------- */

struct gemm {
	const struct qvl_kernels *k;
	float *Y;
	const float *X;
	const void *W;
	enum qvl_dtype wt;
	size_t m, n, kk;
};

static void gemm_task(void *arg, int ith, int nth)
{
	struct gemm *g = arg;
	size_t lo, hi, es = g->wt == QVL_DT_F32 ? 4 : 2;

	qvl_split(g->n, 16, ith, nth, &lo, &hi);
	g->k->matmul(g->Y + lo, g->n, g->X, g->kk, (const uint8_t *)g->W + lo * g->kk * es, g->wt,
		     g->kk, NULL, g->m, hi - lo, g->kk);
}

static void gemm_compare(struct qvl_pool *p, size_t m, size_t n, size_t k, double *ours,
			 double *blas)
{
	float *X = malloc(m * k * 4), *Y = malloc(m * n * 4), *Wf = malloc(n * k * 4);
	uint16_t *Wb = malloc(n * k * 2);
	struct gemm g = {
	    .k = &qvl_kern, .Y = Y, .X = X, .W = Wb, .wt = QVL_DT_BF16, .m = m, .n = n, .kk = k};
	double t[3];

	for (size_t i = 0; i < m * k; i++)
		X[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
	for (size_t i = 0; i < n * k; i++) {
		Wf[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
		Wb[i] = qvl_f32_to_bf16(Wf[i]);
	}
	qvl_pool_run(p, gemm_task, &g);
	for (int r = 0; r < 3; r++) {
		double t0 = qvl_now();
		qvl_pool_run(p, gemm_task, &g);
		t[r] = 2.0 * m * n * k / (qvl_now() - t0) / 1e9;
	}
	*ours = median(t, 3);
	*blas = 0;
#ifdef HAVE_OPENBLAS
	openblas_set_num_threads(qvl_pool_size(p));
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, X,
		    (int)k, Wf, (int)k, 0.0f, Y, (int)n);
	for (int r = 0; r < 3; r++) {
		double t0 = qvl_now();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f,
			    X, (int)k, Wf, (int)k, 0.0f, Y, (int)n);
		t[r] = 2.0 * m * n * k / (qvl_now() - t0) / 1e9;
	}
	*blas = median(t, 3);
#endif
	free(X);
	free(Y);
	free(Wf);
	free(Wb);
}

/* ---- engine ------------------------------------------------------------ */

static uint64_t rnd(uint64_t *x)
{
	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	return *x >> 33;
}

static void emit(const char *name, double v, const char *unit, const char *bound_name, double bound)
{
	printf("{\"bench\":\"engine\",\"name\":\"%s\",\"value\":%.4g,\"unit\":\"%s\"", name, v,
	       unit);
	if (bound_name)
		printf(",\"bound\":\"%s\",\"bound_value\":%.4g,\"ratio\":%.3f", bound_name, bound,
		       bound > 0 ? v / bound : 0.0);
	printf("}\n");
	fflush(stdout);
}

/* Without --model: the 2B-shaped test model (random weights, text only),
 * generated once into the build tree and reused by later runs. */
static int make_model(char *dir, size_t cap)
{
	const char *bdir = getenv("QVL_BUILDDIR"), *qvlctl = getenv("QVLCTL");
	char cfg[4200], cmd[6 * 4096 + 256];

	snprintf(dir, cap, "%s/bench/cache/qvl-2b-novision", bdir && *bdir ? bdir : ".");
	snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
	if (access(cfg, R_OK) == 0)
		return 0;
	fprintf(stderr, "bench_engine: writing the 2b test model to %s (3.4 GB, once)\n", dir);
	/* mkdir -p makes the parent; the model appears only when complete */
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && rm -rf '%s' '%s.tmp' && '%s' mkmodel --shape "
		 "2b --no-vision -o '%s.tmp' && mv '%s.tmp' '%s'",
		 dir, dir, dir, qvlctl && *qvlctl ? qvlctl : "./qvlctl", dir, dir, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_engine: failed: %s\n", cmd);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run_load r = {.cmd = "bench_engine", .kv = QVL_DT_BF16, .threads = 2};
	int np = 512, ng = 32, reps = 3, c;
	struct probes pr = {0};
	int pipefd[2];
	static const struct option lo[] = {{"model", required_argument, NULL, 'm'},
					   {"threads", required_argument, NULL, 't'},
					   {"cpus", required_argument, NULL, 'c'},
					   {"prompt-tokens", required_argument, NULL, 'p'},
					   {"gen-tokens", required_argument, NULL, 'g'},
					   {"reps", required_argument, NULL, 'r'},
					   {NULL, 0, NULL, 0}};

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			r.model = optarg;
			break;
		case 't':
			r.threads = atoi(optarg);
			break;
		case 'c':
			r.cpus = optarg;
			break;
		case 'p':
			np = atoi(optarg);
			break;
		case 'g':
			ng = atoi(optarg);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_engine --model DIR [--threads N] [--cpus L] "
					"[--prompt-tokens N] [--gen-tokens N] [--reps R]\n");
			return 2;
		}
	}
	if (np < 1 || ng < 1 || reps < 1 || reps > 100) {
		fprintf(stderr, "bench_engine: counts must be positive\n");
		return 2;
	}
	static char dir[4096];
	if (!r.model) {
		if (make_model(dir, sizeof(dir)) < 0)
			return 1;
		r.model = dir;
	}
	if (qvl_simd_detect() < QVL_SIMD_AVX512) {
		printf("{\"bench\":\"engine\",\"skipped\":\"needs AVX-512 for the probes\"}\n");
		return 0;
	}

	/* bounds, in a child so that the probe buffer stays out of our RSS */
	if (pipe(pipefd) < 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		struct probes q = {0};
		int rc = run_probes(r.threads, r.cpus, &q);
		if (write(pipefd[1], &q, sizeof(q)) != (ssize_t)sizeof(q))
			rc = -1;
		_exit(rc ? 1 : 0);
	}
	int st = 0;
	if (pid < 0 || read(pipefd[0], &pr, sizeof(pr)) != (ssize_t)sizeof(pr) ||
	    waitpid(pid, &st, 0) < 0 || st != 0) {
		fprintf(stderr, "bench_engine: probes failed\n");
		return 1;
	}

	r.quiet = true;
	if (run_open(&r))
		return 1;
	const struct qvl_model *m = r.m;
	const struct qvl_text_config *tc = &m->config.text;
	uint64_t wb = run_weight_bytes_per_token(m), model_bytes = 0;
	for (size_t i = 0; i < m->nsources; i++)
		model_bytes += m->sources[i].size;
	int V = tc->vocab_size, idmax = V < 151643 ? V : 151643;
	int32_t *prompt = malloc((size_t)np * sizeof(int32_t));
	float *logits = malloc((size_t)V * sizeof(float));
	double *pp = calloc((size_t)reps, sizeof(double)),
	       *tg = calloc((size_t)reps, sizeof(double));
	struct qvl_err err = {{0}};
	uint64_t seed = 42;

	for (int i = 0; i < np; i++)
		prompt[i] = (int32_t)(rnd(&seed) % (uint64_t)idmax);
	for (int rep = -1; rep < reps; rep++) { /* rep -1: warm-up, pages the weights in */
		struct qvl_seq *s;
		struct qvl_chunk ch = {.ids = prompt, .n = (size_t)(rep < 0 ? 8 : np)};
		int n_dec = rep < 0 ? 2 : ng;
		if (qvl_seq_create(r.e, np + ng + 1, &s, &err) < 0)
			goto fail;
		double t0 = qvl_now();
		if (qvl_seq_forward(r.e, s, &ch, logits, false, &err) < 0)
			goto fail;
		double t1 = qvl_now();
		for (int i = 0; i < n_dec; i++) {
			int32_t id = qvl_argmax(logits, (size_t)V);
			struct qvl_chunk one = {.ids = &id, .n = 1};
			if (qvl_seq_forward(r.e, s, &one, logits, false, &err) < 0)
				goto fail;
		}
		double t2 = qvl_now();
		qvl_seq_destroy(s);
		if (rep >= 0) {
			pp[rep] = np / (t1 - t0);
			tg[rep] = n_dec / (t2 - t1);
		}
	}

	/* flops of a np-token prefill: 2 per weight per token in the layers,
	 * the causal attention (q·k and p·v), and one row of logits */
	double layer_params = 0;
	for (int l = 0; l < tc->num_layers; l++) {
		const char *mats[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
				      "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
				      "mlp.down_proj"};
		for (int i = 0; i < 7; i++) {
			const struct qvl_tensor *t = qvl_model_findf(
			    m, "model.language_model.layers.%d.%s.weight", l, mats[i]);
			layer_params += t ? (double)t->nelem : 0;
		}
	}
	double flops =
	    2.0 * layer_params * np +
	    4.0 * tc->num_heads * tc->head_dim * (double)np * (np + 1) / 2 * tc->num_layers +
	    2.0 * V * tc->hidden_size;
	double pp_med = median(pp, reps), tg_med = median(tg, reps);
	double gflops = flops * pp_med / np / 1e9;
	double bound_tok = pr.bw_gbs * 1e9 / (double)wb;
	double ours = 0, blas = 0;
	gemm_compare(qvl_engine_pool(r.e), (size_t)np, (size_t)tc->intermediate_size,
		     (size_t)tc->hidden_size, &ours, &blas);
	uint64_t rss = qvl_peak_rss();
	double kv_bytes =
	    2.0 * tc->num_layers * tc->num_kv_heads * tc->head_dim * 2.0 * (np + ng + 1);

	emit("mem_read_bandwidth", pr.bw_gbs, "GB/s", NULL, 0);
	emit("fma_peak_f32", pr.fma_gflops, "GFLOP/s", NULL, 0);
	emit("decode_tok_s", tg_med, "tok/s", "bandwidth/weight_bytes_per_token", bound_tok);
	emit("prefill_tok_s", pp_med, "tok/s", NULL, 0);
	emit("prefill_gflops", gflops, "GFLOP/s", "fma_peak_f32", pr.fma_gflops);
	emit("gemm_bf16_gflops", ours, "GFLOP/s", "openblas_sgemm", blas);
	emit("peak_rss", (double)rss, "bytes", "model_bytes", (double)model_bytes);

	double sp = 0, st2 = 0;
	for (int i = 0; i < reps; i++) {
		sp = fmax(sp, fabs(pp[i] - pp_med));
		st2 = fmax(st2, fabs(tg[i] - tg_med));
	}
	fprintf(stderr,
		"engine bench: %s, %d threads, kernels %s, weights %s\n"
		"  memory read bandwidth   %.1f GB/s;  FMA peak (f32) %.1f GFLOP/s\n"
		"  decode   %.2f tok/s (±%.2f) = %.3f of the bound %.2f tok/s "
		"(%.1f GB/s / %.1f MB per token)\n"
		"  prefill  %.1f tok/s (±%.1f) for %d tokens = %.1f GFLOP/s = %.3f of FMA peak\n"
		"  GEMM %dx%dx%d bf16: ours %.1f GFLOP/s, OpenBLAS sgemm %.1f GFLOP/s (%.2fx)\n"
		"  peak RSS %.1f MB = %.3f x model file %.1f MB (KV cache %.1f MB)\n",
		r.model, qvl_engine_threads(r.e), qvl_kern.name,
		qvl_dtype_name(
		    qvl_model_find(m, "model.language_model.layers.0.mlp.up_proj.weight")->dtype),
		pr.bw_gbs, pr.fma_gflops, tg_med, st2, tg_med / bound_tok, bound_tok, pr.bw_gbs,
		(double)wb / 1e6, pp_med, sp, np, gflops, gflops / pr.fma_gflops, np,
		tc->intermediate_size, tc->hidden_size, ours, blas, blas > 0 ? ours / blas : 0.0,
		(double)rss / 1e6, (double)rss / (double)model_bytes, (double)model_bytes / 1e6,
		kv_bytes / 1e6);
	free(prompt);
	free(logits);
	free(pp);
	free(tg);
	run_close(&r);
	return 0;
fail:
	fprintf(stderr, "bench_engine: %s\n", err.msg);
	run_close(&r);
	return 1;
}
