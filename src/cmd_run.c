/* qvlctl run: one generation in-process. Prompt from --tokens (ids, no
 * tokenizer), --prompt or --prompt-file (chat format unless --raw, with an
 * optional --system turn), optional images through the multimodal module;
 * output text (or ids) on stdout, progress and timing on stderr. Everything
 * that can be checked before the expensive work (options, output file,
 * context, the prompt's length from the image grids) is checked first. The
 * token loop is a generation session (generate.h), the one qvld runs. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "ctl_common.h"
#include "engine.h"
#include "generate.h"
#include "json.h"
#include "multimodal.h"
#include "preprocess.h"
#include "progress.h"
#include "run_common.h"
#include "tokenizer.h"
#include "util.h"

#define MAX_IMAGES 64

#define RUN_DEFAULT_CTX	    4096
#define RUN_MAX_PROMPT_FILE (64u << 20)

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: qvlctl run --model MODEL (--prompt TEXT | --prompt-file FILE | --tokens IDS)\n"
	    "                  [OPTIONS]\n"
	    "\n"
	    "Run one generation in-process: the text (or ids) on stdout, timings, peak memory\n"
	    "and the KV cache size on stderr.\n"
	    "\n"
	    "  --model PATH            HF directory, GGUF directory or .gguf file\n"
	    "  --mmproj PATH           vision GGUF for a text .gguf\n"
	    "  --prompt TEXT           user message (chat format unless --raw)\n"
	    "  --prompt-file FILE      user message read from FILE ('-': standard input)\n"
	    "  --system TEXT           system turn before the user message (chat format)\n"
	    "  --tokens IDS            prompt as token ids (no tokenizer, no chat format)\n"
	    "  --raw                   use the prompt as written, no chat format\n"
	    "  --image PATH            image for the prompt, PNG or JPEG (repeatable)\n"
	    "  --image-max-tokens N    at most N tokens per image; larger images are\n"
	    "                          downscaled (default: the preprocessor config's\n"
	    "                          longest_edge / (patch x merge)^2, 16384 for Qwen3-VL)\n"
	    "  --max-tokens N          tokens to generate (default 256)\n"
	    "  --ignore-eos            do not stop at the model's end-of-sequence ids\n"
	    "  --greedy                argmax decoding (the default when generation_config\n"
	    "                          does not sample)\n"
	    "  --temperature T         sampling temperature, >= 0 (0: greedy)\n"
	    "  --top-k K               keep the K most likely ids (0: off)\n"
	    "  --top-p P               keep the smallest set of probability >= P, 0 < P <= 1\n"
	    "  --min-p P               drop ids below P x the top probability, 0 <= P < 1\n"
	    "  --repeat-penalty R      penalise ids already seen, R > 0 (1: off)\n"
	    "  --presence-penalty P    subtract P from ids already seen (0: off)\n"
	    "  --frequency-penalty F   subtract F per occurrence in the output so far (0: off)\n"
	    "  --seed S                sampling seed; without it a random seed is used and\n"
	    "                          printed on stderr, so the run can be repeated\n"
	    "  --print-ids             print generated ids instead of text\n"
	    "  --dump-logits FILE      write the last prompt position's logits (f32 LE)\n"
	    "  --threads N             worker threads (default: one per physical core; more\n"
	    "                          than the usable CPUs are clamped)\n"
	    "  --cpus LIST             run on these logical CPUs, one thread each (\"0,2-3\")\n"
	    "  --ctx N                 context positions, prompt + generated (default 4096,\n"
	    "                          at most the model's max_position_embeddings)\n"
	    "  --ctx-override          allow --ctx above max_position_embeddings\n"
	    "  --kv-type T             KV cache type: f16 (default), bf16 or f32\n"
	    "  --precision P           matrix products: bf16 (default: activations rounded to\n"
	    "                          bf16 where the CPU has AVX512-BF16, f32 accumulation)\n"
	    "                          or exact (f32, what the golden tests check)\n"
	    "  --cpu-mem SIZE|PCT%%    host memory for the weights of a .qvl pack (8G, 512M,\n"
	    "                          or a share of RAM): text layers that do not fit are\n"
	    "                          streamed from the file every pass (qvlctl(8), TIERS)\n"
	    "  --gpu-mem SIZE          text layers placed on the simulated device first\n"
	    "  --sim-device-bw BW      the simulated device's copy bandwidth, bytes/s (default\n"
	    "                          25G, PCIe 4.0 x16-like)\n"
	    "  --copy-weights          copy the weights into huge pages at load (as qvld and\n"
	    "                          bench do): seconds more to load, faster decode for a\n"
	    "                          long generation\n"
	    "  --verbose               the tiers report on stdout (it goes to stderr otherwise)\n"
	    "  --json                  one JSON object on stdout with ids, text and timings\n"
	    "  --quiet                 no progress line (shown only when stderr is a terminal)\n"
	    "  --help                  show this help\n");
}

enum {
	O_MODEL = 256,
	O_MMPROJ,
	O_PROMPT,
	O_PROMPT_FILE,
	O_SYSTEM,
	O_TOKENS,
	O_RAW,
	O_IMAGE,
	O_IMAGE_MAX,
	O_MAXTOK,
	O_IGNORE_EOS,
	O_GREEDY,
	O_TEMP,
	O_TOPK,
	O_TOPP,
	O_MINP,
	O_REPEAT,
	O_PRESENCE,
	O_FREQUENCY,
	O_SEED,
	O_PRINT_IDS,
	O_DUMP,
	O_THREADS,
	O_CPUS,
	O_CTX,
	O_CTX_OVERRIDE,
	O_KV,
	O_PRECISION,
	O_JSON,
	O_QUIET,
	O_CPU_MEM,
	O_GPU_MEM,
	O_SIM_BW,
	O_VERBOSE,
	O_COPY_WEIGHTS,
	O_HELP,
};

static const struct option longopts[] = {
    {"model", required_argument, NULL, O_MODEL},
    {"mmproj", required_argument, NULL, O_MMPROJ},
    {"prompt", required_argument, NULL, O_PROMPT},
    {"prompt-file", required_argument, NULL, O_PROMPT_FILE},
    {"system", required_argument, NULL, O_SYSTEM},
    {"tokens", required_argument, NULL, O_TOKENS},
    {"raw", no_argument, NULL, O_RAW},
    {"image", required_argument, NULL, O_IMAGE},
    {"image-max-tokens", required_argument, NULL, O_IMAGE_MAX},
    {"max-tokens", required_argument, NULL, O_MAXTOK},
    {"ignore-eos", no_argument, NULL, O_IGNORE_EOS},
    {"greedy", no_argument, NULL, O_GREEDY},
    {"temperature", required_argument, NULL, O_TEMP},
    {"top-k", required_argument, NULL, O_TOPK},
    {"top-p", required_argument, NULL, O_TOPP},
    {"min-p", required_argument, NULL, O_MINP},
    {"repeat-penalty", required_argument, NULL, O_REPEAT},
    {"presence-penalty", required_argument, NULL, O_PRESENCE},
    {"frequency-penalty", required_argument, NULL, O_FREQUENCY},
    {"seed", required_argument, NULL, O_SEED},
    {"print-ids", no_argument, NULL, O_PRINT_IDS},
    {"dump-logits", required_argument, NULL, O_DUMP},
    {"threads", required_argument, NULL, O_THREADS},
    {"cpus", required_argument, NULL, O_CPUS},
    {"ctx", required_argument, NULL, O_CTX},
    {"ctx-override", no_argument, NULL, O_CTX_OVERRIDE},
    {"kv-type", required_argument, NULL, O_KV},
    {"precision", required_argument, NULL, O_PRECISION},
    {"json", no_argument, NULL, O_JSON},
    {"quiet", no_argument, NULL, O_QUIET},
    {"cpu-mem", required_argument, NULL, O_CPU_MEM},
    {"gpu-mem", required_argument, NULL, O_GPU_MEM},
    {"sim-device-bw", required_argument, NULL, O_SIM_BW},
    {"verbose", no_argument, NULL, O_VERBOSE},
    {"copy-weights", no_argument, NULL, O_COPY_WEIGHTS},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct run_args {
	const char *prompt, *prompt_file, *system, *tokens, *dump;
	const char *images[MAX_IMAGES];
	int n_images;
	bool raw, ignore_eos, print_ids, json, quiet, ctx_set, ctx_override, verbose;
	int64_t max_tokens, ctx, image_max_tokens;
	/* sampling options given on the command line override the defaults */
	bool greedy, set_temp, set_topk, set_topp, set_minp, set_rep, set_pres, set_freq, set_seed;
	double temp, topp, minp, rep, pres, freq;
	int64_t topk;
	uint64_t seed;
	char *prompt_buf; /* --prompt-file contents (owned) */
	int32_t *ids;	  /* --tokens, parsed (owned) */
	size_t n_ids;
};

