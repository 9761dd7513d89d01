/* Thread pool: every thread index runs every task, results are visible to
 * the caller when qvl_pool_run returns, workers survive sleeping (futex) and
 * spinning, cpulist parsing errors are clear, qvl_split covers [0, n)
 * exactly, cache info is sane. */
#include "config.h"

#include <sched.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"
#include "tap.h"

#define MAXT 64

struct run_state {
	int nth_seen[MAXT];
	long counts[MAXT]; /* plain writes: the pool must publish them */
	long round;
	atomic_int bad_nth;
};

static void task(void *arg, int ith, int nth)
{
	struct run_state *s = arg;

	if (ith < 0 || ith >= MAXT || nth < 1) {
		atomic_fetch_add_explicit(&s->bad_nth, 1, memory_order_relaxed);
		return;
	}
	s->nth_seen[ith] = nth;
	s->counts[ith]++;
	if (s->counts[ith] != s->round) /* every run reaches every thread once */
		atomic_fetch_add_explicit(&s->bad_nth, 1, memory_order_relaxed);
}

static int run_many(struct qvl_pool *p, int runs, int sleep_every, struct run_state *s)
{
	int n = qvl_pool_size(p);

	memset(s, 0, sizeof(*s));
	for (int r = 0; r < runs; r++) {
		s->round = r + 1;
		qvl_pool_run(p, task, s);
		if (sleep_every && r % sleep_every == 0)
			usleep(300); /* let the workers fall asleep on the futex */
	}
	for (int i = 0; i < n; i++)
		if (s->counts[i] != runs || s->nth_seen[i] != n)
			return 0;
	return atomic_load(&s->bad_nth) == 0;
}

struct sum_task {
	const long *v;
	size_t n;
	long part[MAXT];
};

static void sum_fn(void *arg, int ith, int nth)
{
	struct sum_task *t = arg;
	size_t lo, hi;
	long s = 0;

	qvl_split(t->n, 16, ith, nth, &lo, &hi);
	for (size_t i = lo; i < hi; i++)
		s += t->v[i];
	t->part[ith] = s;
}

static void test_split(void)
{
	int bad = 0;

	for (size_t n = 0; n < 300; n += 7)
		for (size_t align = 1; align <= 64; align *= 4)
			for (int nth = 1; nth <= 9; nth++) {
				size_t expect = 0, maxlen = 0, minlen = (size_t)-1;
				for (int i = 0; i < nth; i++) {
					size_t lo, hi;
					qvl_split(n, align, i, nth, &lo, &hi);
					if (lo != expect || hi < lo || (lo % align && lo != n))
						bad++;
					expect = hi;
					maxlen = hi - lo > maxlen ? hi - lo : maxlen;
					minlen = hi - lo < minlen ? hi - lo : minlen;
				}
				/* contiguous, covering, balanced to one unit (plus the ragged end)
				 */
				if (expect != n ||
				    (n >= align * (size_t)nth && maxlen - minlen >= 2 * align))
					bad++;
			}
	ok(!bad, "qvl_split: contiguous aligned ranges covering [0, n) exactly, balanced");
}

int main(void)
{
	struct qvl_err err = {{0}};
	struct qvl_pool *p = NULL;
	struct qvl_cache_info ci;
	struct run_state *s = calloc(1, sizeof(*s));
	char desc[512];
	int rc;

	plan(14);
	qvl_cache_info(&ci);
	diag("caches: L1d %zu, L2 %zu, L3 %zu bytes, %d physical cores", ci.l1d, ci.l2, ci.l3,
	     ci.physical_cores);
	ok(ci.l1d >= 4096 && ci.l2 >= ci.l1d && ci.physical_cores >= 1, "cache info sane");

	/* the CPUs this process may run on (taskset): the pool stays inside */
	cpu_set_t aff;
	int first = -1, naff = 0;
	CPU_ZERO(&aff);
	sched_getaffinity(0, sizeof(aff), &aff);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &aff) && (naff++, first < 0))
			first = c;
	char one[32], twice[32], desc_want[48];
	snprintf(one, sizeof(one), "%d", first);
	snprintf(twice, sizeof(twice), "%d,%d", first, first);
	snprintf(desc_want, sizeof(desc_want), "PU %d ", first);

	rc = qvl_pool_create(&p, 0, NULL, &err);
	ok(rc == 0 && qvl_pool_size(p) >= 1 && qvl_pool_size(p) <= ci.physical_cores &&
	       qvl_pool_size(p) <= naff,
	   "default pool: one thread per usable physical core (%d of %d cores, %d CPUs allowed)",
	   p ? qvl_pool_size(p) : -1, ci.physical_cores, naff);
	if (p) {
		qvl_pool_describe(p, desc, sizeof(desc));
		diag("%s", desc);
		ok(run_many(p, 20000, 0, s),
		   "20000 back-to-back runs reach every thread once each");
		ok(run_many(p, 50, 1, s), "runs after workers slept on the futex");
		qvl_pool_destroy(p);
	} else {
		skip(2, "no pool: %s", err.msg);
	}

	/* more threads than cores (oversubscribed) must still be correct */
	rc = qvl_pool_create(&p, 5, NULL, &err);
	ok(rc == 0 && qvl_pool_size(p) == 5 && run_many(p, 2000, 97, s),
	   "5 threads (oversubscribed): every index 0..4 runs every task");
	if (p) {
		long *v = malloc(10007 * sizeof(long));
		struct sum_task t = {.v = v, .n = 10007};
		long want = 0, got = 0;
		for (size_t i = 0; i < t.n; i++)
			want += v[i] = (long)(i * 2654435761u % 1000);
		qvl_pool_run(p, sum_fn, &t);
		for (int i = 0; i < 5; i++)
			got += t.part[i];
		ok(got == want, "split work summed across threads: %ld == %ld", got, want);
		free(v);
		qvl_pool_destroy(p);
	}

	rc = qvl_pool_create(&p, 1, NULL, &err);
	ok(rc == 0 && run_many(p, 100, 0, s), "single-thread pool runs inline");
	qvl_pool_destroy(p);

	rc = qvl_pool_create(&p, 0, one, &err);
	ok(rc == 0 && qvl_pool_size(p) == 1, "cpulist \"%s\" gives one thread", one);
	if (p) {
		qvl_pool_describe(p, desc, sizeof(desc));
		ok(strstr(desc, desc_want) != NULL, "pinned to PU %d: %s", first, desc);
		qvl_pool_destroy(p);
	} else {
		skip(1, "cpulist 0 failed: %s", err.msg);
	}

	p = NULL;
	rc = qvl_pool_create(&p, 0, "0,", &err);
	ok(rc == -EINVAL && !p && strstr(err.msg, "'0,'"), "cpulist \"0,\" rejected: %s", err.msg);
	rc = qvl_pool_create(&p, 0, "3-1", &err);
	ok(rc == -EINVAL && strstr(err.msg, "reversed"), "cpulist \"3-1\" rejected: %s", err.msg);
	rc = qvl_pool_create(&p, 0, twice, &err);
	ok(rc == -EINVAL && strstr(err.msg, "twice"), "cpulist \"%s\" rejected: %s", twice,
	   err.msg);
	rc = qvl_pool_create(&p, 0, "99999", &err);
	ok(rc == -EINVAL && strstr(err.msg, "not available"), "cpulist \"99999\" rejected: %s",
	   err.msg);
	test_split();
	free(s);
	return done_testing();
}
