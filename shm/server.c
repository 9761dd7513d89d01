/* The daemon side of one client: handshake, memfd, CQ posting, lifetime. */
#include "config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ring_impl.h"
#include "server_impl.h"

#define DEF_SQ	      64u
#define DEF_MAX_SQ    4096u
#define DEF_ARENA     (64ull << 20)
#define DEF_MAX_ARENA (1ull << 30)
#define DEF_INFLIGHT  64u

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static int peer_allowed(const struct shm_policy *pol, const struct ucred *cr)
{
	if (pol->allow_any || cr->uid == 0 || cr->uid == geteuid())
		return 1;
	for (size_t i = 0; i < pol->n_allow_uids; i++)
		if (pol->allow_uids[i] == cr->uid)
			return 1;
	for (size_t i = 0; i < pol->n_allow_gids; i++)
		if (pol->allow_gids[i] == cr->gid)
			return 1;
	return 0;
}

static int refuse(struct shm_refusal *ref, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct shm_refusal *ref, int code, const char *fmt, ...)
{
	va_list ap;

	ref->code = code;
	va_start(ap, fmt);
	vsnprintf(ref->msg, sizeof(ref->msg), fmt, ap);
	va_end(ap);
	return code;
}

/* Check the hello and settle the sizes. */
static int check_hello(const struct qvl_hello *h, const struct shm_policy *pol,
		       struct qvl_welcome *w, struct shm_refusal *ref)
{
	uint32_t max_sq = pol->max_sq_entries ? pol->max_sq_entries : DEF_MAX_SQ;
	uint64_t max_arena = pol->max_arena_size ? pol->max_arena_size : DEF_MAX_ARENA;
	uint32_t sq, cq;
	uint64_t arena;

	if (memcmp(h->magic, QVL_MAGIC, 8))
		return refuse(ref, -EPROTO, "hello: bad magic");
	if (h->version != QVL_LAYOUT_VERSION)
		return refuse(ref, -EPROTONOSUPPORT, "hello: layout version %u, daemon speaks %u",
			      h->version, QVL_LAYOUT_VERSION);
	if (h->size != sizeof(*h))
		return refuse(ref, -EPROTO, "hello: size %u, want %zu", h->size, sizeof(*h));
	if (h->flags)
		return refuse(ref, -EINVAL, "hello: flags 0x%x unknown", h->flags);
	for (int i = 0; i < 7; i++)
		if (h->rsvd[i])
			return refuse(ref, -EINVAL, "hello: reserved field %d not zero", i);
	sq = h->sq_entries ? h->sq_entries : (pol->sq_entries ? pol->sq_entries : DEF_SQ);
	if (!is_pow2(sq) || sq > max_sq)
		return refuse(ref, -EINVAL, "hello: sq_entries %u not a power of two in 1..%u", sq,
			      max_sq);
	cq = h->cq_entries ? h->cq_entries : 2 * sq;
	if (!is_pow2(cq) || cq < 2 * sq || cq > 2 * max_sq)
		return refuse(ref, -EINVAL, "hello: cq_entries %u not a power of two in %u..%u", cq,
			      2 * sq, 2 * max_sq);
	arena = h->arena_size ? h->arena_size : (pol->arena_size ? pol->arena_size : DEF_ARENA);
	if (arena < 4096 || arena > max_arena)
		return refuse(ref, -EINVAL, "hello: arena_size %llu out of range (4096..%llu)",
			      (unsigned long long)arena, (unsigned long long)max_arena);
	arena = (arena + 4095) & ~4095ull;
	w->sq_entries = sq;
	w->cq_entries = cq;
	w->arena_size = arena;
	w->max_inflight = pol->max_inflight ? pol->max_inflight : DEF_INFLIGHT;
	if (w->max_inflight > cq / 2)
		w->max_inflight = cq / 2;
	return 0;
}