/* One option; returns 0, 2 (usage error) or -1 (--help printed). */
static int parse_one(int c, struct run_args *a, struct run_load *r, const struct cli *cl)
{
	const char *cmd = "run";
	int64_t v;
	int rc = 0;

	switch (c) {
	case O_MODEL:
		r->model = optarg;
		break;
	case O_MMPROJ:
		r->mmproj = optarg;
		break;
	case O_PROMPT:
		a->prompt = optarg;
		break;
	case O_PROMPT_FILE:
		a->prompt_file = optarg;
		break;
	case O_SYSTEM:
		a->system = optarg;
		break;
	case O_TOKENS:
		a->tokens = optarg;
		break;
	case O_RAW:
		a->raw = true;
		break;
	case O_IMAGE:
		if (a->n_images == MAX_IMAGES)
			return cli_usage(cmd, "at most %d --image", MAX_IMAGES);
		a->images[a->n_images++] = optarg;
		break;
	case O_IMAGE_MAX:
		rc = cli_int(cmd, "--image-max-tokens", optarg, 1, 1 << 20, &a->image_max_tokens);
		break;
	case O_MAXTOK:
		rc = cli_int(cmd, "--max-tokens", optarg, 0, 1 << 30, &a->max_tokens);
		break;
	case O_IGNORE_EOS:
		a->ignore_eos = true;
		break;
	case O_GREEDY:
		a->greedy = true;
		break;
	case O_TEMP:
		rc = cli_real(cmd, "--temperature", optarg, 0, false, 1e6, false, &a->temp);
		a->set_temp = true;
		break;
	case O_TOPK:
		rc = cli_int(cmd, "--top-k", optarg, 0, 1 << 30, &a->topk);
		a->set_topk = true;
		break;
	case O_TOPP:
		rc = cli_real(cmd, "--top-p", optarg, 0, true, 1, false, &a->topp);
		a->set_topp = true;
		break;
	case O_MINP:
		rc = cli_real(cmd, "--min-p", optarg, 0, false, 1, true, &a->minp);
		a->set_minp = true;
		break;
	case O_REPEAT:
		rc = cli_real(cmd, "--repeat-penalty", optarg, 0, true, 1e6, false, &a->rep);
		a->set_rep = true;
		break;
	case O_PRESENCE:
		rc = cli_real(cmd, "--presence-penalty", optarg, -1e6, false, 1e6, false, &a->pres);
		a->set_pres = true;
		break;
	case O_FREQUENCY:
		rc =
		    cli_real(cmd, "--frequency-penalty", optarg, -100, false, 100, false, &a->freq);
		a->set_freq = true;
		break;
	case O_SEED:
		rc = cli_u64(cmd, "--seed", optarg, &a->seed);
		a->set_seed = true;
		break;
	case O_PRINT_IDS:
		a->print_ids = true;
		break;
	case O_DUMP:
		a->dump = optarg;
		break;
	case O_THREADS:
		rc = cli_int(cmd, "--threads", optarg, 1, 4096, &v);
		r->threads = (int)v;
		break;
	case O_CPUS:
		r->cpus = optarg;
		break;
	case O_CTX:
		rc = cli_int(cmd, "--ctx", optarg, 1, INT32_MAX, &a->ctx);
		a->ctx_set = true;
		break;
	case O_CTX_OVERRIDE:
		a->ctx_override = true;
		break;
	case O_KV:
		if (run_parse_kv(optarg, &r->kv) < 0)
			return cli_usage(cmd, "bad --kv-type '%s': want f16, bf16 or f32", optarg);
		break;
	case O_PRECISION:
		rc = cli_precision(cmd, optarg, &r->prec);
		break;
	case O_JSON:
		a->json = true;
		break;
	case O_QUIET:
		a->quiet = true;
		break;
	case O_VERBOSE:
		a->verbose = true;
		break;
	case O_COPY_WEIGHTS:
		r->copy_weights = true;
		break;
	case O_CPU_MEM:
	case O_GPU_MEM:
	case O_SIM_BW: {
		struct qvl_err e = {{0}};

		rc = c == O_CPU_MEM
			 ? qvl_parse_size("--cpu-mem", optarg, true, &r->tiers.cpu_mem, &e)
		     : c == O_GPU_MEM
			 ? qvl_parse_size("--gpu-mem", optarg, false, &r->tiers.gpu_mem, &e)
			 : qvl_parse_bw("--sim-device-bw", optarg, &r->tiers.sim_bw, &e);
		if (rc < 0)
			return cli_usage(cmd, "%s", e.msg);
		break;
	}
	case O_HELP:
		usage(stdout);
		return -1;
	default:
		return cli_opt_error(cl, c);
	}
	return rc;
}

