/* The scheduler's edges against a live qvld (daemon_sched.sh starts it with
 * --max-seqs 4 --max-queue 6 --prefill-chunk 32 --ctx 4096 on the tiny
 * model): a cancel takes effect within a step mid-prefill and mid-decode;
 * past max_queue waiting requests new ones complete at once with -EBUSY,
 * and once the batch drains the daemon serves again; a client killed
 * (fork + SIGKILL) with sequences in the batch has them dropped and their
 * KV pages back in the pool within a second. `daemon_sched deadline`: see
 * deadline_tests(). */
#include "config.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_client.h"
#include "tap.h"
#include "util.h"

#define LONG 3000 /* tokens: seconds of decoding, never reached in a test */
/* positions of the prompt cancelled mid-prefill: the most the --ctx 4096
 * daemon takes with its 8 tokens */
#define PREFILL 4000

static const char *sock;
static struct qvl *qs; /* for STATS polls: its CQEs are its own */

/* The final CQE of ud within timeout_s (MORE ones skipped); others are
 * counted in *others when given. */
static int final_of(struct qvl *q, uint64_t ud, struct qvl_cqe *out, double timeout_s)
{
	double t_end = qvl_now() + timeout_s;

	while (qvl_now() < t_end) {
		int rc = dc_next(q, out, t_end - qvl_now());
		if (rc < 0)
			return rc;
		if (out->user_data == ud && !(out->flags & QVL_CQE_F_MORE))
			return 0;
	}
	return -ETIMEDOUT;
}

/* Poll STATS until key == v (or, above, key > v) within timeout_s; returns
 * the seconds waited, or -1 on timeout. Polls every 2 ms: a poll must see
 * a prefill of PREFILL positions under way on a fast machine. */
static double poll_stat(const char *key, double v, bool above, double timeout_s)
{
	double t0 = qvl_now();
	static uint64_t ud = 1000000;

	while (qvl_now() - t0 < timeout_s) {
		char *js = dc_stats(qs, QVL_OP_STATS, ud++);
		double x = dc_num(js, key);
		if (getenv("DBG"))
			diag("%s = %g in %.120s", key, x, js ? js : "(null)");
		free(js);
		if (above ? x > v : x == v)
			return qvl_now() - t0;
		usleep(2000);
	}
	return -1;
}

static double wait_stat(const char *key, double want, double timeout_s)
{
	return poll_stat(key, want, false, timeout_s);
}

static void cancel_tests(struct qvl *q)
{
	static int32_t ids[PREFILL];
	struct qvl_req *r;
	struct qvl_cqe c = {0};
	double t0;
	int rc;

	/* mid-prefill: PREFILL positions in chunks of 32 are 125 steps. The
	 * cancel goes once the prefill holds KV pages (not after a sleep that
	 * had to be long enough: a cancel before the admission passes without
	 * testing a prefill, one after the prefill would see a token) */
	dc_ids(ids, PREFILL, 1);
	rc = dc_submit_ids(q, 1, ids, PREFILL, 8, 0, &r);
	bool started = rc == 0 && poll_stat("kv_pages_used", 0, true, 10) >= 0;
	t0 = qvl_now();
	if (rc == 0)
		rc = dc_cancel(q, 2, 1);
	if (rc == 0)
		rc = final_of(q, 1, &c, 30);
	ok(rc == 0 && started && c.stop == QVL_STOP_CANCELLED && c.n_tokens == 0 && c.res == 0,
	   "cancel mid-prefill (started %d): ends cancelled with no token (stop %u, %u tokens) in "
	   "%.3f s",
	   started, c.stop, c.n_tokens, qvl_now() - t0);
	if (rc == 0)
		qvl_release(r);

	/* mid-decode: after 3 streamed tokens */
	dc_ids(ids, 20, 2);
	rc = dc_submit_ids(q, 3, ids, 20, LONG, QVL_GEN_STREAM, &r);
	int more = 0;
	while (rc == 0 && more < 3) {
		rc = dc_next(q, &c, 30);
		more += rc == 0 && c.user_data == 3 && (c.flags & QVL_CQE_F_MORE);
	}
	t0 = qvl_now();
	if (rc == 0)
		rc = dc_cancel(q, 4, 3);
	if (rc == 0)
		rc = final_of(q, 3, &c, 30);
	double dt = qvl_now() - t0;
	ok(rc == 0 && c.stop == QVL_STOP_CANCELLED && c.n_tokens >= 3 && c.n_tokens < LONG &&
	       dt < 1.0,
	   "cancel mid-decode: ends cancelled after %u tokens, %.3f s after the cancel", c.n_tokens,
	   dt);
	if (rc == 0)
		qvl_release(r);
}

