/* The request queue and the batching loop that runs forward passes.
 *
 * Requests become jobs owned by the scheduler, not by a connection: a client
 * that goes away only marks its jobs cancelled. Two stages:
 *   queue   -> admitted: a job is admitted (its session built: tokenizer,
 *              images, sampler, KV sequence) when fewer than max_seqs are in
 *              progress and its client holds fewer than client_max_seqs;
 *              the next one comes from the client admitted least recently
 *              (round-robin across clients). The queue is bounded:
 *              max_queue jobs waiting, then new requests complete at once
 *              with -EBUSY.
 *   admitted -> a step: every step is ONE qvl_engine_forward() over the
 *              admitted jobs (continuous batching): each decoding sequence
 *              feeds its last id, and prefills (prompts, images, a
 *              preempted sequence's re-prefill) share a budget of
 *              prefill_chunk positions, handed out round-robin by client
 *              (the client served least recently first), so a long prompt
 *              costs the others one bounded chunk per step, never a stall;
 *              and a chunk of more than 16 positions runs a few layers per
 *              step, beside that forward, so that a step stays about as
 *              short as a short prompt's (sched_split.c, pace.h).
 *              Then each job advances (sample, stop checks, outputs).
 *              Sequences join and leave the batch at these step
 *              boundaries; a cancel, a dead client or a passed deadline
 *              ends a job at the next step.
 * Fairness is round-robin, not deficit round-robin: every admitted sequence
 * gets one position per step whatever its client, so the only things to
 * share are admission slots and the prefill budget, and both are handed out
 * a client at a time, in units whose cost is already bounded (one sequence,
 * one chunk of at most prefill_chunk positions).
 *
 * One worker thread (the engine's thread 0) does all engine work; the other
 * entry points are called from the poller thread and only touch the queue
 * under the lock. */
#ifndef QVLD_SCHED_H
#define QVLD_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/job.h"
#include "err.h"
#include "shm.h"

struct sched;

struct sched_opts {
	int max_seqs;	     /* sequences admitted at once */
	int max_queue;	     /* jobs waiting for admission before -EBUSY */
	int prefill_chunk;   /* prompt positions per step, all prefills together */
	double prefill_step; /* long prefills' part of a step, in short steps (pace.h);
			      * 0: no cut by layers */
	int client_max_seqs; /* admitted sequences per client (0: max_seqs) */
	int64_t client_kv_pages; /* KV pages one client's sequences may hold (0: any) */
	double deadline_s;   /* longest a request may take from submission (0: none) */
	bool prefix_cache;   /* attach cached prefix pages on admission */
};

int sched_create(struct sched **out, const struct job_env *env, const struct sched_opts *o,
		 struct qvl_err *err);
/* Start the worker; cpu >= 0 pins it there (hwloc PU os index). */
int sched_start(struct sched *s, int cpu, struct qvl_err *err);
/* Own a GENERATE request (0), or -EBUSY (the queue is full) / -ESHUTDOWN
 * (the caller completes it). */
int sched_submit(struct sched *s, struct shm_request *req);
/* Cancel the job (c, user_data): 0 found (it ends at its next token with
 * QVL_STOP_CANCELLED), -ENOENT not found. */
int sched_cancel(struct sched *s, struct shm_client *c, uint64_t user_data);
/* The client is gone: cancel all its jobs. */
void sched_client_gone(struct sched *s, struct shm_client *c);
/* Stop admitting new requests, let every job run to its end, stop the worker. */
void sched_drain(struct sched *s);
void sched_counts(struct sched *s, int *queued, int *active);
void sched_destroy(struct sched *s);

#endif