/* Everything the command line alone can tell, before the model is opened. */
static int parse(int argc, char **argv, struct run_args *a, struct run_load *r)
{
	const char *cmd = "run";
	struct cli cl;
	int c, rc;

	a->max_tokens = 256;
	a->ctx = RUN_DEFAULT_CTX;
	r->kv = QVL_DT_F16;
	cli_init(&cl, cmd, argc, argv, "", longopts);
	while ((c = cli_next(&cl)) != -1)
		if ((rc = parse_one(c, a, r, &cl)))
			return rc;
	if (optind < argc)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (!r->model)
		return cli_usage(cmd, "--model is required");
	if (!!a->prompt + !!a->prompt_file + !!a->tokens != 1)
		return cli_usage(cmd, "need exactly one of --prompt, --prompt-file, --tokens");
	if (a->n_images && a->tokens)
		return cli_usage(cmd, "--image needs --prompt or --prompt-file");
	if (a->system && (a->raw || a->tokens))
		return cli_usage(cmd, "--system is a chat turn: not with %s",
				 a->raw ? "--raw" : "--tokens");
	if (a->image_max_tokens && !a->n_images)
		return cli_usage(cmd, "--image-max-tokens without --image");
	if ((rc = cli_threads_cpus(cmd, &r->threads, r->cpus)))
		return rc;
	if (a->tokens) {
		char why[160];

		if (run_parse_ids(a->tokens, &a->ids, &a->n_ids, why, sizeof(why)) < 0)
			return cli_usage(cmd, "bad --tokens: %s", why);
		if (!a->n_ids)
			return cli_usage(cmd, "bad --tokens '%s': no ids", a->tokens);
	}
	return 0;
}

