/* Internal to the KV pool (kvpool.c, kvseq.c): page metadata and the
 * pool's lists. */
#ifndef QVL_KVPOOL_IMPL_H
#define QVL_KVPOOL_IMPL_H

#include "kvpool.h"

/* What was computed at one position: the prefix key of a page is a hash of
 * these, and a last page matching in part is compared record by record. */
struct kv_tok {
	int32_t id;
	int32_t pos[3]; /* M-RoPE position */
	int32_t next;	/* text position that follows this one */
	uint64_t img;	/* content key of its image, 0 for text */
};

struct kv_page {
	uint64_t key, parent; /* when published */
	uint32_t ref;
	uint32_t filled; /* positions whose records are valid: page_tokens for a
			  * full page, fewer for a published last page */
	bool published;
	uint32_t hnext, pnext;	     /* chains of by_key / by_parent */
	uint32_t lru_prev, lru_next; /* when cached (published, ref 0) */
};

struct kv_pool {
	struct kv_pool_geom g;
	bool budget;
	size_t max_pages, head_bytes, page_bytes, reserved;
	uint8_t *base;

	struct kv_page *meta; /* [meta_cap] */
	struct kv_tok *toks;  /* [meta_cap][page_tokens] */
	uint32_t *free_list;  /* [meta_cap] */
	size_t meta_cap, n_fresh, n_free, n_used, n_cached;

	uint32_t *by_key, *by_parent; /* [nbuckets] chain heads */
	size_t nbuckets;
	uint32_t lru_head, lru_tail; /* least recently used first */

	uint64_t prefix_hits, prefix_tokens, evictions, cow_copies;
};

int kv_page_alloc(struct kv_pool *p, uint32_t *out);
void kv_page_ref(struct kv_pool *p, uint32_t id);
void kv_page_unref(struct kv_pool *p, uint32_t id);
/* false: a page with this key is already published (this one is not). */
bool kv_page_publish(struct kv_pool *p, uint32_t id, uint64_t parent, uint64_t key);
void kv_page_unpublish(struct kv_pool *p, uint32_t id);
uint32_t kv_page_find(const struct kv_pool *p, uint64_t key);
/* Published pages whose parent key hashes to the same bucket as `parent`
 * (follow .pnext; compare .parent). */
uint32_t kv_page_first_child(const struct kv_pool *p, uint64_t parent);
struct kv_tok *kv_page_toks(const struct kv_pool *p, uint32_t id);

#endif
