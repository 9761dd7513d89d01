/* Several I/O threads over one file (nvme.h, nv_read_threads): the shards
 * are cut into contiguous runs of about equal bytes; each thread opens its
 * own reader (ring, registered file, staging slots), registers the span of
 * its run's destinations and reads its run with nv_read. One shared stop
 * flag makes the first error stop every reader from issuing more; each
 * drains its own reads before its thread exits. */
#define _GNU_SOURCE
#include "config.h"

#include "nvme.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct nv_job {
	const char *path;
	struct nv_opts o;
	struct nv_shard *s;
	size_t n;
	bool keep_going;
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

static void *nv_job_run(void *arg)
{
	struct nv_job *j = arg;
	struct nv_reader *r = NULL;
	uint8_t *lo;
	size_t span = nv_dst_span(j->s, j->n, &lo);

	j->rc = nv_open(&r, j->path, &j->o, &j->err);
	if (j->rc) {
		for (size_t i = 0; i < j->n; i++)
			j->s[i].status = j->rc;
		/* relaxed: as nv_fail's store, a hint; the error is joined */
		if (!j->keep_going && j->o.stop)
			atomic_store_explicit(j->o.stop, true, memory_order_relaxed);
		return NULL;
	}
	if (span)
		nv_register(r, lo, span); /* optional: unregistered reads work too */
	j->rc = nv_read(r, j->s, j->n, j->keep_going, &j->st, &j->err);
	nv_close(r);
	return NULL;
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
		/* the total depth shared out, at least 2 each */
		job[k].o.qd = (qd + runs - 1) / runs < 2 ? 2 : (qd + runs - 1) / runs;
		job[k].o.stop = stop;
		/* one thread reads in the caller's; the others get their own */
		if (k + 1 < runs)
			started[k] = pthread_create(&tid[k], NULL, nv_job_run, &job[k]) == 0;
		if (!started[k])
			nv_job_run(&job[k]);
	}
	for (unsigned k = 0; k < runs; k++) {
		if (started[k])
			pthread_join(tid[k], NULL);
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
