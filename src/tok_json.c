/* Loading a Hugging Face tokenizer.json. Only what Qwen2/Qwen3 tokenizers
 * use is accepted; anything else is an error naming the field, so that a
 * different tokenizer is never run with the wrong rules:
 *   model: BPE without dropout, unk token, subword prefix/suffix, byte
 *          fallback or ignore_merges; vocab {string: id}; merges as "a b"
 *          strings or [a, b] pairs.
 *   normalizer: NFC (or null).
 *   pre_tokenizer: Sequence[Split(the Qwen2 regex, Isolated), ByteLevel
 *          without its own regex] (or the same as a lone Split; see below).
 *   added_tokens: id, content, special; lstrip/rstrip/single_word must be
 *          false ("normalized" is irrelevant: contents are ASCII-safe).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tok_internal.h"
#include "util.h"

#define QWEN2_SPLIT_REGEX                                                                          \
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"  \
	"[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

struct jl {
	const struct json_doc *d;
	const char *what;
	struct qvl_err *err;
};

static bool is_str(const struct jl *j, uint32_t v, const char *s)
{
	return v != JSON_NONE && j->d->tok[v].type == JSON_STRING &&
	       json_str_eq(j->d, v, s, strlen(s));
}

/* value of an optional field must be null, false, or the given string */
static int want_absent(const struct jl *j, uint32_t obj, const char *key, const char *ok_str)
{
	uint32_t v = json_get(j->d, obj, key);
	if (v == JSON_NONE)
		return 0;
	enum json_type ty = j->d->tok[v].type;
	if (ty == JSON_NULL || ty == JSON_FALSE)
		return 0;
	if (ok_str && is_str(j, v, ok_str))
		return 0;
	return qvl_errf(j->err, -ENOTSUP, "%s: model.%s: unsupported value", j->what, key);
}

static int check_pretok(const struct jl *j, uint32_t pt)
{
	const struct json_doc *d = j->d;
	if (pt == JSON_NONE || d->tok[pt].type != JSON_OBJECT)
		return qvl_errf(j->err, -ENOTSUP, "%s: pre_tokenizer: missing", j->what);
	uint32_t type = json_get(d, pt, "type");
	uint32_t split = JSON_NONE, bl = JSON_NONE;
	if (is_str(j, type, "Sequence")) {
		uint32_t arr = json_get(d, pt, "pretokenizers");
		if (arr == JSON_NONE || d->tok[arr].type != JSON_ARRAY || d->tok[arr].count != 2)
			goto bad;
		split = json_at(d, arr, 0);
		bl = json_at(d, arr, 1);
	} else {
		goto bad;
	}
	if (d->tok[split].type != JSON_OBJECT || !is_str(j, json_get(d, split, "type"), "Split"))
		goto bad;
	uint32_t pat = json_get(d, split, "pattern");
	if (pat == JSON_NONE || d->tok[pat].type != JSON_OBJECT ||
	    !is_str(j, json_get(d, pat, "Regex"), QWEN2_SPLIT_REGEX))
		return qvl_errf(
		    j->err, -ENOTSUP,
		    "%s: pre_tokenizer: the Split regex is not Qwen2's (only that one is "
		    "implemented)",
		    j->what);
	uint32_t inv = json_get(d, split, "invert");
	if (!is_str(j, json_get(d, split, "behavior"), "Isolated") ||
	    (inv != JSON_NONE && d->tok[inv].type != JSON_FALSE))
		goto bad;
	if (d->tok[bl].type != JSON_OBJECT || !is_str(j, json_get(d, bl, "type"), "ByteLevel"))
		goto bad;
	uint32_t ur = json_get(d, bl, "use_regex"), aps = json_get(d, bl, "add_prefix_space");
	if ((ur != JSON_NONE && d->tok[ur].type != JSON_FALSE) ||
	    (aps != JSON_NONE && d->tok[aps].type != JSON_FALSE))
		goto bad;
	return 0;
bad:
	return qvl_errf(j->err, -ENOTSUP,
			"%s: pre_tokenizer: unsupported structure (expected Sequence[Split(Qwen2 "
			"regex, Isolated), ByteLevel(use_regex false, add_prefix_space false)])",
			j->what);
}

/* string token v, decoded (escapes) into buf (cap bytes); returns length or -1 */
static long str_of(const struct jl *j, uint32_t v, char *buf, size_t cap, const char **p)
{
	const struct json_tok *tk = &j->d->tok[v];
	if (tk->type != JSON_STRING)
		return -1;
	if (!tk->escaped) {
		*p = j->d->text + tk->start;
		return tk->len;
	}
	long n = json_str(j->d, v, buf, cap);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	*p = buf;
	return n;
}

