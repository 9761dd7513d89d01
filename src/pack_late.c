/* The vision tower's shards read after the text model's. A text prompt
 * needs none of them (~0.8 GB of the 2b pack, a fifth of its bytes): qvld
 * opens a pack with them left out (qvl_pack_open_late), starts serving, and
 * then reads them into their place in the arena on a thread of their own
 * (qvl_model_load_late), each shard's CRC checked as it lands, exactly as
 * at open. Whatever builds the vision tower first waits for that read
 * (qvl_model_vision_wait): the tower is built from checked bytes only, and
 * a bad shard fails image requests with its name while text requests go
 * on. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "model.h"
#include "nvme.h"
#include "pack.h"
#include "util.h"

struct qvl_late {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started; /* under mu */
	int state;    /* under mu: 1 not read yet, 0 read and checked, < 0 the error */
	struct qvl_err err;
	/* raised by pack_late_destroy: the reads stop (nv_opts.stop, which the
	 * readers check before each read; the thread is joined after) */
	atomic_bool stop;
	char *path;
	struct nv_shard *s; /* names owned */
	uint32_t n;
	struct nv_stats st;
	double t0, seconds;
};

bool pack_shard_is_vision(const char *name)
{
	return !strncmp(name, "vision.", 7);
}

int pack_late_create(struct qvl_late **out, const char *path, const struct pack_info *p,
		     uint8_t *arena, const bool *later, struct qvl_err *err)
{
	struct qvl_late *l = calloc(1, sizeof(*l));
	struct nv_shard *all = calloc(p->n_shards ? p->n_shards : 1, sizeof(*all));

	*out = NULL;
	if (!l || !all || !(l->path = strdup(path)) ||
	    !(l->s = calloc(p->n_shards ? p->n_shards : 1, sizeof(*l->s)))) {
		free(all);
		pack_late_destroy(l);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->state = 1;
	atomic_init(&l->stop, false);
	pack_nv_shards(p, arena, all);
	for (uint32_t i = 0; i < p->n_shards; i++) {
		if (!later[i])
			continue;
		l->s[l->n] = all[i];
		if (!(l->s[l->n].name = strdup(all[i].name))) {
			free(all);
			pack_late_destroy(l);
			return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
		}
		l->n++;
	}
	free(all);
	*out = l;
	return 0;
}

static void *late_main(void *arg)
{
	struct qvl_late *l = arg;
	struct nv_opts o = {.fill = true, .stop = &l->stop};
	struct nv_stats st = {0};
	struct qvl_err err = {{0}};
	int rc;

	/* one I/O thread (and its fill thread) unless QVL_IO_THREADS says:
	 * requests are being served beside it, and on a machine where fresh
	 * memory is the bound a second one gains nothing (docs/todo-cold.md) */
	o.threads = 1;
	nv_opts_from_env(&o);
	o.stop = &l->stop;
	/* tests: QVL_LATE_HOLD=FILE holds the read back while FILE exists (a
	 * request can then be sent while the vision tower is known unread) */
	qvl_env_hold("QVL_LATE_HOLD", LONG_MAX, &l->stop);
	rc = nv_read_threads(l->path, &o, l->s, l->n, false, &st, &err);
	pthread_mutex_lock(&l->mu);
	l->state = rc < 0 ? rc : 0;
	l->err = err;
	l->st = st;
	l->seconds = qvl_now() - l->t0;
	/* the bytes the readers wrote are published by this unlock: a waiter
	 * that sees state 0 under mu reads them after it */
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Start the read once (later calls: nothing). */
static int late_start(struct qvl_late *l, struct qvl_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&l->mu);
	if (!l->started) {
		l->t0 = qvl_now();
		rc = pthread_create(&l->th, NULL, late_main, l);
		if (rc) {
			l->state = -rc;
			rc = qvl_errf(err, -rc, "%s: cannot start the vision tower's read: %s",
				      l->path, strerror(rc));
		}
		l->started = !rc;
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int qvl_model_load_late(struct qvl_model *m, struct qvl_err *err)
{
	return m->late ? late_start(m->late, err) : 0;
}

int qvl_model_vision_wait(const struct qvl_model *m, struct qvl_err *err)
{
	struct qvl_late *l = m->late;
	int rc;

	/* nobody started it (a caller that never serves): start it now */
	if (!l || (rc = late_start(l, err)) < 0)
		return l ? rc : 0;
	pthread_mutex_lock(&l->mu);
	while (l->state > 0)
		pthread_cond_wait(&l->cv, &l->mu);
	rc = l->state;
	if (rc < 0 && err) {
		*err = l->err;
		if (!err->msg[0])
			qvl_errf(err, rc, "%s: the vision tower's shards: %s", l->path,
				 qvl_strerror(rc));
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

bool qvl_model_vision_ready(const struct qvl_model *m)
{
	struct qvl_late *l = m->late;
	bool ready;

	if (!l)
		return true;
	pthread_mutex_lock(&l->mu);
	ready = l->state <= 0;
	pthread_mutex_unlock(&l->mu);
	return ready;
}

int qvl_model_late_status(const struct qvl_model *m, struct qvl_late_status *s)
{
	struct qvl_late *l = m->late;

	memset(s, 0, sizeof(*s));
	if (!l)
		return 0;
	pthread_mutex_lock(&l->mu);
	s->pending = l->state > 0;
	s->started = l->started;
	s->rc = l->state < 0 ? l->state : 0;
	s->shards = l->n;
	for (uint32_t i = 0; i < l->n; i++)
		s->bytes += l->s[i].len;
	s->seconds = l->state > 0 ? 0 : l->seconds;
	s->read_seconds = l->st.seconds;
	s->fill_seconds = l->st.fill_seconds;
	if (l->state < 0)
		snprintf(s->msg, sizeof(s->msg), "%s", l->err.msg);
	pthread_mutex_unlock(&l->mu);
	return 1;
}

void pack_late_destroy(struct qvl_late *l)
{
	if (!l)
		return;
	/* relaxed: the readers poll it; the join below orders everything */
	atomic_store_explicit(&l->stop, true, memory_order_relaxed);
	if (l->started)
		pthread_join(l->th, NULL);
	if (l->s) {
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->cv);
	}
	for (uint32_t i = 0; l->s && i < l->n; i++)
		free((char *)l->s[i].name);
	free(l->s);
	free(l->path);
	free(l);
}
