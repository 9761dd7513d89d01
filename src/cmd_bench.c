/* qvlctl bench: prefill and decode speed the way llama-bench measures them:
 * a random prompt of N tokens prefilled in one chunk, then G tokens decoded
 * one at a time, R repetitions (after one unmeasured warm-up that pages the
 * weights in), mean and standard deviation of tokens per second. */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "commands.h"
#include "engine.h"
#include "run_common.h"
#include "sample.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: qvlctl bench --model MODEL [--prompt-tokens N] [--gen-tokens N]\n"
		   "                    [--reps R] [--threads T] [--cpus LIST] [--kv-type T]\n"
		   "                    [--seed S] [--json]\n"
		   "Defaults: 512 prompt tokens, 128 generated, 3 repetitions.\n");
}

static const struct option longopts[] = {
    {"model", required_argument, NULL, 'm'},
    {"prompt-tokens", required_argument, NULL, 'p'},
    {"gen-tokens", required_argument, NULL, 'g'},
    {"reps", required_argument, NULL, 'r'},
    {"threads", required_argument, NULL, 't'},
    {"cpus", required_argument, NULL, 'c'},
    {"kv-type", required_argument, NULL, 'k'},
    {"seed", required_argument, NULL, 's'},
    {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void mean_sd(const double *x, int n, double *mean, double *sd)
{
	double s = 0, ss = 0;

	for (int i = 0; i < n; i++)
		s += x[i];
	*mean = s / n;
	for (int i = 0; i < n; i++)
		ss += (x[i] - *mean) * (x[i] - *mean);
	*sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

/* splitmix64: the prompt ids, reproducible from --seed */
static uint64_t next_rand(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* One repetition: returns 0 and the two rates, or a negative errno. */
static int one_rep(struct run_load *r, const int32_t *prompt, int np, int ng, float *logits,
		   double *pp, double *tg, struct qvl_err *err)
{
	struct qvl_seq *s = NULL;
	struct qvl_chunk c = {.ids = prompt, .n = (size_t)np};
	int rc = qvl_seq_create(r->e, np + ng + 1, &s, err);
	double t0;

	if (rc < 0)
		return rc;
	t0 = qvl_now();
	rc = qvl_seq_forward(r->e, s, &c, logits, false, err);
	*pp = (double)np / (qvl_now() - t0);
	t0 = qvl_now();
	for (int i = 0; rc >= 0 && i < ng; i++) {
		int32_t id = qvl_argmax(logits, (size_t)r->m->config.text.vocab_size);
		struct qvl_chunk one = {.ids = &id, .n = 1};
		rc = qvl_seq_forward(r->e, s, &one, logits, false, err);
	}
	*tg = ng ? (double)ng / (qvl_now() - t0) : 0.0;
	qvl_seq_destroy(s);
	return rc;
}

int cmd_bench(int argc, char **argv)
{
	struct run_load r = {.cmd = "bench", .kv = QVL_DT_BF16};
	int64_t np = 512, ng = 128, reps = 3, v;
	uint64_t seed = 1;
	bool json = false;
	struct qvl_err err = {{0}};
	int c, rc, status = 1;

	optind = 1;
	opterr = 0;
	int li = 0;
	while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
		const char *opt = c == '?' ? argv[optind - 1] : longopts[li].name;
		switch (c) {
		case 'm':
			r.model = optarg;
			break;
		case 'p':
			if (qvl_parse_i64(optarg, 1, 1 << 20, &np) < 0)
				goto bad;
			break;
		case 'g':
			if (qvl_parse_i64(optarg, 0, 1 << 20, &ng) < 0)
				goto bad;
			break;
		case 'r':
			if (qvl_parse_i64(optarg, 1, 1000, &reps) < 0)
				goto bad;
			break;
		case 't':
			if (qvl_parse_i64(optarg, 1, 4096, &v) < 0)
				goto bad;
			r.threads = (int)v;
			break;
		case 'c':
			r.cpus = optarg;
			break;
		case 'k':
			if (run_parse_kv(optarg, &r.kv) < 0)
				goto bad;
			break;
		case 's':
			if (qvl_parse_u64(optarg, &seed) < 0)
				goto bad;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "qvlctl bench: unknown or incomplete option '%s'\n", opt);
			usage(stderr);
			return 2;
		}
		continue;
	bad:
		fprintf(stderr, "qvlctl bench: --%s: invalid value '%s'\n", opt, optarg);
		return 2;
	}
	if (!r.model || optind < argc) {
		fprintf(stderr, "qvlctl bench: need --model (and no other arguments)\n");
		usage(stderr);
		return 2;
	}
	if (run_open(&r))
		return 1;

	int V = r.m->config.text.vocab_size;
	int idmax = V < 151643 ? V : 151643; /* ordinary tokens, no specials */
	int32_t *prompt = malloc((size_t)np * sizeof(int32_t));
	float *logits = malloc((size_t)V * sizeof(float));
	double *pp = calloc((size_t)reps, sizeof(double)),
	       *tg = calloc((size_t)reps, sizeof(double));
	double w_pp, w_tg, pm, psd, tm, tsd;

	if (!prompt || !logits || !pp || !tg) {
		fprintf(stderr, "qvlctl bench: out of memory\n");
		goto out;
	}
	for (int64_t i = 0; i < np; i++)
		prompt[i] = (int32_t)(next_rand(&seed) % (uint64_t)idmax);
	/* warm-up: pages the weights in, spins the pool up */
	rc = one_rep(&r, prompt, np < 16 ? (int)np : 16, ng < 4 ? (int)ng : 4, logits, &w_pp, &w_tg,
		     &err);
	for (int64_t i = 0; rc >= 0 && i < reps; i++) {
		rc = one_rep(&r, prompt, (int)np, (int)ng, logits, &pp[i], &tg[i], &err);
		if (!json && rc >= 0)
			fprintf(stderr,
				"qvlctl bench: rep %lld: prefill %.2f tok/s, decode %.2f tok/s\n",
				(long long)i + 1, pp[i], tg[i]);
	}
	if (rc < 0) {
		fprintf(stderr, "qvlctl bench: %s\n", err.msg[0] ? err.msg : qvl_strerror(rc));
		goto out;
	}
	mean_sd(pp, (int)reps, &pm, &psd);
	mean_sd(tg, (int)reps, &tm, &tsd);
	uint64_t wb = run_weight_bytes_per_token(r.m);
	if (json)
		printf("{\"model\":\"%s\",\"threads\":%d,\"simd\":\"%s\",\"kv_type\":\"%s\","
		       "\"prompt_tokens\":%lld,\"gen_tokens\":%lld,\"reps\":%lld,"
		       "\"prefill_tok_s\":%.3f,\"prefill_tok_s_sd\":%.3f,"
		       "\"decode_tok_s\":%.3f,\"decode_tok_s_sd\":%.3f,"
		       "\"weight_bytes_per_token\":%llu,\"load_s\":%.3f,\"peak_rss\":%llu}\n",
		       r.model, qvl_engine_threads(r.e), qvl_kern.name, qvl_dtype_name(r.kv),
		       (long long)np, (long long)ng, (long long)reps, pm, psd, tm, tsd,
		       (unsigned long long)wb, r.load_s, (unsigned long long)qvl_peak_rss());
	else
		printf("prefill %lld tokens: %.2f ± %.2f tok/s\n"
		       "decode  %lld tokens: %.2f ± %.2f tok/s (%.2f GB/s of weights)\n",
		       (long long)np, pm, psd, (long long)ng, tm, tsd, tm * (double)wb / 1e9);
	status = 0;
out:
	free(prompt);
	free(logits);
	free(pp);
	free(tg);
	run_close(&r);
	return status;
}
