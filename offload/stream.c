/* The streaming window. Reads are numbered q = 0, 1, 2, ... in the order
 * compute will ask for them (layer ly[(q) % n]: every pass visits the
 * streamed layers in layer order, and the next pass starts over), read q
 * goes into buffer q % nbuf, and an I/O thread may issue read q once
 * compute has released read q - nbuf. Compute consumes q in order: so the
 * window is nbuf - 1 layers ahead of the layer being computed, and it
 * carries over from one pass into the next (the first layers of the next
 * pass are read while the last of this one compute).
 *
 * TIER_IO_THREADS I/O threads each own a reader (nvme/: one ring per
 * thread, O_DIRECT, the buffers registered once) and take the next read in
 * turn; each shard is one nv_read() of up to qd chunks in flight, its CRC
 * checked as it completes, before compute may see it. Two threads keep the
 * device busy across shard boundaries (one fills its queue while the
 * other's drains) and spread the CRC over two cores; reads may complete
 * out of order, compute still takes them in order.
 *
 * Everything shared is under mu; the condition variable is broadcast on
 * every change (a read done, a buffer released, a reset, quit, a reader
 * that could not open). */
#define _GNU_SOURCE
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nvme.h"
#include "stream.h"
#include "util.h"

struct slot {
	uint64_t q; /* the read it holds */
	bool done;
	bool skipped; /* the layer was resident: nothing read */
	int status;
	struct qvl_err err;
};

#define TIER_IO_THREADS 2

struct tier_stream {
	const char *path;
	int opened; /* I/O threads that have set up their reader */
	int open_rc;
	struct qvl_err open_err;
	const struct tier_stream_layer *ly;
	int n;
	unsigned nbuf;
	uint64_t buf_bytes;
	uint8_t *bufs;
	struct slot *slot;
	pthread_t io[TIER_IO_THREADS];
	int started;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool quit;
	int reading;	   /* reads in progress */
	uint64_t gen;	   /* bumped by a reset: a read in flight then is dropped */
	uint64_t issued;   /* reads taken by a thread: the next to issue */
	uint64_t cons;	   /* next read compute takes */
	uint64_t released; /* reads compute gave back */
	struct tier_stream_stats st;
};

static const struct tier_stream_layer *layer_of_q(const struct tier_stream *s, uint64_t q)
{
	return &s->ly[q % (uint64_t)s->n];
}

