/* The tokenizer from a text GGUF's tokenizer.ggml.* metadata, as written by
 * llama.cpp's convert_hf_to_gguf.py for Qwen2/Qwen3(-VL): model "gpt2", pre
 * "qwen2", tokens (byte-level strings for NORMAL tokens, raw text for added
 * ones), token_type, merges ("a b" byte-level strings).
 *
 * GGUF keeps no normalizer and no "special" flags, so: NFC is applied (the
 * qwen2 pre-tokenizer comes from a tokenizer.json with normalizer NFC, which
 * is what Hugging Face runs), token type CONTROL (3) is a special added token,
 * USER_DEFINED (4) a non-special one, UNUSED (5, the [PAD...] fillers) has no
 * piece. One consequence: llama.cpp's converter types <|fim_prefix|> and the
 * other non-special tokens spelled <|...|> CONTROL, so with parse_special off
 * they are not matched here, while tokenizer.json's flags would match them
 * (golden README, cause 2). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"
#include "tok_internal.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static int load_merges(struct qvl_tokenizer *t, const struct gguf_arr *mg, const char *what,
		       struct qvl_err *err)
{
	enum { BLOCK = 256 };
	uint8_t *arena = malloc(BLOCK * 2048);
	const uint8_t *ps[BLOCK];
	size_t len[BLOCK], split[BLOCK];
	int rc = arena ? tok_merge_table_init(t, (uint32_t)mg->n) : -ENOMEM;
	if (rc) {
		free(arena);
		return qvl_errf(err, rc, "%s: out of memory", what);
	}
	for (uint64_t i = 0; i < mg->n;) {
		uint64_t first = i;
		size_t nb = 0, used = 0;
		for (; i < mg->n && nb < BLOCK; i++, nb++) {
			const char *s, *sp;
			size_t n, an, bn;
			if (gguf_arr_str(mg, i, &s, &n) || n > 2047 || !(sp = memchr(s, ' ', n)) ||
			    tok_bytelevel_decode(s, (size_t)(sp - s), arena + used, &an) ||
			    tok_bytelevel_decode(sp + 1, n - (size_t)(sp - s) - 1,
						 arena + used + an, &bn)) {
				free(arena);
				return qvl_errf(err, -EINVAL,
						"%s: tokenizer.ggml.merges[%llu]: not \"a b\" of "
						"byte-level strings",
						what, (unsigned long long)i);
			}
			ps[nb] = arena + used;
			split[nb] = an;
			len[nb] = an + bn;
			used += an + bn;
		}
		size_t bad;
		rc = tok_add_merges_bytes(t, ps, len, split, nb, (uint32_t)first, &bad);
		if (rc) {
			free(arena);
			return qvl_errf(
			    err, -EINVAL,
			    "%s: tokenizer.ggml.merges[%llu]: a half or the merged token "
			    "is not in the vocabulary",
			    what, (unsigned long long)(first + bad));
		}
	}
	free(arena);
	return 0;
}

int qvl_tok_load_gguf(struct qvl_tokenizer **out, const struct gguf_file *g, struct qvl_err *err)
{
	const char *what = gguf_what(g);
	char model[32] = "", pre[32] = "";
	struct gguf_arr toks, types, mg;
	int rc;
	*out = NULL;
	if (gguf_get_strz(g, "tokenizer.ggml.model", model, sizeof(model), NULL) ||
	    strcmp(model, "gpt2"))
		return qvl_errf(err, -ENOTSUP,
				"%s: tokenizer.ggml.model '%s': only gpt2 (byte-level "
				"BPE) is supported",
				what, model);
	if (gguf_get_strz(g, "tokenizer.ggml.pre", pre, sizeof(pre), NULL) || strcmp(pre, "qwen2"))
		return qvl_errf(err, -ENOTSUP,
				"%s: tokenizer.ggml.pre '%s': only qwen2 is implemented", what,
				pre);
	if ((rc = gguf_get_arr(g, "tokenizer.ggml.tokens", &toks, err)) ||
	    (rc = gguf_get_arr(g, "tokenizer.ggml.token_type", &types, err)) ||
	    (rc = gguf_get_arr(g, "tokenizer.ggml.merges", &mg, err)))
		return rc;
	if (toks.type != GGUF_TYPE_STRING || types.n != toks.n || mg.type != GGUF_TYPE_STRING ||
	    toks.n == 0 || toks.n > (1u << 24) || mg.n > (1u << 24))
		return qvl_errf(
		    err, -EINVAL,
		    "%s: tokenizer.ggml.tokens/token_type/merges: wrong types or counts", what);
	/* ids past the last used one are fillers: leave them out */
	int64_t last = -1;
	for (uint64_t i = 0; i < toks.n; i++) {
		int64_t ty;
		if (gguf_arr_i64(&types, i, &ty))
			return qvl_errf(err, -EINVAL, "%s: tokenizer.ggml.token_type[%llu]", what,
					(unsigned long long)i);
		if (ty != TT_UNUSED)
			last = (int64_t)i;
	}
	struct qvl_tokenizer *t;
	if ((rc = tok_alloc(&t, (int32_t)(last + 1))))
		return qvl_errf(err, rc, "%s: cannot allocate the vocabulary", what);
	t->nfc = true;
	uint8_t buf[1024];
	/* base vocabulary first (the hash index covers it), added tokens after */
	for (int64_t i = 0; i <= last && !rc; i++) {
		int64_t ty;
		const char *s;
		size_t n, bn;
		gguf_arr_i64(&types, (uint64_t)i, &ty);
		if (ty != TT_NORMAL && ty != TT_BYTE && ty != TT_UNKNOWN)
			continue;
		if (gguf_arr_str(&toks, (uint64_t)i, &s, &n) || n > sizeof(buf) ||
		    tok_bytelevel_decode(s, n, buf, &bn) || tok_set_piece(t, (int32_t)i, buf, bn))
			rc = qvl_errf(err, -EINVAL,
				      "%s: tokenizer.ggml.tokens[%lld]: not a byte-level string",
				      what, (long long)i);
	}
	if (!rc)
		rc = tok_index_vocab(t, err);
	if (!rc)
		rc = load_merges(t, &mg, what, err);
	for (int64_t i = 0; i <= last && !rc; i++) {
		int64_t ty;
		const char *s;
		size_t n;
		gguf_arr_i64(&types, (uint64_t)i, &ty);
		if (ty != TT_CONTROL && ty != TT_USER)
			continue;
		if (gguf_arr_str(&toks, (uint64_t)i, &s, &n))
			rc = qvl_errf(err, -EINVAL, "%s: tokenizer.ggml.tokens[%lld]", what,
				      (long long)i);
		else
			rc = tok_add_added(t, (int32_t)i, s, n, ty == TT_CONTROL, what, err);
	}
	if (!rc)
		rc = tok_finish(t, err);
	if (rc) {
		qvl_tok_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int tok_load_gguf(struct qvl_tokenizer **out, const struct qvl_model *m, struct qvl_err *err)
{
	*out = NULL;
	if (!m->gguf_text)
		return qvl_errf(err, -EINVAL, "%s: no text GGUF", m->path);
	return qvl_tok_load_gguf(out, m->gguf_text, err);
}
