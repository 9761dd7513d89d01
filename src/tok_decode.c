/* Ids back to bytes, and the streaming detokenizer used while generating.
 *
 * Byte-level BPE tokens are byte strings, not text: one character may be split
 * over several tokens, and a model can emit byte sequences that are not UTF-8
 * at all. qvl_tok_decode returns the raw bytes. The streaming detokenizer
 * returns only valid UTF-8: it holds back an incomplete but so far valid
 * sequence (at most 3 bytes) until it completes, and replaces every byte
 * sequence that cannot become valid by U+FFFD, one per maximal ill-formed
 * subpart (Unicode's recommended practice, as in WHATWG's decoder);
 * qvl_detok_flush turns a dangling incomplete tail into one U+FFFD. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

const char *qvl_tok_piece(const struct qvl_tokenizer *t, int32_t id, size_t *len)
{
	if (id < 0 || id >= t->n_ids || t->plen[id] == UINT32_MAX)
		return NULL;
	*len = t->plen[id];
	return (const char *)t->blob + t->off[id];
}

size_t qvl_tok_max_piece(const struct qvl_tokenizer *t)
{
	return t->max_piece;
}

bool qvl_tok_is_added(const struct qvl_tokenizer *t, int32_t id, bool *special)
{
	if (id < 0 || id >= t->n_ids || !t->is_added[id])
		return false;
	if (special)
		*special = t->is_added[id] == 2;
	return true;
}

int qvl_tok_decode(const struct qvl_tokenizer *t, const int32_t *ids, size_t n, char **text,
		   size_t *len, struct qvl_err *err)
{
	size_t total = 0, pl;
	*text = NULL;
	*len = 0;
	for (size_t i = 0; i < n; i++) {
		if (!qvl_tok_piece(t, ids[i], &pl))
			return qvl_errf(err, -EINVAL,
					"token id %d at position %zu is not in the "
					"vocabulary (0..%d)",
					ids[i], i, t->n_ids - 1);
		total += pl; /* n * max_piece cannot overflow for any sane n */
		if (total > SIZE_MAX / 2)
			return qvl_errf(err, -E2BIG, "decoded text too long");
	}
	char *out = malloc(total + 1);
	if (!out)
		return qvl_errf(err, -ENOMEM, "out of memory decoding %zu ids", n);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = qvl_tok_piece(t, ids[i], &pl);
		memcpy(out + o, p, pl);
		o += pl;
	}
	out[o] = 0;
	*text = out;
	*len = o;
	return 0;
}

void qvl_detok_init(struct qvl_detok *d, const struct qvl_tokenizer *t)
{
	memset(d, 0, sizeof(*d));
	d->tok = t;
}

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* total length of a sequence starting with lead byte c (0 if c cannot start one) */
static size_t seq_len(uint8_t c)
{
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

/* may byte b follow the valid prefix p[0..np)? */
static bool cont_ok(const char *pp, size_t np, uint8_t b)
{
	const uint8_t *p = (const uint8_t *)pp;
	if ((b & 0xC0) != 0x80)
		return false;
	if (np == 1) {
		if (p[0] == 0xE0)
			return b >= 0xA0;
		if (p[0] == 0xED)
			return b <= 0x9F;
		if (p[0] == 0xF0)
			return b >= 0x90;
		if (p[0] == 0xF4)
			return b <= 0x8F;
	}
	return true;
}

static size_t feed(struct qvl_detok *d, const uint8_t *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint8_t b = s[i];
		if (d->npending) {
			if (cont_ok(d->pending, d->npending, b)) {
				d->pending[d->npending++] = (char)b;
				i++;
				if (d->npending == seq_len((uint8_t)d->pending[0])) {
					memcpy(out + o, d->pending, d->npending);
					o += d->npending;
					d->npending = 0;
				}
				continue;
			}
			/* the held prefix can never complete: one U+FFFD for it,
			 * then look at b afresh */
			memcpy(out + o, REPLACEMENT, 3);
			o += 3;
			d->npending = 0;
			continue;
		}
		i++;
		if (b < 0x80) {
			out[o++] = (char)b;
		} else if (seq_len(b)) {
			d->pending[0] = (char)b;
			d->npending = 1;
		} else {
			memcpy(out + o, REPLACEMENT, 3);
			o += 3;
		}
	}
	return o;
}

long qvl_detok_push(struct qvl_detok *d, int32_t id, char *out, size_t cap)
{
	size_t pl;
	const char *p = qvl_tok_piece(d->tok, id, &pl);
	if (!p)
		return -EINVAL;
	/* worst case: every byte, and the held prefix, becomes a U+FFFD */
	if (pl > (SIZE_MAX - 3 * sizeof(d->pending)) / 3 || cap < 3 * (pl + d->npending))
		return -ENOBUFS;
	return (long)feed(d, (const uint8_t *)p, pl, out);
}

long qvl_detok_flush(struct qvl_detok *d, char *out, size_t cap)
{
	if (!d->npending)
		return 0;
	if (cap < 3)
		return -ENOBUFS;
	memcpy(out, REPLACEMENT, 3);
	d->npending = 0;
	return 3;
}
