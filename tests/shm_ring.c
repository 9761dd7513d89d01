/* Ring tests over the real poller (in a thread, echo callback, no engine):
 * sizes 1..1024, spin and futex modes, counters starting near UINT32_MAX,
 * batch submission, a submitter and a completer thread hammering one
 * connection, a second process on the same server, the NOP fault point,
 * the request builder, and the daemon dying under a waiting client. */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "ring_impl.h"
#include "shm_testsrv.h"
#include "tap.h"

#define TIMEOUT_NS (5ll * 1000000000)

/* Submit total NOPs in batches of up to `batch`, reap them (busy peek or
 * qvl_wait_cqe), check each arrives once and in order. Returns "" or why not. */
static const char *nops(struct qvl *q, uint32_t total, uint32_t batch, int sleep)
{
	static char why[128];
	uint32_t sub = 0, seen = 0;
	uint64_t spins = 0;

	while (seen < total) {
		struct qvl_sqe *sqe;
		struct qvl_cqe *c;
		uint32_t k = 0;
		while (sub < total && k < batch && (sqe = qvl_sqe_get(q))) {
			sqe->opcode = QVL_OP_NOP;
			sqe->user_data = 1000 + sub++;
			k++;
		}
		if (k && qvl_submit(q) != (int)k)
			return "qvl_submit count";
		if (sleep) {
			int rc = qvl_wait_cqe(q, &c, TIMEOUT_NS);
			if (rc) {
				snprintf(why, sizeof(why), "wait: %s after %u", qvl_strerror(rc),
					 seen);
				return why;
			}
		} else if (!(c = qvl_cqe_peek(q))) {
			if (++spins > 4000000000ull)
				return "timeout spinning";
			continue;
		}
		while ((c = qvl_cqe_peek(q))) {
			if (c->user_data != 1000 + seen || c->res || c->flags) {
				snprintf(why, sizeof(why), "cqe %u: user_data %llu res %d", seen,
					 (unsigned long long)c->user_data, c->res);
				return why;
			}
			seen++;
			qvl_cqe_seen(q);
		}
	}
	return "";
}

static void sizes_and_modes(void)
{
	static const uint32_t sizes[] = {1, 2, 8, 64, 1024};
	static const uint32_t starts[] = {0, UINT32_MAX - 37};

	for (int sleep = 0; sleep < 2; sleep++)
		for (int st = 0; st < 2; st++) {
			struct shm_policy pol = {.spin_us = sleep ? 1 : 1000000,
						 .ring_start = starts[st]};
			struct testsrv s;
			if (ts_start(&s, &pol)) {
				ok(0, "server start");
				continue;
			}
			for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
				struct qvl_opts o = {.sq_entries = sizes[i], .arena_size = 1 << 16};
				struct qvl *q;
				int rc = qvl_connect(s.path, &o, &q);
				const char *why;
				if (rc) {
					ok(0, "connect sq %u: %s", sizes[i], qvl_strerror(rc));
					continue;
				}
				why = nops(q, 3000, sizes[i] > 16 ? 16 : sizes[i], sleep);
				ok(!*why, "%s mode, sq %u, start %u: 3000 NOPs once, in order %s",
				   sleep ? "futex" : "spin", sizes[i], starts[st], why);
				qvl_disconnect(q);
			}
			ts_stop(&s);
		}
}

struct hammer {
	struct qvl *q;
	uint32_t total;
};

static void *submitter(void *arg)
{
	struct hammer *h = arg;
	uint32_t sub = 0;

	while (sub < h->total) {
		struct qvl_sqe *sqe;
		uint32_t k = 0;
		while (sub < h->total && k < 8 && (sqe = qvl_sqe_get(h->q))) {
			sqe->opcode = QVL_OP_NOP;
			sqe->user_data = sub++;
			k++;
		}
		if (k)
			qvl_submit(h->q);
		else
			sched_yield();
	}
	return NULL;
}

