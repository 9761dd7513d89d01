/* The vision-output cache (mm_cache.h): a list in LRU order (most recent
 * at the head) — images per prompt are few and entries are large, so a
 * linear lookup over at most a few hundred entries costs nothing next to
 * one tower pass. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"
#include "mm_cache.h"
#include "multimodal.h"
#include "preprocess.h"

struct mm_entry {
	struct mm_entry *prev, *next;
	uint64_t key;
	int grid[3];
	size_t n, H, bytes;
	int K;
	float *rows; /* main [n][H], then DeepStack [K][n][H] */
};

struct mm_cache {
	pthread_mutex_t lock;
	struct mm_entry *head, *tail;
	size_t max_bytes, bytes, entries;
	uint64_t hits, misses, evictions;
};

int mm_cache_create(struct mm_cache **out, size_t max_bytes)
{
	struct mm_cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->max_bytes = max_bytes;
	*out = c;
	return 0;
}

static void unlink_entry(struct mm_cache *c, struct mm_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_head(struct mm_cache *c, struct mm_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	else
		c->tail = e;
	c->head = e;
}

static void drop(struct mm_cache *c, struct mm_entry *e)
{
	unlink_entry(c, e);
	c->bytes -= e->bytes;
	c->entries--;
	free(e->rows);
	free(e);
}

void mm_cache_destroy(struct mm_cache *c)
{
	if (!c)
		return;
	while (c->head)
		drop(c, c->head);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

uint64_t mm_cache_key(const struct qvl_pixels *px)
{
	uint64_t h = qvl_kv_hash(px->grid, sizeof(px->grid), (uint64_t)px->dim);

	h = qvl_kv_hash(px->x, (size_t)px->n * (size_t)px->dim * sizeof(float), h);
	return h ? h : 1;
}

static struct mm_entry *find(struct mm_cache *c, uint64_t key, const int grid[3], size_t n,
			     size_t H, int K)
{
	for (struct mm_entry *e = c->head; e; e = e->next)
		if (e->key == key && !memcmp(e->grid, grid, sizeof(e->grid)) && e->n == n &&
		    e->H == H && e->K == K)
			return e;
	return NULL;
}

int mm_cache_get(struct mm_cache *c, uint64_t key, const int grid[3], size_t n, size_t H, int K,
		 float *main, float *ds, size_t ds_stride)
{
	struct mm_entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, key, grid, n, H, K);
	if (!e) {
		c->misses++;
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	c->hits++;
	unlink_entry(c, e);
	push_head(c, e);
	memcpy(main, e->rows, n * H * sizeof(float));
	for (int k = 0; k < K; k++)
		memcpy(ds + (size_t)k * ds_stride, e->rows + (size_t)(k + 1) * n * H,
		       n * H * sizeof(float));
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void mm_cache_put(struct mm_cache *c, uint64_t key, const int grid[3], size_t n, size_t H, int K,
		  const float *main, const float *ds, size_t ds_stride)
{
	size_t rows, bytes;
	struct mm_entry *e;

	if (__builtin_mul_overflow(n * H, (size_t)K + 1, &rows) ||
	    __builtin_mul_overflow(rows, sizeof(float), &bytes) || bytes > c->max_bytes)
		return;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->rows = malloc(bytes))) {
		free(e);
		return;
	}
	e->key = key;
	memcpy(e->grid, grid, sizeof(e->grid));
	e->n = n;
	e->H = H;
	e->K = K;
	e->bytes = bytes;
	memcpy(e->rows, main, n * H * sizeof(float));
	for (int k = 0; k < K; k++)
		memcpy(e->rows + (size_t)(k + 1) * n * H, ds + (size_t)k * ds_stride,
		       n * H * sizeof(float));
	pthread_mutex_lock(&c->lock);
	if (find(c, key, grid, n, H, K)) { /* another build put it first */
		pthread_mutex_unlock(&c->lock);
		free(e->rows);
		free(e);
		return;
	}
	while (c->bytes + bytes > c->max_bytes && c->tail) {
		drop(c, c->tail);
		c->evictions++;
	}
	push_head(c, e);
	c->bytes += bytes;
	c->entries++;
	pthread_mutex_unlock(&c->lock);
}

void mm_cache_stats(struct mm_cache *c, struct qvl_mm_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	st->hits = c->hits;
	st->misses = c->misses;
	st->evictions = c->evictions;
	st->bytes = c->bytes;
	st->entries = c->entries;
	st->max_bytes = c->max_bytes;
	pthread_mutex_unlock(&c->lock);
}