/* Without --seed a sampled run takes a random seed, printed (print_seed)
 * so that the run can be repeated. */
static void sample_params(struct run_args *a, const struct qvl_model *m,
			  struct qvl_sample_params *p)
{
	qvl_sample_defaults(p, &m->gen);
	if (a->set_temp || a->set_topk || a->set_topp || a->set_minp)
		p->greedy = false;
	if (a->set_temp)
		p->temperature = (float)a->temp;
	if (a->set_topk)
		p->top_k = (int)a->topk;
	if (a->set_topp)
		p->top_p = (float)a->topp;
	if (a->set_minp)
		p->min_p = (float)a->minp;
	if (a->set_rep)
		p->repeat_penalty = (float)a->rep;
	if (a->set_pres)
		p->presence_penalty = (float)a->pres;
	if (a->set_freq)
		p->frequency_penalty = (float)a->freq;
	if (a->greedy)
		p->greedy = true;
	if (!a->set_seed && getrandom(&a->seed, sizeof(a->seed), GRND_NONBLOCK) != sizeof(a->seed))
		a->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	p->seed = a->seed;
}

/* Once the request is known to be valid, and only when it samples. */
static void print_seed(const struct run_args *a, const struct qvl_sample_params *p)
{
	if (!a->set_seed && !p->greedy && p->temperature > 0)
		fprintf(stderr,
			"qvlctl run: sampling with random seed %llu (repeat with --seed %llu)\n",
			(unsigned long long)a->seed, (unsigned long long)a->seed);
}

