/* Building the in-memory tokenizer, whatever the source (tokenizer.json or
 * GGUF metadata): the piece of every id, the vocabulary hash (bytes -> id),
 * the merge table ((left id, right id) -> rank and merged id) and the added
 * tokens. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

uint64_t tok_hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
		h ^= h >> 29;
		s += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, s, n);
	/* murmur3's finalizer: every input bit reaches the low (slot) bits */
	h ^= w;
	h ^= h >> 33;
	h *= 0xFF51AFD7ED558CCDull;
	h ^= h >> 33;
	h *= 0xC4CEB9FE1A85EC53ull;
	h ^= h >> 33;
	return h;
}

int tok_alloc(struct qvl_tokenizer **out, int32_t n_ids)
{
	if (n_ids <= 0 || n_ids > (1 << 24))
		return -EINVAL;
	struct qvl_tokenizer *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->n_ids = n_ids;
	t->serial = tok_new_serial();
	t->off = malloc((size_t)n_ids * sizeof(*t->off));
	t->plen = malloc((size_t)n_ids * sizeof(*t->plen));
	t->is_added = calloc((size_t)n_ids, 1);
	t->added = calloc(TOK_MAX_ADDED, sizeof(*t->added));
	if (!t->off || !t->plen || !t->is_added || !t->added) {
		qvl_tok_free(t);
		return -ENOMEM;
	}
	memset(t->plen, 0xFF, (size_t)n_ids * sizeof(*t->plen));
	for (int i = 0; i < 256; i++)
		t->byte_id[i] = -1;
	tok_unicode_init();
	if (!tok_cls) {
		qvl_tok_free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

int tok_set_piece(struct qvl_tokenizer *t, int32_t id, const void *s, size_t n)
{
	if (id < 0 || id >= t->n_ids || n > UINT32_MAX / 2)
		return -EINVAL;
	if (t->plen[id] != UINT32_MAX)
		return -EEXIST;
	if (n > t->blob_cap - t->blob_n) {
		size_t cap = t->blob_cap ? t->blob_cap : (size_t)1 << 20;
		while (cap - t->blob_n < n)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -E2BIG;
		uint8_t *p = realloc(t->blob, cap);
		if (!p)
			return -ENOMEM;
		t->blob = p;
		t->blob_cap = cap;
	}
	memcpy(t->blob + t->blob_n, s, n);
	t->off[id] = (uint32_t)t->blob_n;
	t->plen[id] = (uint32_t)n;
	t->blob_n += n;
	if (n > t->max_piece)
		t->max_piece = (uint32_t)n;
	return 0;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
 * other 68 bytes are U+0100.. in byte order. */
static int bytelevel_byte(uint32_t c)
{
	if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))
		return (int)c;
	if (c < 0x100 || c > 0x143)
		return -1;
	uint32_t k = c - 0x100; /* k-th byte that is not printable */
	if (k <= 0x20)
		return (int)k; /* 0x00..0x20 */
	if (k <= 0x20 + 34)
		return (int)(0x7F + (k - 0x21)); /* 0x7F..0xA0 */
	if (k == 0x43)
		return 0xAD;
	return -1;
}

int tok_bytelevel_decode(const char *str, size_t n, uint8_t *out, size_t *out_n)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		if (c >= 0x21 && c <= 0x7E) {
			out[o++] = c;
			i++;
			continue;
		}
		/* every mapped code point is below U+0144: two bytes, C2..C5 */
		if (c < 0xC2 || c > 0xC5 || i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
			return -EILSEQ;
		size_t len;
		int b = bytelevel_byte(tok_cp(s, i, &len));
		if (b < 0)
			return -EILSEQ;
		out[o++] = (uint8_t)b;
		i += len;
	}
	*out_n = o;
	return 0;
}

/* Inserting the vocabulary misses the cache on nearly every slot (a 4 MB
 * table), so slots are prefetched a batch ahead; this halves load time. */
#define TOK_BATCH 32

