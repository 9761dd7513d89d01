/* Decode steps of B sequences through qvl_engine_forward() (issue 18's
 * batching gain without the daemon): B sequences are prefilled with short
 * random prompts, then each round runs S greedy decode steps (the argmax
 * fused into the output projection, as the daemon does) for every batch
 * size in turn, so the sizes are interleaved in the same minute. Per batch
 * size: the median step time in wall and CPU time and the aggregate tok/s,
 * and the ratio to one sequence. With QVL_PROFILE=B the engine's per-stage
 * table of the B-row steps goes to stderr at the end (profile.h).
 *
 *   bench_step [--model DIR] [--threads N] [--batch 1,4,16] [--steps S]
 *              [--rounds R] [--precision bf16|exact] [--kv-type f16|bf16|f32]
 * Without --model: QVL_BENCH_2B_DIR (default /work/m2b, as bench_batch.sh),
 * skipped when it holds no model. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "model.h"
#include "run_common.h"
#include "util.h"

#define MAXB 64
#define MAXS 64
#define USAGE                                                                                      \
	"bench_step [--model DIR] [--threads N] [--batch 1,4,16] [--steps S (1..64)] "             \
	"[--rounds R (1..16)] [--precision bf16|exact] [--kv-type f16|bf16|f32]"

/* FLOP of one token's weight products (q/k/v/o, the MLP, the logits): a
 * batch step of b rows is b times this, compute bound once the weights'
 * bytes take less time than the products (the ratio's ceiling) */
