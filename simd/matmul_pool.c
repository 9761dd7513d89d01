/* qvl_matmul_pool: one matmul spread over the thread pool. Each thread gets a
 * contiguous range of output columns (= W rows) so that it streams a disjoint
 * part of W (decode is bandwidth bound: no W byte read twice) and packs whole
 * panels (prefill); the ranges are aligned to 64 columns, a multiple of both
 * kernels' panel widths (32 and 16). With fewer than 64 columns per thread
 * the rows of X are split instead. */
#include "config.h"

#include "kern_impl.h"
#include "pool.h"

struct mm_task {
	float *Y;
	size_t ldy;
	const float *X;
	size_t ldx;
	const void *W;
	enum qvl_dtype wtype;
	size_t ldw;
	const float *bias;
	size_t m, n, k;
	bool by_rows;
};

static void mm_run(void *arg, int ith, int nth)
{
	const struct mm_task *t = arg;
	size_t lo, hi;

	if (t->by_rows) {
		qvl_split(t->m, 1, ith, nth, &lo, &hi);
		if (lo < hi)
			qvl_kern.matmul(t->Y + lo * t->ldy, t->ldy, t->X + lo * t->ldx, t->ldx,
					t->W, t->wtype, t->ldw, t->bias, hi - lo, t->n, t->k);
		return;
	}
	/* m == 1 streams 4 rows at a time: 4-aligned ranges are enough */
	qvl_split(t->n, t->m == 1 ? 4 : 64, ith, nth, &lo, &hi);
	if (lo < hi)
		qvl_kern.matmul(t->Y + lo, t->ldy, t->X, t->ldx,
				qvl_wrow(t->W, t->wtype, t->ldw, lo), t->wtype, t->ldw,
				t->bias ? t->bias + lo : NULL, t->m, hi - lo, t->k);
}

void qvl_matmul_pool(struct qvl_pool *pool, float *Y, size_t ldy, const float *X, size_t ldx,
		     const void *W, enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,
		     size_t n, size_t k)
{
	int nth = pool ? qvl_pool_size(pool) : 1;
	struct mm_task t = {Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k, false};

	if (nth <= 1) {
		mm_run(&t, 0, 1);
		return;
	}
	t.by_rows = m > 1 && n < 64 * (size_t)nth;
	qvl_pool_run(pool, mm_run, &t);
}
