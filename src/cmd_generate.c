/* qvlctl generate: one generation through qvld. The options are those of
 * `qvlctl run` that make sense through the ring; the output has the same
 * shape (text on stdout, streamed as it arrives; --print-ids; --json with
 * the keys of run --json), so greedy results compare byte for byte. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "ctl_common.h"
#include "json.h"
#include "run_common.h"
#include "util.h"

#define MAX_IMAGES 16
#define MAX_STOPS  16

struct gen_args {
	const char *socket, *prompt, *system, *tokens;
	const char *images[MAX_IMAGES];
	char *img_data[MAX_IMAGES]; /* the files, read before connecting */
	size_t img_len[MAX_IMAGES];
	const char *stops[MAX_STOPS];
	int n_images, n_stops;
	bool raw, ignore_eos, greedy, print_ids, json, stream, stream_set, logprobs, sampled;
	int64_t max_tokens;
	struct qvl_sampling s;
	float freq;
	double timeout;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: qvlctl [--socket PATH] generate (--prompt TEXT | --tokens IDS) [OPTIONS]\n"
		"\n"
		"  --prompt TEXT  --system TEXT  --raw  --tokens \"ID ID ...\"\n"
		"  --image PATH (repeatable)  --max-tokens N (default 256)  --ignore-eos\n"
		"  --greedy  --temperature T  --top-k K  --top-p P  --min-p P\n"
		"  --repeat-penalty R  --presence-penalty P  --frequency-penalty F  --seed S\n"
		"  --stop STRING (repeatable)  --stream | --no-stream (default: stream on a "
		"terminal)\n"
		"  --print-ids  --logprobs  --json  --timeout S (default: none)\n");
}

static int bad(const char *opt, const char *v)
{
	fprintf(stderr, "qvlctl generate: %s: invalid value '%s'\n", opt, v);
	return CTL_USAGE;
}