/* --ctx against the model's trained positions; returns 0 or 2. */
static int check_ctx(struct run_args *a, const struct qvl_model *m)
{
	const int64_t max = m->config.text.max_position;

	if (max <= 0)
		return 0;
	if (!a->ctx_set && a->ctx > max)
		a->ctx = max;
	if (a->ctx > max && !a->ctx_override)
		return cli_usage("run",
				 "bad --ctx '%lld': out of range (1..%lld, the model's "
				 "max_position_embeddings; --ctx-override allows more)",
				 (long long)a->ctx, (long long)max);
	return 0;
}

/* Append what the user can do to the message of err. */
static void hint(struct qvl_err *err, int rc, const char *what)
{
	char why[sizeof(err->msg) - 64];

	memcpy(why, err->msg, sizeof(why) - 1);
	why[sizeof(why) - 1] = 0;
	qvl_errf(err, rc, "%s: %s", why, what);
}

/* What the multimodal builder reports back to. */
struct run_mm_ctx {
	const struct run_args *a;
	struct progress *pg;
};

static void mm_progress(void *ctx, double done, double total)
{
	progress_cb(((struct run_mm_ctx *)ctx)->pg, done, total);
}

static void on_image(void *ctx, const struct qvl_mm_image_info *im)
{
	const struct run_args *a = ((struct run_mm_ctx *)ctx)->a;

	if (im->downscaled)
		fprintf(stderr,
			"qvlctl run: %s: %dx%d downscaled to %dx%d (%d tokens; at most %lld per "
			"image, --image-max-tokens)\n",
			im->name, im->w, im->h, im->rw, im->rh, im->tokens,
			(long long)a->image_max_tokens);
}

/* The prompt as a chunk: ids from --tokens, the tokenizer, or the
 * multimodal builder (which owns its arrays in *mm). */
static int build_prompt(struct run_args *a, struct run_load *r, struct qvl_tokenizer *tok,
			struct progress *pg, struct qvl_mm_prompt *mm, int32_t **ids,
			struct qvl_chunk *c, struct qvl_err *err)
{
	size_t n = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	if (a->tokens) {
		*ids = a->ids;
		n = a->n_ids;
		a->ids = NULL;
	} else if (a->n_images) {
		struct run_mm_ctx mc = {.a = a, .pg = pg};
		struct qvl_mm_opts o = {.system = a->system,
					.max_image_tokens = a->image_max_tokens,
					.max_tokens = (size_t)a->ctx,
					.on_image = on_image,
					.progress = pg->on ? mm_progress : NULL,
					.ctx = &mc};
		struct qvl_pp_params pp;

		/* the default budget, for the downscale message */
		if (!a->image_max_tokens && !qvl_pp_params_from_model(&pp, r->m, err))
			a->image_max_tokens = qvl_pp_max_tokens(&pp);
		progress_start(pg, "vision", 0, "tokens", 1);
		rc = qvl_mm_prompt_build_opts(r->e, tok, a->prompt, a->raw, a->images, a->n_images,
					      &o, mm, err);
		progress_end(pg);
		if (rc == -ENOSPC)
			hint(err, rc, "lower --image-max-tokens or raise --ctx");
		if (rc < 0)
			return rc;
		*c = mm->chunk;
		return 0;
	} else if (a->raw) {
		rc = qvl_tok_encode(tok, a->prompt, strlen(a->prompt), true, ids, &n, err);
		if (rc < 0)
			return rc;
	} else {
		struct qvl_chat_msg msgs[2];
		size_t nm = 0;

		if (a->system)
			msgs[nm++] = (struct qvl_chat_msg){.role = "system", .text = a->system};
		msgs[nm++] = (struct qvl_chat_msg){.role = "user", .text = a->prompt};
		rc = qvl_chat_encode(tok, msgs, nm, NULL, true, ids, &n, err);
		if (rc < 0)
			return rc;
	}
	c->ids = *ids;
	c->n = n;
	return 0;
}

