/* The tokenizer keys of a text GGUF, from a Hugging Face directory, as
 * convert_hf_to_gguf.py writes them for Qwen3 (TextModel._set_vocab_gpt2,
 * get_vocab_base and gguf-py's SpecialVocab): the vocabulary padded to the
 * config's vocab_size with "[PAD{id}]" entries, the token types, the merges,
 * the special token ids, add_bos and the chat template. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "json.h"
#include "tokenizer.h"
#include "util.h"

#define CV_MAX_TOK_JSON (256u << 20)

enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

struct vocab {
	const char *dir;
	struct qvl_err *err;
	int64_t n; /* vocab_size */
	char **s;
	size_t *len;
	int32_t *type;
	struct json_doc tj, tc; /* tokenizer.json, tokenizer_config.json */
	char *tj_text, *tc_text, *tj_path;
	bool have_tc;
	uint32_t added; /* tokenizer.json added_tokens array, or JSON_NONE */
};

static int set_token(struct vocab *v, int64_t id, char *s, size_t len)
{
	if (id < 0 || id >= v->n) {
		free(s);
		return qvl_errf(v->err, -EINVAL,
				"%s: token id %" PRId64
				" outside the model's vocabulary (vocab_size %" PRId64 ")",
				v->tj_path, id, v->n);
	}
	free(v->s[id]);
	v->s[id] = s;
	v->len[id] = len;
	return 0;
}

/* get_vocab_base's "looks special" test for added tokens not marked special */
static bool looks_special(const char *s, size_t n)
{
	return (n >= 4 && !memcmp(s, "<|", 2) && !memcmp(s + n - 2, "|>", 2)) ||
	       (n >= 8 && !memcmp(s, "<\xef\xbd\x9c", 4) &&
		!memcmp(s + n - 4, "\xef\xbd\x9c>", 4)) ||
	       (n >= 8 && !memcmp(s, "<unused", 7) && s[n - 1] == '>') ||
	       (n == 5 && !memcmp(s, "<pad>", 5)) || (n == 6 && !memcmp(s, "<mask>", 6)) ||
	       (n == 8 && !memcmp(s, "<2mass>", 7)) || (n == 7 && !memcmp(s, "[@BOS@]", 7));
}

static int load_tokens(struct vocab *v)
{
	const struct json_doc *d = &v->tj;
	uint32_t model = json_get(d, 0, "model"), vocab, k;
	int rc;

	vocab = model == JSON_NONE ? JSON_NONE : json_get(d, model, "vocab");
	if (vocab == JSON_NONE || d->tok[vocab].type != JSON_OBJECT)
		return qvl_errf(v->err, -EINVAL, "%s: no model.vocab object", v->tj_path);
	k = vocab + 1;
	for (uint32_t i = 0; i < d->tok[vocab].count; i++, k = d->tok[k + 1].end) {
		size_t len;
		char *s = json_strdup(d, k, &len);
		int64_t id;

		if (!s)
			return qvl_errf(v->err, -ENOMEM, "out of memory");
		if (json_int64(d, k + 1, &id)) {
			free(s);
			return qvl_errf(v->err, -EINVAL,
					"%s: model.vocab: id of a token is not an integer",
					v->tj_path);
		}
		if ((rc = set_token(v, id, s, len)))
			return rc;
		v->type[id] = TT_NORMAL;
	}
	v->added = json_get(d, 0, "added_tokens");
	if (v->added == JSON_NONE)
		return 0;
	if (d->tok[v->added].type != JSON_ARRAY)
		return qvl_errf(v->err, -EINVAL, "%s: added_tokens is not an array", v->tj_path);
	k = v->added + 1;
	for (uint32_t i = 0; i < d->tok[v->added].count; i++, k = d->tok[k].end) {
		uint32_t c = json_get(d, k, "content"), idt = json_get(d, k, "id"),
			 sp = json_get(d, k, "special");
		bool special = false;
		size_t len;
		int64_t id;
		char *s;

		if (c == JSON_NONE || idt == JSON_NONE || json_int64(d, idt, &id) ||
		    !(s = json_strdup(d, c, &len)))
			return qvl_errf(v->err, -EINVAL,
					"%s: added_tokens[%u]: needs id and content", v->tj_path,
					i);
		if (sp != JSON_NONE)
			json_bool(d, sp, &special);
		if ((rc = set_token(v, id, s, len)))
			return rc;
		v->type[id] = special || looks_special(s, len) ? TT_CONTROL : TT_USER_DEFINED;
	}
	return 0;
}

