/* The long prefill cut by layers (see pace.h): which jobs a step runs in
 * its forward, which wait, and the split forward that carries the long
 * prompts' chunks a few layers per step.
 *
 * With --prefill-step-pct N > 0 (the default) a step is:
 *   - one qvl_engine_forward() of the decodes and of the prompts of at most
 *     PACE_REF positions still to feed (short prompts run whole, as on an
 *     idle daemon), then
 *   - the next layers of the split in flight: one chunk (prefill_chunk
 *     positions, shared round-robin by client as before) of each longer
 *     prefill, begun when the last split ended, as many layers as keep
 *     that part under N% of a short step (pace.h).
 * A newcomer (a short prompt not started yet) gets the step alone with the
 * decodes, without the split's part: it waits for the step in progress,
 * then runs as on an idle daemon. The split loses that one step, never two
 * in a row, so a stream of newcomers cannot starve it.
 * With N = 0, every prefill shares the forward's budget (the old way), and
 * so for one step when a split cannot get its KV pages (fit() then holds
 * back or preempts as for any prefill). */
#include "config.h"

#include <errno.h>

#include "daemon/log.h"
#include "daemon/sched_impl.h"
#include "daemon/stats.h"
#include "engine.h"
#include "util.h"

size_t split_plan(struct sched *s, int n)
{
	bool fresh = false, longs = false, cut = s->pace.ratio > 0 && !s->split_nospc;

	s->split_nospc = false;
	for (int i = 0; i < n; i++) {
		struct job *j = s->run[i];
		bool enc = !s->cancel[i] && job_encoding(j);
		size_t miss = s->cancel[i] || j->in_split || enc ? 0 : gen_missing(j->g);

		s->hold[i] = false;
		s->to_split[i] = cut && miss > PACE_REF;
		fresh |= miss > 1 && miss <= PACE_REF && !j->fed;
		/* an image's encode (sched_encode.c) yields to a newcomer too */
		longs |= s->to_split[i] || j->in_split || enc;
	}
	if (!cut)
		return (size_t)s->o.prefill_chunk;
	s->held_long = fresh && longs && !s->held_long;
	for (int i = 0; i < n; i++) {
		/* one split at a time; none begins in a newcomer's step */
		if (s->to_split[i] && (s->split || s->held_long)) {
			s->hold[i] = true;
			s->to_split[i] = false;
		}
	}
	return (size_t)s->o.prefill_chunk;
}

void split_stage(struct sched *s, struct job *j, size_t *budget)
{
	struct qvl_batch_item *it = &s->sitems[s->n_sjobs];
	size_t room = QVL_SPLIT_MAX_ROWS;
	int rc;

	for (int i = 0; i < s->n_sjobs; i++)
		room -= s->sitems[i].chunk.n;
	if (!*budget || !room)
		return;
	rc = job_stage(j, *budget < room ? *budget : room, it);
	if (rc <= 0) /* finished or out of memory: the next step ends it */
		return;
	*budget -= (size_t)rc;
	s->sjobs[s->n_sjobs++] = j;
	j->fed = true;
	j->last_served = s->tick;
	j->cl->last_served = s->tick;
}

void split_abort(struct sched *s)
{
	for (int i = 0; i < s->n_sjobs; i++)
		s->sjobs[i]->in_split = false;
	s->n_sjobs = 0;
	qvl_split_destroy(s->split);
	s->split = NULL;
	s->split_s = 0;
}

void split_forget(struct sched *s, const struct job *j)
{
	for (int i = 0; i < s->n_sjobs; i++)
		if (s->sjobs[i] == j) {
			split_abort(s);
			return;
		}
}

/* client_kv_pages: would a client of the split hold more pages than that
 * with its chunks in? (Then the old way's client_fit() decides.) */
static bool split_over_client_limit(struct sched *s)
{
	struct qvl_kv_usage u;

	qvl_engine_kv_usage(s->env.e, &u);
	if (!s->o.client_kv_pages || !u.page_tokens)
		return false;
	for (int i = 0; i < s->n_sjobs; i++) {
		const struct sched_client *k = s->sjobs[i]->cl;
		size_t use = 0;
		for (const struct job *j = s->active; j; j = j->next)
			if (j->cl == k)
				use += sched_held(j, u.page_tokens);
		for (int t = 0; t < s->n_sjobs; t++)
			if (s->sjobs[t]->cl == k)
				use += qvl_seq_pages_needed(s->sitems[t].seq, s->sitems[t].chunk.n);
		if (use > (size_t)s->o.client_kv_pages)
			return true;
	}
	return false;
}

static int split_begin(struct sched *s)
{
	struct qvl_err err = {{0}};
	int rc = split_over_client_limit(s)
		     ? qvl_errf(&err, -ENOSPC, "over client_kv_pages")
		     : qvl_split_begin(s->env.e, s->sitems, (size_t)s->n_sjobs, &s->split, &err);

	if (rc < 0) {
		/* -ENOSPC: one step the old way, where fit() makes room; else
		 * (a bad chunk) the old way finds the job at fault */
		log_debug("split of %d prefills: %s", s->n_sjobs, err.msg);
		s->n_sjobs = 0;
		s->split_nospc = true;
		return rc;
	}
	for (int i = 0; i < s->n_sjobs; i++)
		s->sjobs[i]->in_split = true;
	return 0;
}

bool split_step(struct sched *s)
{
	if (!s->split && (!s->n_sjobs || split_begin(s) < 0))
		return false;
	if (s->held_long)
		return false;
	size_t rows = qvl_split_rows(s->split);
	int k = pace_layers(&s->pace, rows, qvl_split_layers_left(s->split));
	double t0 = qvl_now();
	struct qvl_err err = {{0}};
	int rc = qvl_split_run(s->split, k, &err);
	double dt = qvl_now() - t0;

	pace_split(&s->pace, rows, k, dt);
	qvld_stats_split_part(s->env.stats);
	s->split_s += dt;
	log_debug("split in step %llu: %zu rows, %d layers in %.3f s (short step %.3f s)",
		  (unsigned long long)s->tick, rows, k, dt, s->pace.t_small);
	if (rc == 0)
		return true;
	struct qvl_kv_usage u;
	qvl_engine_kv_usage(s->env.e, &u);
	qvld_stats_step(s->env.stats, s->n_sjobs, rows, s->split_s);
	qvld_stats_kv(s->env.stats, &u, s->preemptions);
	int n = s->n_sjobs;
	s->n_sjobs = 0;
	qvl_split_destroy(s->split);
	s->split = NULL;
	s->split_s = 0;
	if (rc < 0) /* the reason (a weight shard that could not be read...) */
		log_warn("split of %d prefills: %s", n, err.msg);
	for (int i = 0; i < n; i++) {
		struct job *j = s->sjobs[i];
		j->in_split = false;
		if (job_advance_why(j, &s->env, rc < 0 ? rc : 0, rc < 0 ? err.msg : NULL))
			sched_retire(s, j);
	}
	return true;
}
