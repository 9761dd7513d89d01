/* Byte-level BPE of one pre-token: start from one token per byte and merge
 * the adjacent pair of lowest merge rank (leftmost among equals) until no
 * pair has a merge, exactly as Hugging Face's BPE model (no dropout).
 * Short pre-tokens (nearly all) use arrays and a linear scan for the minimum;
 * long ones (runs of one character, long words) a binary heap over a linked
 * list of symbols, O(n log n). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define BPE_SMALL 64
/* from this length on, level by level (tok_bpe_levels.c): it allocates a
 * bucket head per rank (600 KB for Qwen), which only long inputs repay */
#define TOK_LEVELS_MIN 4096

int tok_ids_push(struct tok_ids *o, int32_t id)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		int32_t *v = realloc(o->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		o->v = v;
		o->cap = cap;
	}
	o->v[o->n++] = id;
	return 0;
}

static inline void merge_prefetch(const struct qvl_tokenizer *t, int32_t a, int32_t b)
{
	uint64_t key = tok_merge_key(a, b);
	__builtin_prefetch(&t->merges[(uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->mmask]);
}

static int bpe_small(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, struct tok_ids *out,
		     struct tok_pair_ent *pc)
{
	int32_t sym[BPE_SMALL], mid[BPE_SMALL];
	uint32_t rk[BPE_SMALL];
	size_t m = n;
	for (size_t i = 0; i < n; i++)
		sym[i] = t->byte_id[s[i]];
	/* start every first-round probe before waiting for any (the table is
	 * larger than the cache) */
	if (!pc)
		for (size_t i = 0; i + 1 < n; i++)
			merge_prefetch(t, sym[i], sym[i + 1]);
	for (size_t i = 0; i + 1 < n; i++)
		tok_pair_merge(t, pc, sym[i], sym[i + 1], &rk[i], &mid[i]);
	while (m > 1) {
		size_t k = 0;
		uint32_t best = rk[0];
		for (size_t i = 1; i + 1 < m; i++)
			if (rk[i] < best) {
				best = rk[i];
				k = i;
			}
		if (best == UINT32_MAX)
			break;
		sym[k] = mid[k];
		/* drop symbol k+1 and pair k+1 */
		memmove(sym + k + 1, sym + k + 2, (m - k - 2) * sizeof(*sym));
		if (k + 2 < m) {
			memmove(rk + k + 1, rk + k + 2, (m - k - 3) * sizeof(*rk));
			memmove(mid + k + 1, mid + k + 2, (m - k - 3) * sizeof(*mid));
		}
		m--;
		if (k > 0)
			tok_pair_merge(t, pc, sym[k - 1], sym[k], &rk[k - 1], &mid[k - 1]);
		if (k + 1 < m)
			tok_pair_merge(t, pc, sym[k], sym[k + 1], &rk[k], &mid[k]);
	}
	for (size_t i = 0; i < m; i++)
		if (tok_ids_push(out, sym[i]))
			return -ENOMEM;
	return 0;
}

struct heap_ent {
	uint32_t rank;
	uint32_t pos; /* index of the left symbol */
	int32_t left, right, id;
};

static inline bool ent_less(const struct heap_ent *a, const struct heap_ent *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

struct heap {
	struct heap_ent *v;
	size_t n, cap;
};

/* A 4-ary heap: half the depth of a binary one, and the four children of a
 * node share a cache line or two; long pre-tokens make heaps of megabytes. */
#define HEAP_D 4

static int heap_reserve(struct heap *h)
{
	if (h->n < h->cap)
		return 0;
	size_t cap = h->cap ? h->cap * 2 : 256;
	struct heap_ent *v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

static int heap_push(struct heap *h, struct heap_ent e)
{
	if (heap_reserve(h))
		return -ENOMEM;
	size_t i = h->n++;
	while (i > 0) {
		size_t p = (i - 1) / HEAP_D;
		if (!ent_less(&e, &h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = e;
	return 0;
}

/* put e at hole i and move it down to its place */
static void heap_sift_down(struct heap *h, size_t i, struct heap_ent e)
{
	for (;;) {
		size_t c = HEAP_D * i + 1, best;
		if (c >= h->n)
			break;
		best = c;
		size_t end = c + HEAP_D < h->n ? c + HEAP_D : h->n;
		for (size_t k = c + 1; k < end; k++)
			if (ent_less(&h->v[k], &h->v[best]))
				best = k;
		if (!ent_less(&h->v[best], &e))
			break;
		h->v[i] = h->v[best];
		i = best;
	}
	h->v[i] = e;
}

static struct heap_ent heap_pop(struct heap *h)
{
	struct heap_ent top = h->v[0], last = h->v[--h->n];
	if (h->n)
		heap_sift_down(h, 0, last);
	return top;
}

/* Bottom-up heap construction over v[0..n): O(n) instead of n pushes. */
static void heap_build(struct heap *h)
{
	for (size_t i = h->n / HEAP_D + 1; i-- > 0;)
		if (i < h->n)
			heap_sift_down(h, i, h->v[i]);
}

static int push_pair(const struct qvl_tokenizer *t, struct tok_pair_ent *pc, struct heap *h,
		     const int32_t *sym, uint32_t l, uint32_t r)
{
	uint32_t rank;
	int32_t id;
	if (!tok_pair_merge(t, pc, sym[l], sym[r], &rank, &id))
		return 0;
	return heap_push(h, (struct heap_ent){rank, l, sym[l], sym[r], id});
}

static int bpe_heap(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, struct tok_ids *out,
		    struct tok_pair_ent *pc)
{
	int rc = -ENOMEM;
	struct heap h = {0};
	if (n > UINT32_MAX - 1)
		return -E2BIG;
	int32_t *sym = malloc(n * sizeof(*sym));
	uint32_t *prev = malloc(n * sizeof(*prev)), *next = malloc(n * sizeof(*next));
	if (!sym || !prev || !next)
		goto out;
	const uint32_t none = UINT32_MAX;
	for (size_t i = 0; i < n; i++) {
		sym[i] = t->byte_id[s[i]];
		prev[i] = i ? (uint32_t)i - 1 : none;
		next[i] = i + 1 < n ? (uint32_t)i + 1 : none;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		uint32_t rank;
		int32_t id;
		if (!tok_pair_merge(t, pc, sym[i], sym[i + 1], &rank, &id))
			continue;
		if (heap_reserve(&h))
			goto out;
		h.v[h.n++] = (struct heap_ent){rank, (uint32_t)i, sym[i], sym[i + 1], id};
	}
	heap_build(&h);
	while (h.n) {
		struct heap_ent e = heap_pop(&h);
		uint32_t l = e.pos, r = next[l];
		/* stale: the left symbol was absorbed, or either side changed */
		if (sym[l] != e.left || r == none || sym[r] != e.right)
			continue;
		sym[l] = e.id;
		sym[r] = -1;
		next[l] = next[r];
		if (next[r] != none)
			prev[next[r]] = l;
		if (prev[l] != none && push_pair(t, pc, &h, sym, prev[l], l))
			goto out;
		if (next[l] != none && push_pair(t, pc, &h, sym, l, next[l]))
			goto out;
	}
	for (uint32_t i = 0; i != none; i = next[i])
		if (tok_ids_push(out, sym[i]))
			goto out;
	rc = 0;
out:
	free(h.v);
	free(sym);
	free(prev);
	free(next);
	return rc;
}

/* BPE without the cache. */
int tok_bpe_uncached(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, struct tok_ids *out,
		     struct tok_pair_ent *pc)
{
	if (n == 0)
		return 0;
	if (n == 1)
		return tok_ids_push(out, t->byte_id[s[0]]);
	if (n <= BPE_SMALL)
		return bpe_small(t, s, n, out, pc);
	if (n >= TOK_LEVELS_MIN && t->monotone)
		return tok_bpe_levels(t, s, n, out, pc);
	return bpe_heap(t, s, n, out, pc);
}
