/* A batch forward cut between layers (see qvl_split_begin() in engine.h).
 * Between two calls the engine's scratch serves other forwards, so the
 * split keeps what carries its rows from one layer to the next: the
 * residual stream x, the normed input of the next layer xb, each row's
 * M-RoPE cos/sin, and the row descriptions. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"

struct qvl_split {
	struct qvl_engine *e;
	struct qvl_batch_item *items; /* copies: rows point at these chunks */
	size_t n, nr;
	struct eng_row *rows;
	float *x, *xb, *cs;
	int l; /* next layer */
};

void qvl_split_destroy(struct qvl_split *sp)
{
	if (!sp)
		return;
	free(sp->items);
	free(sp->rows);
	free(sp->x);
	free(sp->xb);
	free(sp->cs);
	free(sp);
}

int qvl_split_begin(struct qvl_engine *e, const struct qvl_batch_item *items, size_t n,
		    struct qvl_split **out, struct qvl_err *err)
{
	struct qvl_split *sp;
	size_t nr = 0, H = (size_t)e->H, hd = (size_t)e->hd;
	int rc;

	*out = NULL;
	for (size_t i = 0; i < n; i++)
		nr += items[i].chunk.n;
	if (!n || nr > QVL_SPLIT_MAX_ROWS || nr > ENG_MAX_ROWS)
		return qvl_errf(err, -E2BIG, "split forward: %zu rows (1..%d)", nr,
				QVL_SPLIT_MAX_ROWS);
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return qvl_errf(err, -ENOMEM, "split forward: out of memory");
	sp->e = e;
	sp->n = n;
	sp->nr = nr;
	sp->items = malloc(n * sizeof(*items));
	sp->rows = malloc(nr * sizeof(*sp->rows));
	sp->x = malloc(nr * H * sizeof(float));
	sp->xb = malloc(nr * H * sizeof(float));
	sp->cs = malloc(nr * hd * sizeof(float));
	if (!sp->items || !sp->rows || !sp->x || !sp->xb || !sp->cs) {
		qvl_split_destroy(sp);
		return qvl_errf(err, -ENOMEM, "split forward: out of memory");
	}
	memcpy(sp->items, items, n * sizeof(*items));
	rc = eng_prepare(e, sp->items, n, err);
	if (rc < 0) {
		qvl_split_destroy(sp);
		return rc;
	}
	nr = 0;
	for (size_t i = 0; i < n; i++) {
		int32_t rank = 0;
		eng_item_rows(e, &sp->items[i], &sp->items[i].chunk, 0, sp->items[i].chunk.n, &rank,
			      sp->rows + nr);
		nr += sp->items[i].chunk.n;
	}
	*out = sp;
	return 0;
}

int qvl_split_run(struct qvl_split *sp, int layers, struct qvl_err *err)
{
	struct qvl_engine *e = sp->e;
	size_t H = (size_t)e->H, hd = (size_t)e->hd, nr = sp->nr;
	int l1 = layers < 1 || layers > e->L - sp->l ? e->L : sp->l + layers;

	if (sp->l >= e->L)
		return 1;
	memcpy(e->rows, sp->rows, nr * sizeof(*sp->rows));
	if (sp->l > 0) {
		memcpy(e->x, sp->x, nr * H * sizeof(float));
		memcpy(e->xb, sp->xb, nr * H * sizeof(float));
		memcpy(e->cs, sp->cs, nr * hd * sizeof(float));
	}
	int rc = eng_forward_layers(e, nr, sp->l, l1, err);
	if (rc < 0)
		return rc; /* a streamed layer's weights could not be read */
	sp->l = l1;
	if (l1 < e->L) {
		memcpy(sp->x, e->x, nr * H * sizeof(float));
		memcpy(sp->xb, e->xb, nr * H * sizeof(float));
		memcpy(sp->cs, e->cs, nr * hd * sizeof(float));
		return 0;
	}
	eng_commit(sp->items, sp->n);
	return 1;
}

int qvl_split_layers_left(const struct qvl_split *sp)
{
	return sp->e->L - sp->l;
}

size_t qvl_split_rows(const struct qvl_split *sp)
{
	return sp->nr;
}