static int load_vocab(struct jl *j, struct qvl_tokenizer *t, uint32_t vocab)
{
	const struct json_doc *d = j->d;
	char kbuf[1024];
	uint8_t bytes[1024];
	uint32_t k = vocab + 1;
	for (uint32_t i = 0; i < d->tok[vocab].count; i++) {
		uint32_t v = d->tok[k].end;
		const char *p;
		long n = str_of(j, k, kbuf, sizeof(kbuf), &p);
		int64_t id;
		size_t bn;
		if (n < 0 || (size_t)n > sizeof(bytes) || json_int64(d, v, &id) || id < 0 ||
		    id >= t->n_ids)
			return qvl_errf(j->err, -EINVAL, "%s: model.vocab: entry %u: bad key or id",
					j->what, i);
		if (tok_bytelevel_decode(p, (size_t)n, bytes, &bn))
			return qvl_errf(j->err, -EINVAL,
					"%s: model.vocab: '%.*s': not a byte-level string", j->what,
					(int)n, p);
		int rc = tok_set_piece(t, (int32_t)id, bytes, bn);
		if (rc)
			return qvl_errf(j->err, rc, "%s: model.vocab: id %lld twice or invalid",
					j->what, (long long)id);
		k = d->tok[v].end;
	}
	return 0;
}

/* Merges are decoded a block at a time into an arena, then resolved to ids
 * in one batched call (see tok_add_merges_bytes). */
#define MERGE_BLOCK 256

static int load_merges(struct jl *j, struct qvl_tokenizer *t, uint32_t merges)
{
	const struct json_doc *d = j->d;
	char buf[1024], buf2[1024];
	static const size_t arena_cap = MERGE_BLOCK * 2048;
	uint8_t *arena = malloc(arena_cap);
	const uint8_t *ps[MERGE_BLOCK];
	size_t len[MERGE_BLOCK], split[MERGE_BLOCK];
	uint32_t count = d->tok[merges].count, i = 0;
	int rc = arena ? tok_merge_table_init(t, count) : -ENOMEM;
	if (rc) {
		free(arena);
		return qvl_errf(j->err, rc, "%s: out of memory", j->what);
	}
	uint32_t k = merges + 1;
	while (i < count) {
		uint32_t first = i;
		size_t used = 0, nb = 0;
		for (; i < count && nb < MERGE_BLOCK; i++, nb++, k = d->tok[k].end) {
			const char *pa, *pb;
			long na, nbb;
			if (d->tok[k].type == JSON_STRING) {
				long n = str_of(j, k, buf, sizeof(buf), &pa);
				const char *sp = n > 0 ? memchr(pa, ' ', (size_t)n) : NULL;
				if (!sp)
					goto bad;
				na = sp - pa;
				pb = sp + 1;
				nbb = n - na - 1;
			} else if (d->tok[k].type == JSON_ARRAY && d->tok[k].count == 2) {
				na = str_of(j, k + 1, buf, sizeof(buf), &pa);
				nbb = na < 0
					  ? -1
					  : str_of(j, d->tok[k + 1].end, buf2, sizeof(buf2), &pb);
				if (nbb < 0)
					goto bad;
			} else {
				goto bad;
			}
			/* byte-level decoding never grows a string */
			size_t an, bn;
			uint8_t *dst = arena + used;
			if ((size_t)na + (size_t)nbb > 2048 ||
			    tok_bytelevel_decode(pa, (size_t)na, dst, &an) ||
			    tok_bytelevel_decode(pb, (size_t)nbb, dst + an, &bn))
				goto bad;
			ps[nb] = dst;
			split[nb] = an;
			len[nb] = an + bn;
			used += an + bn;
		}
		size_t badi;
		rc = tok_add_merges_bytes(t, ps, len, split, nb, first, &badi);
		if (rc) {
			free(arena);
			return qvl_errf(j->err, -EINVAL, "%s: model.merges[%zu]: %s", j->what,
					first + badi,
					rc == -E2BIG ? "more merges than announced"
						     : "a half or the merged token is not in the "
						       "vocabulary");
		}
	}
	free(arena);
	return 0;
bad:
	free(arena);
	return qvl_errf(j->err, -EINVAL, "%s: model.merges[%u]: not \"a b\" or [a, b]", j->what, i);
}

static int load_added(struct jl *j, struct qvl_tokenizer *t, uint32_t arr)
{
	const struct json_doc *d = j->d;
	char buf[1024];
	uint32_t k = arr + 1;
	for (uint32_t i = 0; i < d->tok[arr].count; i++, k = d->tok[k].end) {
		int64_t id;
		bool special = false;
		const char *p;
		long n;
		uint32_t c = json_get(d, k, "content"), sp = json_get(d, k, "special");
		if (d->tok[k].type != JSON_OBJECT || json_int64(d, json_get(d, k, "id"), &id) ||
		    c == JSON_NONE || (n = str_of(j, c, buf, sizeof(buf), &p)) < 0 ||
		    (sp != JSON_NONE && json_bool(d, sp, &special)))
			return qvl_errf(j->err, -EINVAL, "%s: added_tokens[%u]: bad entry", j->what,
					i);
		static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
		for (int f = 0; f < 3; f++) {
			uint32_t v = json_get(d, k, flags[f]);
			if (v != JSON_NONE && d->tok[v].type == JSON_TRUE)
				return qvl_errf(j->err, -ENOTSUP,
						"%s: added_tokens[%u]: %s true is not supported",
						j->what, i, flags[f]);
		}
		if (id < 0 || id >= t->n_ids)
			return qvl_errf(j->err, -EINVAL, "%s: added_tokens[%u]: id %lld", j->what,
					i, (long long)id);
		int rc = tok_add_added(t, (int32_t)id, p, (size_t)n, special, j->what, j->err);
		if (rc)
			return rc;
	}
	return 0;
}