/* Generated ids the tokenizer has no text for (ids past its vocabulary:
 * the model's embedding table is padded beyond it). */
struct run_dropped {
	size_t n;
	int32_t first[8];
};

static void report_dropped(const struct run_dropped *d, const struct qvl_tokenizer *tok)
{
	if (!d->n)
		return;
	fprintf(stderr,
		"qvlctl run: %zu generated id%s ha%s no text in the tokenizer (it knows "
		"ids 0..%d) and %s missing from the text:",
		d->n, d->n == 1 ? "" : "s", d->n == 1 ? "s" : "ve", qvl_tok_n_vocab(tok) - 1,
		d->n == 1 ? "is" : "are");
	for (size_t i = 0; i < d->n && i < 8; i++)
		fprintf(stderr, " %d", d->first[i]);
	fprintf(stderr, "%s; --print-ids shows every id\n", d->n > 8 ? " ..." : "");
}

/* Opened before any work: a path that cannot be written fails first. */
static int open_dump(const struct run_args *a, FILE **f, struct qvl_err *err)
{
	*f = NULL;
	return a->dump ? cli_open_out(f, "--dump-logits", a->dump, err) : 0;
}

/* The tiered pool's report, as `qvlctl tiers` prints it. */
static void print_tiers(const struct run_load *r, FILE *f)
{
	enum { CAP = 64 << 10 };
	char *buf = r->pool ? malloc(CAP) : NULL;

	if (!buf)
		return;
	tier_json(r->pool, buf, CAP);
	fprintf(f, "qvlctl run: tiers (as qvlctl tiers prints them):\n");
	ctl_print_flat(f, buf, "tiers");
	free(buf);
}

static void report_memory(const struct run_args *a, const struct run_load *r)
{
	fprintf(stderr, "qvlctl run: peak RSS %.1f MB, KV cache %.1f MB (%lld positions, %s)\n",
		(double)qvl_peak_rss() / 1e6, (double)run_kv_bytes(r->m, a->ctx, r->kv) / 1e6,
		(long long)a->ctx, qvl_dtype_name(r->kv));
}

static int prefill(struct run_load *r, struct qvl_seq *seq, const struct qvl_chunk *c,
		   float *logits, struct progress *pg, struct qvl_err *err)
{
	int rc;

	progress_start(pg, "prefill", (double)c->n, "tokens", 1);
	if (pg->on)
		qvl_engine_set_progress(r->e, progress_cb, pg);
	rc = qvl_seq_forward(r->e, seq, c, logits, false, err);
	qvl_engine_set_progress(r->e, NULL, NULL);
	progress_end(pg);
	return rc;
}

/* What the steps produced: the ids, the text (kept for --json, else
 * streamed to stdout as it is released) and the ids without text. */
struct run_out {
	int32_t *ids;
	size_t n;
	char *text;
	size_t tlen, tcap;
	struct run_dropped dropped;
};

