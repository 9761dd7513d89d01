/* The engine's KV cache as the scheduler sees it: one pool of fixed-size
 * pages per engine, a block table per sequence, prefix reuse of full pages.
 * Included by engine.h; the engine module owns it (docs/kv-cache.md).
 *
 * Pages. A page holds the K and V of QVL_KV_PAGE_TOKENS consecutive
 * positions (or the engine option kv_page_tokens) for every layer and KV
 * head. A sequence holds the pages that cover its positions [0, len); a
 * forward that crosses into a new page takes one from the pool first. All
 * pages come from one reservation made at engine creation and become
 * resident when first written. With a budget (kv_pages or kv_bytes) the
 * pool never grows past it: a forward that would need more pages than the
 * pool can supply fails with -ENOSPC before anything runs, leaving every
 * sequence unchanged (the scheduler preempts with qvl_seq_reset() and
 * retries).
 *
 * Prefix reuse. After a forward, every page of a sequence that became full
 * is published under a chained key: hash(key of the previous page, the
 * page's token ids, their M-RoPE positions, the content key of each image
 * row in it). A later sequence whose prompt starts with the same ids,
 * positions and images attaches those pages (qvl_seq_attach_prefix()) and
 * starts its prefill after them. A sequence that ends (or is reset)
 * publishes its last page too when it is not full, under a key of its
 * own, so that a prompt sharing part of it (the same image, other text
 * after it) reuses everything up to the divergence: attach shares such a
 * page up to where the records differ. Pages are reference-counted; a page held
 * by several sequences (or published) is copied before a sequence writes
 * into it. With a budget, a page nobody holds stays cached until the pool
 * needs it, the least recently used going first; without one, nothing
 * would ever evict, so such a page is freed at once (sequences alive at
 * the same time still share). The logits of a reused prefix are bit for
 * bit those of a recomputation with the same chunk split.
 *
 * Threads: like qvl_engine_forward(), every call here (qvl_engine_kv_usage()
 * included) is made by the engine's one caller at a time; a stats thread
 * asks that caller for a snapshot rather than reading the pool itself. */
#ifndef QVL_KVCACHE_H
#define QVL_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct qvl_engine;
struct qvl_seq;

/* Default positions per page (docs/kv-cache.md: measured on the 2b shape).
 * Page sizes must be multiples of 64, the attention kernels' block: a page
 * boundary is then always a block boundary and paged attention is bit
 * identical to a contiguous cache. */
#define QVL_KV_PAGE_TOKENS 64
#define QVL_KV_PAGE_ALIGN  64

/* A snapshot of the pool and of the prefix cache counters. */
struct qvl_kv_usage {
	size_t page_tokens;	       /* positions per page */
	size_t page_bytes;	       /* K and V of all layers for page_tokens positions */
	size_t pages_total;	       /* the budget; without one, the pages reserved */
	size_t pages_used;	       /* held by at least one sequence */
	size_t pages_cached;	       /* held by none, kept for prefix reuse; evicted
					* (LRU) when the pool needs them, so they count as
					* available: available = total - used */
	uint64_t prefix_hits;	       /* attaches that reused at least one page */
	uint64_t prefix_tokens_reused; /* positions not recomputed thanks to them */
	uint64_t evictions;	       /* cached pages given to another use */
	uint64_t cow_copies;	       /* shared pages copied before a write */
};

void qvl_engine_kv_usage(const struct qvl_engine *e, struct qvl_kv_usage *u);

/* Pages a forward of n more tokens of s would take from the pool now
 * (new pages past the ones s holds, plus one copy if the page it writes
 * first is shared). A batch needs the sum over its items; it fits when the
 * sum is at most pages_total - pages_used. */
size_t qvl_seq_pages_needed(const struct qvl_seq *s, size_t n);

/* Forget every position of s (length 0, text position 0) and give its
 * pages back: pages no other sequence holds become free or, when
 * published, cached. For preemption: s can be prefilled again later. */
void qvl_seq_reset(struct qvl_seq *s);

/* The prompt a sequence is about to prefill, for prefix lookup. ids[n];
 * pos: the M-RoPE positions of the n tokens as the forward will get them
 * (qvl_chunk.pos), NULL for text positions 0..n-1; img_keys: one content
 * key per image token, in order (the same keys the chunks will carry in
 * qvl_chunk.img_keys), NULL when the prompt has no image. */
struct qvl_prefix {
	const int32_t *ids;
	size_t n;
	const int32_t (*pos)[3];
	const uint64_t *img_keys;
};

/* Attach to s (which must be empty) the longest run of cached full pages
 * matching the start of p, at most n - 1 positions so the last token is
 * always computed (its logits are wanted). On return *n_reused positions
 * are in the cache (possibly 0; not always a multiple of the page size: a
 * last page that matches only in part is shared up to where it diverges
 * and copied on the first write), s has that
 * length and the text position that follows them, and the prefill goes on
 * with the chunk starting at ids + *n_reused (pos + *n_reused, the image
 * rows after the ones skipped). Counts a hit when *n_reused > 0. Never
 * takes pages from the pool. */
int qvl_seq_attach_prefix(struct qvl_engine *e, struct qvl_seq *s, const struct qvl_prefix *p,
			  size_t *n_reused, struct qvl_err *err);

/* A 64-bit hash (not cryptographic: for keys the engine derives itself,
 * and tests). The image keys of multimodal prompts are serial numbers of
 * the engine's image cache instead (mm_cache.h), which clients cannot make
 * collide. */
uint64_t qvl_kv_hash(const void *data, size_t len, uint64_t seed);

#endif
