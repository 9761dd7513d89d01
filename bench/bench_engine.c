/* Engine benchmark: decode and prefill on the 2B-shaped test model, each as a
 * fraction of a bound measured in the same run on the same threads.
 *
 *   decode  tok/s  vs  memory read bandwidth / weight bytes read per token
 *   prefill GFLOP/s vs  the peak of the arithmetic it uses: vdpbf16ps with
 *                       --precision bf16 (the default) where the CPU has it,
 *                       else f32 FMA
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
#include <time.h>
#include <unistd.h>

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "../simd/kernels.h"
#include "engine.h"
#include "pool.h"
#include "probe.h"
#include "run_common.h"
#include "sample.h"
#include "util.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define REPS 5

/* Wall and process CPU time. The machines are shared: when other jobs take
 * our cores, wall-time rates drop while CPU-time rates (work per second of
 * CPU our threads actually got, times the thread count) do not, so every
 * figure is reported both ways and ratios are formed within each way. */
struct tm2 {
	double wall, cpu;
};

static struct tm2 now2(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (struct tm2){qvl_now(), (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9};
}

/* seconds on nth threads: wall, and CPU time spread over the threads (never
 * more than the wall time: spinning workers are not extra work) */
static double wall_s(struct tm2 a, struct tm2 b)
{
	return b.wall - a.wall;
}

static double cpu_s(struct tm2 a, struct tm2 b, int nth)
{
	double w = b.wall - a.wall, c = (b.cpu - a.cpu) / nth;
	return c < w ? c : w;
}

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

struct probes {
	double bw_gbs, fma_gflops, bf16_gflops; /* wall time */
	double bw_cpu, fma_cpu, bf16_cpu;	/* CPU time (see now2) */
};

/* A bound is what the machine can do: the best of the repetitions (as
 * STREAM reports), taken again after the engine has run, so that other jobs
 * on a shared machine do not lower it; the engine's own rates are medians. */
static double best(const double *x, int n)
{
	double b = x[0];

	for (int i = 1; i < n; i++)
		b = x[i] > b ? x[i] : b;
	return b;
}

/* Run the probes in a child so that their 1 GiB buffer stays out of our
 * peak RSS. The caller's pool workers are idle (not inside malloc) while it
 * forks, and the child only builds its own pool. */
static int run_probes(int threads, const char *cpus, struct probes *out);
static int probes_in_child(int threads, const char *cpus, struct probes *out)
{
	int pipefd[2], st = 0;
	ssize_t got;

	if (pipe(pipefd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		struct probes q = {0};
		int rc = run_probes(threads, cpus, &q);
		if (write(pipefd[1], &q, sizeof(q)) != (ssize_t)sizeof(q))
			rc = -1;
		_exit(rc ? 1 : 0);
	}
	got = pid < 0 ? -1 : read(pipefd[0], out, sizeof(*out));
	close(pipefd[0]);
	close(pipefd[1]);
	if (got != (ssize_t)sizeof(*out) || waitpid(pid, &st, 0) < 0 || st != 0)
		return -1;
	return 0;
}

static void probes_max(struct probes *a, const struct probes *b)
{
	a->bw_gbs = fmax(a->bw_gbs, b->bw_gbs);
	a->fma_gflops = fmax(a->fma_gflops, b->fma_gflops);
	a->bf16_gflops = fmax(a->bf16_gflops, b->bf16_gflops);
	a->bw_cpu = fmax(a->bw_cpu, b->bw_cpu);
	a->fma_cpu = fmax(a->fma_cpu, b->fma_cpu);
	a->bf16_cpu = fmax(a->bf16_cpu, b->bf16_cpu);
}

/* ---- memory read bandwidth ------------------------------------------- */

struct bw {
	const float *buf;
	size_t n;
	float sink[64];
};

static void bw_task(void *arg, int ith, int nth)
{
	struct bw *b = arg;
	size_t lo, hi;

	qvl_split(b->n, 4096, ith, nth, &lo, &hi);
	/* the same 4-stream read as bench_qdot --bandwidth (bench_llama.sh's bound) */
	b->sink[ith % 64] += bench_read_streams(b->buf + lo, hi - lo, QVL_SIMD_AVX512);
}

static void touch_task(void *arg, int ith, int nth)
{
	struct bw *b = arg;
	size_t lo, hi;

	qvl_split(b->n, 4096, ith, nth, &lo, &hi);
	memset((float *)b->buf + lo, 1, (hi - lo) * sizeof(float));
}

/* ---- FMA peak --------------------------------------------------------- */

/* 12 independent chains in named registers (an array would be kept in
 * memory at -O2 and measure store forwarding): latency 4 x 2 pipes needs
 * at least 8 in flight. OP is the accumulate instruction under test. */
#define CHAINS(OP)                                                                                 \
	for (long it = 0; it < iters; it++) {                                                      \
		a0 = OP(a0);                                                                       \
		a1 = OP(a1);                                                                       \
		a2 = OP(a2);                                                                       \
		a3 = OP(a3);                                                                       \
		a4 = OP(a4);                                                                       \
		a5 = OP(a5);                                                                       \
		a6 = OP(a6);                                                                       \
		a7 = OP(a7);                                                                       \
		a8 = OP(a8);                                                                       \
		a9 = OP(a9);                                                                       \
		a10 = OP(a10);                                                                     \
		a11 = OP(a11);                                                                     \
	}                                                                                          \
	a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),            \
			   _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));           \
	a0 = _mm512_add_ps(a0, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));     \
	return _mm512_reduce_add_ps(a0)

