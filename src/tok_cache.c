/* Per-thread caches: pre-token -> ids (words repeat), and merge-table
 * lookups (the table is far larger than the CPU cache). Measured with
 * bench/bench_tokenizer, thread CPU time: about 2x on English prose, about
 * 1.25x on the mixed benchmark corpus, where unique CJK runs dominate. They
 * are per thread because a tokenizer is shared read-only by every thread of
 * the engine; entries are valid only for the tokenizer (by its unique serial,
 * not its address) that filled them. Word cache: direct-mapped, one 64-byte
 * line per entry, words up to 26 bytes. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define WC_BITS	 13
#define WC_BYTES 26
#define WC_IDS	 8

struct wc_ent {
	uint32_t tag; /* high hash bits; 0 = empty */
	uint8_t len, nids;
	uint8_t bytes[WC_BYTES];
	int32_t ids[WC_IDS];
};

_Static_assert(sizeof(struct wc_ent) == 64, "one cache line per entry");

struct tok_wcache {
	uint64_t serial; /* of the tokenizer the entries belong to */
	struct wc_ent ent[1u << WC_BITS];
	struct tok_pair_ent pairs[TOK_PC_SIZE];
};

static pthread_key_t wc_key;
static pthread_once_t wc_once = PTHREAD_ONCE_INIT;
static bool wc_ok;
static _Atomic uint64_t serial_counter;

static void wc_init(void)
{
	wc_ok = pthread_key_create(&wc_key, free) == 0;
}

uint64_t tok_new_serial(void)
{
	return atomic_fetch_add(&serial_counter, 1) + 1;
}

struct tok_wcache *tok_wcache_get(const struct qvl_tokenizer *t)
{
	pthread_once(&wc_once, wc_init);
	if (!wc_ok)
		return NULL;
	struct tok_wcache *c = pthread_getspecific(wc_key);
	if (!c) {
		void *mem;
		if (posix_memalign(&mem, 64, sizeof(*c)))
			return NULL;
		c = mem;
		memset(c, 0, sizeof(*c));
		if (pthread_setspecific(wc_key, c)) {
			free(c);
			return NULL;
		}
	}
	if (c->serial != t->serial) {
		memset(c->ent, 0, sizeof(c->ent));
		memset(c->pairs, 0, sizeof(c->pairs));
		c->serial = t->serial;
	}
	return c;
}

void qvl_tok_cache_clear(void)
{
	pthread_once(&wc_once, wc_init);
	struct tok_wcache *c = wc_ok ? pthread_getspecific(wc_key) : NULL;
	if (c) {
		memset(c->ent, 0, sizeof(c->ent));
		memset(c->pairs, 0, sizeof(c->pairs));
		c->serial = 0;
	}
}

int tok_bpe(const struct qvl_tokenizer *t, struct tok_wcache *c, const uint8_t *s, size_t n,
	    struct tok_ids *out)
{
	if (n <= 1 || !c)
		return tok_bpe_uncached(t, s, n, out, NULL);
	if (n > WC_BYTES)
		return tok_bpe_uncached(t, s, n, out, c->pairs);
	uint64_t h = tok_hash_bytes(s, n);
	uint32_t tag = (uint32_t)(h >> 32) | 1;
	struct wc_ent *e = &c->ent[h & ((1u << WC_BITS) - 1)];
	if (e->tag == tag && e->len == n && !memcmp(e->bytes, s, n)) {
		if (out->cap - out->n < e->nids) {
			for (int i = 0; i < e->nids; i++)
				if (tok_ids_push(out, e->ids[i]))
					return -ENOMEM;
			return 0;
		}
		memcpy(out->v + out->n, e->ids, e->nids * sizeof(int32_t));
		out->n += e->nids;
		return 0;
	}
	size_t first = out->n;
	int rc = tok_bpe_uncached(t, s, n, out, c->pairs);
	if (rc || out->n - first > WC_IDS)
		return rc;
	e->tag = tag;
	e->len = (uint8_t)n;
	e->nids = (uint8_t)(out->n - first);
	memcpy(e->bytes, s, n);
	memcpy(e->ids, out->v + first, e->nids * sizeof(int32_t));
	return 0;
}
