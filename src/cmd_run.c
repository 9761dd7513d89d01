/* qvlctl run: one generation in-process. Prompt from --tokens (ids, no
 * tokenizer) or --prompt (chat format unless --raw), optional images through
 * the multimodal module; output text (or ids) on stdout, progress and timing
 * on stderr. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "engine.h"
#include "multimodal.h"
#include "run_common.h"
#include "sample.h"
#include "tokenizer.h"
#include "util.h"

#define MAX_IMAGES 64

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: qvlctl run --model MODEL (--prompt TEXT | --tokens \"ID ID ...\") [OPTIONS]\n"
	    "\n"
	    "  --model PATH          HF directory, GGUF directory or .gguf file\n"
	    "  --mmproj PATH         vision GGUF for a text .gguf\n"
	    "  --prompt TEXT         user message (chat format unless --raw)\n"
	    "  --tokens IDS          prompt as token ids (no tokenizer, no chat format)\n"
	    "  --raw                 use --prompt as written, no chat format\n"
	    "  --image PATH          image for the prompt (repeatable)\n"
	    "  --max-tokens N        tokens to generate (default 256)\n"
	    "  --ignore-eos          do not stop at the model's end-of-sequence ids\n"
	    "  --greedy              argmax decoding (default when generation_config "
	    "does not sample)\n"
	    "  --temperature T  --top-k K  --top-p P  --min-p P\n"
	    "  --repeat-penalty R  --presence-penalty P  --seed S\n"
	    "  --print-ids           print generated ids instead of text\n"
	    "  --dump-logits FILE    write the last prompt position's logits (f32 LE)\n"
	    "  --threads N  --cpus LIST  --ctx N (default 4096)  --kv-type bf16|f16|f32\n"
	    "  --json                one JSON object on stdout with ids, text and timings\n");
}

enum {
	O_MODEL = 256,
	O_MMPROJ,
	O_PROMPT,
	O_TOKENS,
	O_RAW,
	O_IMAGE,
	O_MAXTOK,
	O_IGNORE_EOS,
	O_GREEDY,
	O_TEMP,
	O_TOPK,
	O_TOPP,
	O_MINP,
	O_REPEAT,
	O_PRESENCE,
	O_SEED,
	O_PRINT_IDS,
	O_DUMP,
	O_THREADS,
	O_CPUS,
	O_CTX,
	O_KV,
	O_JSON,
	O_HELP,
};

static const struct option longopts[] = {
    {"model", required_argument, NULL, O_MODEL},
    {"mmproj", required_argument, NULL, O_MMPROJ},
    {"prompt", required_argument, NULL, O_PROMPT},
    {"tokens", required_argument, NULL, O_TOKENS},
    {"raw", no_argument, NULL, O_RAW},
    {"image", required_argument, NULL, O_IMAGE},
    {"max-tokens", required_argument, NULL, O_MAXTOK},
    {"ignore-eos", no_argument, NULL, O_IGNORE_EOS},
    {"greedy", no_argument, NULL, O_GREEDY},
    {"temperature", required_argument, NULL, O_TEMP},
    {"top-k", required_argument, NULL, O_TOPK},
    {"top-p", required_argument, NULL, O_TOPP},
    {"min-p", required_argument, NULL, O_MINP},
    {"repeat-penalty", required_argument, NULL, O_REPEAT},
    {"presence-penalty", required_argument, NULL, O_PRESENCE},
    {"seed", required_argument, NULL, O_SEED},
    {"print-ids", no_argument, NULL, O_PRINT_IDS},
    {"dump-logits", required_argument, NULL, O_DUMP},
    {"threads", required_argument, NULL, O_THREADS},
    {"cpus", required_argument, NULL, O_CPUS},
    {"ctx", required_argument, NULL, O_CTX},
    {"kv-type", required_argument, NULL, O_KV},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct run_args {
	const char *prompt, *tokens, *dump;
	const char *images[MAX_IMAGES];
	int n_images;
	bool raw, ignore_eos, print_ids, json;
	int64_t max_tokens, ctx;
	/* sampling options given on the command line override the defaults */
	bool greedy, set_temp, set_topk, set_topp, set_minp, set_rep, set_pres;
	double temp, topp, minp, rep, pres;
	int64_t topk;
	uint64_t seed;
};