static void busy_tests(struct qvl *q)
{
	struct qvl_req *r[16] = {0};
	int32_t ids[16];
	struct qvl_cqe c = {0};
	int n_ok = 0, n_busy = 0, rc = 0;

	dc_ids(ids, 16, 3);
	/* fill the batch (4), then the queue (6), then 3 more */
	for (int i = 0; i < 4 && rc == 0; i++)
		rc = dc_submit_ids(q, 100 + (uint64_t)i, ids, 16, LONG, 0, &r[i]);
	ok(rc == 0 && wait_stat("active_sequences", 4, 10) >= 0, "4 requests fill the batch");
	for (int i = 4; i < 10 && rc == 0; i++)
		rc = dc_submit_ids(q, 100 + (uint64_t)i, ids, 16, LONG, 0, &r[i]);
	ok(rc == 0 && wait_stat("queued", 6, 10) >= 0, "6 more wait in the queue");
	for (int i = 10; i < 13 && rc == 0; i++)
		rc = dc_submit_ids(q, 100 + (uint64_t)i, ids, 16, LONG, 0, &r[i]);
	/* the 3 refused complete inline, before anything of the others */
	for (int i = 0; rc == 0 && i < 3; i++) {
		rc = dc_next(q, &c, 10);
		n_busy += rc == 0 && c.res == -EBUSY && c.user_data >= 110;
	}
	ok(n_busy == 3, "past max_queue: 3 of 3 complete at once with -EBUSY");
	for (int i = 0; i < 10; i++)
		dc_cancel(q, 200 + (uint64_t)i, 100 + (uint64_t)i);
	/* every one of the 10 ends (cancelled), then the daemon serves again */
	for (int i = 0; i < 1000 && n_ok < 10; i++) {
		if (dc_next(q, &c, 10) < 0)
			break;
		n_ok += c.user_data >= 100 && c.user_data < 110 && !(c.flags & QVL_CQE_F_MORE) &&
			c.stop == QVL_STOP_CANCELLED;
	}
	ok(n_ok == 10, "the 10 accepted end cancelled (%d)", n_ok);
	struct qvl_req *x;
	rc = dc_submit_ids(q, 300, ids, 16, 4, 0, &x);
	if (rc == 0)
		rc = final_of(q, 300, &c, 30);
	ok(rc == 0 && c.res == 0 && c.n_tokens == 4, "then a new request is served (%u tokens)",
	   c.n_tokens);
	if (rc == 0)
		qvl_release(x);
	for (int i = 0; i < 13; i++)
		if (r[i])
			qvl_release(r[i]);
}