static int parse(int argc, char **argv, struct gen_args *a)
{
	enum {
		P = 256,
		SYS,
		TOK,
		RAW,
		IMG,
		MAXT,
		IEOS,
		GR,
		TEMP,
		TOPK,
		TOPP,
		MINP,
		REP,
		PRES,
		FREQ,
		SEED,
		STOP,
		STREAM,
		NOSTREAM,
		IDS,
		LP,
		JSON,
		SOCK,
		TMO,
		HELP
	};
	static const struct option lo[] = {
	    {"prompt", 1, NULL, P},
	    {"system", 1, NULL, SYS},
	    {"tokens", 1, NULL, TOK},
	    {"raw", 0, NULL, RAW},
	    {"image", 1, NULL, IMG},
	    {"max-tokens", 1, NULL, MAXT},
	    {"ignore-eos", 0, NULL, IEOS},
	    {"greedy", 0, NULL, GR},
	    {"temperature", 1, NULL, TEMP},
	    {"top-k", 1, NULL, TOPK},
	    {"top-p", 1, NULL, TOPP},
	    {"min-p", 1, NULL, MINP},
	    {"repeat-penalty", 1, NULL, REP},
	    {"presence-penalty", 1, NULL, PRES},
	    {"frequency-penalty", 1, NULL, FREQ},
	    {"seed", 1, NULL, SEED},
	    {"stop", 1, NULL, STOP},
	    {"stream", 0, NULL, STREAM},
	    {"no-stream", 0, NULL, NOSTREAM},
	    {"print-ids", 0, NULL, IDS},
	    {"logprobs", 0, NULL, LP},
	    {"json", 0, NULL, JSON},
	    {"socket", 1, NULL, SOCK},
	    {"timeout", 1, NULL, TMO},
	    {"help", 0, NULL, HELP},
	    {NULL, 0, NULL, 0},
	};
	double d;
	int64_t v;
	int c;

	a->max_tokens = 256;
	a->timeout = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case P:
			a->prompt = optarg;
			break;
		case SYS:
			a->system = optarg;
			break;
		case TOK:
			a->tokens = optarg;
			break;
		case RAW:
			a->raw = true;
			break;
		case IMG:
			if (a->n_images == MAX_IMAGES) {
				fprintf(stderr, "qvlctl generate: at most %d --image\n",
					MAX_IMAGES);
				return CTL_USAGE;
			}
			a->images[a->n_images++] = optarg;
			break;
		case STOP:
			if (a->n_stops == MAX_STOPS) {
				fprintf(stderr, "qvlctl generate: at most %d --stop\n", MAX_STOPS);
				return CTL_USAGE;
			}
			if (!*optarg)
				return bad("--stop", optarg);
			a->stops[a->n_stops++] = optarg;
			break;
		case MAXT:
			if (qvl_parse_i64(optarg, 1, QVL_MAX_TOKENS, &a->max_tokens) < 0)
				return bad("--max-tokens", optarg);
			break;
		case IEOS:
			a->ignore_eos = true;
			break;
		case GR:
			a->greedy = true;
			break;
		case TEMP:
			if (qvl_parse_double(optarg, &d) < 0 || !(d >= 0 && d <= 100))
				return bad("--temperature", optarg);
			a->s.temperature = (float)d;
			a->sampled = true;
			break;
		case TOPK:
			if (qvl_parse_i64(optarg, 0, 1000000, &v) < 0)
				return bad("--top-k", optarg);
			a->s.top_k = (int32_t)v;
			a->sampled = true;
			break;
		case TOPP:
			if (qvl_parse_double(optarg, &d) < 0 || !(d > 0 && d <= 1))
				return bad("--top-p", optarg);
			a->s.top_p = (float)d;
			a->sampled = true;
			break;
		case MINP:
			if (qvl_parse_double(optarg, &d) < 0 || !(d >= 0 && d < 1))
				return bad("--min-p", optarg);
			a->s.min_p = (float)d;
			a->sampled = true;
			break;
		case REP:
			if (qvl_parse_double(optarg, &d) < 0 || !(d > 0 && d <= 100))
				return bad("--repeat-penalty", optarg);
			a->s.repeat_penalty = (float)d;
			a->sampled = true;
			break;
		case PRES:
			if (qvl_parse_double(optarg, &d) < 0 || !(d >= -100 && d <= 100))
				return bad("--presence-penalty", optarg);
			a->s.presence_penalty = (float)d;
			a->sampled = true;
			break;
		case FREQ:
			if (qvl_parse_double(optarg, &d) < 0 || !(d >= -100 && d <= 100))
				return bad("--frequency-penalty", optarg);
			a->freq = (float)d;
			a->sampled = true;
			break;
		case SEED:
			if (qvl_parse_u64(optarg, &a->s.seed) < 0)
				return bad("--seed", optarg);
			break;
		case STREAM:
			a->stream = a->stream_set = true;
			break;
		case NOSTREAM:
			a->stream = false;
			a->stream_set = true;
			break;
		case IDS:
			a->print_ids = true;
			break;
		case LP:
			a->logprobs = true;
			break;
		case JSON:
			a->json = true;
			break;
		case SOCK:
			a->socket = optarg;
			break;
		case TMO:
			if (qvl_parse_double(optarg, &a->timeout) < 0 || !(a->timeout > 0))
				return bad("--timeout", optarg);
			break;
		case HELP:
			usage(stdout);
			return -1;
		default:
			fprintf(stderr, "qvlctl generate: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return CTL_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qvlctl generate: unexpected argument '%s'\n", argv[optind]);
		return CTL_USAGE;
	}
	if (!a->prompt == !a->tokens) {
		fprintf(stderr, "qvlctl generate: need exactly one of --prompt, --tokens\n");
		usage(stderr);
		return CTL_USAGE;
	}
	if ((a->n_images || a->system || a->raw) && !a->prompt) {
		fprintf(stderr, "qvlctl generate: --image, --system and --raw need --prompt\n");
		return CTL_USAGE;
	}
	if (a->system && a->raw) {
		fprintf(stderr, "qvlctl generate: --system has no meaning with --raw\n");
		return CTL_USAGE;
	}
	if (!a->stream_set)
		a->stream = isatty(1) && !a->json && !a->print_ids;
	return 0;
}

/* Inputs into the request: system, images, user (images attach to the
 * next user message), or ids; stops; sampling. */