static int bad_value(const char *opt, const char *v)
{
	fprintf(stderr, "qvlctl run: %s: invalid value '%s'\n", opt, v);
	return 2;
}

static int parse(int argc, char **argv, struct run_args *a, struct run_load *r)
{
	int c;

	a->max_tokens = 256;
	a->ctx = 4096;
	r->kv = QVL_DT_BF16;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		int64_t v;
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
		case O_TOKENS:
			a->tokens = optarg;
			break;
		case O_RAW:
			a->raw = true;
			break;
		case O_IMAGE:
			if (a->n_images == MAX_IMAGES) {
				fprintf(stderr, "qvlctl run: at most %d --image\n", MAX_IMAGES);
				return 2;
			}
			a->images[a->n_images++] = optarg;
			break;
		case O_MAXTOK:
			if (qvl_parse_i64(optarg, 0, 1 << 30, &a->max_tokens) < 0)
				return bad_value("--max-tokens", optarg);
			break;
		case O_IGNORE_EOS:
			a->ignore_eos = true;
			break;
		case O_GREEDY:
			a->greedy = true;
			break;
		case O_TEMP:
			if (qvl_parse_double(optarg, &a->temp) < 0 || a->temp < 0)
				return bad_value("--temperature", optarg);
			a->set_temp = true;
			break;
		case O_TOPK:
			if (qvl_parse_i64(optarg, 0, 1 << 30, &a->topk) < 0)
				return bad_value("--top-k", optarg);
			a->set_topk = true;
			break;
		case O_TOPP:
			if (qvl_parse_double(optarg, &a->topp) < 0 ||
			    !(a->topp > 0 && a->topp <= 1))
				return bad_value("--top-p", optarg);
			a->set_topp = true;
			break;
		case O_MINP:
			if (qvl_parse_double(optarg, &a->minp) < 0 ||
			    !(a->minp >= 0 && a->minp < 1))
				return bad_value("--min-p", optarg);
			a->set_minp = true;
			break;
		case O_REPEAT:
			if (qvl_parse_double(optarg, &a->rep) < 0 || !(a->rep > 0))
				return bad_value("--repeat-penalty", optarg);
			a->set_rep = true;
			break;
		case O_PRESENCE:
			if (qvl_parse_double(optarg, &a->pres) < 0 || a->pres != a->pres)
				return bad_value("--presence-penalty", optarg);
			a->set_pres = true;
			break;
		case O_SEED:
			if (qvl_parse_u64(optarg, &a->seed) < 0)
				return bad_value("--seed", optarg);
			break;
		case O_PRINT_IDS:
			a->print_ids = true;
			break;
		case O_DUMP:
			a->dump = optarg;
			break;
		case O_THREADS:
			if (qvl_parse_i64(optarg, 1, 4096, &v) < 0)
				return bad_value("--threads", optarg);
			r->threads = (int)v;
			break;
		case O_CPUS:
			r->cpus = optarg;
			break;
		case O_CTX:
			if (qvl_parse_i64(optarg, 1, INT32_MAX, &a->ctx) < 0)
				return bad_value("--ctx", optarg);
			break;
		case O_KV:
			if (run_parse_kv(optarg, &r->kv) < 0)
				return bad_value("--kv-type", optarg);
			break;
		case O_JSON:
			a->json = true;
			break;
		case O_HELP:
			usage(stdout);
			return -1;
		default:
			fprintf(stderr, "qvlctl run: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qvlctl run: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!r->model || (!a->prompt == !a->tokens)) {
		fprintf(stderr, "qvlctl run: need --model and exactly one of --prompt, --tokens\n");
		usage(stderr);
		return 2;
	}
	if (a->n_images && !a->prompt) {
		fprintf(stderr, "qvlctl run: --image needs --prompt\n");
		return 2;
	}
	return 0;
}

static void sample_params(const struct run_args *a, const struct qvl_model *m,
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
	if (a->greedy)
		p->greedy = true;
	p->seed = a->seed;
}

static bool is_eos(const struct qvl_model *m, int32_t id)
{
	if (m->gen.present && m->gen.n_eos > 0) {
		for (int i = 0; i < m->gen.n_eos && i < 8; i++)
			if (m->gen.eos_token_ids[i] == id)
				return true;
		return false;
	}
	return id == m->config.text.eos_token_id;
}

