/* Request queue and batching loop (see sched.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/placement.h"
#include "daemon/sched.h"
#include "daemon/sched_impl.h"
#include "daemon/stats.h"
#include "engine.h"
#include "multimodal.h"
#include "util.h"

/* The per-sequence arrays sched_create allocates (any of them NULL). */
static void free_arrays(struct sched *s)
{
	free(s->run);
	free(s->cancel);
	free(s->hold);
	free(s->to_split);
	free(s->sitems);
	free(s->sjobs);
	free(s->items);
	free(s->staged);
}

int sched_create(struct sched **out, const struct job_env *env, const struct sched_opts *o,
		 struct qvl_err *err)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return qvl_errf(err, -ENOMEM, "out of memory");
	s->env = *env;
	s->o = *o;
	if (s->o.max_seqs < 1)
		s->o.max_seqs = 1;
	if (s->o.client_max_seqs <= 0 || s->o.client_max_seqs > s->o.max_seqs)
		s->o.client_max_seqs = s->o.max_seqs;
	if (s->o.prefill_chunk < 1)
		s->o.prefill_chunk = 512;
	pace_init(&s->pace, s->o.prefill_step);
	size_t n = (size_t)s->o.max_seqs;
	s->run = calloc(n, sizeof(*s->run));
	s->cancel = calloc(n, sizeof(*s->cancel));
	s->hold = calloc(n, sizeof(*s->hold));
	s->to_split = calloc(n, sizeof(*s->to_split));
	s->sitems = calloc(n, sizeof(*s->sitems));
	s->sjobs = calloc(n, sizeof(*s->sjobs));
	s->items = calloc(n, sizeof(*s->items));
	s->staged = calloc(n, sizeof(*s->staged));
	if (!s->run || !s->cancel || !s->hold || !s->to_split || !s->sitems || !s->sjobs ||
	    !s->items || !s->staged) {
		free_arrays(s);
		free(s);
		return qvl_errf(err, -ENOMEM, "out of memory");
	}
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

static void append_job(struct job **list, struct job *j)
{
	while (*list)
		list = &(*list)->next;
	j->next = NULL;
	*list = j;
}

