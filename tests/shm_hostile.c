/* Hostile clients against the real poller: bad entries complete with
 * errors for their client alone, garbage counters and socket bytes get the
 * client disconnected, a bad hello is refused with a status, an entry
 * changed after submission does not change the request, and a good client
 * keeps being served through all of it. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "ring_impl.h"
#include "shm_testsrv.h"
#include "tap.h"

#define TIMEOUT_NS (5ll * 1000000000)

static struct testsrv srv;
/* the server thread updates its counters atomically */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* ---- a good client served concurrently ------------------------------------ */

static int good_stop, good_bad;
static uint32_t good_done;

static void *good_client(void *arg)
{
	struct qvl *q;
	uint64_t next = 0, seen = 0;

	(void)arg;
	if (qvl_connect(srv.path, NULL, &q)) {
		good_bad = 1;
		return NULL;
	}
	while (!__atomic_load_n(&good_stop, __ATOMIC_RELAXED)) {
		struct qvl_sqe *sqe;
		struct qvl_cqe *c;
		while (next - seen < 8 && (sqe = qvl_sqe_get(q))) {
			sqe->opcode = QVL_OP_NOP;
			sqe->user_data = next++;
		}
		qvl_submit(q);
		if (qvl_wait_cqe(q, &c, TIMEOUT_NS) || c->user_data != seen || c->res) {
			good_bad = 1;
			break;
		}
		seen++;
		qvl_cqe_seen(q);
		__atomic_store_n(&good_done, (uint32_t)seen, __ATOMIC_RELAXED);
	}
	qvl_disconnect(q);
	return NULL;
}

/* ---- helpers -------------------------------------------------------------- */

static struct qvl *conn(void)
{
	struct qvl_opts o = {.sq_entries = 8, .arena_size = 1 << 20};
	struct qvl *q;

	return qvl_connect(srv.path, &o, &q) ? NULL : q;
}

/* Submit one SQE as given and return its CQE's res (or the wait error). */
static int one(struct qvl *q, const struct qvl_sqe *in, struct qvl_cqe *out)
{
	struct qvl_sqe *sqe = qvl_sqe_get(q);
	struct qvl_cqe *c;
	int rc;

	if (!sqe)
		return -ENOSPC;
	*sqe = *in;
	qvl_submit(q);
	if ((rc = qvl_wait_cqe(q, &c, TIMEOUT_NS)))
		return rc;
	if (out)
		*out = *c;
	rc = c->res;
	qvl_cqe_seen(q);
	return rc;
}

static int nop(struct qvl *q)
{
	struct qvl_sqe s = {.opcode = QVL_OP_NOP};
	return one(q, &s, NULL);
}

/* Wait for the daemon to drop q: EOF on the socket within 5 s. One short
 * qvl_wait_cqe first, which rings the doorbell if the poller sleeps. */