#define INIT_CHAINS                                                                                \
	__m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f),       \
	       a3 = _mm512_set1_ps(3.f), a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f),       \
	       a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f), a8 = _mm512_set1_ps(8.f),       \
	       a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f)

static T512 float fma_loop(long iters)
{
	const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
	INIT_CHAINS;
#define FMA_OP(a) _mm512_fmadd_ps(a, x, y)
	CHAINS(FMA_OP);
}

/* The same with vdpbf16ps (2 bf16 products per f32 lane): the peak of the
 * `--precision bf16` path (the default). */
static __attribute__((target("avx512f,avx512bf16"))) float dpbf16_loop(long iters)
{
	const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80); /* 1.0 */
	INIT_CHAINS;
#define DP_OP(a) _mm512_dpbf16_ps(a, x, x)
	CHAINS(DP_OP);
}

struct fma {
	long iters;
	bool bf16;
	float sink[64];
};

static void fma_task(void *arg, int ith, int nth)
{
	struct fma *f = arg;
	(void)nth;
	f->sink[ith % 64] += f->bf16 ? dpbf16_loop(f->iters) : fma_loop(f->iters);
}

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
	int nth = qvl_pool_size(p);
	double tc[REPS];
	for (int r = 0; r < REPS; r++) {
		struct tm2 t0 = now2();
		qvl_pool_run(p, bw_task, &b);
		struct tm2 t1 = now2();
		t[r] = (double)b.n * sizeof(float) / wall_s(t0, t1) / 1e9;
		tc[r] = (double)b.n * sizeof(float) / cpu_s(t0, t1, nth) / 1e9;
	}
	out->bw_gbs = best(t, REPS);
	out->bw_cpu = best(tc, REPS);
	free(buf);
	for (int r = 0; r < REPS; r++) {
		struct tm2 t0 = now2();
		qvl_pool_run(p, fma_task, &f);
		struct tm2 t1 = now2();
		/* 12 FMAs x 16 lanes x 2 flops per iteration per thread */
		double fl = (double)f.iters * 12 * 16 * 2 * nth;
		t[r] = fl / wall_s(t0, t1) / 1e9;
		tc[r] = fl / cpu_s(t0, t1, nth) / 1e9;
	}
	out->fma_gflops = best(t, REPS);
	out->fma_cpu = best(tc, REPS);
	if (qvl_cpu_has_avx512bf16()) {
		f.bf16 = true;
		for (int r = 0; r < REPS; r++) {
			struct tm2 t0 = now2();
			qvl_pool_run(p, fma_task, &f);
			struct tm2 t1 = now2();
			/* 12 dot-accumulates x 16 lanes x 2 products x 2 flops */
			double fl = (double)f.iters * 12 * 16 * 4 * nth;
			t[r] = fl / wall_s(t0, t1) / 1e9;
			tc[r] = fl / cpu_s(t0, t1, nth) / 1e9;
		}
		out->bf16_gflops = best(t, REPS);
		out->bf16_cpu = best(tc, REPS);
	}
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

/* One figure: value measured in wall time and in CPU time (see now2), and
 * the ratio to its bound measured the same way in this run. */
