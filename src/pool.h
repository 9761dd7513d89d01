/* The persistent thread pool: one worker per physical core (hwloc), pinned,
 * created once per engine; no thread is created per request or per token.
 * Work is split statically: every task runs on all nth threads with its index
 * ith (the caller is thread 0), and qvl_pool_run returns when all are done. */
#ifndef QVL_POOL_H
#define QVL_POOL_H

#include <stdint.h>

#include "err.h"

struct qvl_pool;

typedef void (*qvl_task_fn)(void *arg, int ith, int nth);

/* nthreads <= 0: one per physical core usable by the caller (its binding,
 * e.g. taskset, is honoured). cpulist (may be NULL): explicit logical CPUs
 * "0,2-3", one thread each (overrides nthreads). Workers (threads 1..n-1)
 * are pinned to their CPU. Thread 0 is the caller: without a cpulist it
 * keeps its own binding (the first core is left for it); with one it is
 * pinned to the first CPU listed until qvl_pool_destroy, which restores its
 * binding when called on the creating thread (pools created meanwhile still
 * see the original binding). One thread creates, runs and destroys a pool.
 *
 * Environment: QVL_POOL_VERBOSE=1 prints, on creation, the CPU set each
 * thread really runs on (sched_getaffinity read by the thread itself) to
 * stderr: "qvl pool: thread I of N: affinity 0-3". */
int qvl_pool_create(struct qvl_pool **out, int nthreads, const char *cpulist, struct qvl_err *err);
/* Check a cpulist as qvl_pool_create would (syntax, CPUs allowed to this
 * process, no repeats), without creating anything: for option parsers that
 * must name the flag or file:line. */
int qvl_cpulist_check(const char *cpulist, struct qvl_err *err);
/* The CPUs this process may run on (its affinity mask, e.g. taskset's; at
 * least 1): the most compute threads worth asking for, since more would
 * take turns on the same CPUs and the pool's spinning barriers then wait
 * for descheduled threads. qvlctl and qvld clamp --threads to it through
 * qvl_threads_fit. */
int qvl_cpus_allowed(void);
/* The clamp qvlctl and qvld apply to a requested thread count: threads if
 * it is within qvl_cpus_allowed(), else that count, with why (cap bytes,
 * "" when nothing was clamped) naming both numbers for the caller to print
 * behind its own prefix, so both programs say it the same way. */
int qvl_threads_fit(int threads, char *why, size_t cap);
void qvl_pool_run(struct qvl_pool *p, qvl_task_fn fn, void *arg);
int qvl_pool_size(const struct qvl_pool *p);
/* Describe the placement ("thread 1 -> PU 1 (core 1)", ...) into buf. */
void qvl_pool_describe(const struct qvl_pool *p, char *buf, size_t cap);
void qvl_pool_destroy(struct qvl_pool *p);

/* Dispatch costs, accumulated while a profile is attached (QVL_PROFILE, see
 * src/profile.h): per run, the caller's own share of the work, the time it
 * then waits for the workers (their imbalance plus the barrier), and each
 * worker's delay from the publication of the run to its start (wake-up). */
struct qvl_pool_prof {
	uint64_t runs;
	uint64_t own_ns;  /* caller computing its share */
	uint64_t wait_ns; /* caller waiting for the last worker */
	uint64_t wake_ns; /* sum over workers of publish -> start */
};
/* Attach (prof != NULL) or detach; the caller thread only, between runs. */
void qvl_pool_set_prof(struct qvl_pool *p, struct qvl_pool_prof *prof);

/* Split [0, n) into nth near-equal contiguous ranges, aligned to `align`
 * (align >= 1); thread ith gets [*lo, *hi). */
void qvl_split(size_t n, size_t align, int ith, int nth, size_t *lo, size_t *hi);

/* memcpy of bytes from src to dst, split over the pool's threads in
 * 4 KiB-aligned ranges (pool NULL: on the caller): copying weights into
 * memory of one's own at load. */
void qvl_pool_copy(struct qvl_pool *p, void *dst, const void *src, size_t bytes);

/* Cache sizes from hwloc (bytes; sensible defaults if hwloc cannot tell). */
struct qvl_cache_info {
	size_t l1d, l2, l3;
	int physical_cores;
};
void qvl_cache_info(struct qvl_cache_info *ci);

#endif
