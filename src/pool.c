/* Persistent thread pool (see pool.h). One thread per usable physical core
 * (inside the process's binding, e.g. taskset); workers 1..n-1 are pinned
 * with hwloc to the first usable PU of their core; the caller is thread 0
 * and keeps its own binding (core 0 is left for it). With an explicit CPU
 * list the caller computes on the first CPU listed, so it is pinned there
 * too while the pool lives (see pin_caller()).
 *
 * A run is a generation: the caller publishes fn/arg, sets `pending` to the
 * number of workers and bumps `gen`. Workers spin on `gen` for a while
 * (POOL_SPIN_NS: a futex wake costs far more than a run) and then sleep on it
 * with FUTEX_WAIT. Each worker decrements `pending` when done; the caller
 * spins, then sleeps, on it.
 *
 * qvl_pool_run() is not reentrant: one caller thread drives a pool. */
#include "config.h"

#include <errno.h>
#include <hwloc.h>
#include <limits.h>
#include <linux/futex.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "pool.h"

#define POOL_MAX_THREADS 1024
/* How long an idle thread spins before sleeping. Measured on the 2-core
 * Zen 4 VM (loaded): an empty run takes 0.4 us while the workers spin and
 * 100-200 us when they must be woken from the futex. A decode step issues
 * hundreds of runs a few us apart, and the sampling between two tokens
 * takes well under this, so workers stay hot through a generation, while an
 * idle engine stops burning its cores 300 us after its last run. */
#define POOL_SPIN_NS 300000

struct pool_worker {
	alignas(64) pthread_t th;
	struct qvl_pool *pool;
	int ith;
	int pu;	  /* OS index of the PU it is pinned to, -1 if unpinned */
	int core; /* logical index of its core, -1 if unknown */
	hwloc_cpuset_t set;
	/* profiling: when this worker started the current run (written before
	 * its release on pending, read by the caller after its acquire) */
	uint64_t t_start;
};

struct qvl_pool {
	hwloc_topology_t topo;
	int nth;
	bool numa_local;
	struct pool_worker *w; /* nth entries, w[0] is the caller */
	bool caller_pinned;    /* pin_caller() pinned the creating thread */
	pthread_t creator;

	/* Written by the caller before the release on gen, read by workers
	 * after their acquire of gen. */
	qvl_task_fn fn;
	void *arg;
	struct qvl_pool_prof *prof; /* NULL: not profiling */
	uint64_t t_pub;		    /* profiling: when the run was published */

	/* Each hot word on its own cache line: workers poll gen while they
	 * write pending. */
	alignas(64) _Atomic uint32_t gen;
	_Atomic uint32_t sleepers;
	_Atomic bool stop;
	alignas(64) _Atomic uint32_t pending;
	_Atomic uint32_t caller_sleeping;
};

static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, (uint32_t *)uaddr, op, val, NULL, NULL, 0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}

/* Wait until gen != seen; returns the new gen. */
static uint32_t wait_gen(struct qvl_pool *p, uint32_t seen)
{
	uint64_t t0 = now_ns();
	uint32_t g;

	for (unsigned i = 1;; i++) {
		/* acquire: pairs with the fetch_add (seq_cst, so also release)
		 * on gen in qvl_pool_run(): fn/arg/stop written before it are
		 * visible after this load. */
		g = atomic_load_explicit(&p->gen, memory_order_acquire);
		if (g != seen)
			return g;
		cpu_relax();
		if (!(i & 63) && now_ns() - t0 > POOL_SPIN_NS)
			break;
	}
	/* seq_cst: the increment of sleepers and the caller's increment of
	 * gen form a Dekker pair with the caller's load of sleepers after its
	 * gen increment: either the caller sees us sleeping and wakes us, or
	 * we see the new gen here and do not sleep. */
	atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
	while ((g = atomic_load_explicit(&p->gen, memory_order_seq_cst)) == seen)
		futex(&p->gen, FUTEX_WAIT_PRIVATE, seen);
	/* relaxed: only a hint for the caller; a stale non-zero costs one
	 * useless wake syscall. */
	atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
	return g;
}

static void pin_self(struct qvl_pool *p, struct pool_worker *w)
{
	if (w->set)
		hwloc_set_cpubind(p->topo, w->set, HWLOC_CPUBIND_THREAD);
	/* Memory first touched by this thread comes from its own node. On a
	 * one-node machine this changes nothing (and is skipped). */
	if (p->numa_local)
		numa_set_localalloc();
}

