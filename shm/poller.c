/* The poller: one thread that accepts clients, pops SQEs from every client
 * ring, validates them, completes NOPs and invalid entries inline, hands
 * valid requests to the daemon (ops->submit) and, when every ring has been
 * idle for spin_us, sleeps in epoll on the doorbells.
 *
 * epoll data: the low 2 bits are a type, the rest a pointer or an fd. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "ring_impl.h"
#include "server_impl.h"
#include "validate.h"

#define BATCH	       32u
#define MAX_PENDING    64
#define PENDING_NS     (2ull * 1000000000u) /* a hello must arrive within 2 s */
#define EPOLL_EVERY_NS 1000000ull	    /* while busy, look at sockets every 1 ms */

enum { T_SPECIAL = 0, T_PENDING = 1, T_SOCK = 2, T_BELL = 3 };
#define TAG_LISTEN 0u
#define TAG_STOP   4u

struct pending {
	int fd;
	uint64_t since;
};

struct shm_poller {
	int listen_fd, epfd, stopfd;
	struct shm_policy pol;
	struct shm_ops ops;
	struct shm_client *clients;
	uint32_t n_clients, next_id;
	struct pending pending[MAX_PENDING];
	int n_pending;
	int stop; /* atomic */
	uint64_t last_epoll;
	struct shm_stats st; /* relaxed atomics: read by shm_poller_stats() from any thread */
};

#define STAT_ADD(p, f, v) __atomic_fetch_add(&(p)->st.f, (v), __ATOMIC_RELAXED)

static int ep_add(struct shm_poller *p, int fd, uint64_t tag, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};

	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int shm_poller_create(int listen_fd, const struct shm_policy *pol, const struct shm_ops *ops,
		      struct shm_poller **out, struct qvl_err *err)
{
	struct shm_poller *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return qvl_errf(err, -ENOMEM, "poller: out of memory");
	p->listen_fd = listen_fd;
	p->pol = *pol;
	p->ops = *ops;
	p->next_id = 1;
	if (!p->pol.max_bad)
		p->pol.max_bad = 16;
	if (!p->pol.max_clients)
		p->pol.max_clients = 256;
	if (!p->pol.spin_us)
		p->pol.spin_us = 50;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->epfd < 0 || p->stopfd < 0) {
		rc = -errno;
		goto fail;
	}
	if (fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = ep_add(p, listen_fd, TAG_LISTEN, EPOLLIN)) ||
	    (rc = ep_add(p, p->stopfd, TAG_STOP, EPOLLIN)))
		goto fail;
	*out = p;
	return 0;
fail:
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->stopfd >= 0)
		close(p->stopfd);
	free(p);
	return qvl_errf(err, rc, "poller: %s", strerror(-rc));
}

static void disconnect(struct shm_poller *p, struct shm_client *c, int why)
{
	struct shm_client **pp = &p->clients;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = c->next;
	p->n_clients--;
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->sock, NULL);
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->doorbell, NULL);
	shm_client_kill(c);
	if (why < 0)
		STAT_ADD(p, disconnected, 1);
	__atomic_store_n(&p->st.clients, p->n_clients, __ATOMIC_RELAXED);
	if (p->ops.disconnected)
		p->ops.disconnected(p->ops.ctx, c, why);
	shm_client_put(c);
}

/* Copy one SQE out of shared memory, one relaxed load per word: the
 * validator and everything after it see only this copy. */
static void copy_sqe(struct qvl_sqe *dst, const struct qvl_sqe *src)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t w[8];

	for (int i = 0; i < 8; i++)
		w[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
	memcpy(dst, w, sizeof(w));
}

static int may_shutdown(const struct shm_client *c)
{
	return c->cred.uid == 0 || c->cred.uid == geteuid();
}

/* Build a request from a valid SQE and hand it to the daemon: 0 when the
 * daemon owns it, else -errno for the inline CQE. */
