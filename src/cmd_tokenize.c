/* qvlctl tokenize / detokenize / chat-format: the tokenizer and the chat
 * format from the command line.
 *
 * MODEL is anything qvl_model_open accepts (its tokenizer.json or GGUF
 * vocabulary is used), or, for convenience, a tokenizer.json file or a
 * directory that holds only a tokenizer.json (no config.json). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !strcmp(s + n - m, suf);
}

static int open_tokenizer(const char *model, struct qvl_tokenizer **t, struct qvl_err *err)
{
	if (ends_with(model, ".json") && is_file(model))
		return qvl_tok_load_json(t, model, err);
	char *cfg = qvl_path_join(model, "config.json");
	char *tj = qvl_path_join(model, "tokenizer.json");
	int rc;
	if (cfg && tj && !is_file(cfg) && is_file(tj)) {
		rc = qvl_tok_load_json(t, tj, err);
	} else {
		struct qvl_model *m;
		/* the tokenizer only: a pack's head, not its shards */
		rc = qvl_model_describe(&m, model, NULL, err);
		if (!rc) {
			rc = qvl_tok_load(t, m, err);
			qvl_model_close(m);
		}
	}
	free(cfg);
	free(tj);
	return rc;
}

#define TOK_MAX_INPUT (256u << 20) /* text or ids read from standard input */

/* The option loop of the three commands: --model (-m) and --help are
 * handled here, each command's own options by fn (returns 0 or 2); errors
 * in the shared style. Returns 0, 2 (usage error) or -1 (help printed). */
static int tok_parse(const char *cmd, int argc, char **argv, const struct option *lo,
		     void (*usage)(FILE *f), int (*fn)(int c, void *st), void *st,
		     const char **model)
{
	struct cli cl;
	int c, rc;

	cli_init(&cl, cmd, argc, argv, "m:", lo);
	while ((c = cli_next(&cl)) != -1) {
		switch (c) {
		case 'm':
			*model = optarg;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case '?':
		case ':':
			return cli_opt_error(&cl, c);
		default:
			if ((rc = fn(c, st)))
				return rc;
		}
	}
	if (!*model)
		return cli_usage(cmd, "--model is required");
	return 0;
}

static int no_opts(int c, void *st)
{
	(void)c;
	(void)st;
	return 0;
}

static void print_ids(const int32_t *ids, size_t n, bool json)
{
	if (json)
		putchar('[');
	for (size_t i = 0; i < n; i++)
		printf("%s%d", i ? (json ? "," : " ") : "", ids[i]);
	puts(json ? "]" : "");
}

/* ---- tokenize ---------------------------------------------------------- */

static void tokenize_usage(FILE *f)
{
	fprintf(
	    f, "Usage: qvlctl tokenize --model MODEL [--no-special] [--json] [TEXT]\n\n"
	       "Print the token ids of TEXT (or of standard input when TEXT is absent), separated\n"
	       "by single spaces on one line. No BOS/EOS is added. Input must be valid UTF-8.\n\n"
	       "  --model MODEL  a model qvl can open, a tokenizer.json, or a directory with one\n"
	       "  --no-special   added tokens flagged special (<|im_start|>, <|image_pad|>, ...)\n"
	       "                 in the text are plain text; <think>, <tool_call>... still match\n"
	       "  --json         print a JSON array instead\n"
	       "  --help         show this help\n");
}

static int tokenize_opt(int c, void *st)
{
	bool *flags = st; /* [0] special, [1] json */

	if (c == 'n')
		flags[0] = false;
	else if (c == 'j')
		flags[1] = true;
	return 0;
}