static int dropped(struct qvl *q)
{
	struct pollfd pfd = {.fd = qvl_fd(q), .events = POLLIN | POLLRDHUP};
	struct qvl_cqe *c;
	char b;

	for (int i = 0; i < 100 && !qvl_wait_cqe(q, &c, 1000000); i++)
		qvl_cqe_seen(q);
	if (poll(&pfd, 1, 5000) != 1)
		return -ETIMEDOUT;
	return recv(qvl_fd(q), &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0 ? -ENOTCONN : -EPROTO;
}

static void bad_entries(void)
{
	struct qvl *q = conn();
	struct qvl_sqe base = {.opcode = QVL_OP_STATS, .out_off = 4096, .out_len = 4096};
	struct {
		const char *what;
		struct qvl_sqe s;
	} cases[] = {
	    {"invalid opcode", {.opcode = 200}},
	    {"unknown SQE flag", {.opcode = QVL_OP_NOP, .flags = 0x40}},
	    {"reserved bits set", {.opcode = QVL_OP_NOP, .rsvd2 = {0, 1}}},
	    {"output past the arena", {.opcode = QVL_OP_STATS, .out_off = 1 << 20, .out_len = 64}},
	    {"huge output length", {.opcode = QVL_OP_STATS, .out_len = UINT64_MAX}},
	    {"offset + length overflows",
	     {.opcode = QVL_OP_STATS, .out_off = UINT64_MAX - 3, .out_len = 64}},
	    {"request block past the arena",
	     {.opcode = QVL_OP_GENERATE, .req_off = (1 << 20) - 32, .req_len = 96, .out_len = 64}},
	    {"huge request block",
	     {.opcode = QVL_OP_GENERATE, .req_len = UINT32_MAX, .out_len = 64}},
	};

	if (!q) {
		ok(0, "bad entries: connect");
		return;
	}
	is_int(one(q, &base, NULL), 0, "a valid STATS goes through to the daemon callback");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		is_int(one(q, &cases[i].s, NULL), -EINVAL, "%s: -EINVAL for this client",
		       cases[i].what);
		if (i % 4 == 3)
			nop(q); /* a valid entry resets the misbehaviour count */
	}
	{
		/* a block whose n_parts claims more than req_len holds */
		uint64_t off;
		struct qvl_gen_req g = {.size = 64, .max_tokens = 4, .n_parts = 1000};
		struct qvl_sqe s = {.opcode = QVL_OP_GENERATE, .req_len = 64, .out_len = 64};
		qvl_arena_alloc(q, 64, &off);
		memcpy(qvl_arena_ptr(q, off), &g, 64);
		s.req_off = off;
		s.out_off = off + 4096;
		is_int(one(q, &s, NULL), -E2BIG, "n_parts 1000 in the block: -E2BIG");
		g.n_parts = 0;
		memcpy(qvl_arena_ptr(q, off), &g, 64);
		is_int(one(q, &s, NULL), -EINVAL, "no content part: -EINVAL");
	}
	is_int(nop(q), 0, "the client is still served after isolated bad entries");
	qvl_disconnect(q);
}

/* The daemon copies the SQE and the block at pop time: changing both
 * afterwards must not change the request or its completion. */
static void changed_after_submission(void)
{
	struct qvl *q = conn();
	struct qvl_req *r;
	struct qvl_sqe *sqe, *slot;
	struct qvl_cqe *c;
	struct shm_request *held = NULL;
	uint64_t t0;

	if (!q || qvl_req_new(q, QVL_OP_GENERATE, &r) ||
	    qvl_req_add_text(r, QVL_PART_USER, "hi", 2) || qvl_req_set_max_tokens(r, 7)) {
		ok(0, "changed after submission: setup");
		return;
	}
	pthread_mutex_lock(&srv.lock);
	srv.hold = 1;
	pthread_mutex_unlock(&srv.lock);
	slot = sqe = qvl_sqe_get(q);
	qvl_req_prep(r, sqe, 555, 0);
	qvl_submit(q);
	t0 = ring_now_ns();
	while (!held && ring_now_ns() - t0 < 5000000000ull) {
		pthread_mutex_lock(&srv.lock);
		if (srv.n_held)
			held = srv.held[--srv.n_held];
		pthread_mutex_unlock(&srv.lock);
	}
	if (!held) {
		ok(0, "changed after submission: the request never reached the daemon");
		return;
	}
	/* scribble over the SQE slot and the request block */
	slot->user_data = 666;
	slot->opcode = 99;
	slot->out_off = UINT64_MAX;
	memset(qvl_arena_ptr(q, slot->req_off), 0xff, 64);
	ok(held->user_data == 555 && held->gen.max_tokens == 7 && held->gen.n_parts == 1 &&
	       held->opcode == QVL_OP_GENERATE,
	   "the daemon's request keeps the copied values");
	pthread_mutex_lock(&srv.lock);
	srv.hold = 0;
	pthread_mutex_unlock(&srv.lock);
	ts_echo(held); /* completes from this thread, not the poller */
	if (qvl_wait_cqe(q, &c, TIMEOUT_NS)) {
		ok(0, "changed after submission: no CQE");
		return;
	}
	ok(c->user_data == 555 && c->n_tokens == 7 && c->n_prompt == 1 && c->res == 0,
	   "the completion reflects the copy (user_data %llu, n_tokens %u)",
	   (unsigned long long)c->user_data, c->n_tokens);
	qvl_cqe_seen(q);
	qvl_release(r);
	qvl_disconnect(q);
}

