/* The KV page pool: one reservation of pages, their reference counts, the
 * free list, and the cache of published pages (two hash tables: by key for
 * whole-page matches, by parent key for a last page that matches in part;
 * an LRU list of the unreferenced ones). See kvpool.h and docs/kv-cache.md.
 * Sequence-side operations (block tables, publishing, attaching) are in
 * kvseq.c. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "env.h"
#include "kvpool_impl.h"

/* Without a budget the pool may grow to the machine's memory: that many
 * pages are reserved (address space only) and become resident when first
 * written. */
static size_t phys_bytes(void)
{
	long n = sysconf(_SC_PHYS_PAGES), sz = sysconf(_SC_PAGESIZE);

	if (n <= 0 || sz <= 0)
		return (size_t)1 << 34;
	return (size_t)n * (size_t)sz;
}

/* Address space only: nothing is resident (or, with MAP_NORESERVE,
 * committed) until a page is first written. Aligned to 2 MiB and advised
 * huge: a decode step appends one row to each of layers x 2 x kv_heads
 * rows of every sequence and its attention reads them back, so with 4 KiB
 * pages a step of 16 sequences touched ~7000 distinct pages and faulted
 * ~450 new ones (every 16 positions of f16 rows of 128); with 2 MiB pages a
 * 64-token KV page of the 2b model is 4 of them. What becomes resident is
 * still only what pages were written: those rounded to 2 MiB. */
static uint8_t *reserve(size_t total)
{
	const size_t huge = (size_t)2 << 20;
	uint8_t *m, *a;
	size_t len;

	if (total > SIZE_MAX - huge)
		return NULL;
	len = total + huge;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
	if (a > m)
		munmap(m, (size_t)(a - m));
	if (m + len > a + total)
		munmap(a + total, (size_t)(m + len - (a + total)));
#ifdef MADV_HUGEPAGE
	if (qvl_env_flag("QVL_KV_HUGE", true))
		(void)madvise(a, total, MADV_HUGEPAGE); /* advice: failure changes nothing */
#endif
	return a;
}

int kv_pool_create(struct kv_pool **out, const struct kv_pool_geom *g, struct qvl_err *err)
{
	struct kv_pool *p;
	size_t head, page, max = g->max_pages, total;

	*out = NULL;
	if (g->page_tokens == 0 || g->page_tokens % QVL_KV_PAGE_ALIGN || g->page_tokens > 65536)
		return qvl_errf(err, -EINVAL,
				"KV page size %zu tokens: use a multiple of %d up to 65536",
				g->page_tokens, QVL_KV_PAGE_ALIGN);
	if (__builtin_mul_overflow(g->page_tokens, g->row_bytes, &head) ||
	    __builtin_mul_overflow(head, (size_t)g->kv_heads * 2 * (size_t)g->layers, &page))
		return qvl_errf(err, -EOVERFLOW, "KV page size overflows");
	if (!max)
		max = phys_bytes() / page;
	if (max == 0)
		return qvl_errf(err, -ENOSPC, "KV pool: a page of %zu bytes does not fit", page);
	if (max > KV_NONE - 1)
		max = KV_NONE - 1;
	if (__builtin_mul_overflow(max, page, &total))
		return qvl_errf(err, -EOVERFLOW, "KV pool of %zu pages of %zu bytes overflows", max,
				page);
	p = calloc(1, sizeof(*p));
	if (!p)
		return qvl_errf(err, -ENOMEM, "KV pool: out of memory");
	p->g = *g;
	p->budget = g->max_pages != 0;
	p->max_pages = max;
	p->head_bytes = head;
	p->page_bytes = page;
	p->reserved = total;
	p->base = reserve(total);
	if (!p->base) {
		free(p);
		return qvl_errf(err, -ENOMEM, "KV pool: cannot reserve %zu pages of %zu bytes", max,
				page);
	}
	p->nbuckets = 64;
	while (p->nbuckets < max && p->nbuckets < (1u << 16))
		p->nbuckets *= 2;
	p->by_key = malloc(p->nbuckets * sizeof(*p->by_key));
	p->by_parent = malloc(p->nbuckets * sizeof(*p->by_parent));
	if (!p->by_key || !p->by_parent) {
		kv_pool_destroy(p);
		return qvl_errf(err, -ENOMEM, "KV pool: out of memory");
	}
	for (size_t i = 0; i < p->nbuckets; i++)
		p->by_key[i] = p->by_parent[i] = KV_NONE;
	p->lru_head = p->lru_tail = KV_NONE;
	*out = p;
	return 0;
}

