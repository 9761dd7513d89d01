/* The image cache (mm_cache.h): one list in LRU order (most recent at the
 * head) of at most MM_MAX_KEYS keys, some holding tower rows. Images per
 * prompt are few and rows are large, so a linear lookup costs nothing next
 * to hashing the image's bytes. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mm_cache.h"
#include "multimodal.h"
#include "preprocess.h"
#include "vision.h"

struct mm_entry {
	struct mm_entry *prev, *next;
	struct mm_key key;
	uint64_t serial;
	int w, h; /* decoded size */
	/* the tower's rows, or rows == NULL */
	int grid[3];
	size_t n, H, bytes;
	int K;
	float *rows; /* main [n][H], then DeepStack [K][n][H] */
};

struct mm_cache {
	pthread_mutex_t lock; /* the list, the counters and next_serial */
	struct mm_entry *head, *tail;
	size_t max_bytes, bytes, keys, with_rows;
	uint64_t next_serial;
	uint64_t hits, misses, evictions;
	pthread_mutex_t vlock; /* the tower: built and lent under it */
	struct qvl_vision *v;
	_Atomic uint64_t towers; /* towers built (tests: one per engine) */
};

int mm_cache_create(struct mm_cache **out, size_t max_bytes)
{
	struct mm_cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->vlock, NULL);
	c->max_bytes = max_bytes;
	c->next_serial = 1; /* 0 is "no key" in the KV records */
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

static void drop_rows(struct mm_cache *c, struct mm_entry *e)
{
	if (!e->rows)
		return;
	c->bytes -= e->bytes;
	c->with_rows--;
	free(e->rows);
	e->rows = NULL;
	e->bytes = 0;
}

static void drop(struct mm_cache *c, struct mm_entry *e)
{
	unlink_entry(c, e);
	drop_rows(c, e);
	c->keys--;
	free(e);
}

void mm_cache_destroy(struct mm_cache *c)
{
	if (!c)
		return;
	while (c->head)
		drop(c, c->head);
	qvl_vision_destroy(c->v);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->vlock);
	free(c);
}

static void put_u64(struct qvl_sha256 *s, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	qvl_sha256_update(s, b, sizeof(b));
}

static void put_f64(struct qvl_sha256 *s, double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	put_u64(s, u);
}

void mm_key_make(struct mm_key *k, const void *data, size_t len, int w, int h, size_t stride,
		 const struct qvl_pp_params *pp)
{
	static const char tag[16] = "qvl-image-key-1";
	struct qvl_sha256 s;
	const uint8_t *b = data;

	qvl_sha256_init(&s);
	qvl_sha256_update(&s, tag, sizeof(tag));
	/* every field, one at a time: no padding byte is ever hashed */
	put_u64(&s, (uint64_t)pp->min_pixels);
	put_u64(&s, (uint64_t)pp->max_pixels);
	put_u64(&s, (uint64_t)pp->patch);
	put_u64(&s, (uint64_t)pp->temporal);
	put_u64(&s, (uint64_t)pp->merge);
	put_f64(&s, pp->rescale);
	for (int i = 0; i < 3; i++) {
		put_f64(&s, pp->mean[i]);
		put_f64(&s, pp->std[i]);
	}
	put_u64(&s, w ? 1 : 0); /* RGB rows or an encoded file */
	put_u64(&s, (uint64_t)w);
	put_u64(&s, (uint64_t)h);
	if (w) {
		const size_t row = (size_t)w * 3;

		for (int y = 0; y < h; y++)
			qvl_sha256_update(&s, b + (size_t)y * stride, row);
		k->len = (uint64_t)row * (uint64_t)h;
	} else {
		qvl_sha256_update(&s, b, len);
		k->len = len;
	}
	put_u64(&s, k->len);
	qvl_sha256_final(&s, k->digest);
}

static struct mm_entry *find(struct mm_cache *c, const struct mm_key *k)
{
	for (struct mm_entry *e = c->head; e; e = e->next)
		if (e->key.len == k->len && !memcmp(e->key.digest, k->digest, sizeof(k->digest)))
			return e;
	return NULL;
}

/* Under the lock: k as the most recently used, or NULL. */
static struct mm_entry *touch(struct mm_cache *c, const struct mm_key *k)
{
	struct mm_entry *e = find(c, k);

	if (e) {
		unlink_entry(c, e);
		push_head(c, e);
	}
	return e;
}