/* In-flight requests per client are bounded: over the bound is -EBUSY. */
static void inflight_bound(void)
{
	struct qvl *q = conn();
	struct qvl_sqe s = {.opcode = QVL_OP_STATS, .out_off = 0, .out_len = 64};
	struct qvl_cqe c;
	int n;

	if (!q)
		return;
	pthread_mutex_lock(&srv.lock);
	srv.hold = 1;
	pthread_mutex_unlock(&srv.lock);
	for (n = 0; n < 4; n++) {
		struct qvl_sqe *sqe = qvl_sqe_get(q);
		if (!sqe)
			break;
		*sqe = s;
		sqe->user_data = n;
	}
	qvl_submit(q);
	s.user_data = 4;
	is_int(one(q, &s, &c), -EBUSY, "the 5th request with max_inflight 4 held: -EBUSY");
	pthread_mutex_lock(&srv.lock);
	srv.hold = 0;
	n = srv.n_held;
	for (int i = 0; i < srv.n_held; i++)
		ts_echo(srv.held[i]);
	srv.n_held = 0;
	pthread_mutex_unlock(&srv.lock);
	is_int(n, 4, "the daemon held 4");
	for (int i = 0; i < 4; i++) {
		struct qvl_cqe *cp;
		if (qvl_wait_cqe(q, &cp, TIMEOUT_NS))
			break;
		qvl_cqe_seen(q);
	}
	is_int(nop(q), 0, "served again once they complete");
	qvl_disconnect(q);
}

static void disconnects(void)
{
	struct qvl *q;
	int before;

	/* SQ tail more than a ring ahead of the head */
	q = conn();
	before = LOAD(srv.disconnects);
	/* no qvl_submit (it would publish its own tail): qvl_wait_cqe rings
	 * the doorbell itself when it sees unconsumed SQEs and a sleeping poller */
	__atomic_store_n(&q->hdr->sq_tail, q->hdr->sq_head + 1000, __ATOMIC_RELEASE);
	is_int(dropped(q), -ENOTCONN, "garbage sq_tail (ring overflow): disconnected");
	qvl_disconnect(q);

	/* CQ head beyond the tail */
	q = conn();
	__atomic_store_n(&q->hdr->cq_head, q->hdr->cq_tail + 100, __ATOMIC_RELEASE);
	{
		struct qvl_sqe *sqe = qvl_sqe_get(q);
		if (sqe)
			sqe->opcode = QVL_OP_NOP;
		qvl_submit(q);
	}
	is_int(dropped(q), -ENOTCONN, "garbage cq_head: disconnected");
	qvl_disconnect(q);

	/* bytes on the socket after the handshake */
	q = conn();
	is_int(write(qvl_fd(q), "garbage!", 8), 8, "wrote garbage on the socket");
	is_int(dropped(q), -ENOTCONN, "garbage on the socket: disconnected");
	qvl_disconnect(q);

	/* a client that keeps sending invalid entries */
	q = conn();
	for (int i = 0; i < 16; i++) {
		struct qvl_sqe s = {.opcode = 222};
		int rc = one(q, &s, NULL);
		if (rc != -EINVAL && rc != -ENOTCONN) {
			ok(0, "invalid entry %d: %d", i, rc);
			break;
		}
	}
	is_int(dropped(q), -ENOTCONN, "16 invalid entries in a row: disconnected");
	qvl_disconnect(q);
	/* bounded wait: the poller notices EOFs on its own schedule */
	for (int i = 0; i < 200 && LOAD(srv.disconnects) - before < 4; i++)
		usleep(10000);
	ok(LOAD(srv.disconnects) - before >= 4, "the daemon saw %d disconnects",
	   LOAD(srv.disconnects) - before);
}

/* ---- handshakes ------------------------------------------------------------- */

/* Send a raw hello (len bytes), read the welcome; returns its status, or
 * 1 if the daemon closed without one. */
