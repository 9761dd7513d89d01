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
		rc = qvl_model_open(&m, model, NULL, err);
		if (!rc) {
			rc = qvl_tok_load(t, m, err);
			qvl_model_close(m);
		}
	}
	free(cfg);
	free(tj);
	return rc;
}

static int read_stdin(char **out, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			char *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		size_t k = fread(buf + n, 1, cap - n, stdin);
		n += k;
		if (k == 0) {
			if (ferror(stdin)) {
				free(buf);
				return -EIO;
			}
			break;
		}
	}
	*out = buf;
	*len = n;
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

int cmd_tokenize(int argc, char **argv)
{
	static const struct option lo[] = {{"model", required_argument, NULL, 'm'},
					   {"no-special", no_argument, NULL, 'n'},
					   {"json", no_argument, NULL, 'j'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *model = NULL;
	bool special = true, json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			model = optarg;
			break;
		case 'n':
			special = false;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			tokenize_usage(stdout);
			return 0;
		default:
			tokenize_usage(stderr);
			return 2;
		}
	}
	if (!model || argc - optind > 1) {
		fprintf(stderr, "qvlctl tokenize: %s\n",
			!model ? "--model is required" : "give TEXT as one argument (quote it)");
		tokenize_usage(stderr);
		return 2;
	}
	char *text;
	size_t len;
	if (optind < argc) {
		text = strdup(argv[optind]);
		len = text ? strlen(text) : 0;
	} else if (read_stdin(&text, &len)) {
		fprintf(stderr, "qvlctl tokenize: cannot read standard input\n");
		return 1;
	}
	if (!text) {
		fprintf(stderr, "qvlctl tokenize: out of memory\n");
		return 1;
	}
	struct qvl_err err;
	struct qvl_tokenizer *t;
	int32_t *ids;
	size_t n;
	int rc = open_tokenizer(model, &t, &err);
	if (!rc) {
		rc = qvl_tok_encode(t, text, len, special, &ids, &n, &err);
		if (!rc) {
			print_ids(ids, n, json);
			free(ids);
		}
		qvl_tok_free(t);
	}
	free(text);
	if (rc)
		fprintf(stderr, "qvlctl tokenize: %s\n", err.msg);
	return rc ? 1 : 0;
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

static int parse_id(const char *s, int32_t *id)
{
	int64_t v;
	if (qvl_parse_i64(s, 0, INT32_MAX, &v))
		return -EINVAL;
	*id = (int32_t)v;
	return 0;
}

int cmd_detokenize(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"model", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *model = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			model = optarg;
			break;
		case 'h':
			detokenize_usage(stdout);
			return 0;
		default:
			detokenize_usage(stderr);
			return 2;
		}
	}
	if (!model) {
		fprintf(stderr, "qvlctl detokenize: --model is required\n");
		detokenize_usage(stderr);
		return 2;
	}
	size_t n = 0, cap = 64;
	int32_t *ids = malloc(cap * sizeof(*ids));
	char *in = NULL;
	size_t inlen;
	if (optind == argc && read_stdin(&in, &inlen)) {
		fprintf(stderr, "qvlctl detokenize: cannot read standard input\n");
		free(ids);
		return 1;
	}
	char *save = NULL;
	if (in) {
		char *z = realloc(in, inlen + 1); /* NUL-terminate for strtok_r */
		if (!z) {
			free(in);
			free(ids);
			fprintf(stderr, "qvlctl detokenize: out of memory\n");
			return 1;
		}
		in = z;
		in[inlen] = 0;
	}
	for (int i = optind;; i++) {
		const char *s;
		if (in)
			s = strtok_r(i == optind ? in : NULL, " \t\r\n,", &save);
		else
			s = i < argc ? argv[i] : NULL;
		if (!s)
			break;
		if (n == cap) {
			cap *= 2;
			int32_t *nv = realloc(ids, cap * sizeof(*ids));
			if (!nv)
				break;
			ids = nv;
		}
		if (!ids || parse_id(s, &ids[n])) {
			fprintf(stderr, "qvlctl detokenize: '%s' is not a token id\n", s);
			free(ids);
			free(in);
			return ids ? 2 : 1;
		}
		n++;
	}
	struct qvl_err err;
	struct qvl_tokenizer *t;
	char *text;
	size_t len;
	int rc = open_tokenizer(model, &t, &err);
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
	if (rc)
		fprintf(stderr, "qvlctl detokenize: %s\n", err.msg);
	return rc ? 1 : 0;
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
	const char *model = NULL, *system = NULL, *prompt = NULL;
	int img[256], nimg = 0, c;
	bool as_text = false, gen = true;
	struct qvl_chat_opts opts = {0};
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:", lo, NULL)) != -1) {
		int64_t v;
		switch (c) {
		case 'm':
			model = optarg;
			break;
		case 's':
			system = optarg;
			break;
		case 'p':
			prompt = optarg;
			break;
		case 'I':
			as_text = false;
			break;
		case 'T':
			as_text = true;
			break;
		case 'v':
			opts.add_vision_id = true;
			break;
		case 'S':
			opts.image_sep = optarg;
			break;
		case 'k':
			opts.think = true;
			break;
		case 'g':
			gen = false;
			break;
		case 'P':
			opts.parse_special = true;
			break;
		case 'i':
			if (qvl_parse_i64(optarg, 1, 1 << 20, &v) || nimg == 256) {
				fprintf(stderr,
					"qvlctl chat-format: --image-tokens '%s': need 1..%d "
					"(at most 256 images)\n",
					optarg, 1 << 20);
				return 2;
			}
			img[nimg++] = (int)v;
			break;
		case 'h':
			chat_usage(stdout);
			return 0;
		default:
			chat_usage(stderr);
			return 2;
		}
	}
	if (!model || !prompt || optind != argc) {
		fprintf(stderr, "qvlctl chat-format: %s\n",
			optind != argc ? "unexpected argument"
				       : "--model and --prompt are required");
		chat_usage(stderr);
		return 2;
	}
	struct qvl_chat_msg msgs[2];
	size_t nm = 0;
	if (system)
		msgs[nm++] = (struct qvl_chat_msg){.role = "system", .text = system};
	msgs[nm++] = (struct qvl_chat_msg){.role = "user", .text = prompt, .n_images = nimg};
	struct qvl_err err;
	struct qvl_tokenizer *t;
	int32_t *ids;
	size_t n;
	int rc = open_tokenizer(model, &t, &err);
	if (!rc) {
		rc = qvl_chat_encode_ex(t, msgs, nm, img, gen, &opts, &ids, &n, &err);
		if (!rc) {
			if (as_text)
				print_chat_text(t, ids, n);
			else
				print_ids(ids, n, false);
			free(ids);
		}
		qvl_tok_free(t);
	}
	if (rc)
		fprintf(stderr, "qvlctl chat-format: %s\n", err.msg);
	return rc ? 1 : 0;
}
