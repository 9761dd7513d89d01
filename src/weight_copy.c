/* A weight matrix copied out of a model file's mapping (see weight_copy.h). */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "env.h"
#include "model.h"
#include "pool.h"
#include "weight_copy.h"

struct pread_task {
	int fd;
	uint8_t *dst;
	off_t off;
	size_t bytes;
	bool *ok; /* [nth] */
};

/* thread ith's share, in whole 2 MiB pieces of dst (one huge page each) */
static void pread_task(void *arg, int ith, int nth)
{
	struct pread_task *t = arg;
	size_t b0, b1;

	qvl_split(t->bytes, (size_t)2 << 20, ith, nth, &b0, &b1);
	t->ok[ith] = true;
	while (b0 < b1) {
		ssize_t r = pread(t->fd, t->dst + b0, b1 - b0, t->off + (off_t)b0);
		if (r <= 0) {
			t->ok[ith] = false;
			return;
		}
		b0 += (size_t)r;
	}
}

void qvl_weight_reader_init(struct qvl_weight_reader *r, const struct qvl_model *m)
{
	r->m = m;
	r->fd = -1;
	r->isrc = 0;
}

void qvl_weight_reader_close(struct qvl_weight_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* The file whose mapping holds [src, src + bytes), open in r (kept open
 * for the next matrix of the same file), with the offset of src in it: 0,
 * or -1 when there is none or it cannot be opened. */
static int open_source(struct qvl_weight_reader *r, const uint8_t *src, size_t bytes, off_t *off)
{
	for (size_t i = 0; i < r->m->nsources; i++) {
		const struct qvl_source *s = &r->m->sources[i];
		const uint8_t *b = s->map;
		if (!b || s->anon || !s->path || src < b || bytes > s->size ||
		    (size_t)(src - b) > s->size - bytes)
			continue;
		*off = (off_t)(src - b);
		if (r->fd >= 0 && r->isrc == i)
			return 0;
		qvl_weight_reader_close(r);
		r->fd = open(s->path, O_RDONLY | O_CLOEXEC);
		r->isrc = i;
		return r->fd < 0 ? -1 : 0;
	}
	return -1;
}

static bool copy_pread(struct qvl_weight_reader *r, struct qvl_pool *pool, void *dst,
		       const void *src, size_t bytes)
{
	struct pread_task t = {-1, dst, 0, bytes, NULL};
	int nth = pool ? qvl_pool_size(pool) : 1;
	bool ok = true;

	if (!qvl_env_flag("QVL_WEIGHT_PREAD", true) || open_source(r, src, bytes, &t.off))
		return false;
	t.fd = r->fd;
	if (!(t.ok = calloc((size_t)nth, sizeof(bool))))
		return false;
	if (pool)
		qvl_pool_run(pool, pread_task, &t);
	else
		pread_task(&t, 0, 1);
	for (int i = 0; i < nth; i++)
		ok = ok && t.ok[i];
	free(t.ok);
	return ok;
}

void qvl_weight_copy(struct qvl_weight_reader *r, struct qvl_pool *pool, void *dst, const void *src,
		     size_t bytes)
{
	if (!copy_pread(r, pool, dst, src, bytes))
		qvl_pool_copy(pool, dst, src, bytes);
	qvl_model_drop_pages(src, bytes);
}

bool qvl_weight_copy_asked(bool asked)
{
	return qvl_env_flag("QVL_WEIGHT_COPY", asked);
}
