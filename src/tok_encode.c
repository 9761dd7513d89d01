/* Encoding text to ids, in the order Hugging Face's tokenizers does it:
 *  1. added tokens are found in the raw text (leftmost, then longest);
 *  2. each stretch between them is NFC-normalized on its own;
 *  3. the stretch is split by the pre-tokenizer (tok_pretok.c);
 *  4. each pre-token's bytes are BPE-merged (tok_bpe.c).
 * Input must be valid UTF-8: anything else is -EILSEQ with the offset of the
 * first bad byte (lone or missing continuation byte, overlong form,
 * surrogate, code point past U+10FFFF), never a guess. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

int tok_encode_plain(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, struct tok_ids *out,
		     struct tok_buf *scratch)
{
	if (n == 0)
		return 0;
	size_t nn = n;
	const uint8_t *p = t->nfc ? tok_nfc(s, n, scratch, &nn) : s;
	if (!p)
		return -ENOMEM;
	struct tok_wcache *c = tok_wcache_get(t);
	for (size_t i = 0; i < nn;) {
		size_t e = tok_pretok_next(p, nn, i);
		int rc = tok_bpe(t, c, p + i, e - i, out);
		if (rc)
			return rc;
		i = e;
	}
	return 0;
}

/* Longest added token at s[i], or NULL. The list is sorted longest first. */
static const struct tok_added *added_at(const struct qvl_tokenizer *t, const uint8_t *s, size_t n,
					size_t i, bool parse_special)
{
	for (uint32_t k = 0; k < t->n_added; k++) {
		const struct tok_added *a = &t->added[k];
		if (a->len > n - i || (a->special && !parse_special))
			continue;
		if (a->s[0] == s[i] && !memcmp(a->s, s + i, a->len))
			return a;
	}
	return NULL;
}

int tok_encode_append(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, bool parse_special,
		      struct tok_ids *out, struct tok_buf *scratch)
{
	size_t start = 0; /* start of the current plain stretch */
	for (size_t i = 0; i < n; i++) {
		if (!t->added_first[s[i]])
			continue;
		const struct tok_added *a = added_at(t, s, n, i, parse_special);
		if (!a)
			continue;
		int rc = tok_encode_plain(t, s + start, i - start, out, scratch);
		if (rc || (rc = tok_ids_push(out, a->id)))
			return rc;
		i += a->len - 1;
		start = i + 1;
	}
	return tok_encode_plain(t, s + start, n - start, out, scratch);
}

int qvl_tok_encode(const struct qvl_tokenizer *t, const char *text, size_t len, bool parse_special,
		   int32_t **ids, size_t *n, struct qvl_err *err)
{
	*ids = NULL;
	*n = 0;
	if (!text && len)
		return qvl_errf(err, -EINVAL, "tokenizer: NULL text");
	const uint8_t *s = (const uint8_t *)text;
	size_t bad = tok_utf8_invalid_at(s, len);
	if (bad != len)
		return qvl_errf(err, -EILSEQ, "invalid UTF-8 at byte offset %zu (byte 0x%02x)", bad,
				s[bad]);
	struct tok_ids out = {0};
	struct tok_buf scratch = {0};
	int rc = tok_encode_append(t, s, len, parse_special, &out, &scratch);
	free(scratch.p);
	if (rc) {
		free(out.v);
		return qvl_errf(err, rc, "tokenizer: %s",
				rc == -ENOMEM ? "out of memory" : "encoding failed");
	}
	if (!out.v) {
		out.v = malloc(sizeof(int32_t)); /* callers free() a non-NULL array */
		if (!out.v)
			return qvl_errf(err, -ENOMEM, "tokenizer: out of memory");
	}
	*ids = out.v;
	*n = out.n;
	return 0;
}

int32_t qvl_tok_special(const struct qvl_tokenizer *t, const char *text)
{
	size_t len = strlen(text);
	for (uint32_t k = 0; k < t->n_added; k++)
		if (t->added[k].len == len && !memcmp(t->added[k].s, text, len))
			return t->added[k].id;
	return -1;
}

int qvl_tok_n_vocab(const struct qvl_tokenizer *t)
{
	return t->n_ids;
}
