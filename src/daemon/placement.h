/* Where qvld's own threads run, next to the engine's pool (one compute
 * worker per physical core, src/pool.c):
 *   scheduler thread: it is the pool's thread 0 (the caller of every pass),
 *     so it is pinned to the PU the pool leaves for thread 0: the first
 *     usable PU of the first core (or the first CPU of --cpus).
 *   ring poller: a core no compute thread uses, if there is one (--threads
 *     below the core count); else the SMT sibling of the scheduler's core
 *     (the sibling is otherwise idle: the pool uses one PU per core, and the
 *     request the poller builds is read next by the scheduler on the same
 *     core's L1/L2); else (every core computes, no SMT) the scheduler's own
 *     PU: the poller sleeps in epoll when the rings are idle, and when it
 *     wakes it delays thread 0's serial work (sampling, detokenizing) between
 *     passes instead of a worker's share in the middle of one.
 * The decision and its reason go to the log and to `qvlctl status`. */
#ifndef QVLD_PLACEMENT_H
#define QVLD_PLACEMENT_H

#include <stddef.h>

struct qvld_placement {
	int sched_pu, poller_pu; /* OS indexes, -1: not pinned */
	char poller_why[160];
};

/* threads/cpus as given to the engine. 0, or -errno (hwloc failed: nothing
 * is pinned, the reason says so). */
int qvld_place(int threads, const char *cpus, struct qvld_placement *pl);
/* Pin the calling thread to pu (no-op for pu < 0). */
int qvld_pin_self(int pu);

#endif