static int raw_hello(const struct qvl_hello *h, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct qvl_welcome w;
	struct timeval tv = {5, 0};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ssize_t n;

	strcpy(sa.sun_path, srv.path);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	if (len && send(fd, h, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(fd);
		return -EPIPE;
	}
	n = recv(fd, &w, sizeof(w), MSG_WAITALL);
	close(fd);
	return n == (ssize_t)sizeof(w) ? w.status : 1;
}

static void hellos(void)
{
	struct qvl_hello good = {.version = QVL_LAYOUT_VERSION, .size = sizeof(good)}, h;
	int refusals = LOAD(srv.refusals);

	memcpy(good.magic, QVL_MAGIC, 8);
	h = good;
	h.version = 999;
	is_int(raw_hello(&h, sizeof(h)), -EPROTONOSUPPORT, "wrong layout version: refused");
	h = good;
	h.magic[0] = 'X';
	is_int(raw_hello(&h, sizeof(h)), -EPROTO, "bad magic: refused");
	h = good;
	h.size = 32;
	is_int(raw_hello(&h, sizeof(h)), -EPROTO, "wrong hello size: refused");
	is_int(raw_hello(&good, 10), -EPROTO, "short hello: refused");
	h = good;
	h.sq_entries = 3;
	is_int(raw_hello(&h, sizeof(h)), -EINVAL, "sq_entries 3 (not a power of two): refused");
	h = good;
	h.cq_entries = 4;
	h.sq_entries = 8;
	is_int(raw_hello(&h, sizeof(h)), -EINVAL, "cq_entries < 2 * sq_entries: refused");
	h = good;
	h.arena_size = 1ull << 50;
	is_int(raw_hello(&h, sizeof(h)), -EINVAL, "a 1 PiB arena: refused");
	h = good;
	h.rsvd[6] = 1;
	is_int(raw_hello(&h, sizeof(h)), -EINVAL, "reserved hello field set: refused");
	for (int i = 0; i < 200 && LOAD(srv.refusals) - refusals < 8; i++)
		usleep(10000);
	is_int(LOAD(srv.refusals) - refusals, 8, "every refusal reported to the daemon");
}

/* A peer whose uid is not allowed (needs root to become another uid). */
static void not_allowed(void)
{
	struct qvl_hello h = {.version = QVL_LAYOUT_VERSION, .size = sizeof(h)};
	pid_t pid;
	int st;

	if (geteuid() != 0) {
		skip(1, "not root: cannot connect as another uid");
		return;
	}
	memcpy(h.magic, QVL_MAGIC, 8);
	pid = fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(3);
		_exit(raw_hello(&h, sizeof(h)) == -EACCES ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	/* the server reports the refusal after it sent the welcome: the child
	 * can see -EACCES first (seen once under ASan), so wait for the report */
	for (int i = 0; i < 200 && LOAD(srv.last_refusal) != -EACCES; i++)
		usleep(10000);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && LOAD(srv.last_refusal) == -EACCES,
	   "uid 65534 not in allow_uids/allow_gids: refused with -EACCES");
}

int main(void)
{
	struct shm_policy pol = {.max_inflight = 4, .spin_us = 20};
	pthread_t good;
	uint32_t before;

	signal(SIGPIPE, SIG_IGN);
	if (ts_start(&srv, &pol))
		skip_all("cannot start the test server");
	pthread_create(&good, NULL, good_client, NULL);
	while (!__atomic_load_n(&good_done, __ATOMIC_RELAXED) && !good_bad)
		usleep(1000);
	bad_entries();
	changed_after_submission();
	inflight_bound();
	disconnects();
	hellos();
	not_allowed();
	before = __atomic_load_n(&good_done, __ATOMIC_RELAXED);
	/* a NOP more after the hostile clients: waited for (10 s at most),
	 * not slept for (50 ms could pass on a loaded core before the good
	 * client's thread ran at all) */
	for (int i = 0;
	     i < 10000 && __atomic_load_n(&good_done, __ATOMIC_RELAXED) == before && !good_bad; i++)
		usleep(1000);
	__atomic_store_n(&good_stop, 1, __ATOMIC_RELAXED);
	pthread_join(good, NULL);
	ok(!good_bad && good_done > before,
	   "a good client was served throughout (%u NOPs, all in order)", good_done);
	{
		struct shm_stats st;
		shm_poller_stats(srv.p, &st);
		ok(st.invalid > 20 && st.disconnected >= 4 && st.refused >= 8 && st.busy >= 1,
		   "stats: %llu invalid, %llu disconnected, %llu refused, %llu busy",
		   (unsigned long long)st.invalid, (unsigned long long)st.disconnected,
		   (unsigned long long)st.refused, (unsigned long long)st.busy);
	}
	ts_stop(&srv);
	return done_testing();
}
