/* libqvl's arena allocator: first fit over a sorted free list, 64-byte
 * granules, coalescing on free. Its bookkeeping lives in the client's own
 * memory, never in the shared mapping. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

#define GRAIN 64u

static int ext_insert(struct qvl_extents *e, size_t at, struct qvl_ext x)
{
	if (e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 16;
		struct qvl_ext *v = realloc(e->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	memmove(&e->v[at + 1], &e->v[at], (e->n - at) * sizeof(*e->v));
	e->v[at] = x;
	e->n++;
	return 0;
}

static void ext_remove(struct qvl_extents *e, size_t at)
{
	memmove(&e->v[at], &e->v[at + 1], (e->n - at - 1) * sizeof(*e->v));
	e->n--;
}

/* First index whose off >= off. */
static size_t ext_find(const struct qvl_extents *e, uint64_t off)
{
	size_t lo = 0, hi = e->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e->v[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int cl_arena_init(struct qvl *q)
{
	struct qvl_priv *p = q->priv;

	pthread_mutex_init(&p->lock, NULL);
	return ext_insert(&p->free, 0, (struct qvl_ext){0, q->arena_size & ~(uint64_t)(GRAIN - 1)});
}

void cl_arena_fini(struct qvl *q)
{
	struct qvl_priv *p = q->priv;

	free(p->free.v);
	free(p->used.v);
	if (p->free.cap)
		pthread_mutex_destroy(&p->lock);
}

int qvl_arena_alloc(struct qvl *q, uint64_t len, uint64_t *off)
{
	struct qvl_priv *p = q->priv;
	int rc = -ENOMEM;

	if (!len || len > q->arena_size)
		return len ? -ENOMEM : -EINVAL;
	len = (len + GRAIN - 1) & ~(uint64_t)(GRAIN - 1);
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->free.n; i++) {
		struct qvl_ext *f = &p->free.v[i];
		if (f->len < len)
			continue;
		struct qvl_ext u = {f->off, len};
		rc = ext_insert(&p->used, ext_find(&p->used, u.off), u);
		if (rc)
			break;
		f->off += len;
		f->len -= len;
		if (!f->len)
			ext_remove(&p->free, i);
		*off = u.off;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int qvl_arena_free(struct qvl *q, uint64_t off)
{
	struct qvl_priv *p = q->priv;
	struct qvl_ext u;
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	i = ext_find(&p->used, off);
	if (i == p->used.n || p->used.v[i].off != off) {
		rc = -EINVAL;
		goto out;
	}
	u = p->used.v[i];
	ext_remove(&p->used, i);
	i = ext_find(&p->free, u.off);
	/* coalesce with the free neighbours on either side */
	if (i > 0 && p->free.v[i - 1].off + p->free.v[i - 1].len == u.off) {
		p->free.v[i - 1].len += u.len;
		if (i < p->free.n && u.off + u.len == p->free.v[i].off) {
			p->free.v[i - 1].len += p->free.v[i].len;
			ext_remove(&p->free, i);
		}
	} else if (i < p->free.n && u.off + u.len == p->free.v[i].off) {
		p->free.v[i].off = u.off;
		p->free.v[i].len += u.len;
	} else {
		rc = ext_insert(&p->free, i, u);
	}
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}
