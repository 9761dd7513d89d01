/* An image's encode cut by tower blocks (issue 18): a request whose images
 * the image cache does not hold is admitted with their tower passes
 * pending (job_env.defer_encode, qvl_mm_opts.defer_encode), and every step
 * runs the next few blocks of one such job after its forward of the
 * others' decodes, as many as keep that part under --prefill-step-pct % of
 * a short step (pace.h, from the measured seconds per block and patch).
 * The others' decodes thus go on during an encode that took one whole step
 * before (~1.5 s for 448x448 on the 2b shape, ~6 s for 1024x768). The
 * pass's rows are bit for bit those of one uncut pass (vision.h); at its
 * end they go to the image cache and the job prefills as any other.
 * One encode at a time, in admission order: running two side by side
 * would only delay the first. A newcomer's step runs no block
 * (split_plan()). Worker thread only. */
#include "config.h"

#include <unistd.h>

#include "daemon/log.h"
#include "daemon/sched_impl.h"
#include "daemon/stats.h"
#include "env.h"
#include "multimodal.h"
#include "util.h"

bool encode_step(struct sched *s)
{
	struct job *j = s->active;

	if (s->held_long)
		return false;
	/* s->active changes on this thread only (admit, retire, preempt) */
	while (j && (!j->req || !job_encoding(j)))
		j = j->next;
	if (!j)
		return false;
	/* tests: QVL_ENCODE_HOLD=FILE runs no part while FILE holds a number
	 * <= the parts run so far, the decodes going on, so that a test's
	 * cancel lands mid-encode however late its client is; the sleep
	 * spares a spin on the file when the held job is all there is */
	if (qvl_env_held("QVL_ENCODE_HOLD", (long)s->encode_parts)) {
		usleep(1000);
		return false;
	}
	s->encode_parts++;
	size_t patches = gen_encode_patches(j->g);
	int left = gen_encode_left(j->g);
	int k = pace_blocks(&s->pace, patches, left);
	struct qvl_err err = {{0}};
	double t0 = qvl_now();
	int rc = gen_encode_step(j->g, k, &err);
	double dt = qvl_now() - t0;

	qvld_stats_encode_part(s->env.stats);
	log_debug("encode in step %llu: %zu patches, %d of %d blocks in %.3f s (short step %.3f s)",
		  (unsigned long long)s->tick, patches, k, left, dt, s->pace.t_small);
	/* a part that crossed into the next image measured other patches:
	 * only a part within one image teaches the pace */
	if (rc >= 0 && (rc == 0 || gen_encode_patches(j->g) == patches))
		pace_vision(&s->pace, patches, left - rc, dt);
	if (rc > 0)
		return true;
	struct qvl_mm_cache_stats vc;
	qvl_mm_cache_stats(s->env.e, &vc);
	qvld_stats_vision(s->env.stats, &vc);
	if (rc == 0)
		return true;
	/* the pass failed (out of memory...): the job ends with the reason */
	split_forget(s, j);
	if (job_advance_why(j, &s->env, rc, err.msg))
		sched_retire(s, j);
	return true;
}
