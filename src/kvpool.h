/* Internal to the engine module: the page pool behind kvcache.h.
 *
 * A page is page_tokens positions of K and V for every layer, laid out as
 * [layer][K, V][kv head][page_tokens][head_dim] so that one head's keys in a
 * page are contiguous rows (the attention kernels stream them). Pages are
 * free, held (ref > 0) or cached (ref == 0 and published: reusable by a
 * later prompt, evicted least recently used). Single-threaded: only the
 * engine's caller (one at a time, engine.h) touches the pool. */
#ifndef QVL_KVPOOL_H
#define QVL_KVPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"

struct qvl_seq;
struct qvl_chunk;
struct kv_pool;

#define KV_NONE UINT32_MAX

struct kv_pool_geom {
	size_t page_tokens; /* positions per page */
	size_t row_bytes;   /* one position of one head: head_dim * element size */
	int layers, kv_heads;
	size_t max_pages; /* the budget; 0: as many as the machine's memory holds */
};

int kv_pool_create(struct kv_pool **out, const struct kv_pool_geom *g, struct qvl_err *err);
void kv_pool_destroy(struct kv_pool *p);
void kv_pool_usage(const struct kv_pool *p, struct qvl_kv_usage *u);
/* Pages a caller can still take: free, never used, or cached. */
size_t kv_pool_available(const struct kv_pool *p);
/* K (v == 0) or V (v == 1) rows of one layer and KV head in a page. */
uint8_t *kv_page_rows(const struct kv_pool *p, uint32_t page, int layer, int v, int head);
/* Bytes between the K rows of consecutive heads of a layer in a page. */
size_t kv_pool_page_bytes(const struct kv_pool *p);

/* Per sequence: the block table and the running prefix key. */
struct kv_seq {
	uint32_t *pages; /* [max_pages of the context], page ids of [0, len) */
	size_t n_pages, cap;
	size_t n_keyed;	    /* full pages whose key is computed (chain is the last) */
	uint64_t chain;	    /* key of the last keyed page, or the root seed */
	int64_t nokey_from; /* first image row without a key: no page from the
			     * one holding it on is published */
};

int kv_seq_init(struct kv_pool *p, struct kv_seq *ks, size_t n_ctx);
void kv_seq_free(struct kv_pool *p, struct kv_seq *ks);
size_t kv_seq_pages_needed(const struct qvl_seq *s, size_t n);
/* Take the pages for positions [len, len + n) of s (copying a shared page
 * first). The caller checked that kv_pool_available() covers the sum of
 * kv_seq_pages_needed() over its batch, so only the page metadata's
 * growth can fail (-ENOMEM); s keeps its length and content either way. */
int kv_seq_reserve(struct qvl_seq *s, size_t n);
/* After a forward of c at positions [len0, len0 + c->n): record each
 * position's token and publish the pages that became full. */
void kv_seq_publish(struct qvl_seq *s, const struct qvl_chunk *c, int32_t len0, int32_t next_pos0);
void kv_seq_release(struct qvl_seq *s);
int kv_prefix_attach(struct kv_pool *p, struct qvl_seq *s, const struct qvl_prefix *pf,
		     size_t *n_reused);

#endif