static int build(struct qvl_req *r, const struct gen_args *a, const int32_t *ids, size_t n_ids)
{
	uint32_t fl = 0;
	int rc = 0;

	if (a->tokens)
		rc = qvl_req_add_tokens(r, ids, n_ids);
	if (!rc && a->system)
		rc = qvl_req_add_text(r, QVL_PART_SYSTEM, a->system, strlen(a->system));
	for (int i = 0; !rc && i < a->n_images; i++)
		rc = qvl_req_add_image(r, a->img_data[i], a->img_len[i]);
	if (!rc && a->prompt)
		rc = qvl_req_add_text(r, QVL_PART_USER, a->prompt, strlen(a->prompt));
	for (int i = 0; !rc && i < a->n_stops; i++)
		rc = qvl_req_add_stop(r, a->stops[i], strlen(a->stops[i]));
	fl |= a->raw ? QVL_GEN_RAW : 0;
	fl |= a->stream ? QVL_GEN_STREAM : 0;
	fl |= a->logprobs ? QVL_GEN_LOGPROBS : 0;
	fl |= a->ignore_eos ? QVL_GEN_IGNORE_EOS : 0;
	fl |= a->greedy ? QVL_GEN_GREEDY : 0;
	/* no sampling option: the model's defaults, as `qvlctl run` uses */
	fl |= !a->greedy && !a->sampled ? QVL_GEN_MODEL_DEFAULTS : 0;
	/* before the flags: setting the sampling clears QVL_GEN_MODEL_DEFAULTS */
	if (!rc)
		rc = qvl_req_set_sampling(r, &a->s);
	if (!rc && a->freq != 0)
		rc = qvl_req_set_frequency_penalty(r, a->freq);
	if (!rc)
		rc = qvl_req_set_flags(r, fl);
	if (!rc)
		rc = qvl_req_set_max_tokens(r, (uint32_t)a->max_tokens);
	return rc;
}

static const char *stop_name(uint32_t s)
{
	static const char *n[] = {"none", "eos", "length", "stop", "cancelled", "context", "error"};
	return s < 7 ? n[s] : "?";
}

/* ttft_s < 0: not measured (no streaming: the one CQE is the end) */
static void print_json(const struct qvl_req *r, const struct qvl_cqe *c, bool lp, double wall,
		       double client_rate, double ttft_s)
{
	const int32_t *ids = qvl_req_ids(r);
	double pre = (double)c->prefill_ns / 1e9, dec = (double)c->decode_ns / 1e9;

	printf("{\"ids\":[");
	for (uint32_t i = 0; i < c->n_tokens; i++)
		printf("%s%d", i ? "," : "", ids[i]);
	printf("],\"text\":");
	json_write_string(stdout, qvl_req_text(r), c->text_len);
	if (lp) {
		const float *l = qvl_req_logprobs(r);
		printf(",\"logprobs\":[");
		for (uint32_t i = 0; i < c->n_tokens; i++)
			printf("%s%.6g", i ? "," : "", l[i]);
		printf("]");
	}
	printf(",\"n_prompt\":%u,\"n_gen\":%u,\"stop\":\"%s\",\"queue_s\":%.4f,"
	       "\"prefill_s\":%.4f,\"prefill_tok_s\":%.2f,\"decode_s\":%.4f,"
	       "\"decode_tok_s\":%.2f,\"wall_s\":%.4f,\"client_decode_tok_s\":%.2f,\"ttft_ms\":",
	       c->n_prompt, c->n_tokens, stop_name(c->stop), (double)c->queue_ns / 1e9, pre,
	       pre > 0 ? c->n_prompt / pre : 0.0, dec,
	       c->n_tokens > 1 && dec > 0 ? (c->n_tokens - 1) / dec : 0.0, wall, client_rate);
	if (ttft_s >= 0)
		printf("%.3f}\n", ttft_s * 1e3);
	else
		printf("null}\n");
}

