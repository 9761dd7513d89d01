/* Internals of the tokenizer module (src/tok_*.c, src/tokenizer*.c, src/chat.c).
 * Nothing outside the module includes this header; the public API is
 * src/tokenizer.h. */
#ifndef QVL_TOK_INTERNAL_H
#define QVL_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tokenizer.h"

/* ---- Unicode classes (tok_unicode.c) ------------------------------------ */

/* Per code point bits, built once per process from utf8proc's tables. */
enum {
	TOK_C_L = 1,   /* \p{L}: Lu Ll Lt Lm Lo */
	TOK_C_N = 2,   /* \p{N}: Nd Nl No */
	TOK_C_WS = 4,  /* \s: Unicode White_Space (README of the golden cases) */
	TOK_C_NL = 8,  /* \r or \n */
	TOK_C_NFC = 16 /* NFC may change the text around this code point */
};

extern const uint8_t *tok_cls; /* [0x110000], valid after tok_unicode_init() */
void tok_unicode_init(void);   /* thread-safe, idempotent */

/* Decode one code point of VALID UTF-8 at s[i] (i < n); *len gets its size. */
static inline uint32_t tok_cp(const uint8_t *s, size_t i, size_t *len)
{
	uint32_t c = s[i];
	if (c < 0x80) {
		*len = 1;
		return c;
	}
	if (c < 0xE0) {
		*len = 2;
		return ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
	}
	if (c < 0xF0) {
		*len = 3;
		return ((c & 0x0F) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3F);
	}
	*len = 4;
	return ((c & 0x07) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
	       (s[i + 3] & 0x3F);
}

/* Offset of the first byte that makes s[0..n) invalid UTF-8 (overlong forms,
 * surrogates, code points past U+10FFFF, stray or missing continuation
 * bytes), or n when it is all valid. */
size_t tok_utf8_invalid_at(const uint8_t *s, size_t n);

/* A growable byte buffer. */
struct tok_buf {
	uint8_t *p;
	size_t n, cap;
};
int tok_buf_put(struct tok_buf *b, const void *s, size_t n);

/* NFC of valid UTF-8 s[0..n). Returns s itself when NFC leaves it unchanged
 * (the common case, checked with the TOK_C_NFC bits without calling
 * utf8proc); otherwise the normalized text in scratch (reset first). NULL on
 * allocation failure. */
const uint8_t *tok_nfc(const uint8_t *s, size_t n, struct tok_buf *scratch, size_t *out_n);

/* ---- pre-tokenizer (tok_pretok.c) --------------------------------------- */

/* End of the pre-token starting at s[i] (i < n) of valid UTF-8: the match of
 * the Qwen2 split regex there (see tok_pretok.c for the derivation). */
size_t tok_pretok_next(const uint8_t *s, size_t n, size_t i);

/* ---- the tokenizer ------------------------------------------------------ */

struct tok_merge {
	uint64_t
	    key; /* (left id << 32) | right id; 0 = empty slot (id 0 never merges left with 0) */
	uint32_t rank;
	int32_t id; /* the merged token */
};

struct tok_added {
	const uint8_t *s; /* points into the piece blob */
	uint32_t len;
	int32_t id;
	bool special; /* "special": true (disabled by parse_special = false) */
};

#define TOK_MAX_ADDED 1024

struct qvl_tokenizer {
	int32_t n_ids; /* ids are 0 .. n_ids-1 (gaps have no piece) */
	bool nfc;      /* normalizer NFC (tokenizer.json); always for GGUF qwen2 */
	/* Bytes of every id: piece i is blob[off[i] .. off[i] + plen[i]); plen
	 * UINT32_MAX marks an id without a piece. */
	uint8_t *blob;
	size_t blob_n, blob_cap;
	uint32_t *off, *plen;
	uint8_t *is_added; /* 1 added (non-special), 2 added special */

	/* Base vocabulary by bytes: open addressing; an entry is (high 32 bits
	 * of the hash << 32) | (id + 1), 0 = empty. */
	uint64_t *vhash;
	uint32_t vmask;

	struct tok_merge *merges;
	uint32_t mmask;
	uint32_t n_merges;
	int32_t merge_hint; /* loading: id expected for the next merge's result */
	bool monotone;	    /* merge order allows tok_bpe_levels (tok_check_monotone) */
	uint32_t rank_end;  /* highest rank + 1 */
	/* Bloom filter over the merge pairs (TOK_BLOOM_BITS bits, 2 probes):
	 * most pairs BPE asks about have no merge, and the filter answers that
	 * from L2 where the table would cost a memory access. */
	uint64_t *bloom;

	int32_t byte_id[256]; /* token of each single byte */

	struct tok_added *added; /* sorted longest first */
	uint32_t n_added;
	uint8_t added_first[256]; /* bytes an added token starts with */
	uint32_t max_piece;	  /* longest piece in bytes */

	uint64_t serial; /* unique per loaded tokenizer, keys the word cache */
};

#define TOK_BLOOM_BITS (1u << 21)

static inline uint64_t tok_bloom_hash(uint64_t key)
{
	key ^= key >> 31;
	key *= 0xD6E8FEB86659FD93ull;
	key ^= key >> 32;
	return key;
}

static inline bool tok_bloom_maybe(const struct qvl_tokenizer *t, uint64_t key)
{
	uint64_t h = tok_bloom_hash(key);
	uint32_t b1 = (uint32_t)h & (TOK_BLOOM_BITS - 1),
		 b2 = (uint32_t)(h >> 32) & (TOK_BLOOM_BITS - 1);
	return (t->bloom[b1 >> 6] >> (b1 & 63) & 1) && (t->bloom[b2 >> 6] >> (b2 & 63) & 1);
}

/* Building a tokenizer (tok_build.c), shared by the JSON and GGUF loaders:
 * tok_alloc, tok_set_piece for every id, tok_index_vocab, tok_add_merge in
 * rank order, tok_add_added for each added token, tok_finish. */
int tok_alloc(struct qvl_tokenizer **out, int32_t n_ids);
int tok_set_piece(struct qvl_tokenizer *t, int32_t id, const void *s, size_t n);
/* Decode a byte-level (GPT-2 bytes_to_unicode) string into bytes; -EILSEQ if a
 * code point is not in the mapping. out must hold n bytes. */
int tok_bytelevel_decode(const char *s, size_t n, uint8_t *out, size_t *out_n);
int tok_index_vocab(struct qvl_tokenizer *t, struct qvl_err *err);
int32_t tok_vocab_find(const struct qvl_tokenizer *t, const void *s, size_t n);
/* the same with hv = tok_hash_bytes(s, n) computed (and prefetched) before */
int32_t tok_vocab_find_h(const struct qvl_tokenizer *t, const void *s, size_t n, uint64_t hv);
void tok_vocab_prefetch(const struct qvl_tokenizer *t, uint64_t hv);
/* Merge of ids a and b into r with this rank (after tok_merge_table_init);
 * -E2BIG past the announced count. A repeated pair keeps its first rank. */
int tok_add_merge(struct qvl_tokenizer *t, int32_t a, int32_t b, int32_t r, uint32_t rank);
void tok_merge_prefetch(const struct qvl_tokenizer *t, int32_t a, int32_t b);
/* Resolve and add merges given as byte strings: pair i is the halves
 * s[i][0..split[i]) and s[i][split[i]..len[i]); ranks rank0, rank0+1, ...
 * Batched with prefetching (the tables do not fit in cache). On error *bad
 * gets the index of the offending pair. */
int tok_add_merges_bytes(struct qvl_tokenizer *t, const uint8_t *const *s, const size_t *len,
			 const size_t *split, size_t n, uint32_t rank0, size_t *bad);
int tok_add_added(struct qvl_tokenizer *t, int32_t id, const char *s, size_t n, bool special,
		  const char *what, struct qvl_err *err);
int tok_finish(struct qvl_tokenizer *t, struct qvl_err *err);

uint64_t tok_hash_bytes(const void *s, size_t n);

/* BPE of one pre-token (tok_bpe.c): appends the ids to ids/n/cap. */
struct tok_ids {
	int32_t *v;
	size_t n, cap;
};
int tok_ids_push(struct tok_ids *o, int32_t id);
/* c: this thread's cache for t (tok_wcache_get, once per call of the
 * encoder; NULL works, uncached) */
struct tok_wcache;
struct tok_wcache *tok_wcache_get(const struct qvl_tokenizer *t);
int tok_bpe(const struct qvl_tokenizer *t, struct tok_wcache *c, const uint8_t *s, size_t n,
	    struct tok_ids *out);
/* per-thread cache of merge-table lookups (tok_cache.c owns it) */
#define TOK_PC_SIZE 4096
struct tok_pair_ent {
	uint64_t key; /* tok_merge_key(a, b); 0 = empty */
	uint32_t rank;
	int32_t id; /* -1: no merge */
};

/* Key of the pair (a, b) in the merge table, the pair cache and the Bloom
 * filter. Bit 63 makes it nonzero (0 marks empty slots), even for the pair
 * (0, 0), which Qwen merges ("!" "!"). */
static inline uint64_t tok_merge_key(int32_t a, int32_t b)
{
	return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b | (1ull << 63);
}

static inline const struct tok_merge *tok_merge_find(const struct qvl_tokenizer *t, int32_t a,
						     int32_t b)
{
	uint64_t key = tok_merge_key(a, b);
	if (t->bloom && !tok_bloom_maybe(t, key))
		return NULL;
	uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->mmask;
	for (;;) {
		const struct tok_merge *m = &t->merges[h];
		if (m->key == key)
			return m;
		if (!m->key)
			return NULL;
		h = (h + 1) & t->mmask;
	}
}

/* Merge of (a, b) through the per-thread pair cache pc (may be NULL), which
 * remembers misses too: text reuses few pairs, the merge table is large. */
static inline bool tok_pair_merge(const struct qvl_tokenizer *t, struct tok_pair_ent *pc, int32_t a,
				  int32_t b, uint32_t *rank, int32_t *id)
{
	uint64_t key = tok_merge_key(a, b);
	struct tok_pair_ent *e = NULL;
	if (pc) {
		e = &pc[(uint32_t)((key * 0xD6E8FEB86659FD93ull) >> 52) & (TOK_PC_SIZE - 1)];
		if (e->key == key) {
			*rank = e->rank;
			*id = e->id;
			return e->id >= 0;
		}
	}
	const struct tok_merge *m = tok_merge_find(t, a, b);
	*rank = m ? m->rank : UINT32_MAX;
	*id = m ? m->id : -1;
	if (e)
		*e = (struct tok_pair_ent){.key = key, .rank = *rank, .id = *id};
	return m != NULL;
}
int tok_bpe_uncached(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, struct tok_ids *out,
		     struct tok_pair_ent *pc);
int tok_merge_table_init(struct qvl_tokenizer *t, uint32_t n_merges);
/* tok_bpe_levels.c: level-by-level BPE for very long pre-tokens, valid when
 * tok_check_monotone (run by tok_finish) set t->monotone */
int tok_bpe_levels(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, struct tok_ids *out,
		   struct tok_pair_ent *pc);
int tok_check_monotone(struct qvl_tokenizer *t);
uint64_t tok_new_serial(void); /* tok_cache.c */

/* Encode one stretch of text that contains no added token (tok_encode.c):
 * NFC, split, BPE. */
int tok_encode_plain(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, struct tok_ids *out,
		     struct tok_buf *scratch);
/* Encode text with added-token matching, appending to out (input must be
 * valid UTF-8 already). */
int tok_encode_append(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, bool parse_special,
		      struct tok_ids *out, struct tok_buf *scratch);

/* GGUF vocabulary (tok_gguf.c) */
int tok_load_gguf(struct qvl_tokenizer **out, const struct qvl_model *m, struct qvl_err *err);

#endif