static int hand_off(struct shm_poller *p, struct shm_client *c, const struct qvl_sqe *s)
{
	uint8_t block[sizeof(struct qvl_gen_req) + QVL_MAX_PARTS * sizeof(struct qvl_part)];
	struct shm_request *req;
	struct qvl_err err;
	int rc;

	if (s->opcode == QVL_OP_SHUTDOWN && !may_shutdown(c))
		return -EPERM;
	if (__atomic_load_n(&c->dinflight, __ATOMIC_RELAXED) >= c->max_inflight) {
		STAT_ADD(p, busy, 1);
		return -EBUSY;
	}
	req = malloc(sizeof(*req));
	if (!req)
		return -ENOMEM;
	/* the one read of the block: shm_validate_sqe() bounded it */
	memcpy(block, c->arena + s->req_off, s->req_len);
	rc = shm_validate_req(s, block, s->req_len, c->arena_size, req, &err);
	if (rc) {
		free(req);
		return rc;
	}
	req->client = c;
	req->t_submit_ns = ring_now_ns();
	shm_client_get(c);
	/* relaxed: a counter; shm_cq_post() decrements it under the CQ lock */
	__atomic_fetch_add(&c->dinflight, 1, __ATOMIC_RELAXED);
	rc = p->ops.submit ? p->ops.submit(p->ops.ctx, req) : -ENOSYS;
	if (rc < 0) {
		__atomic_fetch_sub(&c->dinflight, 1, __ATOMIC_RELAXED);
		shm_client_put(c);
		free(req);
	}
	return rc < 0 ? rc : 0;
}

/* One SQE: 1 with *cqe filled for an inline completion, 0 if the daemon took it. */
static int handle(struct shm_poller *p, struct shm_client *c, const struct qvl_sqe *s,
		  struct qvl_cqe *cqe)
{
	int rc = shm_validate_sqe(s, c->arena_size, NULL);

	memset(cqe, 0, sizeof(*cqe));
	cqe->user_data = s->user_data;
	if (!rc && s->opcode == QVL_OP_NOP) {
		c->bad = 0;
		cqe->res = (int32_t)(int64_t)s->arg;
		return 1;
	}
	if (!rc) {
		rc = hand_off(p, c, s);
		if (!rc) {
			c->bad = 0;
			return 0;
		}
	}
	if (rc == -EINVAL || rc == -E2BIG) {
		STAT_ADD(p, invalid, 1);
		c->bad++;
	}
	cqe->res = rc;
	return 1;
}

/* Serve one client's SQ: returns SQEs consumed; *blocked when SQEs wait on
 * CQ room (the client has not reaped). */
static uint32_t serve(struct shm_poller *p, struct shm_client *c, int *blocked)
{
	struct qvl_cqe done[BATCH];
	struct qvl_sqe sqes[BATCH];
	uint32_t tail, n, got, nd = 0, mask = c->sq_entries - 1;
	int broken = __atomic_load_n(&c->broken, __ATOMIC_RELAXED);

	if (broken) {
		disconnect(p, c, broken);
		return 0;
	}
	/* acquire: pairs with the store-release of sq_tail in qvl_submit():
	 * the SQEs up to tail are written */
	tail = __atomic_load_n(&c->hdr->sq_tail, __ATOMIC_ACQUIRE);
	n = tail - c->sq_head;
	if (!n)
		return 0;
	if (n > c->sq_entries) {
		disconnect(p, c, -EPROTO); /* garbage tail */
		return 0;
	}
	got = shm_cq_reserve(c, n < BATCH ? n : BATCH);
	if (!got) {
		*blocked = 1;
		return 0;
	}
	/* copy the whole batch first: a tight loop of independent loads lets
	 * the CPU overlap the cache misses on lines the client just wrote */
	for (uint32_t i = 0; i < got; i++)
		copy_sqe(&sqes[i], &c->sqes[(c->sq_head + i) & mask]);
	c->sq_head += got;
	/* release: pairs with the load-acquire of sq_head in qvl_sqe_get():
	 * our copies of the slots are done before the client reuses them.
	 * Before any CQE of the batch: a client that saw the CQE finds the slot free. */
	__atomic_store_n(&c->hdr->sq_head, c->sq_head, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < got; i++)
		nd += handle(p, c, &sqes[i], &done[nd]);
	STAT_ADD(p, sqes, got);
	if (nd)
		shm_cq_post(c, done, nd, 1, 0);
	if (c->bad >= p->pol.max_bad)
		disconnect(p, c, -EPROTO);
	return got;
}

