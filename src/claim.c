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

bool claim_next(struct eng_claim *cl, int ith, int nth, size_t chunk, size_t *a, size_t *b)
{
	for (int d = 0; d < nth; d++) {
		struct eng_claim *c = &cl[(ith + d) % nth];
		size_t s;

		/* cheap exit once a range is used up: no more increments */
		if (atomic_load_explicit(&c->next, memory_order_relaxed) >= c->hi)
			continue;
		/* relaxed: the counter only hands out disjoint column ranges;
		 * what a thread writes there reaches the caller through the
		 * pool's barrier (release/acquire on pending) */
		s = atomic_fetch_add_explicit(&c->next, chunk, memory_order_relaxed);
		if (s < c->hi) {
			*a = s;
			*b = c->hi - s < chunk ? c->hi : s + chunk;
			return true;
		}
	}
	return false;
}
