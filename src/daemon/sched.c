/* Request queue and pass loop (see sched.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/placement.h"
#include "daemon/sched.h"
#include "daemon/stats.h"
#include "util.h"

struct sched_client {
	struct shm_client *c;
	uint64_t last_served, last_admitted;
	int n_jobs; /* queued + admitted */
	struct sched_client *next;
};

struct sched {
	struct job_env env;
	int max_seqs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started, draining, stop;
	struct job *queued, *active; /* singly linked, in arrival order */
	int n_queued, n_active;
	struct sched_client *clients;
	uint64_t tick;
	int cpu;
};

int sched_create(struct sched **out, const struct job_env *env, int max_seqs, struct qvl_err *err)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return qvl_errf(err, -ENOMEM, "out of memory");
	s->env = *env;
	s->max_seqs = max_seqs;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	*out = s;
	return 0;
}

static struct sched_client *client_of(struct sched *s, struct shm_client *c)
{
	for (struct sched_client *k = s->clients; k; k = k->next)
		if (k->c == c)
			return k;
	struct sched_client *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->c = c;
	k->next = s->clients;
	s->clients = k;
	return k;
}

static void client_release(struct sched *s, struct sched_client *k)
{
	if (--k->n_jobs > 0)
		return;
	for (struct sched_client **pp = &s->clients; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			free(k);
			return;
		}
}

static void unlink_job(struct job **list, struct job *j)
{
	for (struct job **pp = list; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			j->next = NULL;
			return;
		}
}

int sched_submit(struct sched *s, struct shm_request *req)
{
	struct job *j = calloc(1, sizeof(*j));
	int rc = 0;

	if (!j)
		return -ENOMEM;
	j->req = req;
	j->t_submit = qvl_now();
	pthread_mutex_lock(&s->mu);
	if (s->draining) {
		rc = -ESHUTDOWN;
	} else if (!(j->cl = client_of(s, req->client))) {
		rc = -ENOMEM;
	} else {
		j->cl->n_jobs++;
		struct job **pp = &s->queued;
		while (*pp)
			pp = &(*pp)->next;
		*pp = j;
		s->n_queued++;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	if (rc)
		free(j);
	return rc;
}

static struct job *find(struct job *list, struct shm_client *c, uint64_t ud)
{
	for (struct job *j = list; j; j = j->next)
		if (j->req->client == c && j->req->user_data == ud && !j->cancel)
			return j;
	return NULL;
}

int sched_cancel(struct sched *s, struct shm_client *c, uint64_t user_data)
{
	struct job *j;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if ((j = find(s->active, c, user_data)) || (j = find(s->queued, c, user_data)))
		j->cancel = true; /* the worker ends it at its next step */
	else
		rc = -ENOENT;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void sched_client_gone(struct sched *s, struct shm_client *c)
{
	pthread_mutex_lock(&s->mu);
	for (struct job *j = s->active; j; j = j->next)
		if (j->req->client == c)
			j->cancel = true;
	for (struct job *j = s->queued; j; j = j->next)
		if (j->req->client == c)
			j->cancel = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Under the lock: a cancelled queued job, or the next one to admit. */
static struct job *pick_queued(struct sched *s)
{
	struct job *best = NULL;

	for (struct job *j = s->queued; j; j = j->next) {
		if (j->cancel)
			return j;
		if (!best || j->cl->last_admitted < best->cl->last_admitted)
			best = j;
	}
	return best;
}

/* Under the lock: the admitted job whose client, then itself, waited longest. */
static struct job *sched_pick(struct sched *s)
{
	struct job *best = NULL;

	for (struct job *j = s->active; j; j = j->next)
		if (!best || j->cl->last_served < best->cl->last_served ||
		    (j->cl == best->cl && j->last_served < best->last_served))
			best = j;
	return best;
}

static void retire(struct sched *s, struct job *j, bool active)
{
	pthread_mutex_lock(&s->mu);
	unlink_job(active ? &s->active : &s->queued, j);
	if (active)
		s->n_active--;
	else
		s->n_queued--;
	client_release(s, j->cl);
	pthread_mutex_unlock(&s->mu);
	job_free(j);
}

static void *worker(void *arg)
{
	struct sched *s = arg;

	if (qvld_pin_self(s->cpu) < 0)
		log_warn("scheduler thread: cannot bind to PU %d", s->cpu);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct job *j = NULL;
		bool admit = false;

		/* a cancelled queued job (its client may be gone) is finished at
		 * once, even when every slot is taken: that releases its memory */
		if (s->queued) {
			j = pick_queued(s);
			if (!j->cancel && s->n_active >= s->max_seqs)
				j = NULL;
			admit = j != NULL;
		}
		if (!j)
			j = sched_pick(s);
		qvld_stats_set_gauges(s->env.stats, s->n_queued, s->n_active);
		if (!j) {
			if (s->stop || (s->draining && !s->queued))
				break;
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		s->tick++;
		if (admit) {
			unlink_job(&s->queued, j);
			s->n_queued--;
			j->cl->last_admitted = s->tick;
			if (j->cancel) {
				client_release(s, j->cl);
				pthread_mutex_unlock(&s->mu);
				job_abort(j, &s->env, 0, QVL_STOP_CANCELLED);
				job_free(j);
				pthread_mutex_lock(&s->mu);
				continue;
			}
			j->next = s->active;
			s->active = j;
			s->n_active++;
			pthread_mutex_unlock(&s->mu);
			if (job_start(j, &s->env) != 0) { /* failed, or done in one go */
				retire(s, j, true);
				pthread_mutex_lock(&s->mu);
				continue;
			}
			pthread_mutex_lock(&s->mu);
		}
		/* j is admitted: run one pass of it */
		j->cl->last_served = s->tick;
		j->last_served = s->tick;
		bool cancel = j->cancel;
		pthread_mutex_unlock(&s->mu);
		int done = job_step(j, &s->env, cancel);
		if (done)
			retire(s, j, true);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int sched_start(struct sched *s, int cpu, struct qvl_err *err)
{
	s->cpu = cpu;
	int rc = pthread_create(&s->th, NULL, worker, s);
	if (rc)
		return qvl_errf(err, -rc, "scheduler thread: %s", strerror(rc));
	s->started = true;
	return 0;
}

void sched_drain(struct sched *s)
{
	pthread_mutex_lock(&s->mu);
	s->draining = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->th, NULL);
	s->started = false;
}

void sched_counts(struct sched *s, int *queued, int *active)
{
	pthread_mutex_lock(&s->mu);
	*queued = s->n_queued;
	*active = s->n_active;
	pthread_mutex_unlock(&s->mu);
}

void sched_destroy(struct sched *s)
{
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->th, NULL);
	}
	/* jobs left (stop without drain): complete them as cancelled */
	while (s->active) {
		struct job *j = s->active;
		s->active = j->next;
		if (j->req)
			job_abort(j, &s->env, -ESHUTDOWN, QVL_STOP_CANCELLED);
		job_free(j);
	}
	while (s->queued) {
		struct job *j = s->queued;
		s->queued = j->next;
		job_abort(j, &s->env, -ESHUTDOWN, QVL_STOP_CANCELLED);
		job_free(j);
	}
	while (s->clients) {
		struct sched_client *k = s->clients;
		s->clients = k->next;
		free(k);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