static int take(struct run_out *o, const struct gen_out *go, const struct run_args *a,
		struct qvl_err *err)
{
	if (go->has_id) {
		o->ids[o->n++] = go->id;
		if (go->no_text && !a->print_ids && o->dropped.n++ < 8)
			o->dropped.first[o->dropped.n - 1] = go->id;
	}
	if (!go->text_len || a->print_ids)
		return 0;
	if (!a->json) {
		fwrite(go->text, 1, go->text_len, stdout);
		fflush(stdout);
		return 0;
	}
	if (o->tcap - o->tlen < go->text_len) {
		size_t cap = o->tcap ? o->tcap : 4096;
		char *t;

		while (cap - o->tlen < go->text_len)
			cap *= 2;
		t = realloc(o->text, cap);
		if (!t)
			return qvl_errf(err, -ENOMEM, "out of memory");
		o->text = t;
		o->tcap = cap;
	}
	memcpy(o->text + o->tlen, go->text, go->text_len);
	o->tlen += go->text_len;
	return 0;
}

static void print_json(const struct run_args *a, const struct run_load *r, bool text,
		       const struct run_out *o, size_t n_prompt, const char *stop, double t_pre,
		       double t_dec)
{
	printf("{\"ids\":[");
	for (size_t i = 0; i < o->n; i++)
		printf("%s%d", i ? "," : "", o->ids[i]);
	printf("],");
	if (text) {
		printf("\"text\":");
		json_write_string(stdout, o->text, o->tlen);
		printf(",\"dropped_ids\":%zu,", o->dropped.n);
	}
	printf("\"n_prompt\":%zu,\"n_gen\":%zu,\"stop\":\"%s\",\"seed\":%llu,"
	       "\"load_s\":%.4f,\"prefill_s\":%.4f,\"prefill_tok_s\":%.2f,"
	       "\"decode_s\":%.4f,\"decode_tok_s\":%.2f,\"ctx\":%lld,\"kv_type\":\"%s\","
	       "\"kv_bytes\":%llu,\"precision\":\"%s\",\"peak_rss\":%llu}\n",
	       n_prompt, o->n, stop, (unsigned long long)a->seed, r->load_s, t_pre,
	       (double)n_prompt / t_pre, t_dec, o->n > 1 ? (double)(o->n - 1) / t_dec : 0.0,
	       (long long)a->ctx, qvl_dtype_name(r->kv),
	       (unsigned long long)run_kv_bytes(r->m, a->ctx, r->kv), qvl_precision_name(r->prec),
	       (unsigned long long)qvl_peak_rss());
}

/* The first step of the session by hand: the prefill shows progress, and
 * the prompt's logits are kept for --dump-logits before sampling. */
static int first_step(struct run_load *r, struct gen_session *g, float *keep, size_t V,
		      struct progress *pg, struct gen_out *go, struct qvl_err *err)
{
	float *logits;
	const struct qvl_chunk *pc = gen_next_chunk(g, &logits);
	int rc = prefill(r, gen_seq(g), pc, logits, pg, err);

	if (rc >= 0 && keep)
		memcpy(keep, logits, V * sizeof(float));
	return gen_advance(g, rc, go, err);
}

