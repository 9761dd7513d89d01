/* Work sharing inside one pool dispatch: every thread starts on its own
 * static range (so each weight byte is still read by one thread, and a
 * quiet machine runs exactly the static split), takes it chunk by chunk,
 * and when it is done takes the remaining chunks of the other threads'
 * ranges. On a shared machine a thread that lost its core for a while no
 * longer holds up the whole step at the barrier: the other one finishes
 * its work. Internal to the engine module. */
#ifndef QVL_CLAIM_H
#define QVL_CLAIM_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct eng_claim {
	alignas(64) _Atomic size_t next; /* first column not yet handed out */
	size_t hi;			 /* end of this thread's range */
};

/* Before the dispatch, on the caller: cl[0..nth) = the static split of
 * [0, n) aligned to `align` (qvl_split). */
void claim_init(struct eng_claim *cl, int nth, size_t n, size_t align);
/* The next chunk for thread ith: [*a, *b), half of what is left of the
 * range it comes from, rounded down to a multiple of `min`, between min
 * and `chunk` columns (a multiple of min only if chunk is one): large calls while much is left, small
 * ones at the end, so that the threads finish a dispatch close together.
 * false when every range is exhausted. */
bool claim_next(struct eng_claim *cl, int ith, int nth, size_t chunk, size_t min, size_t *a,
		size_t *b);

#endif