static int pad_tokens(struct vocab *v)
{
	for (int64_t i = 0; i < v->n; i++) {
		char buf[32];
		int n;

		if (v->s[i])
			continue;
		n = snprintf(buf, sizeof(buf), "[PAD%" PRId64 "]", i);
		v->s[i] = strdup(buf);
		v->len[i] = (size_t)n;
		v->type[i] = TT_UNUSED;
		if (!v->s[i])
			return qvl_errf(v->err, -ENOMEM, "out of memory");
	}
	return 0;
}

/* merges: "a b" strings, or [a, b] pairs (spaces inside a part become
 * U+0120, as gguf-py does) */
static int write_merges(struct vocab *v, struct gguf_w *w)
{
	const struct json_doc *d = &v->tj;
	uint32_t model = json_get(d, 0, "model");
	uint32_t m = json_get(d, model, "merges"), k;
	char **s = NULL;
	size_t *len = NULL, n;
	int rc = 0;

	if (m == JSON_NONE || d->tok[m].type != JSON_ARRAY || !d->tok[m].count)
		return 0;
	n = d->tok[m].count;
	s = calloc(n, sizeof(*s));
	len = calloc(n, sizeof(*len));
	if (!s || !len)
		rc = qvl_errf(v->err, -ENOMEM, "out of memory for %zu merges", n);
	k = m + 1;
	for (size_t i = 0; i < n && !rc; i++, k = d->tok[k].end) {
		if (d->tok[k].type == JSON_STRING) {
			s[i] = json_strdup(d, k, &len[i]);
		} else if (d->tok[k].type == JSON_ARRAY && d->tok[k].count == 2) {
			size_t la, lb, o = 0;
			char *a = json_strdup(d, k + 1, &la),
			     *b = json_strdup(d, d->tok[k + 1].end, &lb);

			s[i] = a && b ? malloc(2 * (la + lb) + 2) : NULL;
			for (int part = 0; s[i] && part < 2; part++) {
				const char *p = part ? b : a;
				size_t pl = part ? lb : la;

				if (part)
					s[i][o++] = ' ';
				for (size_t j = 0; j < pl; j++) {
					if (p[j] == ' ') {
						s[i][o++] = '\xc4';
						s[i][o++] = '\xa0';
					} else {
						s[i][o++] = p[j];
					}
				}
			}
			len[i] = o;
			free(a);
			free(b);
		} else {
			rc = qvl_errf(v->err, -EINVAL, "%s: model.merges[%zu]: unknown format",
				      v->tj_path, i);
			break;
		}
		if (!s[i])
			rc = qvl_errf(v->err, -ENOMEM, "out of memory for the merges");
	}
	if (!rc)
		gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)s, len, n);
	for (size_t i = 0; s && i < n; i++)
		free(s[i]);
	free(s);
	free(len);
	return rc;
}

/* SpecialVocab: ids named in tokenizer_config.json (looked up among the
 * added tokens), then config.json's *_token_id (top level or text_config);
 * the first one found wins. Keys are written in the order they were found. */
