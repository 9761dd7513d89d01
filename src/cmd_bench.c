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
#include "cli.h"
#include "commands.h"
#include "engine.h"
#include "progress.h"
#include "run_common.h"
#include "sample.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: qvlctl bench --model MODEL [OPTIONS]\n"
		"\n"
		"Measure prefill and decode speed: a random prompt prefilled in one chunk, then\n"
		"tokens decoded one at a time, after one unmeasured warm-up; mean and standard\n"
		"deviation of tokens per second over the repetitions.\n"
		"\n"
		"  --model PATH          HF directory, GGUF directory or .gguf file\n"
		"  --prompt-tokens N     prompt length (default 512; prompt + generated must fit\n"
		"                        the model's max_position_embeddings)\n"
		"  --gen-tokens N        tokens decoded after the prompt (default 128)\n"
		"  --reps R              measured repetitions, 1..1000 (default 3)\n"
		"  --threads N           worker threads (default: one per physical core; more\n"
		"                        than the usable CPUs are clamped)\n"
		"  --cpus LIST           run on these logical CPUs, one thread each (\"0,2-3\")\n"
		"  --kv-type T           KV cache type: f16 (default), bf16 or f32\n"
		"  --precision P         matrix products: bf16 (default) or exact (f32)\n"
		"  --seed S              seed of the random prompt ids (default 1)\n"
		"  --json                one JSON object on stdout instead of the summary\n"
		"  --quiet               no progress line (shown only when stderr is a terminal)\n"
		"  --help                show this help\n");
}

