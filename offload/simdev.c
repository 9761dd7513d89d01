/* The simulated device (devtier.h). Device memory is host memory counted
 * against its own budget; copies go through one copy-engine thread, as a
 * GPU's DMA engine serves its stream in order, throttled to the configured
 * bandwidth: after each piece it sleeps until bytes / bw has passed since
 * the copy started, so a transfer takes the time it would over the link
 * (PCIe 4.0 x16-like by default) and overlaps with whatever the caller does
 * meanwhile. Named "simulated" wherever it shows. */
#define _GNU_SOURCE
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devtier.h"
#include "util.h"

#define PIECE (4u << 20) /* bytes copied between throttle checks */
#define QLEN  64u

struct job {
	void *dst;
	const void *src;
	size_t len;
};

struct simdev {
	struct dev_tier base;
	char name[96];
	uint64_t budget, used, bw;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* broadcast on a job queued, a job done, quit */
	bool quit;
	struct job q[QLEN];
	uint64_t submitted, completed; /* tickets: job t is q[(t - 1) % QLEN] */
	uint64_t copied;
	double copy_s;
};

static void throttle(double t0, uint64_t done, uint64_t bw)
{
	double due = t0 + (double)done / (double)bw, now = qvl_now();

	if (due > now) {
		double d = due - now;
		struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

static void *engine_main(void *arg)
{
	struct simdev *d = arg;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (!d->quit && d->completed == d->submitted)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->completed == d->submitted)
			break; /* quit, nothing left */
		struct job j = d->q[d->completed % QLEN];
		pthread_mutex_unlock(&d->mu);
		double t0 = qvl_now();
		for (size_t off = 0; off < j.len; off += PIECE) {
			size_t n = j.len - off < PIECE ? j.len - off : PIECE;
			memcpy((char *)j.dst + off, (const char *)j.src + off, n);
			throttle(t0, off + n, d->bw);
		}
		pthread_mutex_lock(&d->mu);
		d->copy_s += qvl_now() - t0;
		d->copied += j.len;
		d->completed++;
		pthread_cond_broadcast(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static int sd_alloc(struct dev_tier *t, size_t len, void **out)
{
	struct simdev *d = (struct simdev *)t;
	size_t n = (len + 63) / 64 * 64;
	void *p;

	pthread_mutex_lock(&d->mu);
	if (n > d->budget - d->used) {
		pthread_mutex_unlock(&d->mu);
		return -ENOMEM;
	}
	d->used += n;
	pthread_mutex_unlock(&d->mu);
	if (!(p = aligned_alloc(64, n))) {
		pthread_mutex_lock(&d->mu);
		d->used -= n;
		pthread_mutex_unlock(&d->mu);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

static void sd_free(struct dev_tier *t, void *p, size_t len)
{
	struct simdev *d = (struct simdev *)t;

	if (!p)
		return;
	free(p);
	pthread_mutex_lock(&d->mu);
	d->used -= (len + 63) / 64 * 64;
	pthread_mutex_unlock(&d->mu);
}

static int sd_copy_async(struct dev_tier *t, void *dst, const void *src, size_t len,
			 uint64_t *ticket)
{
	struct simdev *d = (struct simdev *)t;

	pthread_mutex_lock(&d->mu);
	while (d->submitted - d->completed >= QLEN) /* the queue is full: wait for room */
		pthread_cond_wait(&d->cv, &d->mu);
	d->q[d->submitted % QLEN] = (struct job){dst, src, len};
	*ticket = ++d->submitted;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

static int sd_wait(struct dev_tier *t, uint64_t ticket)
{
	struct simdev *d = (struct simdev *)t;

	pthread_mutex_lock(&d->mu);
	while (d->completed < ticket)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

static void sd_stats(struct dev_tier *t, struct dev_tier_stats *st)
{
	struct simdev *d = (struct simdev *)t;

	pthread_mutex_lock(&d->mu);
	*st = (struct dev_tier_stats){.budget = d->budget,
				      .used = d->used,
				      .copies = d->completed,
				      .copied = d->copied,
				      .copy_s = d->copy_s,
				      .bw = d->bw};
	pthread_mutex_unlock(&d->mu);
}

static void sd_destroy(struct dev_tier *t)
{
	struct simdev *d = (struct simdev *)t;

	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->quit = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->th, NULL);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
}

static const struct dev_tier_ops simdev_ops = {
    .alloc = sd_alloc,
    .free = sd_free,
    .copy_async = sd_copy_async,
    .wait = sd_wait,
    .destroy = sd_destroy,
};

int simdev_create(struct dev_tier **out, uint64_t budget, uint64_t bw, struct qvl_err *err)
{
	struct simdev *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (!d)
		return qvl_errf(err, -ENOMEM, "simulated device: out of memory");
	d->budget = budget;
	d->bw = bw;
	d->base.ops = &simdev_ops;
	d->base.stats = sd_stats;
	snprintf(d->name, sizeof(d->name),
		 "simulated device (no GPU: host memory, copies throttled to %.1f GB/s)",
		 (double)bw / 1e9);
	d->base.name = d->name;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	rc = -pthread_create(&d->th, NULL, engine_main, d);
	if (rc < 0) {
		pthread_mutex_destroy(&d->mu);
		pthread_cond_destroy(&d->cv);
		free(d);
		return qvl_errf(err, rc, "simulated device: cannot start the copy engine");
	}
	*out = &d->base;
	return 0;
}
