/* Internal to the scheduler (sched.c, sched_split.c): its state. */
#ifndef QVLD_SCHED_IMPL_H
#define QVLD_SCHED_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/job.h"
#include "daemon/pace.h"
#include "daemon/sched.h"

struct sched_client {
	struct shm_client *c;
	uint64_t last_served, last_admitted;
	int n_jobs;   /* queued + admitted */
	int n_active; /* admitted */
	struct sched_client *next;
};

struct sched {
	struct job_env env;
	struct sched_opts o;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started, draining, stop;
	struct job *queued, *active; /* singly linked, in arrival order */
	int n_queued, n_active;
	struct sched_client *clients;
	uint64_t tick;
	int cpu;
	/* the worker's step arrays, max_seqs long */
	struct job **run;
	bool *cancel;
	bool *hold;	/* left out of this step (split_plan()) */
	bool *to_split; /* its prefill chunk starts the next split (split_plan()) */
	struct qvl_batch_item *items;
	struct job **staged;
	uint64_t preemptions; /* worker thread only */
	/* steps that ran encode blocks (sched_encode.c, worker thread only):
	 * what QVL_ENCODE_HOLD counts */
	uint64_t encode_parts;
	/* the long prefill cut by layers (sched_split.c), worker thread only */
	struct pace pace;
	struct qvl_split *split; /* in flight, or NULL */
	struct qvl_batch_item *sitems;
	struct job **sjobs;
	int n_sjobs;
	double split_s;	  /* seconds its parts took so far */
	bool held_long;	  /* the last step ran newcomers without the long prefill */
	bool split_nospc; /* the last split found no KV pages: one step the old way */
	bool encode_turn; /* both a split and an encode wait: the encode's step next */
	/* a queued job needs the vision tower, which is still being read
	 * (qvl_model_vision_ready): the idle worker polls for it */
	bool vision_held;
};

/* sched_encode.c. After the step's forward: the next blocks of the first
 * admitted job whose images' tower passes are pending, paced like the
 * split (pace.h); at their end the job prefills. Whether a part ran. */
bool encode_step(struct sched *s);

/* sched.c: a job that has finished leaves the batch and is freed. */
void sched_retire(struct sched *s, struct job *j);
/* Pages j holds (a page shared with others counts for each holder). */
size_t sched_held(const struct job *j, size_t page_tokens);

/* sched_split.c. Before a step's staging: mark the jobs the step leaves
 * out (s->hold) and those whose chunks start a split (s->to_split);
 * returns the prefill budget of the step's forward. */
size_t split_plan(struct sched *s, int n);
/* Stage j's next chunk into the split to begin (out of *budget). */
void split_stage(struct sched *s, struct job *j, size_t *budget);
/* After the step's forward: begin the staged split, run its next layers;
 * at its end advance its jobs. Whether a part ran. */
bool split_step(struct sched *s);
/* Drop the split in flight (its jobs keep their sessions and re-stage the
 * chunk later); for a cancel, a preemption or the end. */
void split_abort(struct sched *s);
/* split_abort() when j's chunk is staged for the split or in it: j is about
 * to end or to lose its KV pages. */
void split_forget(struct sched *s, const struct job *j);

#endif