static const char *const special_types[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
static const char *const special_keys[] = {
    "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
    "tokenizer.ggml.padding_token_id", NULL /* cls: gguf-py has no key */,
    "tokenizer.ggml.mask_token_id",
};
#define N_SPECIAL 7

struct specials {
	int64_t id[N_SPECIAL];
	int order[N_SPECIAL], n;
};

static void special_set(struct specials *sp, int typ, int64_t id, int64_t n_vocab)
{
	if (id < 0 || id >= n_vocab || sp->id[typ] >= 0)
		return;
	sp->id[typ] = id;
	sp->order[sp->n++] = typ;
}

static int64_t added_id(const struct vocab *v, const char *content, size_t len)
{
	const struct json_doc *d = &v->tj;
	uint32_t k = v->added + 1;
	int64_t id;

	if (v->added == JSON_NONE)
		return -1;
	for (uint32_t i = 0; i < d->tok[v->added].count; i++, k = d->tok[k].end) {
		uint32_t c = json_get(d, k, "content");

		if (c != JSON_NONE && json_str_eq(d, c, content, len) &&
		    !json_int64(d, json_get(d, k, "id"), &id))
			return id;
	}
	return -1;
}

static int write_specials(struct vocab *v, struct gguf_w *w)
{
	struct specials sp = {.n = 0};
	int add[3] = {-1, -1, -1}; /* add_bos, add_eos, add_sep */
	const struct json_doc *tc = &v->tc;
	char *cfg_text = NULL, *cfg_path = qvl_path_join(v->dir, "config.json");
	struct json_doc cfg = {0};
	size_t len;
	int rc = 0;

	for (int i = 0; i < N_SPECIAL; i++)
		sp.id[i] = -1;
	for (int i = 0; v->have_tc && i < N_SPECIAL; i++) {
		char key[32];
		uint32_t e;
		bool b;

		snprintf(key, sizeof(key), "add_%s_token", special_types[i]);
		e = json_get(tc, 0, key);
		if (i < 4 && i != 2 && e != JSON_NONE && !json_bool(tc, e, &b))
			add[i == 3 ? 2 : i] = b;
		snprintf(key, sizeof(key), "%s_token", special_types[i]);
		e = json_get(tc, 0, key);
		if (e != JSON_NONE && tc->tok[e].type == JSON_OBJECT)
			e = json_get(tc, e, "content");
		if (e != JSON_NONE && tc->tok[e].type == JSON_STRING) {
			char *s = json_strdup(tc, e, &len);

			if (!s)
				return qvl_errf(v->err, -ENOMEM, "out of memory");
			special_set(&sp, i, added_id(v, s, len), v->n);
			free(s);
		}
	}
	if (cfg_path && !access(cfg_path, F_OK) &&
	    !(rc = qvl_read_file(cfg_path, 64u << 20, &cfg_text, &len, v->err)) &&
	    !json_parse(&cfg, cfg_text, len, cfg_path, NULL)) {
		uint32_t text = json_get(&cfg, 0, "text_config");

		for (int i = 0; i < N_SPECIAL; i++) {
			char key[32];
			uint32_t e;
			int64_t id;

			snprintf(key, sizeof(key), "%s_token_id", special_types[i]);
			e = json_get(&cfg, 0, key);
			if (e == JSON_NONE && text != JSON_NONE &&
			    cfg.tok[text].type == JSON_OBJECT)
				e = json_get(&cfg, text, key);
			if (e != JSON_NONE && !json_int64(&cfg, e, &id))
				special_set(&sp, i, id, v->n);
		}
		json_free(&cfg);
	}
	free(cfg_text);
	free(cfg_path);
	for (int i = 0; i < sp.n; i++)
		if (special_keys[sp.order[i]])
			gguf_w_u32(w, special_keys[sp.order[i]], (uint32_t)sp.id[sp.order[i]]);
	if (add[0] >= 0)
		gguf_w_bool(w, "tokenizer.ggml.add_bos_token", add[0]);
	if (add[1] >= 0)
		gguf_w_bool(w, "tokenizer.ggml.add_eos_token", add[1]);
	if (add[2] >= 0)
		gguf_w_bool(w, "tokenizer.ggml.add_sep_token", add[2]);
	return rc;
}

/* tokenizer_config.json's chat_template, else chat_template.jinja, else
 * chat_template.json's; only a single template (a string) is written. */
static int write_template(struct vocab *v, struct gguf_w *w)
{
	uint32_t e = v->have_tc ? json_get(&v->tc, 0, "chat_template") : JSON_NONE;
	char *s = NULL, *path;
	size_t len = 0;
	int rc = 0;

	if (e != JSON_NONE && v->tc.tok[e].type == JSON_STRING) {
		s = json_strdup(&v->tc, e, &len);
		if (!s)
			return qvl_errf(v->err, -ENOMEM, "out of memory");
	} else if (e == JSON_NONE) {
		path = qvl_path_join(v->dir, "chat_template.jinja");
		if (path && !access(path, F_OK))
			rc = qvl_read_file(path, 16u << 20, &s, &len, v->err);
		free(path);
		if (!s && !rc) {
			struct json_doc d = {0};
			char *text = NULL;

			path = qvl_path_join(v->dir, "chat_template.json");
			if (path && !access(path, F_OK) &&
			    !(rc = qvl_read_file(path, 16u << 20, &text, &len, v->err)) &&
			    !json_parse(&d, text, len, path, NULL)) {
				e = json_get(&d, 0, "chat_template");
				if (e != JSON_NONE && d.tok[e].type == JSON_STRING)
					s = json_strdup(&d, e, &len);
				json_free(&d);
			}
			free(text);
			free(path);
		}
	}
	if (s)
		gguf_w_str(w, "tokenizer.chat_template", s, len);
	free(s);
	return rc;
}

static int vocab_run(struct vocab *v, struct gguf_w *w)
{
	struct qvl_tokenizer *tok = NULL;
	size_t len;
	char *tc_path;
	int rc;

	v->tj_path = qvl_path_join(v->dir, "tokenizer.json");
	if (!v->tj_path)
		return qvl_errf(v->err, -ENOMEM, "out of memory");
	if (access(v->tj_path, R_OK))
		return qvl_errf(v->err, -ENOENT,
				"%s: missing: a GGUF carries its vocabulary, and it comes from "
				"tokenizer.json",
				v->tj_path);
	/* qvl's tokenizer accepts exactly Qwen2's pre-tokenizer, which is what
	 * llama.cpp calls "qwen2": loading it is the check */
	if ((rc = qvl_tok_load_json(&tok, v->tj_path, v->err)))
		return qvl_err_prefix(v->err, rc, "tokenizer.ggml.pre");
	qvl_tok_free(tok);
	if ((rc = qvl_read_file(v->tj_path, CV_MAX_TOK_JSON, &v->tj_text, &len, v->err)) ||
	    (rc = json_parse(&v->tj, v->tj_text, len, v->tj_path, v->err)))
		return rc;
	tc_path = qvl_path_join(v->dir, "tokenizer_config.json");
	if (tc_path && !access(tc_path, F_OK) &&
	    !(rc = qvl_read_file(tc_path, CV_MAX_TOK_JSON, &v->tc_text, &len, v->err)))
		v->have_tc = !json_parse(&v->tc, v->tc_text, len, tc_path, v->err) &&
			     v->tc.tok[0].type == JSON_OBJECT;
	free(tc_path);
	if (rc)
		return rc;
	v->s = calloc((size_t)v->n, sizeof(*v->s));
	v->len = calloc((size_t)v->n, sizeof(*v->len));
	v->type = calloc((size_t)v->n, sizeof(*v->type));
	if (!v->s || !v->len || !v->type)
		return qvl_errf(v->err, -ENOMEM, "out of memory for the vocabulary");
	if ((rc = load_tokens(v)) || (rc = pad_tokens(v)))
		return rc;
	gguf_w_str(w, "tokenizer.ggml.model", "gpt2", 4);
	gguf_w_str(w, "tokenizer.ggml.pre", "qwen2", 5);
	gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->s, v->len,
		       (uint64_t)v->n);
	gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->type, (uint64_t)v->n);
	if ((rc = write_merges(v, w)) || (rc = write_specials(v, w)))
		return rc;
	return write_template(v, w);
}

int cv_meta_vocab(struct gguf_w *w, const char *dir, const struct qvl_config *c,
		  struct qvl_err *err)
{
	struct vocab v = {.dir = dir, .err = err, .n = c->text.vocab_size};
	int rc = vocab_run(&v, w);

	for (int64_t i = 0; v.s && i < v.n; i++)
		free(v.s[i]);
	free(v.s);
	free(v.len);
	free(v.type);
	if (v.tj.tok)
		json_free(&v.tj);
	if (v.tc.tok)
		json_free(&v.tc);
	free(v.tj_text);
	free(v.tc_text);
	free(v.tj_path);
	return rc;
}