int cmd_tokenize(int argc, char **argv)
{
	static const struct option lo[] = {{"model", required_argument, NULL, 'm'},
					   {"no-special", no_argument, NULL, 'n'},
					   {"json", no_argument, NULL, 'j'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *model = NULL;
	bool flags[2] = {true, false};
	struct qvl_err err = {{0}};
	char *text;
	size_t len;
	int rc = tok_parse("tokenize", argc, argv, lo, tokenize_usage, tokenize_opt, flags, &model);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (argc - optind > 1)
		return cli_usage("tokenize", "give TEXT as one argument (quote it)");
	if (optind < argc) {
		text = strdup(argv[optind]);
		len = text ? strlen(text) : 0;
		if (!text)
			return cli_fail("tokenize", -ENOMEM, NULL);
	} else if ((rc = cli_read_text("-", TOK_MAX_INPUT, &text, &len, &err))) {
		return cli_fail("tokenize", rc, &err);
	}
	struct qvl_tokenizer *t;
	int32_t *ids;
	size_t n;

	rc = open_tokenizer(model, &t, &err);
	if (!rc) {
		rc = qvl_tok_encode(t, text, len, flags[0], &ids, &n, &err);
		if (!rc) {
			print_ids(ids, n, flags[1]);
			free(ids);
		}
		qvl_tok_free(t);
	}
	free(text);
	return rc ? cli_fail("tokenize", rc, &err) : 0;
}

/* ---- detokenize -------------------------------------------------------- */

static void detokenize_usage(FILE *f)
{
	fprintf(f,
		"Usage: qvlctl detokenize --model MODEL [ID...]\n\n"
		"Print the bytes the token ids stand for (ids from the arguments, or\n"
		"whitespace-separated from standard input), followed by a newline.\n\n"
		"  --model MODEL  a model qvl can open, a tokenizer.json, or a directory with one\n"
		"  --help         show this help\n");
}

int cmd_detokenize(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"model", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *model = NULL;
	struct qvl_err err = {{0}};
	int32_t *ids = NULL;
	size_t n = 0, cap;
	char *in = NULL, *save = NULL;
	int rc = tok_parse("detokenize", argc, argv, lo, detokenize_usage, no_opts, NULL, &model);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (optind == argc) {
		size_t inlen;

		rc = cli_read_text("-", TOK_MAX_INPUT, &in, &inlen, &err);
		if (rc)
			return cli_fail("detokenize", rc, &err);
	}
	cap = (size_t)(argc - optind) + (in ? strlen(in) / 2 + 1 : 0) + 1;
	ids = malloc(cap * sizeof(*ids));
	if (!ids) {
		free(in);
		return cli_fail("detokenize", -ENOMEM, NULL);
	}
	for (int i = optind;; i++) {
		const char *s = in ? strtok_r(i == optind ? in : NULL, " \t\r\n,", &save)
				   : (i < argc ? argv[i] : NULL);
		int64_t v;

		if (!s)
			break;
		if (qvl_parse_i64(s, 0, INT32_MAX, &v)) {
			rc = cli_usage("detokenize", "'%s' is not a token id (want 0..%d)", s,
				       INT32_MAX);
			free(ids);
			free(in);
			return rc;
		}
		ids[n++] = (int32_t)v;
	}
	struct qvl_tokenizer *t;
	char *text;
	size_t len;

	rc = open_tokenizer(model, &t, &err);
	if (!rc) {
		rc = qvl_tok_decode(t, ids, n, &text, &len, &err);
		if (!rc) {
			fwrite(text, 1, len, stdout);
			putchar('\n');
			free(text);
		}
		qvl_tok_free(t);
	}
	free(ids);
	free(in);
	return rc ? cli_fail("detokenize", rc, &err) : 0;
}

/* ---- chat-format ------------------------------------------------------- */

static void chat_usage(FILE *f)
{
	fprintf(f,
		"Usage: qvlctl chat-format --model MODEL [--system TEXT] [--image-tokens N ...]\n"
		"                          --prompt TEXT [--ids|--text] [--vision-id]\n"
		"                          [--image-sep TEXT] [--think] [--no-generation-prompt]\n"
		"                          [--parse-special]\n\n"
		"Show the token sequence of a chat request: an optional system turn, one user\n"
		"turn holding the images (in order, before the text) and the prompt, then the\n"
		"generation prompt <|im_start|>assistant\\n (Qwen3-VL format).\n\n"
		"  --model MODEL           a model qvl can open, a tokenizer.json, or a directory\n"
		"  --system TEXT           a system turn first\n"
		"  --image-tokens N        an image of N merged tokens (repeat for more images)\n"
		"  --prompt TEXT           the user's text\n"
		"  --ids                   print the ids on one line (default)\n"
		"  --text                  print the decoded text, runs of <|image_pad|> as\n"
		"                          <|image_pad|>*N\n"
		"  --vision-id             \"Picture k: \" before each image\n"
		"  --image-sep TEXT        text after each image (e.g. a newline)\n"
		"  --think                 end the generation prompt with <think>\\n\n"
		"  --no-generation-prompt  do not add <|im_start|>assistant\\n\n"
		"  --parse-special         recognise special tokens typed in the texts\n"
		"  --help                  show this help\n");
}

static void print_chat_text(const struct qvl_tokenizer *t, const int32_t *ids, size_t n)
{
	int32_t pad = qvl_tok_special(t, "<|image_pad|>");
	for (size_t i = 0; i < n;) {
		size_t len, k = i;
		if (ids[i] == pad) {
			while (k < n && ids[k] == pad)
				k++;
			printf("<|image_pad|>*%zu", k - i);
			i = k;
			continue;
		}
		const char *p = qvl_tok_piece(t, ids[i], &len);
		if (p)
			fwrite(p, 1, len, stdout);
		i++;
	}
	putchar('\n');
}

struct chat_args {
	const char *system, *prompt;
	int img[256], nimg;
	bool as_text, gen;
	struct qvl_chat_opts opts;
};

static int chat_opt(int c, void *st)
{
	struct chat_args *a = st;
	int64_t v;
	int rc;

	switch (c) {
	case 's':
		a->system = optarg;
		break;
	case 'p':
		a->prompt = optarg;
		break;
	case 'I':
		a->as_text = false;
		break;
	case 'T':
		a->as_text = true;
		break;
	case 'v':
		a->opts.add_vision_id = true;
		break;
	case 'S':
		a->opts.image_sep = optarg;
		break;
	case 'k':
		a->opts.think = true;
		break;
	case 'g':
		a->gen = false;
		break;
	case 'P':
		a->opts.parse_special = true;
		break;
	case 'i':
		if (a->nimg == 256)
			return cli_usage("chat-format", "at most 256 --image-tokens");
		if ((rc = cli_int("chat-format", "--image-tokens", optarg, 1, 1 << 20, &v)))
			return rc;
		a->img[a->nimg++] = (int)v;
		break;
	}
	return 0;
}

int cmd_chat_format(int argc, char **argv)
{
	static const struct option lo[] = {{"model", required_argument, NULL, 'm'},
					   {"system", required_argument, NULL, 's'},
					   {"image-tokens", required_argument, NULL, 'i'},
					   {"prompt", required_argument, NULL, 'p'},
					   {"ids", no_argument, NULL, 'I'},
					   {"text", no_argument, NULL, 'T'},
					   {"vision-id", no_argument, NULL, 'v'},
					   {"image-sep", required_argument, NULL, 'S'},
					   {"think", no_argument, NULL, 'k'},
					   {"no-generation-prompt", no_argument, NULL, 'g'},
					   {"parse-special", no_argument, NULL, 'P'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *model = NULL;
	struct chat_args a = {.gen = true};
	struct qvl_err err = {{0}};
	int rc = tok_parse("chat-format", argc, argv, lo, chat_usage, chat_opt, &a, &model);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (optind != argc)
		return cli_usage("chat-format", "unexpected argument '%s'", argv[optind]);
	if (!a.prompt)
		return cli_usage("chat-format", "--prompt is required");
	struct qvl_chat_msg msgs[2];
	size_t nm = 0;
	if (a.system)
		msgs[nm++] = (struct qvl_chat_msg){.role = "system", .text = a.system};
	msgs[nm++] = (struct qvl_chat_msg){.role = "user", .text = a.prompt, .n_images = a.nimg};
	struct qvl_tokenizer *t;
	int32_t *ids;
	size_t n;

	rc = open_tokenizer(model, &t, &err);
	if (!rc) {
		rc = qvl_chat_encode_ex(t, msgs, nm, a.img, a.gen, &a.opts, &ids, &n, &err);
		if (!rc) {
			if (a.as_text)
				print_chat_text(t, ids, n);
			else
				print_ids(ids, n, false);
			free(ids);
		}
		qvl_tok_free(t);
	}
	return rc ? cli_fail("chat-format", rc, &err) : 0;
}