static void *worker_main(void *arg)
{
	struct pool_worker *w = arg;
	struct qvl_pool *p = w->pool;
	uint32_t seen = 0;

	pin_self(p, w);
	for (;;) {
		seen = wait_gen(p, seen);
		/* relaxed: stop is written before the gen release we acquired */
		if (atomic_load_explicit(&p->stop, memory_order_relaxed))
			break;
		if (p->prof)
			w->t_start = now_ns();
		p->fn(p->arg, w->ith, p->nth);
		/* seq_cst: release pairs with the caller's acquire load of
		 * pending (our writes are visible when it sees 0); also the
		 * Dekker pair with caller_sleeping (see qvl_pool_run). */
		if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_seq_cst) == 1 &&
		    atomic_load_explicit(&p->caller_sleeping, memory_order_seq_cst))
			futex(&p->pending, FUTEX_WAKE_PRIVATE, 1);
	}
	return NULL;
}

/* Profiling: account one run that started at t_pub, whose caller share
 * ended at t_own, and which ended (all workers done) now. */
static void prof_run(struct qvl_pool *p, uint64_t t_own)
{
	uint64_t t_end = now_ns();
	struct qvl_pool_prof *pr = p->prof;

	pr->runs++;
	pr->own_ns += t_own - p->t_pub;
	pr->wait_ns += t_end - t_own;
	for (int i = 1; i < p->nth; i++)
		pr->wake_ns += p->w[i].t_start > p->t_pub ? p->w[i].t_start - p->t_pub : 0;
}

static void pool_wait(struct qvl_pool *p);

void qvl_pool_run(struct qvl_pool *p, qvl_task_fn fn, void *arg)
{
	uint64_t t_own = 0;

	if (p->nth == 1) {
		fn(arg, 0, 1);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	if (p->prof)
		p->t_pub = now_ns();
	/* relaxed: published by the seq_cst (release) increment of gen below */
	atomic_store_explicit(&p->pending, (uint32_t)p->nth - 1, memory_order_relaxed);
	/* seq_cst: release pairs with the acquire load in wait_gen(); seq_cst
	 * orders it before the load of sleepers (Dekker pair, see wait_gen). */
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst))
		futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX);
	fn(arg, 0, p->nth);
	if (p->prof)
		t_own = now_ns();
	pool_wait(p);
	if (p->prof)
		prof_run(p, t_own);
}

void qvl_pool_set_prof(struct qvl_pool *p, struct qvl_pool_prof *prof)
{
	p->prof = prof;
}

/* Until every worker has finished the current run: spin, then sleep. */
static void pool_wait(struct qvl_pool *p)
{
	uint64_t t0 = now_ns();
	uint32_t v;

	for (unsigned i = 1;; i++) {
		/* acquire: pairs with the workers' fetch_sub on pending, so
		 * their results are visible once it reads 0. */
		if (!atomic_load_explicit(&p->pending, memory_order_acquire))
			return;
		cpu_relax();
		if (!(i & 63) && now_ns() - t0 > POOL_SPIN_NS)
			break;
	}
	/* seq_cst: Dekker pair with the worker's fetch_sub + load of
	 * caller_sleeping: either the last worker sees the flag and wakes us,
	 * or we see pending == 0 here. */
	atomic_store_explicit(&p->caller_sleeping, 1, memory_order_seq_cst);
	while ((v = atomic_load_explicit(&p->pending, memory_order_seq_cst)) != 0)
		futex(&p->pending, FUTEX_WAIT_PRIVATE, v);
	/* relaxed: next run's store precedes any worker's check of it */
	atomic_store_explicit(&p->caller_sleeping, 0, memory_order_relaxed);
}

int qvl_pool_size(const struct qvl_pool *p)
{
	return p->nth;
}

/* Parse "0,2-3" into a list of OS CPU indexes, each of which must be in the
 * allowed set. */
static int parse_cpulist(const char *s, hwloc_const_cpuset_t allowed, int **out, int *count,
			 struct qvl_err *err)
{
	int *cpus = NULL, n = 0, cap = 0;
	const char *p = s;