static void emit(const char *name, double v, double v_cpu, const char *unit, const char *bound_name,
		 double bound, double bound_cpu)
{
	printf("{\"bench\":\"engine\",\"name\":\"%s\",\"value\":%.4g,\"value_cpu\":%.4g,"
	       "\"unit\":\"%s\"",
	       name, v, v_cpu, unit);
	if (bound_name)
		printf(",\"bound\":\"%s\",\"bound_value\":%.4g,\"ratio\":%.3f,"
		       "\"ratio_cpu\":%.3f",
		       bound_name, bound, bound > 0 ? v / bound : 0.0,
		       bound_cpu > 0 ? v_cpu / bound_cpu : 0.0);
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
	struct run_load r = {
	    .cmd = "bench_engine", .kv = QVL_DT_F16, .prec = QVL_PREC_BF16, .threads = 2};
	int np = 512, ng = 32, reps = 3, c;
	struct probes pr = {0};
	static const struct option lo[] = {{"model", required_argument, NULL, 'm'},
					   {"threads", required_argument, NULL, 't'},
					   {"cpus", required_argument, NULL, 'c'},
					   {"prompt-tokens", required_argument, NULL, 'p'},
					   {"gen-tokens", required_argument, NULL, 'g'},
					   {"reps", required_argument, NULL, 'r'},
					   {"precision", required_argument, NULL, 'P'},
					   {"help", no_argument, NULL, 'h'},
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
		case 'P':
			if (qvl_precision_parse(optarg, &r.prec) == 0)
				break;
			/* fall through */
		case 'h':
		default:
			fprintf(c == 'h' ? stdout : stderr, "usage: bench_engine --model DIR [--threads N] [--cpus L] "
					"[--prompt-tokens N] [--gen-tokens N] [--reps R] "
					"[--precision bf16|exact]\n");
			return c == 'h' ? 0 : 2;
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

	if (probes_in_child(r.threads, r.cpus, &pr) < 0) {
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
	double *pp = calloc((size_t)reps * 4, sizeof(double)), *tg = pp + reps;
	double *ppc = tg + reps, *tgc = ppc + reps; /* CPU-time rates */
	int nth = qvl_engine_threads(r.e);
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
		struct tm2 t0 = now2();
		if (qvl_seq_forward(r.e, s, &ch, logits, false, &err) < 0)
			goto fail;
		struct tm2 t1 = now2();
		/* greedy decoding as run and the daemon do it: the argmax fused
		 * into the output projection, no logits written */
		int32_t id = qvl_argmax(logits, (size_t)V), next;
		for (int i = 0; i < n_dec; i++) {
			struct qvl_chunk one = {.ids = &id, .n = 1};
			if (qvl_seq_forward_argmax(r.e, s, &one, &next, &err) < 0)
				goto fail;
			id = next;
		}
		struct tm2 t2 = now2();
		qvl_seq_destroy(s);
		if (rep >= 0) {
			pp[rep] = np / wall_s(t0, t1);
			tg[rep] = n_dec / wall_s(t1, t2);
			ppc[rep] = np / cpu_s(t0, t1, nth);
			tgc[rep] = n_dec / cpu_s(t1, t2, nth);
		}
	}

	struct probes pr2 = {0};
	if (probes_in_child(r.threads, r.cpus, &pr2) == 0)
		probes_max(&pr, &pr2);

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
	double sp = 0, st2 = 0;
	double pp_med = median(pp, reps), tg_med = median(tg, reps);
	for (int i = 0; i < reps; i++) {
		sp = fmax(sp, fabs(pp[i] - pp_med));
		st2 = fmax(st2, fabs(tg[i] - tg_med));
	}
	double ppc_med = median(ppc, reps), tgc_med = median(tgc, reps);
	double gflops = flops * pp_med / np / 1e9, gflops_c = flops * ppc_med / np / 1e9;
	double bound_tok = pr.bw_gbs * 1e9 / (double)wb, bound_tok_c = pr.bw_cpu * 1e9 / (double)wb;
	double ours = 0, blas = 0;
	gemm_compare(qvl_engine_pool(r.e), (size_t)np, (size_t)tc->intermediate_size,
		     (size_t)tc->hidden_size, &ours, &blas);
	/* the other prefill shapes: q/o, k/v, down */
	size_t shapes[3][2] = {{(size_t)tc->num_heads * tc->head_dim, (size_t)tc->hidden_size},
			       {(size_t)tc->num_kv_heads * tc->head_dim, (size_t)tc->hidden_size},
			       {(size_t)tc->hidden_size, (size_t)tc->intermediate_size}};
	double o2[3], b2[3];
	for (int i = 0; i < 3; i++)
		gemm_compare(qvl_engine_pool(r.e), (size_t)np, shapes[i][0], shapes[i][1], &o2[i],
			     &b2[i]);
	uint64_t rss = qvl_peak_rss();
	double kv_bytes =
	    2.0 * tc->num_layers * tc->num_kv_heads * tc->head_dim * 2.0 * (np + ng + 1);
	/* the bound is the peak of the arithmetic prefill actually uses */
	bool bf16dot =
	    r.prec == QVL_PREC_BF16 && qvl_kernels_bf16dot(&qvl_kern) && pr.bf16_gflops > 0;
	double peak = bf16dot ? pr.bf16_gflops : pr.fma_gflops;
	double peak_c = bf16dot ? pr.bf16_cpu : pr.fma_cpu;
	enum qvl_dtype wdt =
	    qvl_model_find(m, "model.language_model.layers.0.mlp.up_proj.weight")->dtype;
	/* quantized weights multiply with int8 dot products, whose peak is not
	 * measured here: no fraction of a float peak for them */
	bool quant = qvl_dtype_is_block(wdt);
	char of_peak[96];

	if (quant)
		snprintf(of_peak, sizeof of_peak, "(int8 dot products: no peak measured)");
	else
		snprintf(of_peak, sizeof of_peak, "= %.3f [%.3f] of the %s peak", gflops / peak,
			 gflops_c / peak_c, bf16dot ? "bf16 dot" : "f32 FMA");

	emit("mem_read_bandwidth", pr.bw_gbs, pr.bw_cpu, "GB/s", NULL, 0, 0);
	emit("fma_peak_f32", pr.fma_gflops, pr.fma_cpu, "GFLOP/s", NULL, 0, 0);
	if (pr.bf16_gflops > 0)
		emit("dpbf16_peak", pr.bf16_gflops, pr.bf16_cpu, "GFLOP/s", NULL, 0, 0);
	emit("decode_tok_s", tg_med, tgc_med, "tok/s", "bandwidth/weight_bytes_per_token",
	     bound_tok, bound_tok_c);
	emit("decode_weight_gbs", tg_med * (double)wb / 1e9, tgc_med * (double)wb / 1e9, "GB/s",
	     "mem_read_bandwidth", pr.bw_gbs, pr.bw_cpu);
	emit("prefill_tok_s", pp_med, ppc_med, "tok/s", NULL, 0, 0);
	emit("prefill_gflops", gflops, gflops_c, "GFLOP/s",
	     quant ? NULL : bf16dot ? "dpbf16_peak" : "fma_peak_f32", quant ? 0 : peak,
	     quant ? 0 : peak_c);
	emit("gemm_bf16_gflops", ours, ours, "GFLOP/s", "openblas_sgemm", blas, blas);
	for (int i = 0; i < 3; i++) {
		char nm[64];
		snprintf(nm, sizeof(nm), "gemm_bf16_gflops_%dx%zux%zu", np, shapes[i][0],
			 shapes[i][1]);
		emit(nm, o2[i], o2[i], "GFLOP/s", "openblas_sgemm", b2[i], b2[i]);
		fprintf(stderr,
			"  GEMM %dx%zux%zu, bf16 weights, exact f32 math: ours %.1f GFLOP/s, OpenBLAS "
			"sgemm %.1f (%.2fx)\n",
			np, shapes[i][0], shapes[i][1], o2[i], b2[i],
			b2[i] > 0 ? o2[i] / b2[i] : 0.0);
	}
	emit("peak_rss", (double)rss, (double)rss, "bytes", "model_bytes", (double)model_bytes,
	     (double)model_bytes);

	fprintf(stderr,
		"engine bench: %s, %d threads, kernels %s, precision %s, weights %s "
		"(wall time; [CPU time] where other jobs share the cores)\n"
		"  memory read bandwidth %.1f [%.1f] GB/s;  peak f32 FMA %.1f [%.1f], bf16 dot "
		"%.1f [%.1f] GFLOP/s\n"
		"  decode   %.2f (±%.2f) [%.2f] tok/s = %.3f [%.3f] of the bound "
		"bandwidth / %.1f MB per token\n"
		"  decode moves the weights at %.1f [%.1f] GB/s\n"
		"  prefill  %.1f (±%.1f) [%.1f] tok/s for %d tokens = %.1f [%.1f] GFLOP/s %s\n"
		"  GEMM %dx%dx%d, bf16 weights, exact f32 math: ours %.1f GFLOP/s, OpenBLAS sgemm "
		"%.1f GFLOP/s (%.2fx)\n"
		"  peak RSS %.1f MB = %.3f x model file %.1f MB (KV cache %.1f MB)\n",
		r.model, nth, qvl_kern.name, qvl_precision_name(r.prec),
		qvl_dtype_name(wdt),
		pr.bw_gbs, pr.bw_cpu, pr.fma_gflops, pr.fma_cpu, pr.bf16_gflops, pr.bf16_cpu,
		tg_med, st2, tgc_med, tg_med / bound_tok, tgc_med / bound_tok_c, (double)wb / 1e6,
		tg_med * (double)wb / 1e9, tgc_med * (double)wb / 1e9, pp_med, sp, ppc_med, np,
		gflops, gflops_c, of_peak, np, tc->intermediate_size, tc->hidden_size, ours,
		blas, blas > 0 ? ours / blas : 0.0, (double)rss / 1e6,
		(double)rss / (double)model_bytes, (double)model_bytes / 1e6, kv_bytes / 1e6);
	free(prompt);
	free(logits);
	free(pp);
	run_close(&r);
	return 0;
fail:
	fprintf(stderr, "bench_engine: %s\n", err.msg);
	run_close(&r);
	return 1;
}
