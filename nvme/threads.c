/* Several I/O threads over one file (nvme.h, nv_read_threads): the shards
 * are cut into contiguous runs of about equal bytes; each thread opens its
 * own reader (ring, registered file, staging slots), registers the span of
 * its run's destinations and reads its run with nv_read. One shared stop
 * flag makes the first error stop every reader from issuing more; each
 * drains its own reads before its thread exits. The run read on the
 * caller's thread may use a reader the caller keeps (nv_opts.keep). */
#define _GNU_SOURCE
#include "config.h"

#include "nvme.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Bytes faulted in per madvise: the readers wait for the first piece only,
 * then find each next one done while the device reads the previous. */
#define NV_FILL_PIECE (16u << 20)

/* One run's destination span, faulted in ahead of its reads. */
struct nv_fill {
	uint8_t *lo;
	size_t len;
	const struct nv_shard *s; /* the run's shards, whose dst lie in the span */
	size_t n;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* broadcast at each piece */
	size_t ready;	   /* bytes from lo faulted in (under mu) */
	atomic_bool *stop;
	double seconds;
	pthread_t tid;
	bool started;
};

bool nv_fill_ready(struct nv_fill *f, const void *p, size_t n)
{
	const uint8_t *b = p;
	bool ok;

	if (b < f->lo || b >= f->lo + f->len)
		return true;
	pthread_mutex_lock(&f->mu);
	ok = (size_t)(b + n - f->lo) <= f->ready;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

void nv_fill_wait(struct nv_fill *f, const void *p, size_t n, const atomic_bool *stop)
{
	const uint8_t *b = p;
	size_t need = (size_t)(b + n - f->lo);

	if (b < f->lo || b >= f->lo + f->len)
		return;
	pthread_mutex_lock(&f->mu);
	/* relaxed: as nv_stopped's load, a hint; another reader raises it
	 * without this condition variable, hence the timeout */
	while (f->ready < need && !(stop && atomic_load_explicit(stop, memory_order_relaxed))) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000; /* 10 ms */
		if (ts.tv_nsec >= 1000000000)
			ts.tv_sec++, ts.tv_nsec -= 1000000000;
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	pthread_mutex_unlock(&f->mu);
}

struct nv_job {
	const char *path;
	struct nv_opts o;
	struct nv_shard *s;
	size_t n;
	bool keep_going;
	struct nv_reader **keep; /* the caller's kept reader, or NULL */
	struct nv_stats st;
	struct qvl_err err;
	int rc;
};

unsigned nv_default_threads(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned t = ncpu > 0 ? (unsigned)ncpu : 1;

	return t < 4 ? t : 4;
}

static uint64_t nv_span(const struct nv_shard *s)
{
	return (s->len + NV_ALIGN - 1) / NV_ALIGN * NV_ALIGN;
}

/* [lo, hi) of the destinations of s[0, n), or 0 when none has one. */
static size_t nv_dst_span(const struct nv_shard *s, size_t n, uint8_t **lo)
{
	uint8_t *a = NULL, *b = NULL;

	for (size_t i = 0; i < n; i++) {
		uint8_t *d = s[i].dst;

		if (!d)
			continue;
		if (!a || d < a)
			a = d;
		if (!b || d + nv_span(&s[i]) > b)
			b = d + nv_span(&s[i]);
	}
	*lo = a;
	return a ? (size_t)(b - a) : 0;
}

/* The bytes the destinations of s[0, n) take. */
static size_t nv_dst_bytes(const struct nv_shard *s, size_t n)
{
	size_t b = 0;

	for (size_t i = 0; i < n; i++)
		b += s[i].dst ? nv_span(&s[i]) : 0;
	return b;
}

static void *nv_job_run(void *arg)
{
	struct nv_job *j = arg;
	struct nv_reader *r = NULL;
	uint8_t *lo;
	size_t span = nv_dst_span(j->s, j->n, &lo);

	if (j->keep && *j->keep) {
		r = *j->keep;
		j->rc = nv_rebind(r, j->path, &j->o, &j->err);
	} else if ((j->rc = nv_open(&r, j->path, &j->o, &j->err)) == 0) {
		j->st.opens++;
		if (j->keep)
			*j->keep = r;
	}
	if (j->rc) {
		for (size_t i = 0; i < j->n; i++)
			j->s[i].status = j->rc;
		/* relaxed: as nv_fail's store, a hint; the error is joined */
		if (!j->keep_going && j->o.stop)
			atomic_store_explicit(j->o.stop, true, memory_order_relaxed);
		return NULL;
	}
	if (span && !j->o.filler && span == nv_dst_bytes(j->s, j->n)) {
		/* registering pins, which faults the whole span in now, before
		 * the first read; filled destinations are read unregistered,
		 * and so are destinations with gaps between them (memory this
		 * load does not read must stay unfaulted) */
		double t0 = qvl_now();

		nv_register(r, lo, span); /* optional: unregistered reads work too */
		j->st.fill_seconds += qvl_now() - t0;
	}
	j->rc = nv_read(r, j->s, j->n, j->keep_going, &j->st, &j->err);
	if (!j->keep)
		nv_close(r);
	return NULL;
}

/* Fault f's span in, piece by piece in read order, publishing each: the
 * kernel's zeroing of fresh pages (and, in a VM, the host's faults behind
 * them) overlaps the device reading the pieces before. */
static void nv_fill_publish(struct nv_fill *f, size_t ready)
{
	pthread_mutex_lock(&f->mu);
	if (ready > f->ready)
		f->ready = ready;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void *nv_fill_main(void *arg)
{
	struct nv_fill *f = arg;
	double t0 = qvl_now();
	bool fail = false;

	/* the shards' destinations only: between them may lie memory this
	 * load does not read (the tiered pool's streamed layers), which must
	 * stay unfaulted */
	for (size_t i = 0; i < f->n && !fail; i++) {
		uint8_t *d = f->s[i].dst;
		size_t len = nv_span(&f->s[i]);

		for (size_t done = 0; d && done < len && !fail;) {
			size_t n = len - done < NV_FILL_PIECE ? len - done : NV_FILL_PIECE;

			/* relaxed: as nv_stopped's load, a hint; the readers drain */
			if (atomic_load_explicit(f->stop, memory_order_relaxed))
				fail = true;
			/* an older kernel (EINVAL) or no memory: the readers fault
			 * the rest in themselves, as without filling */
			else if (madvise(d + done, n, MADV_POPULATE_WRITE) < 0)
				fail = true;
			done += n;
			nv_fill_publish(f, (size_t)(d + done - f->lo));
		}
	}
	/* done, or stopped early: let no reader wait for the rest */
	nv_fill_publish(f, f->len);
	f->seconds = qvl_now() - t0;
	return NULL;
}

static void nv_fill_start(struct nv_fill *f, struct nv_job *j)
{
	uint8_t *lo;

	*f = (struct nv_fill){
	    .len = nv_dst_span(j->s, j->n, &lo), .s = j->s, .n = j->n, .stop = j->o.stop};
	f->lo = lo;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	if (!f->len || pthread_create(&f->tid, NULL, nv_fill_main, f))
		return; /* nothing to fill, or the reads fault it in */
	f->started = true;
	j->o.filler = f;
}

/* Cut s[0, n) into at most t contiguous runs of about equal bytes: run k
 * starts at the first shard that begins at or past k/t of the bytes. */
static unsigned nv_split(const struct nv_shard *s, size_t n, unsigned t, size_t *start)
{
	uint64_t total = 0, sofar = 0;
	unsigned runs = 0;

	for (size_t i = 0; i < n; i++)
		total += nv_span(&s[i]);
	for (size_t i = 0; i < n && runs < t; i++) {
		if (runs == 0 || sofar >= total / t * runs)
			start[runs++] = i;
		sofar += nv_span(&s[i]);
	}
	start[runs] = n;
	return runs;
}

static void nv_merge(struct nv_stats *st, const struct nv_stats *j)
{
	st->bytes += j->bytes;
	st->reads += j->reads;
	st->bad_shards += j->bad_shards;
	st->io_errors += j->io_errors;
	st->crc_seconds += j->crc_seconds;
	st->fill_seconds += j->fill_seconds;
	st->opens += j->opens;
	if (j->fill_wait_seconds > st->fill_wait_seconds)
		st->fill_wait_seconds = j->fill_wait_seconds;
	if (j->crc_exposed_seconds > st->crc_exposed_seconds)
		st->crc_exposed_seconds = j->crc_exposed_seconds;
	st->direct = j->direct;
	st->fixed_bufs = j->fixed_bufs;
	st->chunk = j->chunk;
}

int nv_read_threads(const char *path, const struct nv_opts *o, struct nv_shard *s, size_t n,
		    bool keep_going, struct nv_stats *st, struct qvl_err *err)
{
	struct nv_stats dummy = {0}, *out = st ? st : &dummy;
	unsigned t = o && o->threads ? o->threads : nv_default_threads();
	size_t start[NV_MAX_THREADS + 1];
	struct nv_job job[NV_MAX_THREADS];
	pthread_t tid[NV_MAX_THREADS];
	struct nv_fill fill[NV_MAX_THREADS];
	bool started[NV_MAX_THREADS] = {0};
	atomic_bool own_stop = false, *stop = o && o->stop ? o->stop : &own_stop;
	unsigned runs, qd, qd_sum = 0;
	double t0 = qvl_now();
	int rc = 0, first = -1;

	if (t > NV_MAX_THREADS)
		return qvl_errf(err, -EINVAL, "%s: %u I/O threads out of range (1..%u)", path, t,
				NV_MAX_THREADS);
	runs = nv_split(s, n, t, start);
	qd = o && o->qd ? o->qd : NV_DEFAULT_QD;
	for (unsigned k = 0; k < runs; k++) {
		job[k] = (struct nv_job){.path = path,
					 .s = s + start[k],
					 .n = start[k + 1] - start[k],
					 .keep_going = keep_going};
		if (o)
			job[k].o = *o;
		job[k].o.keep = NULL;
		/* the kept reader for the run on this thread, read last */
		if (k + 1 == runs && o)
			job[k].keep = o->keep;
		/* the total depth shared out, at least 2 each */
		job[k].o.qd = (qd + runs - 1) / runs < 2 ? 2 : (qd + runs - 1) / runs;
		job[k].o.stop = stop;
		fill[k].started = false;
		if (job[k].o.fill)
			nv_fill_start(&fill[k], &job[k]);
		/* one thread reads in the caller's; the others get their own */
		if (k + 1 < runs)
			started[k] = pthread_create(&tid[k], NULL, nv_job_run, &job[k]) == 0;
		if (!started[k])
			nv_job_run(&job[k]);
	}
	for (unsigned k = 0; k < runs; k++) {
		if (started[k])
			pthread_join(tid[k], NULL);
		if (fill[k].started) {
			pthread_join(fill[k].tid, NULL);
			job[k].st.fill_seconds += fill[k].seconds;
		}
		if (job[k].o.fill) {
			pthread_mutex_destroy(&fill[k].mu);
			pthread_cond_destroy(&fill[k].cv);
		}
		nv_merge(out, &job[k].st);
		qd_sum += job[k].o.qd;
		/* the first failing shard in file order; a cancelled run is not
		 * the cause unless nothing else failed */
		if (job[k].rc &&
		    (first < 0 || (job[first].rc == -ECANCELED && job[k].rc != -ECANCELED)))
			first = (int)k;
	}
	out->seconds += qvl_now() - t0;
	out->threads = runs;
	out->qd = qd_sum;
	if (first >= 0) {
		rc = job[first].rc;
		if (err)
			*err = job[first].err;
	}
	return rc;
}