int cmd_generate(int argc, char **argv)
{
	struct gen_args a = {0};
	struct qvl *q = NULL;
	struct qvl_req *r = NULL;
	struct qvl_cqe fin = {0};
	int32_t *ids = NULL;
	size_t n_ids = 0;
	uint32_t shown = 0, n_first = 0;
	double t_start, t_first = 0, t_tok = 0, t_end = 0;
	int rc, status;

	rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (a.tokens) {
		char why[160];
		if (run_parse_ids(a.tokens, &ids, &n_ids, why, sizeof(why)) < 0) {
			fprintf(stderr, "qvlctl generate: --tokens: %s\n", why);
			return CTL_FAIL;
		}
	}
	for (int i = 0; i < a.n_images; i++) {
		struct qvl_err err = {{0}};
		if (qvl_read_file(a.images[i], 256u << 20, &a.img_data[i], &a.img_len[i], &err) <
		    0) {
			fprintf(stderr, "qvlctl generate: %s\n", err.msg);
			status = CTL_FAIL;
			goto out;
		}
	}
	if ((status = ctl_connect("generate", a.socket, &q)) != CTL_OK)
		goto out;
	status = CTL_FAIL;
	struct qvl_sqe *sqe;
	uint64_t per = a.logprobs ? 8 : 4;
	if ((rc = qvl_req_new(q, QVL_OP_GENERATE, &r)) < 0 || (rc = build(r, &a, ids, n_ids)) < 0) {
		/* the request did not fit the arena or the limits: our side */
		fprintf(stderr, "qvlctl generate: request: %s\n", qvl_strerror(rc));
		goto out;
	}
	if (!(sqe = qvl_sqe_get(q))) {
		rc = -EBUSY;
		goto fail;
	}
	/* ids (+ logprobs) and room for 32 bytes of text per token */
	t_start = qvl_now();
	if ((rc = qvl_req_prep(r, sqe, 1, (uint64_t)a.max_tokens * (per + 32) + 4096)) < 0 ||
	    (rc = qvl_submit(q)) < 0)
		goto fail;
	for (;;) {
		struct qvl_cqe *c;
		rc = qvl_wait_cqe(q, &c, a.timeout > 0 ? (int64_t)(a.timeout * 1e9) : -1);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			goto fail;
		struct qvl_cqe cq = *c;
		qvl_cqe_seen(q);
		/* the client's own clock: first streamed chunk -> final CQE,
		 * what a caller of the daemon observes (bench_serving.sh uses
		 * it); the final CQE alone (no streaming) times nothing */
		/* time to first token, the client's: submit -> the first CQE
		 * that carries one (streamed, or the final one if it is the
		 * first), what an interactive caller waits */
		if (cq.n_tokens >= 1 && t_tok == 0)
			t_tok = qvl_now();
		if ((cq.flags & QVL_CQE_F_MORE) && cq.n_tokens >= 1 && t_first == 0) {
			t_first = qvl_now();
			n_first = cq.n_tokens;
		}
		if (a.stream && !a.print_ids && !a.json && cq.text_len > shown) {
			fwrite(qvl_req_text(r) + shown, 1, cq.text_len - shown, stdout);
			fflush(stdout);
			shown = cq.text_len;
		}
		if (!(cq.flags & QVL_CQE_F_MORE)) {
			fin = cq;
			t_end = qvl_now();
			break;
		}
	}
	if (fin.res < 0) {
		/* the daemon puts its message where the text would go */
		if (fin.text_len && fin.text_len < 512)
			fprintf(stderr, "qvlctl generate: %.*s\n", (int)fin.text_len,
				qvl_req_text(r));
		else
			fprintf(stderr, "qvlctl generate: %s\n", qvl_strerror(fin.res));
		status = CTL_FAIL;
		goto out;
	}
	if (a.json) {
		print_json(r, &fin, a.logprobs, t_end - t_start,
			   t_first > 0 && t_end > t_first && fin.n_tokens > n_first
			       ? (fin.n_tokens - n_first) / (t_end - t_first)
			       : 0.0,
			   a.stream && t_tok > 0 ? t_tok - t_start : -1);
	} else if (a.print_ids) {
		const int32_t *out = qvl_req_ids(r);
		for (uint32_t i = 0; i < fin.n_tokens; i++)
			printf("%s%d", i ? " " : "", out[i]);
		printf("\n");
	} else {
		if (!a.stream)
			fwrite(qvl_req_text(r), 1, fin.text_len, stdout);
		printf("\n");
	}
	double dec = (double)fin.decode_ns / 1e9;
	fprintf(stderr, "qvlctl generate: generated %u tokens (%s) in %.3f s (%.1f tok/s)\n",
		fin.n_tokens, stop_name(fin.stop), dec,
		fin.n_tokens > 1 && dec > 0 ? (fin.n_tokens - 1) / dec : 0.0);
	status = CTL_OK;
	goto out;
fail:
	if (rc == -ENOTCONN)
		fprintf(stderr, "qvlctl generate: the daemon went away\n");
	else if (rc == -ETIMEDOUT)
		fprintf(stderr, "qvlctl generate: no answer within %g s\n", a.timeout);
	else
		fprintf(stderr, "qvlctl generate: %s\n", qvl_strerror(rc));
	status = ctl_status_of(rc);
out:
	if (r)
		qvl_release(r);
	if (q)
		qvl_disconnect(q);
	for (int i = 0; i < a.n_images; i++)
		free(a.img_data[i]);
	free(ids);
	return status;
}