int cmd_run(int argc, char **argv)
{
	struct run_args a = {0};
	struct run_load r = {.cmd = "run"};
	struct qvl_tokenizer *tok = NULL;
	struct qvl_mm_prompt mm = {0};
	struct gen_session *g = NULL;
	struct gen_params gp = {0};
	struct gen_out go;
	struct qvl_err err = {{0}};
	struct qvl_chunk c;
	struct run_out o = {0};
	struct progress pg;
	FILE *dump = NULL;
	int32_t *ids = NULL;
	float *dump_logits = NULL;
	double t_pre = 0, t_dec = 0;
	int rc, status = 1;

	rc = parse(argc, argv, &a, &r);
	if (rc) {
		free(a.ids);
		return rc < 0 ? 0 : rc;
	}
	progress_init(&pg, "run", a.quiet);
	if (a.prompt_file) {
		size_t len;

		rc = cli_read_text(a.prompt_file, RUN_MAX_PROMPT_FILE, &a.prompt_buf, &len, &err);
		if (rc < 0) {
			qvl_err_prefix(&err, rc, "--prompt-file");
			goto fail;
		}
		if (strlen(a.prompt_buf) != len) {
			rc = qvl_errf(&err, -EINVAL, "--prompt-file %s: holds a NUL byte",
				      a.prompt_file);
			goto fail;
		}
		a.prompt = a.prompt_buf;
	}
	if ((rc = open_dump(&a, &dump, &err)) < 0)
		goto fail;
	if (run_open(&r)) {
		status = 1;
		goto out;
	}
	if ((status = check_ctx(&a, r.m)) != 0)
		goto out;
	status = 1;
	const size_t V = (size_t)r.m->config.text.vocab_size;

	if (a.prompt) {
		rc = qvl_tok_load(&tok, r.m, &err);
		if (rc < 0)
			goto fail;
	}
	rc = build_prompt(&a, &r, tok, &pg, &mm, &ids, &c, &err);
	if (rc < 0)
		goto fail;
	/* the session checks the prompt (empty, longer than --ctx, ids out of
	 * the vocabulary) before anything runs */
	sample_params(&a, r.m, &gp.sp);
	gp.max_tokens = (uint32_t)a.max_tokens;
	gp.ignore_eos = a.ignore_eos;
	gp.n_ctx = (int)a.ctx;
	rc = gen_create(&g, r.e, tok, &(struct gen_prompt){.chunk = &c}, &gp, &err);
	if (rc == -ENOSPC)
		hint(&err, rc, "raise --ctx");
	if (rc < 0)
		goto fail;
	print_seed(&a, &gp.sp);
	o.ids = malloc(((size_t)a.max_tokens + 1) * sizeof(int32_t));
	if (dump)
		dump_logits = malloc(V * sizeof(float));
	if (!o.ids || (dump && !dump_logits)) {
		rc = qvl_errf(&err, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = first_step(&r, g, dump_logits, V, &pg, &go, &err);
	if (rc < 0)
		goto fail;
	gen_times(g, &t_pre, &t_dec);
	fprintf(stderr, "qvlctl run: prompt %zu tokens in %.3f s (%.1f tok/s, precision %s)\n", c.n,
		t_pre, (double)c.n / t_pre, qvl_precision_name(r.prec));
	for (;;) {
		if ((rc = take(&o, &go, &a, &err)) < 0)
			goto fail;
		if (go.stop != GEN_RUNNING)
			break;
		if ((rc = gen_step(g, &go, &err)) < 0)
			goto fail;
	}
	gen_times(g, &t_pre, &t_dec);
	if (dump) {
		/* x86-64 is little-endian: the floats are written as they are */
		rc = cli_write_close(dump, "--dump-logits", a.dump, dump_logits, V * sizeof(float),
				     &err);
		dump = NULL;
		if (rc < 0)
			goto fail;
	}
	const char *stop = gen_stop_name(go.stop);
	if (a.json)
		print_json(&a, &r, tok != NULL, &o, c.n, stop, t_pre, t_dec);
	else if (a.print_ids || !tok) {
		for (size_t i = 0; i < o.n; i++)
			printf("%s%d", i ? " " : "", o.ids[i]);
		printf("\n");
	} else {
		printf("\n");
	}
	/* the first generated token comes from the prompt's logits: decode
	 * speed counts the forward passes, ngen - 1 of them */
	fprintf(stderr, "qvlctl run: generated %zu tokens (%s) in %.3f s (%.1f tok/s)\n", o.n, stop,
		t_dec, o.n > 1 ? (double)(o.n - 1) / t_dec : 0.0);
	report_dropped(&o.dropped, tok);
	report_memory(&a, &r);
	print_tiers(&r, a.verbose ? stdout : stderr);
	status = 0;
	goto out;
fail:
	progress_end(&pg);
	cli_fail("run", rc, &err);
	status = 1;
out:
	if (dump)
		fclose(dump);
	gen_destroy(g); /* before the prompt it points to */
	if (a.n_images)
		qvl_mm_prompt_free(&mm);
	qvl_tok_free(tok);
	free(ids);
	free(a.ids);
	free(a.prompt_buf);
	free(o.ids);
	free(o.text);
	free(dump_logits);
	run_close(&r);
	return status;
}