	if (!*s)
		return qvl_errf(err, -EINVAL, "cpulist '%s': empty", s);
	while (*p) {
		long lo, hi;
		char *end;

		if (*p < '0' || *p > '9')
			goto bad;
		lo = strtol(p, &end, 10);
		hi = lo;
		p = end;
		if (*p == '-') {
			p++;
			if (*p < '0' || *p > '9')
				goto bad;
			hi = strtol(p, &end, 10);
			p = end;
		}
		if (*p == ',') {
			p++;
			if (!*p)
				goto bad;
		} else if (*p) {
			goto bad;
		}
		if (lo > hi) {
			free(cpus);
			return qvl_errf(err, -EINVAL, "cpulist '%s': range %ld-%ld is reversed", s,
					lo, hi);
		}
		for (long c = lo; c <= hi; c++) {
			if (c > INT_MAX || !hwloc_bitmap_isset(allowed, (unsigned)c)) {
				char buf[256];
				hwloc_bitmap_list_snprintf(buf, sizeof(buf), allowed);
				free(cpus);
				return qvl_errf(
				    err, -EINVAL,
				    "cpulist '%s': CPU %ld is not available (allowed: %s)", s, c,
				    buf);
			}
			for (int i = 0; i < n; i++)
				if (cpus[i] == c) {
					free(cpus);
					return qvl_errf(err, -EINVAL,
							"cpulist '%s': CPU %ld listed twice", s, c);
				}
			if (n == POOL_MAX_THREADS) {
				free(cpus);
				return qvl_errf(err, -EINVAL, "cpulist '%s': more than %d CPUs", s,
						POOL_MAX_THREADS);
			}
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				int *nc = realloc(cpus, (size_t)cap * sizeof(*cpus));
				if (!nc) {
					free(cpus);
					return qvl_errf(err, -ENOMEM, "cpulist: out of memory");
				}
				cpus = nc;
			}
			cpus[n++] = (int)c;
		}
	}
	*out = cpus;
	*count = n;
	return 0;
bad:
	free(cpus);
	return qvl_errf(err, -EINVAL,
			"cpulist '%s': bad syntax at offset %td (expected e.g. \"0,2-3\")", s,
			p - s);
}

static void pool_free(struct qvl_pool *p)
{
	if (p->w)
		for (int i = 0; i < p->nth; i++)
			if (p->w[i].set)
				hwloc_bitmap_free(p->w[i].set);
	free(p->w);
	hwloc_topology_destroy(p->topo);
	free(p);
}

/* The calling thread's binding from before a pool with an explicit CPU
 * list pinned it, and how many such pools (created by this thread) are
 * alive. A pool created meanwhile reads the binding from here, not the
 * one-PU pin; the last of them destroyed puts it back. */
static _Thread_local hwloc_bitmap_t caller_saved;
static _Thread_local int caller_pins;

/* The CPUs this pool may use: those hwloc allows (cgroups) and, within
 * them, the caller's own binding (taskset, numactl), so that a restricted
 * process stays inside its restriction. */
static hwloc_bitmap_t usable_cpus(hwloc_topology_t topo)
{
	hwloc_bitmap_t set = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topo));
	hwloc_bitmap_t bound = caller_pins ? hwloc_bitmap_dup(caller_saved) : hwloc_bitmap_alloc();

	if (set && bound &&
	    (caller_pins || hwloc_get_cpubind(topo, bound, HWLOC_CPUBIND_THREAD) == 0) &&
	    hwloc_bitmap_intersects(set, bound))
		hwloc_bitmap_and(set, set, bound);
	hwloc_bitmap_free(bound);
	return set;
}

/* An explicit CPU list: the caller is thread 0 and computes its share of
 * every run, so it runs on the first CPU listed (else it would float over
 * the workers' CPUs, or outside the list). Without a list it keeps its own
 * binding: it is the application's thread and may outlive the pool. */
static int pin_caller(struct qvl_pool *p, struct qvl_err *err)
{
	if (!caller_pins) {
		caller_saved = hwloc_bitmap_alloc();
		if (!caller_saved)
			return qvl_errf(err, -ENOMEM, "thread pool: out of memory");
		if (hwloc_get_cpubind(p->topo, caller_saved, HWLOC_CPUBIND_THREAD) < 0) {
			int e = errno ? errno : EINVAL;
			hwloc_bitmap_free(caller_saved);
			caller_saved = NULL;
			return qvl_errf(err, -e,
					"thread pool: cannot read the caller's binding: %s",
					strerror(e));
		}
	}
	if (hwloc_set_cpubind(p->topo, p->w[0].set, HWLOC_CPUBIND_THREAD) < 0) {
		int e = errno ? errno : EINVAL;
		if (!caller_pins) {
			hwloc_bitmap_free(caller_saved);
			caller_saved = NULL;
		}
		return qvl_errf(err, -e, "thread pool: cannot pin the caller to CPU %d: %s",
				p->w[0].pu, strerror(e));
	}
	caller_pins++;
	p->caller_pinned = true;
	p->creator = pthread_self();
	return 0;
}

