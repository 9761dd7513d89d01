/* An in-process test server for the ring tests and benchmarks: the real
 * poller in a thread on a socket in a temporary directory, with an echo
 * callback instead of the engine. Header-only; include once per program.
 *
 * Echo: a GENERATE/TOKENIZE completes at once with n_tokens = max_tokens,
 * n_prompt = n_parts, text_len = the first part's length, and that part's
 * bytes copied (read once) to the text area of the output region. With
 * `hold` set, requests are parked in srv->held instead, for the test to
 * complete from its own thread (shm_complete from a non-poller thread). */
#ifndef QVL_TESTS_SHM_TESTSRV_H
#define QVL_TESTS_SHM_TESTSRV_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qvl.h"
#include "shm.h"

struct testsrv {
	char dir[64], path[128];
	int fd;
	struct shm_poller *p;
	pthread_t thr;
	pthread_mutex_t lock;
	int hold;
	struct shm_request *held[64];
	int n_held;
	int disconnects, connects, refusals, last_refusal, submits;
};

static void ts_echo(struct shm_request *req)
{
	struct qvl_cqe cqe = {0};
	uint64_t size, skip;
	uint8_t *arena = shm_request_arena(req, &size);

	cqe.n_tokens = req->gen.max_tokens;
	cqe.n_prompt = req->gen.n_parts;
	if (req->gen.n_parts && req->opcode == QVL_OP_GENERATE) {
		const struct shm_part *pt = &req->parts[0];
		skip = 4ull * req->gen.max_tokens * ((req->gen.flags & QVL_GEN_LOGPROBS) ? 2 : 1);
		cqe.text_len =
		    (uint32_t)(pt->len < req->out_len - skip ? pt->len : req->out_len - skip);
		memcpy(arena + req->out_off + skip, arena + pt->off, cqe.text_len);
	}
	cqe.stop = QVL_STOP_LENGTH;
	shm_complete(req, &cqe);
}

static int ts_submit(void *ctx, struct shm_request *req)
{
	struct testsrv *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->submits++;
	if (s->hold && s->n_held < 64) {
		s->held[s->n_held++] = req;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	pthread_mutex_unlock(&s->lock);
	if (req->opcode == QVL_OP_SHUTDOWN || req->opcode == QVL_OP_CANCEL)
		return -EOPNOTSUPP;
	ts_echo(req);
	return 0;
}

static void ts_connected(void *ctx, struct shm_client *c)
{
	struct testsrv *s = ctx;

	(void)c;
	__atomic_fetch_add(&s->connects, 1, __ATOMIC_RELAXED);
}

static void ts_disconnected(void *ctx, struct shm_client *c, int why)
{
	struct testsrv *s = ctx;

	(void)c;
	(void)why;
	__atomic_fetch_add(&s->disconnects, 1, __ATOMIC_RELAXED);
}

static void ts_refused(void *ctx, const struct shm_refusal *r)
{
	struct testsrv *s = ctx;

	__atomic_store_n(&s->last_refusal, r->code, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->refusals, 1, __ATOMIC_RELAXED);
}

static void *ts_run(void *arg)
{
	shm_poller_run(arg);
	return NULL;
}

/* Start a server with pol (NULL: defaults) on a fresh socket (mode 0666). */
static int ts_start(struct testsrv *s, const struct shm_policy *pol)
{
	struct shm_policy def = {0};
	struct shm_ops ops = {.ctx = s,
			      .submit = ts_submit,
			      .connected = ts_connected,
			      .disconnected = ts_disconnected,
			      .refused = ts_refused};
	struct qvl_err e;
	int rc;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	snprintf(s->dir, sizeof(s->dir), "/tmp/qvl-ring-XXXXXX");
	if (!mkdtemp(s->dir) || chmod(s->dir, 0755)) /* other uids may try to connect */
		return -errno;
	snprintf(s->path, sizeof(s->path), "%s/sock", s->dir);
	if ((rc = shm_listen(s->path, 0666, &s->fd, &e)) ||
	    (rc = shm_poller_create(s->fd, pol ? pol : &def, &ops, &s->p, &e))) {
		fprintf(stderr, "# %s\n", e.msg);
		return rc;
	}
	return -pthread_create(&s->thr, NULL, ts_run, s->p);
}

static void ts_stop(struct testsrv *s)
{
	shm_poller_stop(s->p);
	pthread_join(s->thr, NULL);
	shm_poller_destroy(s->p);
	close(s->fd);
	unlink(s->path);
	rmdir(s->dir);
}

#endif
