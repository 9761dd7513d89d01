/* Thread pool: every thread index runs every task, results are visible to
 * the caller when qvl_pool_run returns, workers survive sleeping (futex) and
 * spinning, every thread really runs where it was placed (its own
 * sched_getaffinity, read from inside a task), cpulist parsing errors are
 * clear, qvl_split covers [0, n) exactly, cache info is sane. */
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

/* Each thread's CPU set as the kernel reports it to that thread. */
struct aff_state {
	cpu_set_t set[MAXT];
	int rc[MAXT];
};

static void aff_task(void *arg, int ith, int nth)
{
	struct aff_state *a = arg;

	(void)nth;
	if (ith >= 0 && ith < MAXT)
		a->rc[ith] = sched_getaffinity(0, sizeof(a->set[ith]), &a->set[ith]);
}

static void set_str(const cpu_set_t *s, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = 0;
	for (int c = 0; c < CPU_SETSIZE && off + 12 < cap; c++)
		if (CPU_ISSET(c, s))
			off += (size_t)snprintf(buf + off, cap - off, "%s%d", off ? "," : "", c);
}

/* Run aff_task on every thread of p and compare thread i's real CPU set with
 * want[i]: a CPU number means exactly that CPU, -1 means exactly `whole`.
 * Returns the number of threads elsewhere (each one diagnosed). */
static int affinity_mismatches(struct qvl_pool *p, const int *want, const cpu_set_t *whole)
{
	struct aff_state *a = calloc(1, sizeof(*a));
	int n = qvl_pool_size(p), bad = 0;
	char got[256], exp[256];

	if (!a || n > MAXT) {
		free(a);
		return 1;
	}
	for (int i = 0; i < n; i++)
		a->rc[i] = -2; /* a thread that does not run the task stays at -2 */
	qvl_pool_run(p, aff_task, a);
	for (int i = 0; i < n; i++) {
		cpu_set_t w;
		if (want[i] >= 0) {
			CPU_ZERO(&w);
			CPU_SET(want[i], &w);
		} else {
			w = *whole;
		}
		if (a->rc[i] == 0 && CPU_EQUAL(&a->set[i], &w))
			continue;
		set_str(&a->set[i], got, sizeof(got));
		set_str(&w, exp, sizeof(exp));
		diag("thread %d runs on {%s} (sched_getaffinity %d), asked {%s}", i, got, a->rc[i],
		     exp);
		bad++;
	}
	free(a);
	return bad;
}

/* Where qvl_pool_describe says each thread is: the PU of "thread i -> PU n",
 * -1 for the caller without a cpulist and for unpinned threads. */
static void described_pus(struct qvl_pool *p, int *want)
{
	char desc[4096], key[32];

	qvl_pool_describe(p, desc, sizeof(desc));
	for (int i = 0; i < qvl_pool_size(p) && i < MAXT; i++) {
		const char *at;
		want[i] = -1;
		snprintf(key, sizeof(key), "thread %d -> PU ", i);
		if (i > 0 && (at = strstr(desc, key)) != NULL)
			want[i] = atoi(at + strlen(key));
	}
}

/* The caller keeps its binding, each worker runs on exactly its PU, which is
 * one the process may use. */
static int default_placement_ok(struct qvl_pool *p, const cpu_set_t *aff)
{
	int want[MAXT];

	if (qvl_pool_size(p) > MAXT)
		return 0;
	described_pus(p, want);
	for (int i = 1; i < qvl_pool_size(p); i++)
		if (want[i] < 0 || !CPU_ISSET(want[i], aff)) {
			diag("thread %d: described on PU %d, outside the process's CPUs", i,
			     want[i]);
			return 0;
		}
	return affinity_mismatches(p, want, aff) == 0;
}

static int caller_binding_is(const cpu_set_t *want)
{
	cpu_set_t now;

	return sched_getaffinity(0, sizeof(now), &now) == 0 && CPU_EQUAL(&now, want);
}

/* An explicit cpulist pins the caller too (it computes thread 0's share) and
 * gives the binding back on destroy; a default pool created meanwhile still
 * spans the caller's own binding. */
