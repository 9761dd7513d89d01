/* Work sharing inside one dispatch (see claim.h). */
#include "config.h"

#include "claim.h"
#include "pool.h"

void claim_init(struct eng_claim *cl, int nth, size_t n, size_t align)
{
	for (int t = 0; t < nth; t++) {
		size_t lo, hi;

		qvl_split(n, align, t, nth, &lo, &hi);
		/* relaxed: published to the workers by the release increment
		 * of the pool's generation in qvl_pool_run() */
		atomic_store_explicit(&cl[t].next, lo, memory_order_relaxed);
		cl[t].hi = hi;
	}
}

bool claim_next(struct eng_claim *cl, int ith, int nth, size_t chunk, size_t min, size_t *a,
		size_t *b)
{
	for (int d = 0; d < nth; d++) {
		struct eng_claim *c = &cl[(ith + d) % nth];
		size_t s, take;

		/* relaxed: a hint for the size only (a stale value gives
		 * another size, never an overlap); also the cheap exit once
		 * a range is used up: no more increments */
		s = atomic_load_explicit(&c->next, memory_order_relaxed);
		if (s >= c->hi)
			continue;
		/* half of what is left, in multiples of min, within [min, chunk] */
		take = (c->hi - s) / 2 / min * min;
		take = take < min ? min : take > chunk ? chunk : take;
		/* relaxed: the counter only hands out disjoint column ranges;
		 * what a thread writes there reaches the caller through the
		 * pool's barrier (release/acquire on pending) */
		s = atomic_fetch_add_explicit(&c->next, take, memory_order_relaxed);
		if (s < c->hi) {
			*a = s;
			*b = c->hi - s < take ? c->hi : s + take;
			return true;
		}
	}
	return false;
}