bool mm_cache_known(struct mm_cache *c, const struct mm_key *k, int *w, int *h, uint64_t *serial)
{
	struct mm_entry *e;

	pthread_mutex_lock(&c->lock);
	e = touch(c, k);
	if (e) {
		*w = e->w;
		*h = e->h;
		*serial = e->serial;
	}
	pthread_mutex_unlock(&c->lock);
	return e != NULL;
}

uint64_t mm_cache_intern(struct mm_cache *c, const struct mm_key *k, int w, int h)
{
	struct mm_entry *e;
	uint64_t serial = 0;

	pthread_mutex_lock(&c->lock);
	e = touch(c, k);
	if (!e && (e = calloc(1, sizeof(*e)))) {
		if (c->keys == MM_MAX_KEYS)
			drop(c, c->tail);
		e->key = *k;
		e->w = w;
		e->h = h;
		e->serial = c->next_serial++;
		push_head(c, e);
		c->keys++;
	}
	if (e)
		serial = e->serial;
	pthread_mutex_unlock(&c->lock);
	return serial;
}

int mm_cache_get(struct mm_cache *c, const struct mm_key *k, const int grid[3], size_t n, size_t H,
		 int K, float *main, float *ds, size_t ds_stride)
{
	struct mm_entry *e;

	if (!c->max_bytes)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	e = touch(c, k);
	if (!e || !e->rows || memcmp(e->grid, grid, sizeof(e->grid)) || e->n != n || e->H != H ||
	    e->K != K) {
		c->misses++;
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	c->hits++;
	memcpy(main, e->rows, n * H * sizeof(float));
	for (int i = 0; i < K; i++)
		memcpy(ds + (size_t)i * ds_stride, e->rows + (size_t)(i + 1) * n * H,
		       n * H * sizeof(float));
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void mm_cache_put(struct mm_cache *c, const struct mm_key *k, const int grid[3], size_t n, size_t H,
		  int K, const float *main, const float *ds, size_t ds_stride)
{
	size_t rows, bytes;
	struct mm_entry *e;
	float *r;

	if (__builtin_mul_overflow(n * H, (size_t)K + 1, &rows) ||
	    __builtin_mul_overflow(rows, sizeof(float), &bytes) || bytes > c->max_bytes)
		return;
	r = malloc(bytes);
	if (!r)
		return;
	memcpy(r, main, n * H * sizeof(float));
	for (int i = 0; i < K; i++)
		memcpy(r + (size_t)(i + 1) * n * H, ds + (size_t)i * ds_stride,
		       n * H * sizeof(float));
	pthread_mutex_lock(&c->lock);
	e = find(c, k);
	if (!e || e->rows) { /* forgotten, or another build put them first */
		pthread_mutex_unlock(&c->lock);
		free(r);
		return;
	}
	/* the least recently used rows go first (e is not among them: rowless) */
	for (struct mm_entry *t = c->tail; t && c->bytes + bytes > c->max_bytes; t = t->prev)
		if (t->rows) {
			drop_rows(c, t);
			c->evictions++;
		}
	memcpy(e->grid, grid, sizeof(e->grid));
	e->n = n;
	e->H = H;
	e->K = K;
	e->rows = r;
	e->bytes = bytes;
	c->bytes += bytes;
	c->with_rows++;
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
	st->entries = c->with_rows;
	st->max_bytes = c->max_bytes;
	st->keys = c->keys;
	pthread_mutex_unlock(&c->lock);
	/* relaxed: a count; the tower itself is published under vlock */
	st->towers_built = atomic_load_explicit(&c->towers, memory_order_relaxed);
}

int mm_cache_vision_get(struct mm_cache *c, const struct qvl_model *m, struct qvl_pool *pool,
			const struct qvl_vision_opts *vo, struct qvl_vision **v,
			struct qvl_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&c->vlock);
	if (!c->v && (rc = qvl_vision_create(&c->v, m, pool, vo, err)) == 0)
		/* relaxed: pairs with the load in mm_cache_stats(), a count */
		atomic_fetch_add_explicit(&c->towers, 1, memory_order_relaxed);
	if (rc) {
		pthread_mutex_unlock(&c->vlock);
		*v = NULL;
		return rc;
	}
	*v = c->v;
	return 0;
}

void mm_cache_vision_put(struct mm_cache *c)
{
	pthread_mutex_unlock(&c->vlock);
}
