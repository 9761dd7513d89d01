/* The callbacks the ring poller calls (struct shm_ops): each validated
 * request goes to the scheduler (GENERATE, EMBED_IMAGE) or is answered on the spot
 * (CANCEL, STATS, STATUS, VOCAB, SHUTDOWN); client arrivals and
 * departures update the counters and cancel a dead client's work. */
#ifndef QVLD_SERVE_H
#define QVLD_SERVE_H

#include "shm.h"

struct sched;
struct qvld_stats;
struct qvl_tokenizer;

struct qvld_serve {
	struct sched *sched;
	struct qvld_stats *stats;
	const struct qvl_tokenizer *tok; /* for VOCAB; NULL: the model has none */
	int shutdown_fd; /* eventfd the main loop watches: SHUTDOWN writes 1 */
};

void qvld_serve_ops(struct qvld_serve *sv, struct shm_ops *ops);

#endif