/* Put the caller's binding back when the last pinning pool goes, if this is
 * the thread that created the pool (another thread's binding is left alone:
 * pool.h asks for one thread to create, drive and destroy a pool). */
static void unpin_caller(struct qvl_pool *p)
{
	if (!p->caller_pinned || !pthread_equal(p->creator, pthread_self()))
		return;
	p->caller_pinned = false;
	if (--caller_pins > 0)
		return;
	hwloc_set_cpubind(p->topo, caller_saved, HWLOC_CPUBIND_THREAD);
	hwloc_bitmap_free(caller_saved);
	caller_saved = NULL;
}

int qvl_cpulist_check(const char *cpulist, struct qvl_err *err)
{
	hwloc_topology_t topo;
	hwloc_bitmap_t usable;
	int *cpus = NULL, n = 0, rc;

	if (hwloc_topology_init(&topo) < 0)
		return qvl_errf(err, -ENODEV, "cpulist: hwloc cannot read the topology");
	if (hwloc_topology_load(topo) < 0 || !(usable = usable_cpus(topo))) {
		hwloc_topology_destroy(topo);
		return qvl_errf(err, -ENODEV, "cpulist: hwloc cannot read the topology");
	}
	rc = parse_cpulist(cpulist, usable, &cpus, &n, err);
	free(cpus);
	hwloc_bitmap_free(usable);
	hwloc_topology_destroy(topo);
	return rc;
}

/* Decide where each thread goes: w[i].set/pu/core. Default: one thread per
 * physical core that has a usable PU, on its first usable PU. */
static int pool_place(struct qvl_pool *p, int nthreads, const char *cpulist, struct qvl_err *err)
{
	hwloc_bitmap_t usable = usable_cpus(p->topo);
	hwloc_obj_t cores[POOL_MAX_THREADS];
	int ncores = 0, *cpus = NULL, ncpus = 0, rc = 0;

	if (!usable)
		return qvl_errf(err, -ENOMEM, "thread pool: out of memory");
	for (hwloc_obj_t c = NULL;
	     ncores < POOL_MAX_THREADS &&
	     (c = hwloc_get_next_obj_by_type(p->topo, HWLOC_OBJ_CORE, c)) != NULL;)
		if (hwloc_bitmap_intersects(c->cpuset, usable))
			cores[ncores++] = c;
	if (cpulist) {
		rc = parse_cpulist(cpulist, usable, &cpus, &ncpus, err);
		if (rc < 0)
			goto out;
		nthreads = ncpus;
	} else if (nthreads <= 0) {
		nthreads = ncores > 0 ? ncores : 1;
	} else if (nthreads > POOL_MAX_THREADS) {
		rc = qvl_errf(err, -EINVAL, "threads %d: at most %d", nthreads, POOL_MAX_THREADS);
		goto out;
	}
	p->nth = nthreads;
	p->w = aligned_alloc(64, (size_t)nthreads * sizeof(*p->w));
	if (!p->w) {
		rc = qvl_errf(err, -ENOMEM, "thread pool: out of memory");
		goto out;
	}
	memset(p->w, 0, (size_t)nthreads * sizeof(*p->w));
	for (int i = 0; i < nthreads; i++) {
		struct pool_worker *w = &p->w[i];
		hwloc_obj_t pu = NULL, core;

		w->pool = p;
		w->ith = i;
		w->pu = w->core = -1;
		if (cpus) {
			pu = hwloc_get_pu_obj_by_os_index(p->topo, (unsigned)cpus[i]);
		} else if (ncores > 0) {
			/* More threads than cores wrap around (oversubscribed). */
			core = cores[i % ncores];
			for (pu = hwloc_get_next_obj_inside_cpuset_by_type(p->topo, core->cpuset,
									   HWLOC_OBJ_PU, NULL);
			     pu && !hwloc_bitmap_isset(usable, pu->os_index);
			     pu = hwloc_get_next_obj_inside_cpuset_by_type(p->topo, core->cpuset,
									   HWLOC_OBJ_PU, pu))
				;
		}
		if (!pu)
			continue;
		w->set = hwloc_bitmap_dup(pu->cpuset);
		if (!w->set) {
			rc = qvl_errf(err, -ENOMEM, "thread pool: out of memory");
			goto out;
		}
		w->pu = (int)pu->os_index;
		core = hwloc_get_ancestor_obj_by_type(p->topo, HWLOC_OBJ_CORE, pu);
		w->core = core ? (int)core->logical_index : -1;
	}
out:
	free(cpus);
	hwloc_bitmap_free(usable);
	return rc;
}

