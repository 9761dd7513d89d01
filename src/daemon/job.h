/* One GENERATE request inside qvld: reading its inputs out of the client's
 * arena (once, into memory the daemon owns), its generation session, and
 * writing results back into the client-named output region with a CQE per
 * streamed chunk and a final one. Everything that knows the wire format of
 * a generation lives here; sched.c only orders jobs. */
#ifndef QVLD_JOB_H
#define QVLD_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "generate.h"
#include "shm.h"

struct qvl_engine;
struct qvl_tokenizer;
struct qvld_stats;

struct job_env {
	struct qvl_engine *e;
	const struct qvl_tokenizer *tok;
	int n_ctx;
	struct qvld_stats *stats;
	/* images' tower passes run by the scheduler a few blocks per step
	 * (sched_encode.c), not inside job_start() */
	bool defer_encode;
};

struct job {
	struct shm_request *req; /* NULL once its final CQE is posted (worker only) */
	/* copied at submission: the poller matches cancels and dead clients
	 * against these, never against req, which the worker may be releasing */
	struct shm_client *client;
	uint64_t user_data;
	struct sched_client *cl; /* the scheduler's per-client record */
	struct job *next;	 /* scheduler list */
	struct gen_session *g;
	bool started;
	bool cancel;	     /* written and read under the scheduler lock only */
	bool expired;	     /* its deadline passed (worker thread only) */
	bool preempted;	     /* back in the queue with its session, KV pages given up */
	bool fed;	     /* a chunk of it has been staged (worker thread only) */
	bool in_split;	     /* its chunk is in the split in flight (worker thread only) */
	uint64_t admit_tick; /* when it (last) entered the batch */
	double deadline;     /* qvl_now() seconds, 0: none */
	uint64_t last_served;
	double t_submit, t_start;
	uint32_t n_ids, text_len; /* written to the output region so far */
	uint32_t n_prompt;
};

/* Build the session (prompt, images, sampler). On failure the job is
 * completed with the error (CQE posted, req released) and -errno returned.
 * An EMBED_IMAGE or TOKENIZE job does all its work here and returns 1
 * (finished). */
int job_start(struct job *j, const struct job_env *env);
/* EMBED_IMAGE (embed.c): runs the vision tower, posts the final CQE, 1. */
int job_embed(struct job *j, const struct job_env *env);
/* TOKENIZE (tokenize.c): encodes the text parts, posts the final CQE, 1. */
int job_tokenize(struct job *j, const struct job_env *env);
/* On admission (and re-admission after preemption): attach the cached KV
 * pages of the longest known prefix of its prompt. Returns the positions
 * reused (0 on any failure: the prefill then computes them). */
size_t job_attach(struct job *j);
/* The job's part of the next batched forward pass: gen_next() (at most
 * budget positions; 0 when it has nothing to run, -ENOMEM). */
int job_stage(struct job *j, size_t budget, struct qvl_batch_item *it);
/* After the pass (rc its result for this job; -ECANCELED ends it as
 * cancelled, -ETIMEDOUT too, with j->expired set so the final CQE says
 * -ETIMEDOUT): outputs written, a MORE CQE when streaming. Returns 1 when
 * the job has finished (final CQE posted, req released). */
int job_advance(struct job *j, const struct job_env *env, int rc);
/* The same, with why (may be NULL) the reason of a failed pass (the
 * forward's message: a weight shard that could not be read...), which the
 * client is sent after the errno's text. */
int job_advance_why(struct job *j, const struct job_env *env, int rc, const char *why);
/* Finish a job that never started (cancelled while queued, client gone,
 * draining): post its final CQE with res and stop. */
void job_abort(struct job *j, const struct job_env *env, int res, uint32_t stop);
void job_free(struct job *j);
/* Its images' tower passes are not done (env->defer_encode): the scheduler
 * runs them (gen_encode_step()) and stages nothing of it meanwhile. */
bool job_encoding(const struct job *j);

#endif