/* One submitter thread, this thread completing: every entry once, in order. */
static void two_threads(int sleep)
{
	struct shm_policy pol = {.spin_us = sleep ? 1 : 200, .ring_start = UINT32_MAX - 1000};
	struct qvl_opts o = {.sq_entries = 16};
	struct hammer h = {.total = 200000};
	struct testsrv s;
	pthread_t t;
	uint32_t seen = 0;
	int bad = 0, badpost = 0, rc;
	uint64_t t0 = ring_now_ns(), last = 0;

	if (ts_start(&s, &pol) || qvl_connect(s.path, &o, &h.q)) {
		ok(0, "two threads: setup");
		return;
	}
	pthread_create(&t, NULL, submitter, &h);
	while (seen < h.total && !bad) {
		struct qvl_cqe *c;
		if ((rc = qvl_wait_cqe(h.q, &c, TIMEOUT_NS))) {
			diag("wait: %s after %u", qvl_strerror(rc), seen);
			bad = 1;
			break;
		}
		if (c->user_data != seen || c->res) {
			diag("cqe %u: user_data %llu", seen, (unsigned long long)c->user_data);
			bad = 1;
		}
		/* post_ns: the daemon's clock when it posted, in order, before now */
		uint64_t now = ring_now_ns();
		if (c->post_ns < t0 || c->post_ns < last || c->post_ns > now) {
			if (!badpost++)
				diag("cqe %u: post_ns %llu outside [%llu, %llu]", seen,
				     (unsigned long long)c->post_ns, (unsigned long long)last,
				     (unsigned long long)now);
		}
		last = c->post_ns;
		seen++;
		qvl_cqe_seen(h.q);
	}
	pthread_join(t, NULL);
	ok(!bad && seen == h.total, "two threads (%s): %u NOPs each once, in order",
	   sleep ? "futex" : "spin", seen);
	ok(!badpost, "two threads (%s): every CQE's post_ns between the start and its reading, in order",
	   sleep ? "futex" : "spin");
	qvl_disconnect(h.q);
	ts_stop(&s);
}

/* A forked client and this process on one server at the same time. */
static void two_processes(void)
{
	struct testsrv s;
	struct qvl *q;
	pid_t pid;
	int st = 0;
	const char *why;

	if (ts_start(&s, NULL)) {
		ok(0, "two processes: setup");
		return;
	}
	pid = fork();
	if (pid == 0) {
		struct qvl *cq;
		if (qvl_connect(s.path, NULL, &cq))
			_exit(2);
		_exit(*nops(cq, 50000, 8, 1) ? 1 : 0);
	}
	if (qvl_connect(s.path, NULL, &q)) {
		ok(0, "two processes: connect");
	} else {
		why = nops(q, 50000, 8, 1);
		ok(!*why, "parent process: 50000 NOPs in order %s", why);
		qvl_disconnect(q);
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child process: 50000 NOPs in order (status %d)",
	   st);
	ts_stop(&s);
}

/* QVL_OP_NOP with arg = -errno completes with that status (the fault point
 * for clients' error paths); a positive arg is itself invalid. */
static void nop_fault(struct qvl *q)
{
	static const int codes[] = {-EIO, -ENOMEM, -EBADMSG, 0};
	struct qvl_cqe *c;

	for (size_t i = 0; i < 4; i++) {
		struct qvl_sqe *sqe = qvl_sqe_get(q);
		if (!sqe)
			break;
		sqe->opcode = QVL_OP_NOP;
		sqe->arg = (uint64_t)(int64_t)codes[i];
		sqe->user_data = 77;
		qvl_submit(q);
		if (qvl_wait_cqe(q, &c, TIMEOUT_NS)) {
			ok(0, "nop fault %d: no CQE", codes[i]);
			continue;
		}
		is_int(c->res, codes[i], "NOP with arg %d completes with %s", codes[i],
		       qvl_strerror(codes[i]));
		qvl_cqe_seen(q);
	}
	struct qvl_sqe *sqe = qvl_sqe_get(q);
	if (!sqe)
		return;
	sqe->opcode = QVL_OP_NOP;
	sqe->arg = 5;
	qvl_submit(q);
	if (!qvl_wait_cqe(q, &c, TIMEOUT_NS)) {
		is_int(c->res, -EINVAL, "NOP with a positive arg is -EINVAL");
		qvl_cqe_seen(q);
	} else {
		ok(0, "NOP positive arg: no CQE");
	}
}