int tok_index_vocab(struct qvl_tokenizer *t, struct qvl_err *err)
{
	uint32_t size = 1024;
	while (size < (uint32_t)t->n_ids * 2)
		size *= 2;
	t->vhash = calloc(size, sizeof(*t->vhash));
	if (!t->vhash)
		return qvl_errf(err, -ENOMEM, "tokenizer: out of memory");
	t->vmask = size - 1;
	uint64_t hv[TOK_BATCH];
	for (int32_t base = 0; base < t->n_ids; base += TOK_BATCH) {
		int32_t end = base + TOK_BATCH < t->n_ids ? base + TOK_BATCH : t->n_ids;
		for (int32_t id = base; id < end; id++) {
			if (t->plen[id] == UINT32_MAX || t->is_added[id])
				continue;
			hv[id - base] = tok_hash_bytes(t->blob + t->off[id], t->plen[id]);
			__builtin_prefetch(&t->vhash[(uint32_t)hv[id - base] & t->vmask], 1);
		}
		for (int32_t id = base; id < end; id++) {
			if (t->plen[id] == UINT32_MAX || t->is_added[id])
				continue;
			const uint8_t *p = t->blob + t->off[id];
			uint64_t h64 = hv[id - base];
			if (tok_vocab_find_h(t, p, t->plen[id], h64) >= 0)
				return qvl_errf(err, -EINVAL,
						"tokenizer: id %d: the same bytes as another id",
						id);
			uint32_t h = (uint32_t)h64 & t->vmask;
			while (t->vhash[h])
				h = (h + 1) & t->vmask;
			t->vhash[h] = (h64 & 0xFFFFFFFF00000000ull) | ((uint32_t)id + 1);
			if (t->plen[id] == 1 && t->byte_id[p[0]] < 0)
				t->byte_id[p[0]] = id;
		}
	}
	for (int b = 0; b < 256; b++)
		if (t->byte_id[b] < 0)
			return qvl_errf(err, -EINVAL, "tokenizer: no token for byte 0x%02x", b);
	return 0;
}

int32_t tok_vocab_find_h(const struct qvl_tokenizer *t, const void *s, size_t n, uint64_t hv)
{
	uint64_t tag = hv & 0xFFFFFFFF00000000ull;
	uint32_t h = (uint32_t)hv & t->vmask;
	while (t->vhash[h]) {
		uint64_t e = t->vhash[h];
		uint32_t o = (uint32_t)e - 1;
		if ((e & 0xFFFFFFFF00000000ull) == tag && t->plen[o] == n &&
		    !memcmp(t->blob + t->off[o], s, n))
			return (int32_t)o;
		h = (h + 1) & t->vmask;
	}
	return -1;
}

int32_t tok_vocab_find(const struct qvl_tokenizer *t, const void *s, size_t n)
{
	return tok_vocab_find_h(t, s, n, tok_hash_bytes(s, n));
}

void tok_vocab_prefetch(const struct qvl_tokenizer *t, uint64_t hv)
{
	__builtin_prefetch(&t->vhash[(uint32_t)hv & t->vmask]);
}

int tok_merge_table_init(struct qvl_tokenizer *t, uint32_t n_merges)
{
	/* load factor 0.5..0.75 (linear probing stays short): the table is the
	 * hot data of BPE, so smaller is faster */
	uint32_t size = 1024;
	while (size < n_merges + n_merges / 3 + 1 && size < (1u << 30))
		size *= 2;
	t->merges = calloc(size, sizeof(*t->merges));
	if (!t->merges)
		return -ENOMEM;
	t->mmask = size - 1;
	/* the filter stays useful (a few % false positives) up to ~200k merges */
	if (n_merges <= TOK_BLOOM_BITS / 8)
		t->bloom = calloc(TOK_BLOOM_BITS / 64, sizeof(uint64_t));
	return 0;
}