static void json_string(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* The prompt as a chunk: ids from --tokens, the tokenizer, or the
 * multimodal builder (which owns its arrays in *mm). */
static int build_prompt(const struct run_args *a, struct run_load *r, struct qvl_tokenizer *tok,
			struct qvl_mm_prompt *mm, int32_t **ids, struct qvl_chunk *c,
			struct qvl_err *err)
{
	size_t n = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	if (a->tokens) {
		char why[160];
		rc = run_parse_ids(a->tokens, ids, &n, why, sizeof(why));
		if (rc < 0)
			return qvl_errf(err, rc, "--tokens: %s", why);
	} else if (a->n_images) {
		rc = qvl_mm_prompt_build(r->e, tok, a->prompt, a->raw, a->images, a->n_images, mm,
					 err);
		if (rc < 0)
			return rc;
		*c = mm->chunk;
		return 0;
	} else if (a->raw) {
		rc = qvl_tok_encode(tok, a->prompt, strlen(a->prompt), true, ids, &n, err);
		if (rc < 0)
			return rc;
	} else {
		struct qvl_chat_msg msg = {.role = "user", .text = a->prompt};
		rc = qvl_chat_encode(tok, &msg, 1, NULL, true, ids, &n, err);
		if (rc < 0)
			return rc;
	}
	c->ids = *ids;
	c->n = n;
	return 0;
}

static int write_logits(const char *path, const float *x, size_t n, struct qvl_err *err)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return qvl_errf(err, -errno, "--dump-logits %s: %s", path, strerror(errno));
	/* x86-64 is little-endian: the floats are written as they are */
	if (fwrite(x, sizeof(float), n, f) != n || fclose(f) != 0)
		return qvl_errf(err, -EIO, "--dump-logits %s: write failed", path);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_args a = {0};
	struct run_load r = {.cmd = "run"};
	struct qvl_tokenizer *tok = NULL;
	struct qvl_mm_prompt mm = {0};
	struct qvl_sampler *smp = NULL;
	struct qvl_seq *seq = NULL;
	struct qvl_sample_params sp;
	struct qvl_err err = {{0}};
	struct qvl_chunk c;
	struct qvl_detok dt;
	int32_t *ids = NULL, *gen = NULL;
	float *logits = NULL;
	size_t ngen = 0, tlen = 0, tcap = 0;
	char *text = NULL;
	const char *stop = "length";
	double t_pre = 0, t_dec = 0;
	int rc, status = 1;

	rc = parse(argc, argv, &a, &r);
	if (rc)
		return rc < 0 ? 0 : rc;
	r.quiet = false;
	if (run_open(&r))
		return 1;
	const struct qvl_model *m = r.m;
	int V = m->config.text.vocab_size;

	if (a.prompt) {
		rc = qvl_tok_load(&tok, m, &err);
		if (rc < 0)
			goto fail;
	}
	rc = build_prompt(&a, &r, tok, &mm, &ids, &c, &err);
	if (rc < 0)
		goto fail;
	if (c.n == 0) {
		rc = qvl_errf(&err, -EINVAL, "empty prompt: nothing to run");
		goto fail;
	}
	if ((int64_t)c.n > a.ctx) {
		rc = qvl_errf(&err, -ENOSPC,
			      "prompt of %zu tokens is longer than the context (%lld)", c.n,
			      (long long)a.ctx);
		goto fail;
	}
	for (size_t i = 0; i < c.n; i++)
		if (c.ids[i] < 0 || c.ids[i] >= V) {
			rc = qvl_errf(&err, -EINVAL,
				      "token %zu: id %d out of range (vocabulary has %d ids)", i,
				      c.ids[i], V);
			goto fail;
		}
	sample_params(&a, m, &sp);
	logits = malloc((size_t)V * sizeof(float));
	gen = malloc(((size_t)a.max_tokens + 1) * sizeof(int32_t));
	tcap = 4096;
	text = malloc(tcap);
	if (!logits || !gen || !text) {
		rc = qvl_errf(&err, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = qvl_sampler_create(&smp, &sp, V, &err);
	if (rc < 0)
		goto fail;
	rc = qvl_seq_create(r.e, (int)a.ctx, &seq, &err);
	if (rc < 0)
		goto fail;

	double t0 = qvl_now();
	rc = qvl_seq_forward(r.e, seq, &c, logits, false, &err);
	if (rc < 0)
		goto fail;
	t_pre = qvl_now() - t0;
	fprintf(stderr, "qvlctl run: prompt %zu tokens in %.3f s (%.1f tok/s)\n", c.n, t_pre,
		(double)c.n / t_pre);
	if (a.dump) {
		rc = write_logits(a.dump, logits, (size_t)V, &err);
		if (rc < 0)
			goto fail;
	}
	for (size_t i = 0; i < c.n; i++)
		qvl_sampler_accept(smp, c.ids[i]);
	if (tok)
		qvl_detok_init(&dt, tok);

	t0 = qvl_now();
	while (ngen < (size_t)a.max_tokens) {
		int32_t id = qvl_sample(smp, logits);

		if (!a.ignore_eos && is_eos(m, id)) {
			stop = "eos";
			break;
		}
		gen[ngen++] = id;
		qvl_sampler_accept(smp, id);
		if (tok && !a.print_ids) {
			if (tcap - tlen < 1024) {
				char *t2 = realloc(text, tcap * 2);
				if (!t2) {
					rc = qvl_errf(&err, -ENOMEM, "out of memory");
					goto fail;
				}
				text = t2;
				tcap *= 2;
			}
			long w = qvl_detok_push(&dt, id, text + tlen, tcap - tlen - 64);
			if (w > 0) {
				if (!a.json) {
					fwrite(text + tlen, 1, (size_t)w, stdout);
					fflush(stdout);
				}
				tlen += (size_t)w;
			}
		}
		if (ngen == (size_t)a.max_tokens)
			break;
		if (qvl_seq_len(seq) >= qvl_seq_ctx(seq)) {
			stop = "context";
			break;
		}
		struct qvl_chunk one = {.ids = &id, .n = 1};
		rc = qvl_seq_forward(r.e, seq, &one, logits, false, &err);
		if (rc < 0)
			goto fail;
	}
	t_dec = qvl_now() - t0;
	if (tok && !a.print_ids) {
		long w = qvl_detok_flush(&dt, text + tlen, 64);
		if (w > 0) {
			if (!a.json)
				fwrite(text + tlen, 1, (size_t)w, stdout);
			tlen += (size_t)w;
		}
	}
	if (a.json) {
		printf("{\"ids\":[");
		for (size_t i = 0; i < ngen; i++)
			printf("%s%d", i ? "," : "", gen[i]);
		printf("],");
		if (tok) {
			printf("\"text\":");
			json_string(stdout, text, tlen);
			printf(",");
		}
		printf("\"n_prompt\":%zu,\"n_gen\":%zu,\"stop\":\"%s\",\"load_s\":%.4f,"
		       "\"prefill_s\":%.4f,\"prefill_tok_s\":%.2f,\"decode_s\":%.4f,"
		       "\"decode_tok_s\":%.2f}\n",
		       c.n, ngen, stop, r.load_s, t_pre, (double)c.n / t_pre, t_dec,
		       ngen > 1 ? (double)(ngen - 1) / t_dec : 0.0);
	} else if (a.print_ids || !tok) {
		for (size_t i = 0; i < ngen; i++)
			printf("%s%d", i ? " " : "", gen[i]);
		printf("\n");
	} else {
		printf("\n");
	}
	/* the first generated token comes from the prompt's logits: decode
	 * speed counts the forward passes, ngen - 1 of them */
	fprintf(stderr, "qvlctl run: generated %zu tokens (%s) in %.3f s (%.1f tok/s)\n", ngen,
		stop, t_dec, ngen > 1 ? (double)(ngen - 1) / t_dec : 0.0);
	status = 0;
	goto out;
fail:
	fprintf(stderr, "qvlctl run: %s\n", err.msg[0] ? err.msg : qvl_strerror(rc));
out:
	qvl_seq_destroy(seq);
	qvl_sampler_free(smp);
	if (a.n_images)
		qvl_mm_prompt_free(&mm);
	qvl_tok_free(tok);
	free(ids);
	free(gen);
	free(text);
	free(logits);
	run_close(&r);
	return status;
}