/* The builder end to end through the echo server, and the arena coming back. */
static void builder(struct qvl *q)
{
	uint64_t off, whole = q->arena_size;
	struct qvl_req *r;
	struct qvl_sqe *sqe;
	struct qvl_cqe *c;
	int32_t ids[3] = {1, 2, 3};
	uint8_t rgb[2 * 4 * 3] = {0};

	for (int round = 0; round < 50; round++) {
		if (qvl_req_new(q, QVL_OP_GENERATE, &r) ||
		    qvl_req_add_text(r, QVL_PART_SYSTEM, "be brief", 8) ||
		    qvl_req_add_image_rgb(r, rgb, 2, 2, 12) ||
		    qvl_req_add_text(r, QVL_PART_USER, "hello", 5) ||
		    qvl_req_add_tokens(r, ids, 3) || qvl_req_add_stop(r, "\n", 1) ||
		    qvl_req_set_max_tokens(r, 9) ||
		    qvl_req_set_flags(r, QVL_GEN_LOGPROBS | QVL_GEN_MODEL_DEFAULTS)) {
			ok(0, "builder: setup");
			return;
		}
		sqe = qvl_sqe_get(q);
		if (qvl_req_prep(r, sqe, 4242, 0)) {
			ok(0, "builder: prep");
			return;
		}
		qvl_submit(q);
		if (qvl_wait_cqe(q, &c, TIMEOUT_NS)) {
			ok(0, "builder: no CQE");
			return;
		}
		if (round == 0) {
			is_int(c->res, 0, "builder GENERATE accepted by the validator");
			ok(c->user_data == 4242 && c->n_tokens == 9 && c->n_prompt == 5 &&
			       c->text_len == 8 && !memcmp(qvl_req_text(r), "be brief", 8),
			   "echo: counts and the first part's text in the output region");
			ok((const char *)qvl_req_logprobs(r) == (const char *)qvl_req_ids(r) + 36 &&
			       qvl_req_text(r) == (const char *)qvl_req_ids(r) + 72,
			   "output layout: ids, logprobs, text");
		}
		qvl_cqe_seen(q);
		qvl_release(r);
	}
	ok(qvl_arena_alloc(q, whole, &off) == 0 && off == 0 && qvl_arena_free(q, off) == 0,
	   "after 50 requests released, the whole arena is free again");
	ok(qvl_arena_free(q, 64) == -EINVAL, "freeing an offset never allocated is -EINVAL");
}

/* The builder refuses bad arguments before anything reaches the ring, and a
 * full SQ hands out no entry. */
