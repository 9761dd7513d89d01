/* The streamed start's resident fill. qvld opens a pack with every text
 * layer streamed (tier_opts.stream_start): the first token then needs in
 * fresh memory only the embeddings and head and the window's buffers, and
 * on a VM where every fresh page is a host fault (1-2 GB/s quiet, a few
 * hundred MB/s loaded: docs/todo-cold.md) that, not the device, bounded a
 * start that put the whole model in memory first. This thread then reads
 * each layer's shard into its place in the model's arena, in layer order,
 * through the same io_uring reader as a load (huge pages faulted in ahead
 * of the reads, the CRC-64 checked as the bytes land; one reader, its ring,
 * O_DIRECT file and staging buffers set up once for all the layers, not per
 * layer: nv_opts.keep), compares the norms
 * the engine widened at start-up with the checked bytes, and only then
 * raises the layer's resident flag. Compute reads the flag at its next
 * begin() of the layer (a step boundary for that layer: a layer is never
 * switched while it computes) and uses the resident copy from then on; the
 * window skips the layer's reads. Both copies hold the same checked bytes
 * and the engine computes a layer the same way from either address, so the
 * tokens do not depend on when the switch happens (tests/stream_start.sh).
 * After the last layer the vision tower's late read starts (pack_late.c).
 *
 * The thread runs 5 nice levels below the process so that the requests it
 * fills behind keep the cores. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "env.h"
#include "model.h"
#include "nvme.h"
#include "pool_impl.h"
#include "util.h"

bool tier_streamed_start(const struct tier_pool *t)
{
	/* a pack whose layers the engine repacks opens with every layer
	 * resident (budget.c): no window, nothing to fill */
	return t && t->o.stream_start && t->n_stream > 0;
}

/* Layer y read into home and checked, through *rd (opened by the first
 * layer, kept for the next); 0 or the error naming the shard. */
static int fill_layer(struct tier_pool *t, struct tier_layer *y, struct nv_reader **rd,
		      struct nv_stats *st, struct qvl_err *err)
{
	struct nv_opts o = {.fill = true, .keep = rd};
	struct nv_shard sh = {
	    .name = y->name, .off = y->off, .len = y->len, .crc = y->crc, .dst = (void *)y->home};
	int rc;

	/* The open left the layer's range without huge pages, so that the
	 * norms read into place at start-up took a few 4 KiB pages, not a 2
	 * MiB page each (~200 MB of fresh memory before the socket on the 2b
	 * model). Those pages go (the norms' start-up bytes are in vkeep;
	 * nothing reads this layer's home until its flag is up), and the
	 * range takes huge pages again: the fill faults a 512th as often
	 * (docs/todo-cold.md). Advice only. */
	(void)madvise((void *)y->home, y->dev_len, MADV_DONTNEED);
	(void)madvise((void *)y->home, y->dev_len, MADV_HUGEPAGE);
	/* one I/O thread (and its fill thread) unless QVL_IO_THREADS says:
	 * requests are being served beside it (as pack_late.c) */
	o.threads = 1;
	nv_opts_from_env(&o);
	o.stop = &t->fill.stop;
	rc = nv_read_threads(t->path, &o, &sh, 1, false, st, err);
	if (rc == 0)
		rc = tier_check_vecs(t, y, y->home, err);
	return rc;
}

/* The fill reads 2.8 GB (the 2b pack) into fresh memory: started with the
 * socket it competed with the first request's pass for the device, the
 * cores and the host's page faults, and that pass is the first token. So it
 * waits until the first pass has ended (its first token), or until no pass
 * has begun FILL_IDLE_S after the socket (nobody asked: nothing to wait
 * for), and at most FILL_WAIT_MAX_S (a long prefill's first token must not
 * hold back the decode that streams every layer until the fill ends). */
#define FILL_IDLE_S	0.5
#define FILL_WAIT_MAX_S 10.0

static void wait_first_pass(struct tier_pool *t)
{
	double t0 = qvl_now();

	/* relaxed: counts and a flag; the fill publishes through its own
	 * release (the resident flags), not through these */
	while (!atomic_load_explicit(&t->fill.stop, memory_order_relaxed) &&
	       !atomic_load_explicit(&t->passes_ended, memory_order_relaxed)) {
		double w = qvl_now() - t0;

		if (w > FILL_WAIT_MAX_S ||
		    (w > FILL_IDLE_S &&
		     !atomic_load_explicit(&t->passes_begun, memory_order_relaxed)))
			break;
		usleep(2000);
	}
}

