/* The request queue and the thing that runs forward passes.
 *
 * Requests become jobs owned by the scheduler, not by a connection: a client
 * that goes away only marks its jobs cancelled. Two stages:
 *   queue   -> admitted: a job is admitted (its session built: tokenizer,
 *              images, sampler, KV reservation) when fewer than max_seqs are
 *              in progress; the next one comes from the client admitted
 *              least recently (round-robin across clients).
 *   admitted -> a pass: sched_pick() chooses what the next forward pass
 *              runs: today one job, the one whose client was served least
 *              recently (round-robin at token granularity), then
 *              job_step() runs it.
 * The batching scheduler (a later issue) replaces only the pass stage: it
 * picks up to N admitted jobs and runs their gen_next_chunk()s through one
 * qvl_engine_forward(), then gen_advance()s each; queueing, admission,
 * cancellation and completion stay as they are.
 *
 * One worker thread (the engine's thread 0) does all engine work; the other
 * entry points are called from the poller thread and only touch the queue
 * under the lock. */
#ifndef QVLD_SCHED_H
#define QVLD_SCHED_H

#include <stdint.h>

#include "daemon/job.h"
#include "err.h"
#include "shm.h"

struct sched;

int sched_create(struct sched **out, const struct job_env *env, int max_seqs, struct qvl_err *err);
/* Start the worker; cpu >= 0 pins it there (hwloc PU os index). */
int sched_start(struct sched *s, int cpu, struct qvl_err *err);
/* Own a GENERATE request (0), or -EBUSY/-ESHUTDOWN (the caller completes it). */
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