static const struct option longopts[] = {
    {"model", required_argument, NULL, 'm'},
    {"prompt-tokens", required_argument, NULL, 'p'},
    {"gen-tokens", required_argument, NULL, 'g'},
    {"reps", required_argument, NULL, 'r'},
    {"threads", required_argument, NULL, 't'},
    {"cpus", required_argument, NULL, 'c'},
    {"kv-type", required_argument, NULL, 'k'},
    {"precision", required_argument, NULL, 'P'},
    {"seed", required_argument, NULL, 's'},
    {"json", no_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The weight types of the model (quantized files mix them): tensors and
 * bytes per dtype, as "weight_types":{...} closing the JSON object, or a
 * summary line. */
static void bench_weight_types(const struct qvl_model *m, bool json)
{
	uint64_t n[QVL_DT_COUNT] = {0}, bytes[QVL_DT_COUNT] = {0};
	bool first = true;

	for (size_t i = 0; i < m->ntensors; i++)
		if ((unsigned)m->tensors[i].dtype < QVL_DT_COUNT) {
			n[m->tensors[i].dtype]++;
			bytes[m->tensors[i].dtype] += m->tensors[i].nbytes;
		}
	printf(json ? "\"weight_types\":{" : "weights:");
	for (int d = 0; d < QVL_DT_COUNT; d++) {
		if (!n[d])
			continue;
		if (json)
			printf("%s\"%s\":{\"tensors\":%llu,\"bytes\":%llu}", first ? "" : ",",
			       qvl_dtype_name((enum qvl_dtype)d), (unsigned long long)n[d],
			       (unsigned long long)bytes[d]);
		else
			printf("%s %s %llu tensors %.1f MB", first ? "" : ",",
			       qvl_dtype_name((enum qvl_dtype)d), (unsigned long long)n[d],
			       (double)bytes[d] / 1e6);
		first = false;
	}
	printf(json ? "}}\n" : "\n");
}

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
/* One repetition: returns 0 and the two rates, or a negative errno. The
 * progress line (if any) follows the prefill and then the decode; it is
 * drawn at most ten times a second, outside the timed calls' work. */
static int one_rep(struct run_load *r, const int32_t *prompt, int np, int ng, float *logits,
		   double *pp, double *tg, struct progress *pg, const char *label,
		   struct qvl_err *err)
{
	struct qvl_seq *s = NULL;
	struct qvl_chunk c = {.ids = prompt, .n = (size_t)np};
	int rc = qvl_seq_create(r->e, np + ng + 1, &s, err);
	char stage[80];
	double t0;

	if (rc < 0)
		return rc;
	snprintf(stage, sizeof(stage), "%s prefill", label);
	progress_start(pg, stage, np, "tokens", 1);
	if (pg->on)
		qvl_engine_set_progress(r->e, progress_cb, pg);
	t0 = qvl_now();
	rc = qvl_seq_forward(r->e, s, &c, logits, false, err);
	*pp = (double)np / (qvl_now() - t0);
	qvl_engine_set_progress(r->e, NULL, NULL);
	snprintf(stage, sizeof(stage), "%s decode", label);
	progress_start(pg, stage, ng, "tokens", 1);
	t0 = qvl_now();
	/* greedy decoding as run and the daemon do it: the argmax fused into
	 * the output projection, no logits written */
	int32_t id = qvl_argmax(logits, (size_t)r->m->config.text.vocab_size), next;
	for (int i = 0; rc >= 0 && i < ng; i++) {
		struct qvl_chunk one = {.ids = &id, .n = 1};
		rc = qvl_seq_forward_argmax(r->e, s, &one, &next, err);
		id = next;
		progress_update(pg, i + 1);
	}
	*tg = ng ? (double)ng / (qvl_now() - t0) : 0.0;
	progress_end(pg);
	qvl_seq_destroy(s);
	return rc;
}

int cmd_bench(int argc, char **argv)
{
	/* the weights copied into huge pages, as qvld does: bench measures the
	 * decode a daemon serves (QVL_WEIGHT_COPY=0 is the A/B) */
	struct run_load r = {
	    .cmd = "bench", .kv = QVL_DT_F16, .prec = QVL_PREC_BF16, .copy_weights = true};
	int64_t np = 512, ng = 128, reps = 3, v;
	uint64_t seed = 1;
	bool json = false;
	struct qvl_err err = {{0}};
	struct progress pg;
	struct cli cl;
	int c, rc = 0, status = 1;
	bool quiet = false;

	cli_init(&cl, "bench", argc, argv, "", longopts);
	while (!rc && (c = cli_next(&cl)) != -1) {
		switch (c) {
		case 'm':
			r.model = optarg;
			break;
		case 'p':
			rc = cli_int("bench", "--prompt-tokens", optarg, 1, 1 << 20, &np);
			break;
		case 'g':
			rc = cli_int("bench", "--gen-tokens", optarg, 0, 1 << 20, &ng);
			break;
		case 'r':
			rc = cli_int("bench", "--reps", optarg, 1, 1000, &reps);
			break;
		case 't':
			rc = cli_int("bench", "--threads", optarg, 1, 4096, &v);
			r.threads = (int)v;
			break;
		case 'c':
			r.cpus = optarg;
			break;
		case 'k':
			if (run_parse_kv(optarg, &r.kv) < 0)
				rc = cli_usage("bench", "bad --kv-type '%s': want f16, bf16 or f32",
					       optarg);
			break;
		case 'P':
			rc = cli_precision("bench", optarg, &r.prec);
			break;
		case 's':
			rc = cli_u64("bench", "--seed", optarg, &seed);
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return cli_opt_error(&cl, c);
		}
	}
	if (rc)
		return rc;
	if (optind < argc)
		return cli_usage("bench", "unexpected argument '%s'", argv[optind]);
	if (!r.model)
		return cli_usage("bench", "need --model");
	if ((rc = cli_threads_cpus("bench", &r.threads, r.cpus)))
		return rc;
	progress_init(&pg, "bench", quiet);
	/* a budget of one sequence's pages, as qvld always has one: a rep's
	 * freed pages stay mapped for the next instead of going back to the
	 * kernel (the pool's no-budget rule) and being faulted in again by
	 * every prefill, a cost the daemon does not pay once warm */
	r.kv_pages = (size_t)(np + ng + 1 + QVL_KV_PAGE_TOKENS - 1) / QVL_KV_PAGE_TOKENS;
	if (run_open(&r))
		return 1;
	/* positions past the trained ones measure a model nobody runs */
	const int64_t maxpos = r.m->config.text.max_position;
	if (maxpos > 0 && ng >= maxpos) {
		/* no prompt length fits: the decode steps alone are too many */
		run_close(&r);
		return cli_usage(
		    "bench",
		    "bad --gen-tokens '%lld': out of range (0..%lld: the model's "
		    "max_position_embeddings is %lld, and the prompt takes at least 1)",
		    (long long)ng, (long long)(maxpos - 1), (long long)maxpos);
	}
	if (maxpos > 0 && np + ng > maxpos) {
		run_close(&r);
		return cli_usage("bench",
				 "bad --prompt-tokens '%lld': out of range (1..%lld with "
				 "--gen-tokens %lld: the model's max_position_embeddings is %lld)",
				 (long long)np, (long long)(maxpos - ng), (long long)ng,
				 (long long)maxpos);
	}

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
	/* warm-up: pages the weights in, spins the pool up, and the whole
	 * prompt faults in the KV pages every rep then reuses */
	rc = one_rep(&r, prompt, (int)np, ng < 4 ? (int)ng : 4, logits, &w_pp, &w_tg, &pg,
		     "warm-up", &err);
	for (int64_t i = 0; rc >= 0 && i < reps; i++) {
		char label[48];

		snprintf(label, sizeof(label), "rep %lld/%lld", (long long)i + 1, (long long)reps);
		rc =
		    one_rep(&r, prompt, (int)np, (int)ng, logits, &pp[i], &tg[i], &pg, label, &err);
		if (!json && rc >= 0)
			fprintf(stderr,
				"qvlctl bench: rep %lld: prefill %.2f tok/s, decode %.2f tok/s\n",
				(long long)i + 1, pp[i], tg[i]);
	}
	if (rc < 0) {
		cli_fail("bench", rc, &err);
		goto out;
	}
	mean_sd(pp, (int)reps, &pm, &psd);
	mean_sd(tg, (int)reps, &tm, &tsd);
	uint64_t wb = run_weight_bytes_per_token(r.m);
	if (json)
		printf("{\"model\":\"%s\",\"threads\":%d,\"simd\":\"%s\",\"precision\":\"%s\","
		       "\"bf16dot\":%s,\"kv_type\":\"%s\","
		       "\"prompt_tokens\":%lld,\"gen_tokens\":%lld,\"reps\":%lld,"
		       "\"prefill_tok_s\":%.3f,\"prefill_tok_s_sd\":%.3f,"
		       "\"decode_tok_s\":%.3f,\"decode_tok_s_sd\":%.3f,"
		       "\"weight_bytes_per_token\":%llu,\"load_s\":%.3f,\"peak_rss\":%llu,"
		       "\"kv_bytes\":%llu,",
		       r.model, qvl_engine_threads(r.e), qvl_kern.name, qvl_precision_name(r.prec),
		       r.prec == QVL_PREC_BF16 && qvl_kernels_bf16dot(&qvl_kern) ? "true" : "false",
		       qvl_dtype_name(r.kv), (long long)np, (long long)ng, (long long)reps, pm, psd,
		       tm, tsd, (unsigned long long)wb, r.load_s,
		       (unsigned long long)qvl_peak_rss(),
		       (unsigned long long)run_kv_bytes(r.m, np + ng + 1, r.kv));
	bench_weight_types(r.m, json);
	if (!json)
		printf("precision %s, kernels %s\n"
		       "prefill %lld tokens: %.2f ± %.2f tok/s\n"
		       "decode  %lld tokens: %.2f ± %.2f tok/s (%.2f GB/s of weights)\n",
		       run_precision_desc(r.prec), qvl_kern.name, (long long)np, pm, psd,
		       (long long)ng, tm, tsd, tm * (double)wb / 1e9);
	if (!json)
		printf("peak RSS %.1f MB, KV cache %.1f MB (%lld positions, %s)\n",
		       (double)qvl_peak_rss() / 1e6,
		       (double)run_kv_bytes(r.m, np + ng + 1, r.kv) / 1e6, (long long)(np + ng + 1),
		       qvl_dtype_name(r.kv));
	status = 0;
out:
	free(prompt);
	free(logits);
	free(pp);
	free(tg);
	run_close(&r);
	return status;
}