static void *fill_main(void *arg)
{
	struct tier_pool *t = arg;
	struct tier_fill *f = &t->fill;
	struct qvl_err err = {{0}};
	struct nv_reader *rd = NULL; /* the fill's one reader (this thread's ring) */
	unsigned i = 0;
	int rc = 0;

	/* below the requests' threads, for this thread alone (Linux: a
	 * thread's nice; the reader threads it starts inherit it). Not the
	 * lowest: at nice 19 on a machine shared with nice-10 builds the fill
	 * took 55-98 s instead of ~15 s, and until it ends every pass reads
	 * every layer from the device. */
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	if (errno == 0)
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), nice + 5 > 19 ? 19 : nice + 5);
	wait_first_pass(t);
	pthread_mutex_lock(&t->mu);
	f->wait_s = qvl_now() - f->t0;
	pthread_mutex_unlock(&t->mu);
	for (int l = 0; l < t->L && rc == 0; l++) {
		struct tier_layer *y = &t->layer[l];
		struct nv_stats st = {0};

		if (y->kind != TIER_SSD)
			continue;
		/* tests: QVL_STREAM_HOLD=FILE holds layer i back while FILE
		 * holds a number <= i (0, then 2, then all layers resident) */
		qvl_env_hold("QVL_STREAM_HOLD", (long)i++, &t->fill.stop);
		rc = fill_layer(t, y, &rd, &st, &err);
		if (rc == 0)
			/* release: the shard's bytes at home (written by the
			 * reader, joined in nv_read_threads) before the flag;
			 * pairs with the acquires in hook_begin() and the
			 * window's I/O threads */
			atomic_store_explicit(&y->resident, true, memory_order_release);
		pthread_mutex_lock(&t->mu);
		f->filled += rc == 0;
		f->bytes += rc == 0 ? y->len : 0;
		f->read_s += st.seconds;
		f->mem_s += st.fill_seconds;
		f->readers += st.opens;
		pthread_mutex_unlock(&t->mu);
	}
	nv_close(rd);
	if (rc == 0)
		/* release: after every layer's flag; pairs with the acquire in
		 * hook_begin(), which then drops the window */
		atomic_store_explicit(&t->all_resident, true, memory_order_release);
	pthread_mutex_lock(&t->mu);
	f->pending = false;
	f->rc = rc;
	f->err = err;
	f->seconds = qvl_now() - f->t0;
	pthread_mutex_unlock(&t->mu);
	/* the vision tower after the text model (its requests wait for it; a
	 * failure to start is kept by the model for qvl_model_vision_wait) */
	if (t->m && !atomic_load_explicit(&f->stop, memory_order_relaxed))
		(void)qvl_model_load_late(t->m, &err);
	return NULL;
}

int tier_fill_start(struct tier_pool *t, struct qvl_err *err)
{
	int rc = 0;

	if (!tier_streamed_start(t))
		return 0;
	pthread_mutex_lock(&t->mu);
	if (!t->fill.started) {
		t->fill.t0 = qvl_now();
		t->fill.pending = true;
		rc = pthread_create(&t->fill.th, NULL, fill_main, t);
		if (rc) {
			t->fill.pending = false;
			t->fill.rc = -rc;
			rc = qvl_errf(err, -rc, "%s: cannot start the resident fill: %s", t->path,
				      strerror(rc));
		}
		t->fill.started = !rc;
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

int tier_fill_status(struct tier_pool *t, struct tier_fill_status *s)
{
	memset(s, 0, sizeof(*s));
	if (!tier_streamed_start(t))
		return 0;
	pthread_mutex_lock(&t->mu);
	s->started = t->fill.started;
	s->pending = t->fill.pending;
	s->rc = t->fill.rc;
	s->filled = t->fill.filled;
	s->layers = (unsigned)t->n_stream;
	s->bytes = t->fill.bytes;
	s->seconds = t->fill.pending ? 0 : t->fill.seconds;
	s->read_seconds = t->fill.read_s;
	s->mem_seconds = t->fill.mem_s;
	s->wait_seconds = t->fill.wait_s;
	s->readers = t->fill.readers;
	if (t->fill.rc < 0)
		snprintf(s->msg, sizeof(s->msg), "%s", t->fill.err.msg);
	pthread_mutex_unlock(&t->mu);
	return 1;
}

void tier_fill_stop(struct tier_pool *t)
{
	bool started;

	/* relaxed: the readers and hold() poll it; the join orders the rest */
	atomic_store_explicit(&t->fill.stop, true, memory_order_relaxed);
	pthread_mutex_lock(&t->mu);
	started = t->fill.started;
	pthread_mutex_unlock(&t->mu);
	if (started)
		pthread_join(t->fill.th, NULL);
}