static int send_welcome(int fd, const struct qvl_welcome *w, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = {(void *)w, sizeof(*w)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds) {
		struct cmsghdr *cm;
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(*w) ? 0 : -EPIPE;
}

/* Create, size, map, fill and seal the memfd. */
static int make_memfd(struct shm_client *c, const struct qvl_welcome *w, uint32_t start, int *memfd)
{
	uint64_t sq_bytes = (uint64_t)w->sq_entries * QVL_ENTRY_SIZE;
	uint64_t cq_bytes = (uint64_t)w->cq_entries * QVL_ENTRY_SIZE;
	uint64_t arena_off = (QVL_HDR_SIZE + sq_bytes + cq_bytes + 4095) & ~4095ull;
	struct qvl_ring_hdr *h;
	int fd, rc;

	c->map_size = arena_off + w->arena_size;
	fd = memfd_create("qvl-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)c->map_size) < 0)
		goto fail;
	c->map = mmap(NULL, c->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		goto fail;
	}
	/* the client can no longer shrink the file under us (SIGBUS) */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	h = (struct qvl_ring_hdr *)c->map;
	memcpy(h->magic, QVL_MAGIC, 8);
	h->version = QVL_LAYOUT_VERSION;
	h->hdr_size = QVL_HDR_SIZE;
	h->sq_entries = w->sq_entries;
	h->cq_entries = w->cq_entries;
	h->client_id = c->id;
	h->sq_off = QVL_HDR_SIZE;
	h->cq_off = QVL_HDR_SIZE + sq_bytes;
	h->arena_off = arena_off;
	h->arena_size = w->arena_size;
	h->epoch = 1; /* published to the client by sendmsg, a full barrier */
	h->sq_head = h->sq_tail = h->cq_head = h->cq_tail = start;
	c->sq_head = c->cq_tail = start;
	c->hdr = h;
	c->sqes = (struct qvl_sqe *)(c->map + h->sq_off);
	c->cqes = (struct qvl_cqe *)(c->map + h->cq_off);
	c->arena = c->map + arena_off;
	c->arena_size = w->arena_size;
	c->sq_entries = w->sq_entries;
	c->cq_entries = w->cq_entries;
	*memfd = fd;
	return 0;
fail:
	rc = -errno;
	close(fd);
	return rc;
}

static void client_free(struct shm_client *c)
{
	if (c->map)
		munmap(c->map, c->map_size);
	if (c->doorbell >= 0)
		close(c->doorbell);
	if (c->sock >= 0)
		close(c->sock);
	pthread_spin_destroy(&c->cq_lock);
	free(c);
}

void shm_refuse(int sockfd, int code, struct shm_refusal *ref)
{
	struct qvl_welcome w = {.size = sizeof(w), .version = QVL_LAYOUT_VERSION, .status = code};
	socklen_t cl = sizeof(struct ucred);
	struct ucred cr = {0};

	memcpy(w.magic, QVL_MAGIC, 8);
	if (getsockopt(sockfd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0) {
		ref->pid = cr.pid;
		ref->uid = cr.uid;
		ref->gid = cr.gid;
	}
	ref->code = code;
	send_welcome(sockfd, &w, NULL, 0);
}

int shm_handshake_server(int sockfd, const struct shm_policy *pol, uint32_t client_id,
			 struct shm_client **out, struct shm_refusal *ref)
{
	struct qvl_welcome w = {.size = sizeof(w), .version = QVL_LAYOUT_VERSION};
	struct qvl_hello h;
	socklen_t cl = sizeof(struct ucred);
	struct ucred cr = {0};
	struct shm_client *c;
	int fds[2] = {-1, -1}, rc;
	ssize_t n;

	memcpy(w.magic, QVL_MAGIC, 8);
	memset(ref, 0, sizeof(*ref));
	*out = NULL;
	if (getsockopt(sockfd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0)
		return refuse(ref, -errno, "SO_PEERCRED: %s", strerror(errno));
	ref->pid = cr.pid;
	ref->uid = cr.uid;
	ref->gid = cr.gid;
	if (!peer_allowed(pol, &cr)) {
		rc = refuse(ref, -EACCES, "uid %u gid %u not in allow_uids/allow_gids",
			    (unsigned)cr.uid, (unsigned)cr.gid);
		goto reply;
	}
	n = recv(sockfd, &h, sizeof(h), MSG_DONTWAIT);
	if (n != (ssize_t)sizeof(h)) {
		rc = refuse(ref, -EPROTO, "hello: %zd bytes, want %zu", n, sizeof(h));
		goto reply;
	}
	if ((rc = check_hello(&h, pol, &w, ref)))
		goto reply;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = refuse(ref, -ENOMEM, "out of memory");
		goto reply;
	}
	c->sock = -1;
	c->id = client_id;
	c->cred = cr;
	c->refs = 1;
	c->alive = 1;
	c->max_inflight = w.max_inflight;
	pthread_spin_init(&c->cq_lock, PTHREAD_PROCESS_PRIVATE);
	c->doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->doorbell < 0 || (rc = make_memfd(c, &w, pol->ring_start, &fds[0]))) {
		rc = refuse(ref, c->doorbell < 0 ? -errno : rc, "memfd/eventfd: %s",
			    strerror(c->doorbell < 0 ? errno : -rc));
		client_free(c);
		goto reply;
	}
	fds[1] = c->doorbell;
	w.client_id = client_id;
	w.map_size = c->map_size;
	rc = send_welcome(sockfd, &w, fds, 2);
	close(fds[0]); /* our mapping keeps the memory */
	if (rc) {
		client_free(c);
		return refuse(ref, rc, "welcome: %s", strerror(-rc));
	}
	c->sock = sockfd;
	*out = c;
	return 0;
reply:
	w.status = rc;
	w.sq_entries = w.cq_entries = 0;
	w.arena_size = 0;
	send_welcome(sockfd, &w, NULL, 0);
	return rc;
}

uint32_t shm_cq_reserve(struct shm_client *c, uint32_t want)
{
	uint32_t head, used, free_slots, got = 0;

	pthread_spin_lock(&c->cq_lock);
	/* acquire: pairs with the store-release of cq_head in qvl_cqe_seen() */
	head = __atomic_load_n(&c->hdr->cq_head, __ATOMIC_ACQUIRE);
	used = c->cq_tail - head;
	if (used > c->cq_entries) {
		/* relaxed: pairs with the relaxed load in the poller's serve(); a
		 * flag, it publishes no data (the poller only disconnects) */
		__atomic_store_n(&c->broken, -EPROTO, __ATOMIC_RELAXED);
	} else {
		free_slots = c->cq_entries - used;
		if (free_slots > c->reserved)
			got = free_slots - c->reserved < want ? free_slots - c->reserved : want;
		c->reserved += got;
	}
	pthread_spin_unlock(&c->cq_lock);
	return got;
}

int shm_cq_post(struct shm_client *c, const struct qvl_cqe *cqes, uint32_t n, int final,
		int daemon_owned)
{
	uint32_t head, used, mask = c->cq_entries - 1;
	int rc = 0, wake = 0;

	pthread_spin_lock(&c->cq_lock);
	if (final) {
		c->reserved -= n;
		if (daemon_owned) /* relaxed: a counter, read by hand_off() */
			__atomic_fetch_sub(&c->dinflight, n, __ATOMIC_RELAXED);
	}
	/* relaxed: pairs with the exchange in shm_client_kill(); a post that
	 * races the kill lands in a ring nobody reads, which is harmless */
	if (!__atomic_load_n(&c->alive, __ATOMIC_RELAXED)) {
		rc = -ENOTCONN;
		goto out;
	}
	/* acquire: pairs with the store-release of cq_head in qvl_cqe_seen():
	 * the client has finished reading the slots we are about to reuse */
	head = __atomic_load_n(&c->hdr->cq_head, __ATOMIC_ACQUIRE);
	used = c->cq_tail - head;
	if (used > c->cq_entries) {
		/* relaxed: pairs with the relaxed load in the poller's serve(); a
		 * flag, it publishes no data (the poller only disconnects) */
		__atomic_store_n(&c->broken, -EPROTO, __ATOMIC_RELAXED);
		rc = -EPROTO;
		goto out;
	}
	/* finals use their own reservations (released above); a MORE chunk
	 * may use only slots nobody reserved */
	if (c->cq_entries - used < n + c->reserved) {
		if (!final) {
			rc = -EAGAIN;
			goto out;
		}
		/* the client moved cq_head backwards: only it loses */
		/* relaxed: pairs with the relaxed load in the poller's serve(); a
		 * flag, it publishes no data (the poller only disconnects) */
		__atomic_store_n(&c->broken, -EPROTO, __ATOMIC_RELAXED);
		rc = -EPROTO;
		goto out;
	}
	uint64_t posted = ring_now_ns();
	for (uint32_t i = 0; i < n; i++) {
		struct qvl_cqe *slot = &c->cqes[(c->cq_tail + i) & mask];
		memcpy(slot, &cqes[i], sizeof(cqes[i]));
		slot->post_ns = posted; /* the client's wake-up delay: its clock minus this */
	}
	c->cq_tail += n;
	/* release: pairs with the load-acquire of cq_tail in qvl_cqe_peek():
	 * the CQE stores above are visible before the new tail */
	__atomic_store_n(&c->hdr->cq_tail, c->cq_tail, __ATOMIC_RELEASE);
	/* seq_cst: pairs with the fence in qvl_wait_cqe() between setting
	 * QVL_CQ_NEED_WAKEUP and re-checking the ring */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	wake = __atomic_load_n(&c->hdr->cq_flags, __ATOMIC_RELAXED) & QVL_CQ_NEED_WAKEUP;
	if (wake) /* relaxed: the futex syscall orders it; the waiter compares it in the kernel */
		__atomic_fetch_add(&c->hdr->cq_futex, 1, __ATOMIC_RELAXED);
out:
	pthread_spin_unlock(&c->cq_lock);
	if (wake) /* outside the lock: other posters need not wait for a syscall */
		ring_futex_wake(&c->hdr->cq_futex);
	return rc;
}

void shm_client_kill(struct shm_client *c)
{
	/* acq_rel: pairs with itself in a concurrent kill (exactly one caller
	 * goes on) and with the relaxed loads of alive in shm_cq_post() and
	 * shm_client_alive() */
	if (!__atomic_exchange_n(&c->alive, 0, __ATOMIC_ACQ_REL))
		return;
	/* release: pairs with the load-acquire of epoch in qvl_wait_cqe(); the
	 * futex bump and wake make a sleeping client re-read it */
	__atomic_store_n(&c->hdr->epoch, 0, __ATOMIC_RELEASE);
	__atomic_fetch_add(&c->hdr->cq_futex, 1, __ATOMIC_RELAXED);
	ring_futex_wake(&c->hdr->cq_futex);
	shutdown(c->sock, SHUT_RDWR);
}

int shm_complete(struct shm_request *req, const struct qvl_cqe *cqe)
{
	struct shm_client *c = req->client;
	struct qvl_cqe q = *cqe;
	int rc;

	q.user_data = req->user_data;
	q.flags = 0;
	rc = shm_cq_post(c, &q, 1, 1, 1);
	free(req);
	shm_client_put(c);
	return rc;
}

int shm_post_more(struct shm_request *req, const struct qvl_cqe *cqe)
{
	struct qvl_cqe q = *cqe;

	q.user_data = req->user_data;
	q.flags = QVL_CQE_F_MORE;
	return shm_cq_post(req->client, &q, 1, 0, 0);
}

uint8_t *shm_request_arena(const struct shm_request *req, uint64_t *size)
{
	if (size)
		*size = req->client->arena_size;
	return req->client->arena;
}

uint32_t shm_client_id(const struct shm_client *c)
{
	return c->id;
}

void shm_client_cred(const struct shm_client *c, pid_t *pid, uid_t *uid, gid_t *gid)
{
	if (pid)
		*pid = c->cred.pid;
	if (uid)
		*uid = c->cred.uid;
	if (gid)
		*gid = c->cred.gid;
}

void shm_client_get(struct shm_client *c)
{
	/* relaxed: taking a reference needs an existing one */
	__atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
}

void shm_client_put(struct shm_client *c)
{
	/* acq_rel: the last put sees every other holder's writes before freeing */
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		client_free(c);
}

int shm_listen(const char *path, unsigned mode, int *fd, struct qvl_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s;

	if (strlen(path) >= sizeof(sa.sun_path))
		return qvl_errf(err, -ENAMETOOLONG, "%s: socket path longer than %zu bytes", path,
				sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return qvl_errf(err, -errno, "socket: %s", strerror(errno));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, mode) < 0 ||
	    listen(s, 128) < 0) {
		int rc = -errno;
		close(s);
		return qvl_errf(err, rc, "%s: %s", path, strerror(-rc));
	}
	*fd = s;
	return 0;
}