static inline uint32_t merge_slot(uint64_t key, uint32_t mask)
{
	return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

void tok_merge_prefetch(const struct qvl_tokenizer *t, int32_t a, int32_t b)
{
	uint64_t key = tok_merge_key(a, b);
	__builtin_prefetch(&t->merges[merge_slot(key, t->mmask)], 1);
}

int tok_add_merge(struct qvl_tokenizer *t, int32_t ia, int32_t ib, int32_t r, uint32_t rank)
{
	if (t->n_merges + 1 > (t->mmask + 1) / 4 * 3)
		return -E2BIG;
	uint64_t key = tok_merge_key(ia, ib);
	uint32_t h = merge_slot(key, t->mmask);
	while (t->merges[h].key) {
		if (t->merges[h].key == key)
			return 0; /* a duplicate merge: the first (lowest) rank wins, as in HF */
		h = (h + 1) & t->mmask;
	}
	t->merges[h] = (struct tok_merge){.key = key, .rank = rank, .id = r};
	t->n_merges++;
	if (t->bloom) {
		uint64_t bh = tok_bloom_hash(key);
		uint32_t b1 = (uint32_t)bh & (TOK_BLOOM_BITS - 1);
		uint32_t b2 = (uint32_t)(bh >> 32) & (TOK_BLOOM_BITS - 1);
		t->bloom[b1 >> 6] |= 1ull << (b1 & 63);
		t->bloom[b2 >> 6] |= 1ull << (b2 & 63);
	}
	return 0;
}

int tok_add_merges_bytes(struct qvl_tokenizer *t, const uint8_t *const *s, const size_t *len,
			 const size_t *split, size_t n, uint32_t rank0, size_t *bad)
{
	int32_t hint = rank0 == 0 ? 256 : t->merge_hint;
	for (size_t base = 0; base < n; base += TOK_BATCH) {
		size_t end = base + TOK_BATCH < n ? base + TOK_BATCH : n;
		uint64_t ha[TOK_BATCH], hb[TOK_BATCH], hr[TOK_BATCH];
		int32_t ia[TOK_BATCH], ib[TOK_BATCH], ir[TOK_BATCH];
		for (size_t i = base; i < end; i++) {
			size_t k = i - base;
			ha[k] = tok_hash_bytes(s[i], split[i]);
			hb[k] = tok_hash_bytes(s[i] + split[i], len[i] - split[i]);
			tok_vocab_prefetch(t, ha[k]);
			tok_vocab_prefetch(t, hb[k]);
			/* Trained vocabularies number merge results in merge order
			 * (Qwen: id 256 + rank), so the id after the previous result
			 * is usually the answer: a sequential compare, no probe. */
			int32_t c = hint;
			ir[k] = -1;
			if (c >= 0 && c < t->n_ids && t->plen[c] == len[i] && !t->is_added[c] &&
			    !memcmp(t->blob + t->off[c], s[i], len[i])) {
				ir[k] = c;
			} else {
				hr[k] = tok_hash_bytes(s[i], len[i]);
				tok_vocab_prefetch(t, hr[k]);
			}
			hint = ir[k] >= 0 ? ir[k] + 1 : -1;
		}
		for (size_t i = base; i < end; i++) {
			size_t k = i - base;
			ia[k] = tok_vocab_find_h(t, s[i], split[i], ha[k]);
			ib[k] = tok_vocab_find_h(t, s[i] + split[i], len[i] - split[i], hb[k]);
			if (ir[k] < 0)
				ir[k] = tok_vocab_find_h(t, s[i], len[i], hr[k]);
			if (ia[k] < 0 || ib[k] < 0 || ir[k] < 0 || !split[i] ||
			    split[i] >= len[i]) {
				*bad = i;
				return -ENOENT;
			}
			tok_merge_prefetch(t, ia[k], ib[k]);
		}
		for (size_t i = base; i < end; i++) {
			size_t k = i - base;
			if (tok_add_merge(t, ia[k], ib[k], ir[k], rank0 + (uint32_t)i)) {
				*bad = i;
				return -E2BIG;
			}
		}
		hint = ir[end - 1 - base] + 1;
	}
	t->merge_hint = hint;
	return 0;
}

int tok_add_added(struct qvl_tokenizer *t, int32_t id, const char *s, size_t n, bool special,
		  const char *what, struct qvl_err *err)
{
	if (id < 0 || id >= t->n_ids)
		return qvl_errf(err, -EINVAL, "%s: added token id %d out of range", what, id);
	if (n == 0 || tok_utf8_invalid_at((const uint8_t *)s, n) != n)
		return qvl_errf(err, -EINVAL, "%s: added token %d: empty or invalid UTF-8", what,
				id);
	if (t->n_added >= TOK_MAX_ADDED)
		return qvl_errf(err, -E2BIG, "%s: more than %d added tokens", what, TOK_MAX_ADDED);
	if (t->plen[id] != UINT32_MAX) {
		/* the same id already has a piece (HF lists some added tokens in
		 * the vocab too): it must be the same text */
		if (t->plen[id] != n || memcmp(t->blob + t->off[id], s, n))
			return qvl_errf(err, -EINVAL,
					"%s: added token %d '%.*s' differs from the vocabulary",
					what, id, (int)n, s);
	} else {
		int rc = tok_set_piece(t, id, s, n);
		if (rc)
			return qvl_errf(err, rc, "%s: added token %d", what, id);
	}
	t->is_added[id] = special ? 2 : 1;
	t->added[t->n_added++] =
	    (struct tok_added){.s = NULL, .len = (uint32_t)n, .id = id, .special = special};
	return 0;
}

static int added_cmp(const void *a, const void *b)
{
	const struct tok_added *x = a, *y = b;
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int tok_finish(struct qvl_tokenizer *t, struct qvl_err *err)
{
	/* the blob may have moved since the added tokens were recorded */
	for (uint32_t i = 0; i < t->n_added; i++) {
		struct tok_added *a = &t->added[i];
		a->s = t->blob + t->off[a->id];
		t->added_first[a->s[0]] = 1;
	}
	qsort(t->added, t->n_added, sizeof(*t->added), added_cmp);
	if (t->merges && tok_check_monotone(t))
		return qvl_errf(err, -ENOMEM, "tokenizer: out of memory");
	return 0;
}

void qvl_tok_free(struct qvl_tokenizer *t)
{
	if (!t)
		return;
	free(t->blob);
	free(t->off);
	free(t->plen);
	free(t->is_added);
	free(t->vhash);
	free(t->merges);
	free(t->bloom);
	free(t->added);
	free(t);
}