void kv_pool_destroy(struct kv_pool *p)
{
	if (!p)
		return;
	if (p->base)
		munmap(p->base, p->reserved);
	free(p->meta);
	free(p->toks);
	free(p->free_list);
	free(p->by_key);
	free(p->by_parent);
	free(p);
}

void kv_pool_usage(const struct kv_pool *p, struct qvl_kv_usage *u)
{
	memset(u, 0, sizeof(*u));
	u->page_tokens = p->g.page_tokens;
	u->page_bytes = p->page_bytes;
	u->pages_total = p->max_pages;
	u->pages_used = p->n_used;
	u->pages_cached = p->n_cached;
	u->prefix_hits = p->prefix_hits;
	u->prefix_tokens_reused = p->prefix_tokens;
	u->evictions = p->evictions;
	u->cow_copies = p->cow_copies;
}

size_t kv_pool_available(const struct kv_pool *p)
{
	return p->max_pages - p->n_used;
}

size_t kv_pool_page_bytes(const struct kv_pool *p)
{
	return p->page_bytes;
}

uint8_t *kv_page_rows(const struct kv_pool *p, uint32_t page, int layer, int v, int head)
{
	size_t h = ((size_t)layer * 2 + (size_t)v) * (size_t)p->g.kv_heads + (size_t)head;

	return p->base + (size_t)page * p->page_bytes + h * p->head_bytes;
}

/* Room for page metadata up to id n (grown as the high-water mark does, so
 * a pool sized by the machine's memory costs nothing until used). */