static int max_id(const struct jl *j, uint32_t vocab, uint32_t added, int64_t *out)
{
	const struct json_doc *d = j->d;
	int64_t mx = -1, id;
	uint32_t k = vocab + 1;
	for (uint32_t i = 0; i < d->tok[vocab].count; i++) {
		uint32_t v = d->tok[k].end;
		if (json_int64(d, v, &id) || id < 0 || id >= (1 << 24))
			return qvl_errf(j->err, -EINVAL, "%s: model.vocab: entry %u: bad id",
					j->what, i);
		if (id > mx)
			mx = id;
		k = d->tok[v].end;
	}
	if (added != JSON_NONE) {
		k = added + 1;
		for (uint32_t i = 0; i < d->tok[added].count; i++, k = d->tok[k].end)
			if (d->tok[k].type == JSON_OBJECT &&
			    !json_int64(d, json_get(d, k, "id"), &id) && id > mx && id < (1 << 24))
				mx = id;
	}
	*out = mx;
	return 0;
}

static int load_doc(struct qvl_tokenizer **out, struct jl *j)
{
	const struct json_doc *d = j->d;
	int rc;
	if (d->ntok == 0 || d->tok[0].type != JSON_OBJECT)
		return qvl_errf(j->err, -EINVAL, "%s: not a JSON object", j->what);
	uint32_t model = json_get(d, 0, "model");
	if (model == JSON_NONE || d->tok[model].type != JSON_OBJECT ||
	    !is_str(j, json_get(d, model, "type"), "BPE"))
		return qvl_errf(j->err, -ENOTSUP, "%s: model.type: only BPE is supported", j->what);
	if ((rc = want_absent(j, model, "dropout", NULL)) ||
	    (rc = want_absent(j, model, "unk_token", NULL)) ||
	    (rc = want_absent(j, model, "continuing_subword_prefix", "")) ||
	    (rc = want_absent(j, model, "end_of_word_suffix", "")) ||
	    (rc = want_absent(j, model, "byte_fallback", NULL)) ||
	    (rc = want_absent(j, model, "ignore_merges", NULL)))
		return rc;
	uint32_t norm = json_get(d, 0, "normalizer");
	bool nfc = false;
	if (norm != JSON_NONE && d->tok[norm].type != JSON_NULL) {
		if (d->tok[norm].type != JSON_OBJECT ||
		    !is_str(j, json_get(d, norm, "type"), "NFC"))
			return qvl_errf(j->err, -ENOTSUP, "%s: normalizer: only NFC is supported",
					j->what);
		nfc = true;
	}
	if ((rc = check_pretok(j, json_get(d, 0, "pre_tokenizer"))))
		return rc;
	uint32_t vocab = json_get(d, model, "vocab"), merges = json_get(d, model, "merges");
	uint32_t added = json_get(d, 0, "added_tokens");
	if (vocab == JSON_NONE || d->tok[vocab].type != JSON_OBJECT || merges == JSON_NONE ||
	    d->tok[merges].type != JSON_ARRAY)
		return qvl_errf(j->err, -EINVAL, "%s: model.vocab / model.merges missing", j->what);
	if (added != JSON_NONE && d->tok[added].type != JSON_ARRAY)
		return qvl_errf(j->err, -EINVAL, "%s: added_tokens: not an array", j->what);
	int64_t mx = -1;
	if ((rc = max_id(j, vocab, added, &mx)))
		return rc;
	struct qvl_tokenizer *t;
	if ((rc = tok_alloc(&t, (int32_t)(mx + 1))))
		return qvl_errf(j->err, rc, "%s: cannot allocate %lld ids", j->what,
				(long long)mx + 1);
	t->nfc = nfc;
	if ((rc = load_vocab(j, t, vocab)) || (rc = tok_index_vocab(t, j->err)) ||
	    (rc = load_merges(j, t, merges)) ||
	    (added != JSON_NONE && (rc = load_added(j, t, added))) ||
	    (rc = tok_finish(t, j->err))) {
		qvl_tok_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int qvl_tok_load_json_buf(struct qvl_tokenizer **out, const char *text, size_t len,
			  const char *what, struct qvl_err *err)
{
	struct json_doc doc;
	*out = NULL;
	int rc = json_parse(&doc, text, len, what, err);
	if (!rc) {
		struct jl j = {.d = &doc, .what = what, .err = err};
		rc = load_doc(out, &j);
		json_free(&doc);
	}
	return rc;
}

int qvl_tok_load_json(struct qvl_tokenizer **out, const char *path, struct qvl_err *err)
{
	struct qvl_map map;
	*out = NULL;
	int rc = qvl_map_file(&map, path, err);
	if (rc)
		return rc;
	rc = qvl_tok_load_json_buf(out, map.data, map.size, path, err);
	qvl_unmap(&map);
	return rc;
}