static void refused(struct shm_poller *p, const struct shm_refusal *r)
{
	STAT_ADD(p, refused, 1);
	if (p->ops.refused)
		p->ops.refused(p->ops.ctx, r);
}

static void drop_pending(struct shm_poller *p, int i, int close_fd)
{
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->pending[i].fd, NULL);
	if (close_fd)
		close(p->pending[i].fd);
	p->pending[i] = p->pending[--p->n_pending];
}

static void on_hello(struct shm_poller *p, int fd)
{
	struct shm_refusal ref;
	struct shm_client *c;
	int i, rc;

	for (i = 0; i < p->n_pending && p->pending[i].fd != fd; i++)
		;
	if (i == p->n_pending)
		return;
	drop_pending(p, i, 0);
	if (p->n_clients >= p->pol.max_clients) {
		memset(&ref, 0, sizeof(ref));
		shm_refuse(fd, -EMFILE, &ref);
		snprintf(ref.msg, sizeof(ref.msg), "%u clients already (max_clients)",
			 p->n_clients);
		refused(p, &ref);
		close(fd);
		return;
	}
	rc = shm_handshake_server(fd, &p->pol, p->next_id, &c, &ref);
	if (rc) {
		refused(p, &ref);
		close(fd);
		return;
	}
	p->next_id++;
	if (ep_add(p, c->sock, (uintptr_t)c | T_SOCK, EPOLLIN | EPOLLRDHUP) ||
	    /* edge-triggered: every write wakes us, so the counter need not be
	     * drained (one syscall less per wakeup); it cannot reach 2^64 - 1 */
	    ep_add(p, c->doorbell, (uintptr_t)c | T_BELL, EPOLLIN | EPOLLET)) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		shm_client_kill(c);
		shm_client_put(c);
		return;
	}
	c->next = p->clients;
	p->clients = c;
	p->n_clients++;
	STAT_ADD(p, accepted, 1);
	__atomic_store_n(&p->st.clients, p->n_clients, __ATOMIC_RELAXED);
	if (p->ops.connected)
		p->ops.connected(p->ops.ctx, c);
}