static int meta_grow(struct kv_pool *p, size_t n)
{
	size_t cap = p->meta_cap ? p->meta_cap : 16;
	struct kv_page *m;
	struct kv_tok *t;
	uint32_t *fl;

	if (n <= p->meta_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (cap > p->max_pages)
		cap = p->max_pages;
	m = realloc(p->meta, cap * sizeof(*m));
	if (!m)
		return -ENOMEM;
	p->meta = m;
	t = realloc(p->toks, cap * p->g.page_tokens * sizeof(*t));
	if (!t)
		return -ENOMEM;
	p->toks = t;
	fl = realloc(p->free_list, cap * sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	p->free_list = fl;
	p->meta_cap = cap;
	return 0;
}

static size_t bucket(const struct kv_pool *p, uint64_t key)
{
	return (size_t)(key ^ (key >> 29)) & (p->nbuckets - 1);
}

/* Remove id from the singly linked chain starting at *head, linked by the
 * member at offset `link`. */
static void chain_remove(struct kv_pool *p, uint32_t *head, uint32_t id, bool by_parent)
{
	for (uint32_t *at = head; *at != KV_NONE;) {
		struct kv_page *pg = &p->meta[*at];
		uint32_t *next = by_parent ? &pg->pnext : &pg->hnext;

		if (*at == id) {
			*at = *next;
			return;
		}
		at = next;
	}
}

static void lru_unlink(struct kv_pool *p, uint32_t id)
{
	struct kv_page *pg = &p->meta[id];

	if (pg->lru_prev != KV_NONE)
		p->meta[pg->lru_prev].lru_next = pg->lru_next;
	else
		p->lru_head = pg->lru_next;
	if (pg->lru_next != KV_NONE)
		p->meta[pg->lru_next].lru_prev = pg->lru_prev;
	else
		p->lru_tail = pg->lru_prev;
	pg->lru_prev = pg->lru_next = KV_NONE;
}

void kv_page_unpublish(struct kv_pool *p, uint32_t id)
{
	struct kv_page *pg = &p->meta[id];

	if (!pg->published)
		return;
	chain_remove(p, &p->by_key[bucket(p, pg->key)], id, false);
	chain_remove(p, &p->by_parent[bucket(p, pg->parent)], id, true);
	pg->published = false;
}

bool kv_page_publish(struct kv_pool *p, uint32_t id, uint64_t parent, uint64_t key)
{
	struct kv_page *pg = &p->meta[id];
	size_t bk = bucket(p, key), bp = bucket(p, parent);

	for (uint32_t o = p->by_key[bk]; o != KV_NONE; o = p->meta[o].hnext)
		if (p->meta[o].key == key)
			return false; /* another sequence published the same page */
	pg->key = key;
	pg->parent = parent;
	pg->published = true;
	pg->hnext = p->by_key[bk];
	p->by_key[bk] = id;
	pg->pnext = p->by_parent[bp];
	p->by_parent[bp] = id;
	return true;
}

uint32_t kv_page_find(const struct kv_pool *p, uint64_t key)
{
	for (uint32_t o = p->by_key[bucket(p, key)]; o != KV_NONE; o = p->meta[o].hnext)
		if (p->meta[o].key == key)
			return o;
	return KV_NONE;
}

uint32_t kv_page_first_child(const struct kv_pool *p, uint64_t parent)
{
	return p->by_parent[bucket(p, parent)];
}

/* A page for a writer: a free one, a never used one, or the least recently
 * used cached one. Only called after kv_pool_available() said there is
 * one; the metadata growth is the only thing that can fail. */
int kv_page_alloc(struct kv_pool *p, uint32_t *out)
{
	uint32_t id;

	if (p->n_free) {
		id = p->free_list[--p->n_free];
	} else if (p->n_fresh < p->max_pages) {
		if (meta_grow(p, p->n_fresh + 1) < 0)
			return -ENOMEM;
		id = (uint32_t)p->n_fresh++;
	} else if (p->lru_head != KV_NONE) {
		id = p->lru_head;
		lru_unlink(p, id);
		kv_page_unpublish(p, id);
		p->n_cached--;
		p->evictions++;
	} else {
		return -ENOSPC;
	}
	struct kv_page *pg = &p->meta[id];

	memset(pg, 0, sizeof(*pg));
	pg->ref = 1;
	pg->hnext = pg->pnext = pg->lru_prev = pg->lru_next = KV_NONE;
	p->n_used++;
	*out = id;
	return 0;
}

void kv_page_ref(struct kv_pool *p, uint32_t id)
{
	struct kv_page *pg = &p->meta[id];

	if (pg->ref++ == 0) { /* was cached */
		lru_unlink(p, id);
		p->n_cached--;
		p->n_used++;
	}
}

void kv_page_unref(struct kv_pool *p, uint32_t id)
{
	struct kv_page *pg = &p->meta[id];

	if (--pg->ref)
		return;
	p->n_used--;
	/* Without a budget nothing would ever evict: keep no unreferenced page
	 * (live sequences still share theirs). */
	if (!p->budget)
		kv_page_unpublish(p, id);
	if (pg->published) { /* most recently used at the tail */
		pg->lru_prev = p->lru_tail;
		pg->lru_next = KV_NONE;
		if (p->lru_tail != KV_NONE)
			p->meta[p->lru_tail].lru_next = id;
		else
			p->lru_head = id;
		p->lru_tail = id;
		p->n_cached++;
		return;
	}
	/* Without a budget, give the memory back as per-sequence caches did
	 * when they were unmapped; with one, the pages stay ours. */
	if (!p->budget)
		madvise(p->base + (size_t)id * p->page_bytes, p->page_bytes, MADV_DONTNEED);
	p->free_list[p->n_free++] = id;
}

struct kv_tok *kv_page_toks(const struct kv_pool *p, uint32_t id)
{
	return p->toks + (size_t)id * p->g.page_tokens;
}