/* A child with 3 long streaming requests in the batch is killed. */
static void kill_test(void)
{
	int p[2];
	char b = 0;

	if (pipe(p) < 0) {
		ok(0, "pipe");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		struct qvl *k;
		struct qvl_req *r;
		struct qvl_cqe c;
		int32_t ids[300];
		if (qvl_connect(sock, NULL, &k) < 0)
			_exit(1);
		dc_ids(ids, 300, 4);
		for (int i = 0; i < 3; i++)
			if (dc_submit_ids(k, (uint64_t)i, ids, 300 - (size_t)i, LONG,
					  QVL_GEN_STREAM, &r) < 0)
				_exit(1);
		while (dc_next(k, &c, 30) == 0)
			if (c.flags & QVL_CQE_F_MORE) {
				b = 1;
				if (write(p[1], &b, 1) != 1)
					_exit(1);
				for (;;)
					pause();
			}
		_exit(1);
	}
	close(p[1]);
	bool up = pid > 0 && read(p[0], &b, 1) == 1 && b == 1;
	close(p[0]);
	ok(up && wait_stat("active_sequences", 3, 10) >= 0,
	   "a child client has 3 sequences decoding");
	double t0 = qvl_now();
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	double a = wait_stat("active_sequences", 0, 5), u = wait_stat("kv_pages_used", 0, 5);
	double dt = qvl_now() - t0;
	ok(a >= 0 && u >= 0 && dt < 1.0,
	   "killed: its sequences dropped and their pages back within %.3f s (limit 1 s)", dt);
}

/* daemon_sched deadline: against a daemon with --deadline-ms 300
 * --max-seqs 1, a running request and one queued behind it both end at
 * their deadline with -ETIMEDOUT (stop cancelled), with the tokens they
 * had. */
static int deadline_tests(struct qvl *q)
{
	struct qvl_req *r[2] = {0};
	struct qvl_cqe c[2] = {{0}};
	int32_t ids[16];
	int rc = 0, got = 0;

	plan(3);
	dc_ids(ids, 16, 9);
	double t0 = qvl_now();
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = dc_submit_ids(q, 10 + (uint64_t)i, ids, 16, LONG, 0, &r[i]);
	while (rc == 0 && got < 2) {
		struct qvl_cqe x;
		if ((rc = dc_next(q, &x, 30)) < 0 || x.user_data < 10 || x.user_data > 11 ||
		    (x.flags & QVL_CQE_F_MORE))
			continue;
		c[x.user_data - 10] = x;
		got++;
	}
	double dt = qvl_now() - t0;
	ok(rc == 0 && c[0].res == -ETIMEDOUT && c[0].stop == QVL_STOP_CANCELLED &&
	       c[0].n_tokens > 0 && c[0].n_tokens < LONG,
	   "running: -ETIMEDOUT after %u tokens (res %d, stop %u)", c[0].n_tokens, c[0].res,
	   c[0].stop);
	/* its deadline is a few microseconds after the first's: it may get in
	 * for a step or two when the first ends */
	ok(rc == 0 && c[1].res == -ETIMEDOUT && c[1].n_tokens < c[0].n_tokens,
	   "queued behind it: -ETIMEDOUT having waited (%u tokens, res %d)", c[1].n_tokens,
	   c[1].res);
	ok(dt >= 0.3 && dt < 2.0, "both within the deadline and a step or so (%.3f s)", dt);
	for (int i = 0; i < 2; i++)
		if (r[i])
			qvl_release(r[i]);
	qvl_disconnect(q);
	return done_testing();
}

int main(int argc, char **argv)
{
	struct qvl *q;
	int rc;

	sock = getenv("QVL_SOCKET");
	if (argc > 1 && !strcmp(argv[1], "deadline")) {
		rc = qvl_connect(sock, NULL, &q);
		if (rc < 0) {
			printf("1..1\nnot ok 1 - connect: %s\n", qvl_strerror(rc));
			return 1;
		}
		return deadline_tests(q);
	}
	plan(10);
	rc = qvl_connect(sock, NULL, &q);
	if (rc == 0)
		rc = qvl_connect(sock, NULL, &qs);
	if (!ok(rc == 0, "connect %s", sock ? sock : "(QVL_SOCKET unset)")) {
		diag("%s", qvl_strerror(rc));
		return done_testing();
	}
	cancel_tests(q);
	busy_tests(q);
	kill_test();
	qvl_disconnect(q);
	qvl_disconnect(qs);
	return done_testing();
}