static void client_errors(struct qvl *q)
{
	struct qvl_req *r;
	struct qvl_sqe sqe;
	uint64_t off;
	uint8_t px[12] = {0};
	uint32_t n = 0;

	if (qvl_req_new(q, QVL_OP_GENERATE, &r)) {
		ok(0, "client errors: setup");
		return;
	}
	is_int(qvl_req_add_text(r, QVL_PART_TOKENS, "x", 1), -EINVAL, "add_text with kind TOKENS");
	is_int(qvl_req_add_stop(r, "", 0), -EINVAL, "empty stop string");
	is_int(qvl_req_add_stop(r, (const char *)px, QVL_MAX_STOP_LEN + 1), -EINVAL,
	       "stop string over 256 bytes");
	is_int(qvl_req_add_image(r, px, 0), -EINVAL, "empty image");
	is_int(qvl_req_add_image_rgb(r, px, 2, 2, 5), -EINVAL, "RGB stride below 3 * width");
	is_int(qvl_req_add_image_rgb(r, px, 0, 2, 6), -EINVAL, "RGB width 0");
	is_int(qvl_req_set_flags(r, 0x1000), -EINVAL, "unknown request flag");
	is_int(qvl_req_set_max_tokens(r, 0), -EINVAL, "max_tokens 0");
	is_int(qvl_req_add_text(r, QVL_PART_USER, "hi", 2), 0, "a user message");
	is_int(qvl_req_prep(r, &sqe, 1, 0), 0, "prep");
	is_int(qvl_req_prep(r, &sqe, 1, 0), -EBUSY, "a second prep is -EBUSY");
	is_int(qvl_req_add_text(r, QVL_PART_USER, "hi", 2), -EBUSY, "adding after prep is -EBUSY");
	qvl_release(r);
	is_int(qvl_req_new(q, 99, &r), -EINVAL, "unknown opcode");
	is_int(qvl_arena_alloc(q, q->arena_size + 1, &off), -ENOMEM,
	       "an allocation over the arena");
	is_int(qvl_arena_alloc(q, 0, &off), -EINVAL, "a zero-byte allocation");
	while (qvl_sqe_get(q))
		n++;
	ok(n == q->sq_mask + 1, "qvl_sqe_get hands out %u entries then NULL (SQ of %u)", n,
	   q->sq_mask + 1);
	/* publish them as NOPs (zeroed SQEs are NOPs) and reap: the ring is usable again */
	qvl_submit(q);
	for (uint32_t i = 0; i < n; i++) {
		struct qvl_cqe *c;
		if (qvl_wait_cqe(q, &c, TIMEOUT_NS))
			break;
		qvl_cqe_seen(q);
		if (i == n - 1)
			ok(c->res == 0, "the %u zeroed SQEs completed as NOPs", n);
	}
}

/* The daemon process dies (SIGKILL) under a waiting client: an error, not a hang. */
static void daemon_death(void)
{
	char path[128];
	int pfd[2];
	pid_t pid;
	struct qvl *q;
	struct qvl_cqe *c;
	int rc;

	if (pipe(pfd))
		return;
	pid = fork();
	if (pid == 0) {
		struct testsrv s;
		if (ts_start(&s, NULL))
			_exit(1);
		if (write(pfd[1], s.path, sizeof(s.path)) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(pfd[0], path, sizeof(path)) != sizeof(path) || qvl_connect(path, NULL, &q)) {
		ok(0, "daemon death: setup");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	uint64_t t0 = ring_now_ns();
	rc = qvl_wait_cqe(q, &c, 10ll * 1000000000);
	is_int(rc, -ENOTCONN, "daemon killed: qvl_wait_cqe says -ENOTCONN");
	ok(ring_now_ns() - t0 < 1000000000ull, "... within a second (%.1f ms)",
	   (ring_now_ns() - t0) / 1e6);
	qvl_disconnect(q);
	unlink(path);
	*strrchr(path, '/') = 0;
	rmdir(path);
}

/* The daemon shuts the client down in order: epoch 0, prompt -ENOTCONN. */
static void daemon_stop(void)
{
	struct testsrv s;
	struct qvl *q;
	struct qvl_cqe *c;

	if (ts_start(&s, NULL) || qvl_connect(s.path, NULL, &q)) {
		ok(0, "daemon stop: setup");
		return;
	}
	ts_stop(&s);
	is_int(qvl_wait_cqe(q, &c, 0), -ENOTCONN,
	       "poller destroyed: epoch 0 seen without a syscall");
	qvl_disconnect(q);
}

int main(void)
{
	struct testsrv s;
	struct qvl *q;

	signal(SIGPIPE, SIG_IGN);
	sizes_and_modes();
	two_threads(0);
	two_threads(1);
	two_processes();
	if (ts_start(&s, NULL) || qvl_connect(s.path, NULL, &q)) {
		ok(0, "setup");
	} else {
		nop_fault(q);
		builder(q);
		client_errors(q);
		qvl_disconnect(q);
		ts_stop(&s);
	}
	daemon_death();
	daemon_stop();
	ok(qvl_connect("/nonexistent/qvld.sock", NULL, &q) == -ENOENT,
	   "connect to a missing socket: -ENOENT");
	return done_testing();
}