static double product_flop_per_token(const struct qvl_text_config *tc)
{
	double h = tc->hidden_size, q = (double)tc->num_heads * tc->head_dim,
	       kv = (double)tc->num_kv_heads * tc->head_dim, in = tc->intermediate_size;

	return 2.0 * (tc->num_layers * (h * q + 2 * h * kv + q * h + 3 * h * in) +
		      (double)tc->vocab_size * h);
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct batch {
	int b;
	struct qvl_seq *s[MAXB];
	int32_t id[MAXB];
	double *wall, *cpu; /* [rounds * steps] */
	int n;
};

/* B fresh sequences with 16-id prompts; their first ids from the prompt. */
static int batch_start(struct qvl_engine *e, struct batch *bt, int ctx, uint64_t *seed,
		       struct qvl_err *err)
{
	struct qvl_batch_item it[MAXB];
	int32_t prompt[MAXB][16];

	for (int i = 0; i < bt->b; i++) {
		if (qvl_seq_create(e, ctx, &bt->s[i], err) < 0)
			return -1;
		for (int j = 0; j < 16; j++) {
			*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
			prompt[i][j] = (int32_t)((*seed >> 33) % 150000u);
		}
		it[i] = (struct qvl_batch_item){
		    .seq = bt->s[i], .chunk = {.ids = prompt[i], .n = 16}, .argmax = &bt->id[i]};
	}
	return qvl_engine_forward(e, it, (size_t)bt->b, err);
}

static int batch_steps(struct qvl_engine *e, struct batch *bt, int steps, struct qvl_err *err)
{
	struct qvl_batch_item it[MAXB];
	int32_t in[MAXB];

	for (int k = 0; k < steps; k++) {
		double w0 = qvl_now(), c0 = cpu_now();

		for (int i = 0; i < bt->b; i++) {
			in[i] = bt->id[i];
			it[i] = (struct qvl_batch_item){.seq = bt->s[i],
							.chunk = {.ids = &in[i], .n = 1},
							.argmax = &bt->id[i]};
		}
		if (qvl_engine_forward(e, it, (size_t)bt->b, err) < 0)
			return -1;
		bt->wall[bt->n] = qvl_now() - w0;
		bt->cpu[bt->n++] = cpu_now() - c0;
	}
	return 0;
}

static int parse_list(const char *s, int *v, int cap)
{
	int n = 0;

	while (*s && n < cap) {
		char *end;
		long x = strtol(s, &end, 10);

		if (end == s || x < 1 || x > MAXB)
			return -1;
		v[n++] = (int)x;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

int main(int argc, char **argv)
{
	struct run_load r = {
	    .cmd = "bench_step", .kv = QVL_DT_F16, .prec = QVL_PREC_BF16, .threads = 2};
	int sizes[8] = {1, 4, 16}, nsz = 3, steps = 8, rounds = 3, c;
	struct batch bt[8] = {{0}};
	struct qvl_err err = {{0}};
	uint64_t seed = 7;
	static const struct option opts[] = {
	    {"model", required_argument, NULL, 'm'},   {"threads", required_argument, NULL, 't'},
	    {"batch", required_argument, NULL, 'b'},   {"steps", required_argument, NULL, 's'},
	    {"rounds", required_argument, NULL, 'r'},  {"precision", required_argument, NULL, 'P'},
	    {"kv-type", required_argument, NULL, 'k'}, {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("usage: %s\n", USAGE);
			return 0;
		case 'm':
			r.model = optarg;
			break;
		case 't':
			r.threads = atoi(optarg);
			break;
		case 'b':
			nsz = parse_list(optarg, sizes, 8);
			if (nsz < 1)
				goto usage;
			break;
		case 's':
			steps = atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'P':
			if (qvl_precision_parse(optarg, &r.prec) < 0)
				goto usage;
			break;
		case 'k':
			if (run_parse_kv(optarg, &r.kv) < 0)
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (steps < 1 || steps > MAXS || rounds < 1 || rounds > 16)
		goto usage;
	if (!r.model) {
		/* make bench: the 2b model of bench_batch.sh, or nothing to do */
		static char cfg[4200];
		const char *d = getenv("QVL_BENCH_2B_DIR");

		r.model = d && *d ? d : "/work/m2b";
		snprintf(cfg, sizeof(cfg), "%s/config.json", r.model);
		if (access(cfg, R_OK) != 0) {
			printf(
			    "bench_step: SKIP: no 2b model at %s (--model or QVL_BENCH_2B_DIR)\n",
			    r.model);
			return 0;
		}
	}
	r.quiet = true;
	if (run_open(&r))
		return 1;
	for (int i = 0; i < nsz; i++) {
		bt[i].b = sizes[i];
		bt[i].wall = calloc((size_t)(rounds * steps), sizeof(double));
		bt[i].cpu = calloc((size_t)(rounds * steps), sizeof(double));
		if (!bt[i].wall || !bt[i].cpu ||
		    batch_start(r.e, &bt[i], 16 + 1 + rounds * steps, &seed, &err) < 0)
			goto fail;
	}
	for (int k = 0; k < rounds; k++)
		for (int i = 0; i < nsz; i++)
			if (batch_steps(r.e, &bt[i], steps, &err) < 0)
				goto fail;

	double base = 0;
	char load[64] = "?";
	FILE *la = fopen("/proc/loadavg", "r");

	if (la) {
		if (!fgets(load, sizeof(load), la))
			snprintf(load, sizeof(load), "?");
		load[strcspn(load, "\n")] = 0;
		fclose(la);
	}
	fprintf(stderr, "bench_step: %s, %d threads, precision %s, load average %s\n", r.model,
		qvl_engine_threads(r.e), qvl_precision_name(r.prec), load);
	for (int i = 0; i < nsz; i++) {
		int n = bt[i].n;
		double lo = bt[i].wall[0], hi = bt[i].wall[0];

		for (int j = 1; j < n; j++) {
			lo = bt[i].wall[j] < lo ? bt[i].wall[j] : lo;
			hi = bt[i].wall[j] > hi ? bt[i].wall[j] : hi;
		}
		double w = median(bt[i].wall, n), cp = median(bt[i].cpu, n);
		double tps = bt[i].b / w;

		if (bt[i].b == 1)
			base = tps;
		double gf = product_flop_per_token(&r.m->config.text) * tps / 1e9;

		printf("{\"bench\":\"step\",\"batch\":%d,\"step_ms\":%.2f,\"step_min_ms\":%.2f,"
		       "\"step_max_ms\":%.2f,\"cpu_ms\":%.2f,\"tok_s\":%.2f,\"ratio\":%.2f,"
		       "\"product_gflops\":%.1f}\n",
		       bt[i].b, w * 1e3, lo * 1e3, hi * 1e3, cp * 1e3, tps,
		       base > 0 ? tps / base : 0.0, gf);
		fprintf(stderr,
			"  %2d seqs: step %.1f ms (%.1f..%.1f), CPU %.1f ms (all threads), %.2f "
			"tok/s, %.2fx of 1, weight products at %.0f GFLOP/s\n",
			bt[i].b, w * 1e3, lo * 1e3, hi * 1e3, cp * 1e3, tps,
			base > 0 ? tps / base : 0.0, gf);
	}
	for (int i = 0; i < nsz; i++) {
		for (int j = 0; j < bt[i].b; j++)
			qvl_seq_destroy(bt[i].s[j]);
		free(bt[i].wall);
		free(bt[i].cpu);
	}
	run_close(&r);
	return 0;
fail:
	fprintf(stderr, "bench_step: %s\n", err.msg);
	run_close(&r);
	return 1;
usage:
	fprintf(stderr, "usage: %s\n", USAGE);
	return 2;
}