int sched_submit(struct sched *s, struct shm_request *req)
{
	struct job *j = calloc(1, sizeof(*j));
	int rc = 0;

	if (!j)
		return -ENOMEM;
	j->req = req;
	j->client = req->client;
	j->user_data = req->user_data;
	j->t_submit = qvl_now();
	if (s->o.deadline_s > 0)
		j->deadline = j->t_submit + s->o.deadline_s;
	pthread_mutex_lock(&s->mu);
	if (s->draining) {
		rc = -ESHUTDOWN;
	} else if (s->n_queued >= s->o.max_queue) {
		rc = -EBUSY; /* the bounded queue: the client retries later */
	} else if (!(j->cl = client_of(s, req->client))) {
		rc = -ENOMEM;
	} else {
		j->cl->n_jobs++;
		append_job(&s->queued, j);
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
		if (j->client == c && j->user_data == ud && !j->cancel)
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
		if (j->client == c)
			j->cancel = true;
	for (struct job *j = s->queued; j; j = j->next)
		if (j->client == c)
			j->cancel = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Under the lock: a cancelled queued job, or one past its deadline; NULL. */
static struct job *cancelled_queued(struct sched *s, double now)
{
	for (struct job *j = s->queued; j; j = j->next)
		if (j->cancel || (j->deadline > 0 && now > j->deadline))
			return j;
	return NULL;
}

/* Under the lock: the next job to admit, NULL when none may be: a
 * preempted job first (it was admitted before anything queued now), else
 * one of the client admitted least recently among those under their limit.
 * Nothing is admitted while a preempted job waits for KV pages and the
 * batch still holds others: they must finish to make room
 * (readmit_fits()). */
/* Under the lock: may preempted job j come back while others run? Only
 * when the pool (and its client's page limit) has room for all it must
 * feed again and the next page: readmitted into a pool that is still
 * short, it would be the last admitted, so the next victim, and be
 * preempted again at once (hysteresis against that loop). */
static bool readmit_fits(struct sched *s, const struct job *j)
{
	struct qvl_kv_usage u;
	size_t need, use = 0;

	if (!s->active)
		return true;
	qvl_engine_kv_usage(s->env.e, &u);
	if (!u.page_tokens)
		return true;
	need = (gen_missing(j->g) + 1 + u.page_tokens - 1) / u.page_tokens + 1;
	if (u.pages_used > u.pages_total || need > u.pages_total - u.pages_used)
		return false;
	if (!s->o.client_kv_pages)
		return true;
	for (const struct job *k = s->active; k; k = k->next)
		if (k->cl == j->cl)
			use += sched_held(k, u.page_tokens);
	return use + need <= (size_t)s->o.client_kv_pages;
}

/* A job that builds the vision tower (images, EMBED_IMAGE) while the
 * model's is still being read after start-up (a pack's, read behind the
 * socket): it stays queued, so that it never blocks the worker, and text
 * jobs go on meanwhile. */
static bool vision_wait(struct sched *s, const struct job *j)
{
	if (!j->req || (!j->req->n_images && j->req->opcode != QVL_OP_EMBED_IMAGE) ||
	    qvl_model_vision_ready(qvl_engine_model(s->env.e)))
		return false;
	s->vision_held = true;
	return true;
}

static struct job *pick_queued(struct sched *s)
{
	struct job *best = NULL;

	s->vision_held = false;
	if (s->n_active >= s->o.max_seqs)
		return NULL;
	for (struct job *j = s->queued; j; j = j->next)
		if (j->preempted)
			return readmit_fits(s, j) ? j : NULL;
	for (struct job *j = s->queued; j; j = j->next)
		if (j->cl->n_active < s->o.client_max_seqs &&
		    (!best || j->cl->last_admitted < best->cl->last_admitted) && !vision_wait(s, j))
			best = j;
	return best;
}

/* Under the lock: a job leaves the scheduler (its final CQE is posted). */
static void drop_locked(struct sched *s, struct job *j, bool active)
{
	unlink_job(active ? &s->active : &s->queued, j);
	if (active) {
		s->n_active--;
		j->cl->n_active--;
	} else {
		s->n_queued--;
	}
	client_release(s, j->cl);
}

void sched_retire(struct sched *s, struct job *j)
{
	pthread_mutex_lock(&s->mu);
	drop_locked(s, j, true);
	pthread_mutex_unlock(&s->mu);
	job_free(j);
}

/* Under the lock (dropped around the work): finish cancelled queued jobs
 * and those whose deadline passed while they waited, then admit while there
 * is room. */
static void admit(struct sched *s)
{
	struct job *j;

	while ((j = cancelled_queued(s, qvl_now()))) {
		int res = j->cancel ? 0 : -ETIMEDOUT;
		drop_locked(s, j, false);
		pthread_mutex_unlock(&s->mu);
		job_abort(j, &s->env, res, QVL_STOP_CANCELLED);
		job_free(j);
		pthread_mutex_lock(&s->mu);
	}
	while (!s->stop && (j = pick_queued(s))) {
		unlink_job(&s->queued, j);
		s->n_queued--;
		j->cl->last_admitted = ++s->tick;
		j->cl->n_active++;
		j->admit_tick = s->tick;
		append_job(&s->active, j);
		s->n_active++;
		pthread_mutex_unlock(&s->mu);
		int rc = 0;
		if (j->preempted) /* its session goes on: only its KV cache went */
			j->preempted = false;
		else
			rc = job_start(j, &s->env);
		if (rc == 0 && s->o.prefix_cache)
			job_attach(j);
		struct qvl_mm_cache_stats vc;
		qvl_mm_cache_stats(s->env.e, &vc);
		qvld_stats_vision(s->env.stats, &vc);
		pthread_mutex_lock(&s->mu);
		if (rc != 0) { /* failed, or done in one go (TOKENIZE, EMBED_IMAGE) */
			drop_locked(s, j, true);
			pthread_mutex_unlock(&s->mu);
			job_free(j);
			pthread_mutex_lock(&s->mu);
		}
	}
}

/* Under the lock: the admitted jobs in the order they get the prefill
 * budget (client served least recently, then the job), their cancel flags
 * copied. Returns how many. */
static int snapshot(struct sched *s)
{
	int n = 0;

	for (struct job *j = s->active; j && n < s->o.max_seqs; j = j->next)
		s->run[n++] = j;
	/* insertion sort: n is at most max_seqs and nearly sorted step to step */
	for (int i = 1; i < n; i++) {
		struct job *j = s->run[i];
		int k = i;
		while (k > 0 && (s->run[k - 1]->cl->last_served > j->cl->last_served ||
				 (s->run[k - 1]->cl == j->cl &&
				  s->run[k - 1]->last_served > j->last_served))) {
			s->run[k] = s->run[k - 1];
			k--;
		}
		s->run[k] = j;
	}
	for (int i = 0; i < n; i++)
		s->cancel[i] = s->run[i]->cancel;
	return n;
}

static void log_fail(struct sched *s, int i, const struct qvl_err *err)
{
	log_warn("client %u request %llu: %s", shm_client_id(s->staged[i]->req->client),
		 (unsigned long long)s->staged[i]->req->user_data, err->msg);
}

/* The forward failed for the batch as a whole (which leaves every sequence
 * unchanged): run each item alone so that only the one at fault fails. */
static void run_alone(struct sched *s, int n)
{
	for (int i = 0; i < n; i++) {
		struct qvl_err err = {{0}};
		int rc = qvl_engine_forward(s->env.e, &s->items[i], 1, &err);
		if (rc < 0)
			log_fail(s, i, &err);
		if (job_advance_why(s->staged[i], &s->env, rc, rc < 0 ? err.msg : NULL))
			sched_retire(s, s->staged[i]);
	}
}

static void unstage(struct sched *s, int *m, int i)
{
	memmove(&s->items[i], &s->items[i + 1], (size_t)(*m - i - 1) * sizeof(s->items[0]));
	memmove(&s->staged[i], &s->staged[i + 1], (size_t)(*m - i - 1) * sizeof(s->staged[0]));
	(*m)--;
}

/* Give a job's KV pages back and put it at the head of the queue with its
 * session: it is re-admitted first and re-prefills its prompt and what it
 * generated, then goes on (a preempted request never fails). */
static void preempt(struct sched *s, struct job *j)
{
	split_forget(s, j);
	gen_reset(j->g);
	pthread_mutex_lock(&s->mu);
	unlink_job(&s->active, j);
	s->n_active--;
	j->cl->n_active--;
	j->preempted = true;
	j->next = s->queued;
	s->queued = j;
	s->n_queued++;
	pthread_mutex_unlock(&s->mu);
	s->preemptions++;
	log_debug("client %u request %llu: preempted (KV pages full)",
		  shm_client_id(j->req->client), (unsigned long long)j->req->user_data);
}

/* The staged batch must fit in the KV pool's free (or cached) pages, or the
 * forward fails with -ENOSPC. Hold back prefill chunks first (last in the
 * fairness order first: they lose nothing, they wait a step) as long as
 * something else still runs; when that is not enough (the decodes alone do
 * not fit, or half-done prefills hold every page), preempt the sequence
 * admitted last (it has the least work to redo, as in vLLM): every
 * preemption frees pages, so the others always progress. A sequence alone
 * in the pool that still cannot grow ends with the context stop: the
 * budget is its context. */
/* Pages j holds (a page shared with others counts for each holder). */
size_t sched_held(const struct job *j, size_t page_tokens)
{
	int len = j->g ? qvl_seq_len(gen_seq(j->g)) : 0;
	return ((size_t)len + page_tokens - 1) / page_tokens;
}

/* The most recently admitted job holding pages, of client k (NULL: any);
 * *holders counts them. */
static struct job *victim(struct sched *s, const struct sched_client *k, size_t pt, int *holders)
{
	struct job *v = NULL;

	*holders = 0;
	for (struct job *j = s->active; j; j = j->next)
		if ((!k || j->cl == k) && sched_held(j, pt)) {
			(*holders)++;
			if (!v || j->admit_tick >= v->admit_tick)
				v = j;
		}
	return v;
}

static int staged_at(struct sched *s, int m, const struct job *j)
{
	for (int i = 0; i < m; i++)
		if (s->staged[i] == j)
			return i;
	return -1;
}

static bool is_prefill(const struct qvl_batch_item *it)
{
	return it->chunk.n > 1 || (!it->logits && !it->argmax);
}

/* Make room by preempting the victim of client k (NULL: anyone), or, when it
 * is the only holder, end it: alone, it has outgrown the budget. */
static void make_room(struct sched *s, int *m, const struct sched_client *k, size_t pt)
{
	int holders, at;
	struct job *v = victim(s, k, pt, &holders);

	if (!v)
		return;
	at = staged_at(s, *m, v);
	if (at >= 0)
		unstage(s, m, at);
	if (holders > 1) {
		preempt(s, v);
		return;
	}
	split_forget(s, v);
	if (job_advance(v, &s->env, -ENOSPC))
		sched_retire(s, v);
}

/* client_kv_pages: a client whose sequences would hold more pages than that
 * after the step loses, like the whole batch under the pool's budget, first
 * its prefill chunks, then its most recently admitted sequence. Returns
 * true when it changed the batch (call again). */
static bool client_fit(struct sched *s, int *m, size_t pt)
{
	size_t lim = (size_t)s->o.client_kv_pages;

	for (int i = *m - 1; lim && i >= 0; i--) {
		const struct sched_client *k = s->staged[i]->cl;
		size_t use = 0;
		int drop = -1, n_k = 0;
		for (struct job *j = s->active; j; j = j->next)
			if (j->cl == k)
				use += sched_held(j, pt);
		for (int t = 0; t < *m; t++)
			if (s->staged[t]->cl == k) {
				use += qvl_seq_pages_needed(s->items[t].seq, s->items[t].chunk.n);
				n_k++;
				if (is_prefill(&s->items[t]))
					drop = t;
			}
		if (use <= lim)
			continue;
		/* a prefill waits while the client's other sequences run */
		if (drop >= 0 && n_k > 1)
			unstage(s, m, drop);
		else
			make_room(s, m, k, pt);
		return true;
	}
	return false;
}

static void fit(struct sched *s, int *m)
{
	struct qvl_kv_usage u0;

	qvl_engine_kv_usage(s->env.e, &u0);
	while (u0.page_tokens && client_fit(s, m, u0.page_tokens))
		;
	for (;;) {
		struct qvl_kv_usage u;
		size_t need = 0;

		qvl_engine_kv_usage(s->env.e, &u);
		for (int i = 0; i < *m; i++)
			need += qvl_seq_pages_needed(s->items[i].seq, s->items[i].chunk.n);
		if (u.pages_used <= u.pages_total && need <= u.pages_total - u.pages_used)
			break;
		/* while something else runs, a prefill chunk can wait a step */
		int drop = -1;
		for (int i = *m - 1; i >= 0 && drop < 0 && *m > 1; i--)
			if (is_prefill(&s->items[i]))
				drop = i;
		if (drop >= 0) {
			unstage(s, m, drop);
			continue;
		}
		int holders;
		if (!victim(s, NULL, u.page_tokens, &holders))
			break;
		make_room(s, m, NULL, u.page_tokens);
	}
}

/* One step, without the lock: stage every job's chunk, one forward pass,
 * advance each; then the next part of the split long prefill (sched_split.c).
 * n jobs from snapshot(). */
static void step(struct sched *s, int n)
{
	struct qvl_err err = {{0}};
	size_t budget = split_plan(s, n), rows = 0;
	double now = qvl_now();
	int m = 0;

	for (int i = 0; i < n; i++) {
		struct job *j = s->run[i];
		int rc = 0;

		if (!s->cancel[i] && j->deadline > 0 && now > j->deadline) {
			j->expired = true;
			rc = -ETIMEDOUT;
		} else if (s->cancel[i]) {
			rc = -ECANCELED;
		} else {
			size_t miss = gen_missing(j->g);
			/* a decode (one position) always runs; prefills share the budget */
			if (s->hold[i] || j->in_split || job_encoding(j) || (miss > 1 && !budget))
				continue;
			if (s->to_split[i]) {
				split_stage(s, j, &budget);
				continue;
			}
			rc = job_stage(j, miss > 1 ? budget : 1, &s->items[m]);
			if (rc > 0) {
				if (miss > 1)
					budget -= (size_t)rc;
				rows += (size_t)rc;
				s->staged[m++] = j;
				j->fed = true;
				j->last_served = s->tick;
				j->cl->last_served = s->tick;
				continue;
			}
			if (rc == 0)
				rc = -ECANCELED; /* finished or cancelled inside the session */
		}
		split_forget(s, j);
		if (job_advance(j, &s->env, rc))
			sched_retire(s, j);
	}
	fit(s, &m);
	if (m) {
		rows = 0;
		for (int i = 0; i < m; i++)
			rows += s->items[i].chunk.n;
		double t0 = qvl_now();
		int rc = qvl_engine_forward(s->env.e, s->items, (size_t)m, &err);
		double dt = qvl_now() - t0;
		struct qvl_kv_usage u;
		qvl_engine_kv_usage(s->env.e, &u);
		qvld_stats_step(s->env.stats, m, rows, dt);
		qvld_stats_kv(s->env.stats, &u, s->preemptions);
		if (rc == 0)
			pace_step(&s->pace, rows, dt);
		log_debug("step %llu: %d sequences, %zu rows in %.3f s",
			  (unsigned long long)s->tick, m, rows, dt);
		if (rc < 0 && m > 1) {
			log_debug("batch of %d: %s; running each alone", m, err.msg);
			run_alone(s, m);
		} else {
			if (rc < 0) /* the reason (a weight shard that could not be read...) */
				log_fail(s, 0, &err);
			for (int i = 0; i < m; i++)
				if (job_advance_why(s->staged[i], &s->env, rc,
						    rc < 0 ? err.msg : NULL))
					sched_retire(s, s->staged[i]);
		}
	}
	/* one long part per step: a step that carried a split part and an
	 * encode part would take two shares of the bound (pace.h); when both
	 * wait they take turns. A split staged in this step begins in it (its
	 * jobs' chunks are taken). */
	bool staged = s->n_sjobs && !s->split;
	if (s->encode_turn && !staged && encode_step(s)) {
		s->encode_turn = false;
		return;
	}
	if (split_step(s))
		s->encode_turn = true;
	else if (!s->encode_turn || staged) /* not tried above */
		encode_step(s);
}

static void *worker(void *arg)
{
	struct sched *s = arg;

	if (qvld_pin_self(s->cpu) < 0)
		log_warn("scheduler thread: cannot bind to PU %d", s->cpu);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		admit(s);
		qvld_stats_set_gauges(s->env.stats, s->n_queued, s->n_active);
		if (s->stop)
			break;
		if (!s->active) {
			struct qvl_kv_usage u; /* the pages the finished jobs gave back */
			qvl_engine_kv_usage(s->env.e, &u);
			qvld_stats_kv(s->env.stats, &u, s->preemptions);
			if (s->draining && !s->queued)
				break;
			if (s->vision_held) { /* the read ends without a signal here */
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 20000000;
				ts.tv_sec += ts.tv_nsec / 1000000000;
				ts.tv_nsec %= 1000000000;
				pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			} else {
				pthread_cond_wait(&s->cv, &s->mu);
			}
			continue;
		}
		s->tick++;
		int n = snapshot(s);
		pthread_mutex_unlock(&s->mu);
		step(s, n);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int sched_start(struct sched *s, int cpu, struct qvl_err *err)
{
	struct qvl_kv_usage u;

	qvl_engine_kv_usage(s->env.e, &u); /* the worker does not run yet */
	qvld_stats_kv(s->env.stats, &u, 0);
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
	split_abort(s);
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
	free_arrays(s);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