int qvl_cpus_allowed(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN); /* more CPUs than a cpu_set_t holds */
	return n > 0 && n < 1 << 20 ? (int)n : 1;
}

int qvl_threads_fit(int threads, char *why, size_t cap)
{
	int cpus = qvl_cpus_allowed();

	if (cap)
		why[0] = '\0';
	if (threads <= cpus)
		return threads;
	if (cap)
		snprintf(why, cap,
			 "threads %d is more than the %d CPU%s this process may run on: using %d "
			 "(extra threads would only take turns on the same CPUs)",
			 threads, cpus, cpus == 1 ? "" : "s", cpus);
	return cpus;
}

static bool verbose(void)
{
	return qvl_env_flag("QVL_POOL_VERBOSE", false);
}

static void affinity_task(void *arg, int ith, int nth)
{
	cpu_set_t *sets = arg;

	(void)nth;
	if (sched_getaffinity(0, sizeof(sets[ith]), &sets[ith]) < 0)
		CPU_ZERO(&sets[ith]); /* more than CPU_SETSIZE CPUs: reported as none */
}

/* "0,2-3" */
static void cpuset_list(const cpu_set_t *s, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = 0;
	for (int c = 0; c < CPU_SETSIZE && off < cap; c++) {
		int e = c;
		if (!CPU_ISSET(c, s))
			continue;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, s))
			e++;
		int r = e > c ? snprintf(buf + off, cap - off, "%s%d-%d", off ? "," : "", c, e)
			      : snprintf(buf + off, cap - off, "%s%d", off ? "," : "", c);
		if (r < 0)
			break;
		off += (size_t)r;
		c = e;
	}
}

/* QVL_POOL_VERBOSE: every thread reads the CPU set the kernel really gives
 * it (sched_getaffinity, from inside a run), and the caller prints them. */
static void report_affinity(struct qvl_pool *p)
{
	cpu_set_t *sets = calloc((size_t)p->nth, sizeof(*sets));
	char list[1024];

	if (!sets)
		return;
	qvl_pool_run(p, affinity_task, sets);
	for (int i = 0; i < p->nth; i++) {
		cpuset_list(&sets[i], list, sizeof(list));
		fprintf(stderr, "qvl pool: thread %d of %d: affinity %s%s\n", i, p->nth, list,
			i		   ? ""
			: p->caller_pinned ? " (caller, pinned)"
					   : " (caller)");
	}
	free(sets);
}

int qvl_pool_create(struct qvl_pool **out, int nthreads, const char *cpulist, struct qvl_err *err)
{
	struct qvl_pool *p = aligned_alloc(64, sizeof(*p));
	int rc;

	*out = NULL;
	if (!p)
		return qvl_errf(err, -ENOMEM, "thread pool: out of memory");
	memset(p, 0, sizeof(*p));
	if (hwloc_topology_init(&p->topo) < 0 || hwloc_topology_load(p->topo) < 0) {
		free(p);
		return qvl_errf(err, -ENODEV, "thread pool: hwloc cannot read the CPU topology");
	}
	rc = pool_place(p, nthreads, cpulist, err);
	if (rc < 0) {
		pool_free(p);
		return rc;
	}
	p->numa_local = numa_available() >= 0 && numa_num_configured_nodes() > 1;
	/* relaxed: no thread exists yet; pthread_create orders these stores */
	atomic_store_explicit(&p->gen, 0, memory_order_relaxed);
	atomic_store_explicit(&p->stop, false, memory_order_relaxed);

	/* Without a CPU list the caller (thread 0) is not pinned: with the
	 * workers on the other cores, the scheduler leaves core 0's PU to it.
	 * Workers are created first so that they inherit the caller's own
	 * binding, not the pin. */
	for (int i = 1; i < p->nth; i++) {
		rc = pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]);
		if (rc) {
			p->nth = i; /* destroy joins the ones that started */
			qvl_pool_destroy(p);
			return qvl_errf(err, -rc, "thread pool: cannot create thread %d: %s", i,
					strerror(rc));
		}
	}
	if (cpulist && p->w[0].set) {
		rc = pin_caller(p, err);
		if (rc < 0) {
			qvl_pool_destroy(p);
			return rc;
		}
	}
	if (verbose())
		report_affinity(p);
	*out = p;
	return 0;
}