static void test_cpulist_pinning(const cpu_set_t *aff, int naff, int default_size)
{
	struct qvl_err err = {{0}};
	struct qvl_pool *p = NULL, *q = NULL;
	int cpu[2] = {-1, -1}, k = 0;
	char list[32];

	for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
		if (CPU_ISSET(c, aff))
			cpu[k++] = c;
	if (naff < 2)
		diag("one CPU allowed: the caller's pin cannot be told from its binding");
	snprintf(list, sizeof(list), "%d", cpu[0]);
	if (!ok(qvl_pool_create(&p, 0, list, &err) == 0 && qvl_pool_size(p) == 1,
		"cpulist \"%s\" gives one thread", list)) {
		diag("%s", err.msg);
		return;
	}
	char desc[256];
	qvl_pool_describe(p, desc, sizeof(desc));
	snprintf(list, sizeof(list), "PU %d ", cpu[0]);
	ok(strstr(desc, list) != NULL && affinity_mismatches(p, cpu, aff) == 0,
	   "cpulist \"%d\": thread 0 (the caller) really runs on CPU %d only: %s", cpu[0], cpu[0],
	   desc);
	int rc = qvl_pool_create(&q, 0, NULL, &err);
	ok(rc == 0 && qvl_pool_size(q) == default_size,
	   "a default pool created while the caller is pinned still spans its binding (%d "
	   "threads, want %d)",
	   q ? qvl_pool_size(q) : -1, default_size);
	qvl_pool_destroy(q);
	qvl_pool_destroy(p);
	ok(caller_binding_is(aff), "the caller's binding is restored when the pool goes");

	if (naff < 2) {
		skip(2, "one CPU allowed: no two-CPU list");
		return;
	}
	snprintf(list, sizeof(list), "%d,%d", cpu[0], cpu[1]);
	if (!ok(qvl_pool_create(&p, 0, list, &err) == 0 && qvl_pool_size(p) == 2,
		"cpulist \"%s\" gives two threads", list)) {
		diag("%s", err.msg);
		skip(1, "no pool");
		return;
	}
	ok(affinity_mismatches(p, cpu, aff) == 0,
	   "cpulist \"%s\": thread 0 really runs on CPU %d only, thread 1 on CPU %d only", list,
	   cpu[0], cpu[1]);
	qvl_pool_destroy(p);
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
	int rc, default_size = 0;

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
	char twice[32];
	snprintf(twice, sizeof(twice), "%d,%d", first, first);

	/* qvlctl's and qvld's --threads clamp: the count within the mask, a
	 * message naming both numbers only when it clamps */
	char why[192], head[64];
	int fit = qvl_threads_fit(naff, why, sizeof(why));
	ok(fit == naff && !why[0], "qvl_threads_fit(%d) on %d CPUs: %d, no message", naff, naff,
	   fit);
	fit = qvl_threads_fit(naff + 3, why, sizeof(why));
	snprintf(head, sizeof(head), "threads %d is more than the %d CPU%s ", naff + 3, naff,
		 naff == 1 ? "" : "s");
	ok(fit == naff && strstr(why, head) == why && strstr(why, "may run on: using "),
	   "qvl_threads_fit(%d) on %d CPUs: %d, \"%s\"", naff + 3, naff, fit, why);

	rc = qvl_pool_create(&p, 0, NULL, &err);
	ok(rc == 0 && qvl_pool_size(p) >= 1 && qvl_pool_size(p) <= ci.physical_cores &&
	       qvl_pool_size(p) <= naff,
	   "default pool: one thread per usable physical core (%d of %d cores, %d CPUs allowed)",
	   p ? qvl_pool_size(p) : -1, ci.physical_cores, naff);
	if (p) {
		qvl_pool_describe(p, desc, sizeof(desc));
		diag("%s", desc);
		default_size = qvl_pool_size(p);
		ok(default_placement_ok(p, &aff),
		   "default pool: the caller keeps its binding, each worker runs on exactly its "
		   "PU");
		ok(run_many(p, 20000, 0, s),
		   "20000 back-to-back runs reach every thread once each");
		ok(run_many(p, 50, 1, s), "runs after workers slept on the futex");
		qvl_pool_destroy(p);
	} else {
		skip(3, "no pool: %s", err.msg);
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
		ok(default_placement_ok(p, &aff),
		   "5 threads: each worker runs on exactly its PU, the caller keeps its binding");
		free(v);
		qvl_pool_destroy(p);
	}

	rc = qvl_pool_create(&p, 1, NULL, &err);
	ok(rc == 0 && run_many(p, 100, 0, s), "single-thread pool runs inline");
	qvl_pool_destroy(p);

	test_cpulist_pinning(&aff, naff, default_size);

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