static void on_accept(struct shm_poller *p)
{
	int fd;

	while ((fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		if (p->n_pending == MAX_PENDING ||
		    ep_add(p, fd, ((uint64_t)fd << 2) | T_PENDING, EPOLLIN | EPOLLRDHUP)) {
			struct shm_refusal ref = {.code = -EMFILE};
			snprintf(ref.msg, sizeof(ref.msg), "%d handshakes pending", p->n_pending);
			refused(p, &ref);
			close(fd);
			continue;
		}
		p->pending[p->n_pending++] = (struct pending){fd, ring_now_ns()};
	}
}

/* The client socket carries nothing after the handshake: data is garbage,
 * EOF is the client leaving. */
static void on_sock(struct shm_poller *p, struct shm_client *c)
{
	char b[64];
	ssize_t n = recv(c->sock, b, sizeof(b), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	disconnect(p, c, n > 0 ? -EPROTO : 0);
}

static int is_client(struct shm_poller *p, struct shm_client *c)
{
	for (struct shm_client *x = p->clients; x; x = x->next)
		if (x == c)
			return 1;
	return 0;
}

static void epoll_pass(struct shm_poller *p, int timeout_ms)
{
	struct epoll_event evs[64];
	uint64_t now;
	int n = epoll_wait(p->epfd, evs, 64, timeout_ms);

	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64;
		struct shm_client *c = (struct shm_client *)(uintptr_t)(tag & ~3ull);
		uint64_t v;
		switch (tag & 3) {
		case T_SPECIAL:
			if (tag == TAG_LISTEN)
				on_accept(p);
			else if (read(p->stopfd, &v, sizeof(v)) >= 0)
				__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
			break;
		case T_PENDING:
			on_hello(p, (int)(tag >> 2));
			break;
		case T_SOCK:
			if (is_client(p, c)) /* an earlier event may have dropped it */
				on_sock(p, c);
			break;
		case T_BELL: /* the wakeup was the point: serve() finds the SQEs */
			break;
		}
	}
	now = ring_now_ns();
	for (int i = p->n_pending - 1; i >= 0; i--)
		if (now - p->pending[i].since > PENDING_NS) {
			struct shm_refusal ref = {.code = -ETIMEDOUT};
			snprintf(ref.msg, sizeof(ref.msg), "no hello within 2 s");
			refused(p, &ref);
			drop_pending(p, i, 1);
		}
	p->last_epoll = now;
}

/* Tell every client we are about to sleep, then look once more: a client
 * that published before seeing the flag is caught here (Dekker with the
 * fence in qvl_submit()). Returns 1 when some ring has work after all. */
static int arm_sleep(struct shm_poller *p, int on)
{
	int work = 0;

	for (struct shm_client *c = p->clients; c; c = c->next)
		__atomic_store_n(&c->hdr->sq_flags, on ? QVL_SQ_NEED_WAKEUP : 0, __ATOMIC_RELAXED);
	if (!on)
		return 0;
	/* seq_cst: pairs with the fence in qvl_submit() between storing sq_tail
	 * and loading sq_flags */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (struct shm_client *c = p->clients; c; c = c->next)
		if (__atomic_load_n(&c->hdr->sq_tail, __ATOMIC_RELAXED) != c->sq_head)
			work = 1;
	return work;
}

int shm_poller_run(struct shm_poller *p)
{
	uint64_t spin_ns = (uint64_t)p->pol.spin_us * 1000, idle_since = 0;

	while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
		uint32_t work = 0;
		int blocked = 0;
		uint64_t now;
		struct shm_client *c = p->clients, *next;

		for (; c; c = next) {
			next = c->next; /* serve() may disconnect c */
			work += serve(p, c, &blocked);
		}
		now = ring_now_ns();
		if (now - p->last_epoll > EPOLL_EVERY_NS)
			epoll_pass(p, 0);
		if (work) {
			idle_since = 0;
			continue;
		}
		if (!idle_since)
			idle_since = now;
		if (now - idle_since < spin_ns) {
			ring_cpu_relax();
			continue;
		}
		if (!blocked && arm_sleep(p, 1)) {
			arm_sleep(p, 0);
			continue;
		}
		/* the periodic epoll_pass() above may have consumed the stop event:
		 * sleeping now would never wake */
		if (__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
			arm_sleep(p, 0);
			break;
		}
		STAT_ADD(p, sleeps, 1);
		/* a client blocked on CQ room gets looked at again in 1 ms */
		epoll_pass(p, blocked ? 1 : p->n_pending ? 500 : -1);
		arm_sleep(p, 0);
		idle_since = 0;
	}
	return 0;
}

void shm_poller_stop(struct shm_poller *p)
{
	uint64_t one = 1;

	if (write(p->stopfd, &one, sizeof(one)) < 0)
		__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
}

void shm_poller_destroy(struct shm_poller *p)
{
	if (!p)
		return;
	while (p->clients)
		disconnect(p, p->clients, 0);
	while (p->n_pending)
		drop_pending(p, 0, 1);
	close(p->epfd);
	close(p->stopfd);
	free(p);
}

void shm_poller_stats(struct shm_poller *p, struct shm_stats *st)
{
	const uint64_t *src = (const uint64_t *)&p->st;
	uint64_t *dst = (uint64_t *)st;

	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