void qvl_pool_destroy(struct qvl_pool *p)
{
	if (!p)
		return;
	/* relaxed: published by the release increment of gen below */
	atomic_store_explicit(&p->stop, true, memory_order_relaxed);
	/* seq_cst: release pairs with the acquire in wait_gen(); Dekker with
	 * sleepers there, but we wake unconditionally anyway. */
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_seq_cst);
	futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX);
	for (int i = 1; i < p->nth; i++)
		pthread_join(p->w[i].th, NULL);
	unpin_caller(p);
	pool_free(p);
}

void qvl_pool_describe(const struct qvl_pool *p, char *buf, size_t cap)
{
	size_t off = 0;

	if (!cap)
		return;
	buf[0] = 0;
	for (int i = 0; i < p->nth && off < cap; i++) {
		const struct pool_worker *w = &p->w[i];
		int r;

		if (w->pu >= 0)
			r = snprintf(buf + off, cap - off, "%sthread %d -> PU %d (core %d%s)",
				     i ? ", " : "", i, w->pu, w->core,
				     i			? ""
				     : p->caller_pinned ? ", caller"
							: ", caller, not pinned");
		else
			r = snprintf(buf + off, cap - off, "%sthread %d -> unpinned", i ? ", " : "",
				     i);
		if (r < 0)
			break;
		off += (size_t)r;
	}
}

struct pool_copy {
	uint8_t *dst;
	const uint8_t *src;
	size_t bytes;
};

static void pool_copy_task(void *arg, int ith, int nth)
{
	struct pool_copy *t = arg;
	size_t b0, b1;

	qvl_split(t->bytes, 4096, ith, nth, &b0, &b1);
	if (b1 > b0)
		memcpy(t->dst + b0, t->src + b0, b1 - b0);
}

void qvl_pool_copy(struct qvl_pool *p, void *dst, const void *src, size_t bytes)
{
	struct pool_copy t = {dst, src, bytes};

	if (p)
		qvl_pool_run(p, pool_copy_task, &t);
	else
		pool_copy_task(&t, 0, 1);
}

void qvl_split(size_t n, size_t align, int ith, int nth, size_t *lo, size_t *hi)
{
	if (align < 1)
		align = 1;
	if (nth < 1)
		nth = 1;
	/* Split whole units of `align`; the ragged end goes to the last range. */
	size_t units = (n + align - 1) / align;
	size_t per = units / (size_t)nth, rem = units % (size_t)nth, i = (size_t)ith;
	size_t a = i * per + (i < rem ? i : rem);
	size_t b = a + per + (i < rem ? 1 : 0);

	a *= align;
	b *= align;
	*lo = a < n ? a : n;
	*hi = b < n ? b : n;
}

static struct qvl_cache_info cache_ci;

static size_t cache_size(hwloc_topology_t t, hwloc_obj_type_t type, size_t dflt)
{
	hwloc_obj_t o = hwloc_get_obj_by_type(t, type, 0);

	return o && o->attr && o->attr->cache.size ? (size_t)o->attr->cache.size : dflt;
}

static void cache_info_init(void)
{
	hwloc_topology_t t;

	/* Defaults: a typical x86 core of the last decade. */
	cache_ci = (struct qvl_cache_info){32 << 10, 1 << 20, 16 << 20, 1};
	if (hwloc_topology_init(&t) < 0)
		return;
	if (hwloc_topology_load(t) == 0) {
		int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
		cache_ci.l1d = cache_size(t, HWLOC_OBJ_L1CACHE, cache_ci.l1d);
		cache_ci.l2 = cache_size(t, HWLOC_OBJ_L2CACHE, cache_ci.l2);
		cache_ci.l3 = cache_size(t, HWLOC_OBJ_L3CACHE, cache_ci.l3);
		cache_ci.physical_cores = n > 0 ? n : 1;
	}
	hwloc_topology_destroy(t);
}

void qvl_cache_info(struct qvl_cache_info *ci)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, cache_info_init);
	*ci = cache_ci;
}