static void *io_main(void *arg)
{
	struct tier_stream *s = arg;
	struct nv_reader *r = NULL;
	struct nv_opts o = {0};
	struct qvl_err oerr = {{0}};
	int rc;

	/* the ring is the thread's own: readers may set it up for a single
	 * issuer, which the kernel enforces (-EEXIST from another task) */
	nv_opts_from_env(&o);
	rc = nv_open(&r, s->path, &o, &oerr);
	if (rc == 0) /* optional: unregistered reads work too */
		nv_register(r, s->bufs, (size_t)s->nbuf * s->buf_bytes);
	pthread_mutex_lock(&s->mu);
	if (rc < 0 && !s->open_rc) {
		s->open_rc = rc;
		s->open_err = oerr;
	}
	s->opened++;
	pthread_cond_broadcast(&s->cv);
	while (!s->quit && rc == 0 && !s->open_rc) {
		if (s->issued >= s->released + s->nbuf) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		uint64_t q = s->issued++, gen = s->gen;
		const struct tier_stream_layer *L = layer_of_q(s, q);
		struct slot *sl = &s->slot[q % s->nbuf];
		struct nv_shard sh = {.name = L->name,
				      .off = L->off,
				      .len = L->len,
				      .crc = L->crc,
				      .dst = s->bufs + (q % s->nbuf) * s->buf_bytes};
		struct nv_stats ns = {0};
		struct qvl_err err = {{0}};
		double t0 = qvl_now();
		int got;

		/* acquire: pairs with the release that raised it after the
		 * resident copy was checked (offload/fill.c); it stays up */
		if (L->resident && atomic_load_explicit(L->resident, memory_order_acquire)) {
			sl->q = q;
			sl->done = sl->skipped = true;
			sl->status = 0;
			pthread_cond_broadcast(&s->cv);
			continue;
		}
		s->reading++;
		pthread_mutex_unlock(&s->mu);
		got = nv_read(r, &sh, 1, false, &ns, &err);
		pthread_mutex_lock(&s->mu);
		s->reading--;
		s->st.busy_s += qvl_now() - t0;
		s->st.bytes += ns.bytes;
		s->st.direct = ns.direct;
		if (gen == s->gen) {
			sl->q = q;
			sl->done = true;
			sl->skipped = false;
			sl->status = got;
			sl->err = err;
			s->st.reads++;
			s->st.failed += got < 0;
		}
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	nv_close(r);
	return NULL;
}

/* Start over from read 0 (the first streamed layer), dropping whatever is
 * read or in flight. Caller holds mu. */
static void reset_locked(struct tier_stream *s)
{
	s->gen++;
	while (s->reading) /* their buffers are about to be reused */
		pthread_cond_wait(&s->cv, &s->mu);
	s->issued = s->cons = s->released = 0;
	for (unsigned i = 0; i < s->nbuf; i++)
		s->slot[i].done = false;
	s->st.resets++;
	pthread_cond_broadcast(&s->cv);
}

int tier_stream_begin(struct tier_stream *s, int l, const uint8_t **base, struct qvl_err *err)
{
	struct slot *sl;
	double t0 = 0;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if (layer_of_q(s, s->cons)->layer != l || s->cons != s->released) {
		/* not the layer the window expected (a pass cut short): start
		 * over from the first one, and skip ahead to l */
		reset_locked(s);
		while (layer_of_q(s, s->cons)->layer != l && s->cons < (uint64_t)s->n)
			s->cons++, s->released++, s->issued++;
		if (s->cons == (uint64_t)s->n) {
			pthread_mutex_unlock(&s->mu);
			return qvl_errf(err, -EINVAL, "layer %d is not streamed", l);
		}
		pthread_cond_broadcast(&s->cv);
	}
	sl = &s->slot[s->cons % s->nbuf];
	if (!(sl->done && sl->q == s->cons) && !s->open_rc) {
		s->st.stalls++;
		t0 = qvl_now();
		while (!(sl->done && sl->q == s->cons) && !s->open_rc)
			pthread_cond_wait(&s->cv, &s->mu);
		s->st.stall_s += qvl_now() - t0;
	}
	if (s->open_rc) { /* no reader: nothing will ever be read */
		rc = s->open_rc;
		if (err)
			*err = s->open_err;
	} else if (sl->status < 0) {
		rc = sl->status;
		if (err)
			*err = sl->err;
		reset_locked(s);
	} else {
		*base = sl->skipped ? NULL : s->bufs + (s->cons % s->nbuf) * s->buf_bytes;
		s->cons++;
		s->st.served++;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void tier_stream_end(struct tier_stream *s, int l)
{
	(void)l;
	pthread_mutex_lock(&s->mu);
	if (s->released < s->cons)
		s->released++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void tier_stream_stats(struct tier_stream *s, struct tier_stream_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	pthread_mutex_unlock(&s->mu);
}

int tier_stream_create(struct tier_stream **out, const char *path,
		       const struct tier_stream_layer *ly, int n, unsigned nbuf, uint64_t buf_bytes,
		       struct qvl_err *err)
{
	struct tier_stream *s = calloc(1, sizeof(*s));
	size_t total;
	int rc;

	*out = NULL;
	if (!s)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	s->ly = ly;
	s->n = n;
	s->nbuf = nbuf;
	s->buf_bytes = buf_bytes;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (n <= 0 || nbuf < 1 || buf_bytes % NV_ALIGN ||
	    __builtin_mul_overflow((size_t)nbuf, (size_t)buf_bytes, &total)) {
		rc = qvl_errf(err, -EINVAL, "%s: bad streaming window (%d layers, %u buffers)",
			      path, n, nbuf);
		goto fail;
	}
	s->slot = calloc(nbuf, sizeof(*s->slot));
	s->bufs = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!s->slot || s->bufs == MAP_FAILED) {
		s->bufs = NULL;
		rc = qvl_errf(err, -ENOMEM, "%s: cannot map %zu bytes of staging buffers", path,
			      total);
		goto fail;
	}
	s->path = path;
	for (int i = 0; i < TIER_IO_THREADS; i++) {
		rc = -pthread_create(&s->io[i], NULL, io_main, s);
		if (rc < 0) {
			qvl_errf(err, rc, "%s: cannot start a streaming thread", path);
			goto fail;
		}
		s->started++;
	}
	/* not waiting for the readers' set-up (registering the buffers faults
	 * them in: 0.2-0.4 s for the 2b pack's 300 MB): the caller goes on
	 * with the engine while they set up and read the first layers; a
	 * reader that cannot open fails every begin() with its error */
	*out = s;
	return 0;
fail:
	tier_stream_destroy(s);
	return rc;
}

void tier_stream_destroy(struct tier_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->quit = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->started; i++)
		pthread_join(s->io[i], NULL); /* each closes its reader */
	if (s->bufs)
		munmap(s->bufs, (size_t)s->nbuf * s->buf_bytes);
	free(s->slot);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}
