/* libqvl: connect, submit, wait (the parts of the client that are not
 * inline in qvl.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client_impl.h"
#include "qvl.h"
#include "ring_impl.h"

#define WAIT_SLICE_NS 20000000 /* re-check the daemon's liveness every 20 ms asleep */
#define WAIT_SPIN_NS  20000    /* spin this long before sleeping */

static int recv_welcome(int fd, struct qvl_welcome *w, int fds[2])
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = {w, sizeof(*w)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n;

	fds[0] = fds[1] = -1;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(2 * sizeof(int)))
			memcpy(fds, CMSG_DATA(cm), 2 * sizeof(int));
	if (n == 0)
		return -ECONNRESET;
	if (n != (ssize_t)sizeof(*w) || (mh.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	return 0;
}

/* Map the memfd and check that the header agrees with the welcome. */
static int map_rings(struct qvl *q, const struct qvl_welcome *w, int memfd)
{
	struct qvl_ring_hdr *h;
	struct stat st;
	void *m;

	if (fstat(memfd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != w->map_size || w->map_size < QVL_HDR_SIZE)
		return -EPROTO;
	m = mmap(NULL, w->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (m == MAP_FAILED)
		return -errno;
	q->priv->map = m;
	q->priv->map_size = w->map_size;
	h = m;
	if (memcmp(h->magic, QVL_MAGIC, 8) || h->version != QVL_LAYOUT_VERSION ||
	    h->sq_entries != w->sq_entries || h->cq_entries != w->cq_entries || !h->sq_entries ||
	    (h->sq_entries & (h->sq_entries - 1)) || !h->cq_entries ||
	    (h->cq_entries & (h->cq_entries - 1)) ||
	    h->sq_off + (uint64_t)h->sq_entries * QVL_ENTRY_SIZE > w->map_size ||
	    h->cq_off + (uint64_t)h->cq_entries * QVL_ENTRY_SIZE > w->map_size ||
	    h->arena_off > w->map_size || h->arena_size > w->map_size - h->arena_off)
		return -EPROTO;
	q->hdr = h;
	q->sqes = (struct qvl_sqe *)((uint8_t *)m + h->sq_off);
	q->cqes = (struct qvl_cqe *)((uint8_t *)m + h->cq_off);
	q->arena = (uint8_t *)m + h->arena_off;
	q->arena_size = h->arena_size;
	q->sq_mask = h->sq_entries - 1;
	q->cq_mask = h->cq_entries - 1;
	q->sq_local_tail = __atomic_load_n(&h->sq_tail, __ATOMIC_RELAXED);
	q->sq_head_cache = __atomic_load_n(&h->sq_head, __ATOMIC_RELAXED);
	q->cq_tail_cache = __atomic_load_n(&h->cq_tail, __ATOMIC_RELAXED);
	q->max_inflight = w->max_inflight;
	q->priv->epoch = __atomic_load_n(&h->epoch, __ATOMIC_ACQUIRE);
	return q->priv->epoch ? 0 : -ENOTCONN;
}

static int handshake(struct qvl *q, const char *path, const struct qvl_opts *opts)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct qvl_hello h = {.version = QVL_LAYOUT_VERSION, .size = sizeof(h)};
	struct qvl_welcome w;
	struct timeval tv = {5, 0};
	int fds[2], rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	q->priv->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->priv->sock < 0)
		return -errno;
	setsockopt(q->priv->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(q->priv->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	memcpy(h.magic, QVL_MAGIC, 8);
	if (opts) {
		h.sq_entries = opts->sq_entries;
		h.cq_entries = opts->cq_entries;
		h.arena_size = opts->arena_size;
	}
	if (send(q->priv->sock, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		return -errno ? -errno : -EPIPE;
	rc = recv_welcome(q->priv->sock, &w, fds);
	if (!rc && (memcmp(w.magic, QVL_MAGIC, 8) || w.size != sizeof(w)))
		rc = -EPROTO;
	if (!rc && w.status)
		rc = w.status < 0 && w.status > -4096 ? w.status : -EPROTO;
	if (!rc && (fds[0] < 0 || fds[1] < 0))
		rc = -EPROTO;
	if (!rc)
		rc = map_rings(q, &w, fds[0]);
	if (fds[0] >= 0)
		close(fds[0]);
	q->priv->doorbell = fds[1];
	return rc;
}

/* The same rule as qvld's (src/daemon/sockpath.c): $QVL_SOCKET, else
 * /run/qvld for root, else $XDG_RUNTIME_DIR/qvld, else /tmp/qvld-UID. */
static const char *default_socket(char *buf, size_t len)
{
	const char *s = getenv("QVL_SOCKET"), *rt = getenv("XDG_RUNTIME_DIR");

	if (s && *s)
		return s;
	if (getuid() == 0)
		return QVL_DEFAULT_SOCKET;
	if (rt && *rt == '/')
		snprintf(buf, len, "%s/qvld/qvld.sock", rt);
	else
		snprintf(buf, len, "/tmp/qvld-%u/qvld.sock", (unsigned)getuid());
	return buf;
}

int qvl_connect(const char *path, const struct qvl_opts *opts, struct qvl **out)
{
	char buf[4096];
	struct qvl *q;
	int rc;

	*out = NULL;
	if (!path)
		path = default_socket(buf, sizeof(buf));
	q = aligned_alloc(64, sizeof(*q));
	if (q)
		memset(q, 0, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->priv = calloc(1, sizeof(*q->priv));
	if (!q->priv) {
		free(q);
		return -ENOMEM;
	}
	q->priv->sock = q->priv->doorbell = -1;
	q->priv->spin_ns = WAIT_SPIN_NS;
	if (opts && opts->wait_spin_ns)
		q->priv->spin_ns = opts->wait_spin_ns < 0 ? 0 : opts->wait_spin_ns;
	rc = handshake(q, path, opts);
	if (!rc)
		rc = cl_arena_init(q);
	if (rc) {
		qvl_disconnect(q);
		return rc;
	}
	*out = q;
	return 0;
}

void qvl_disconnect(struct qvl *q)
{
	if (!q)
		return;
	cl_arena_fini(q);
	if (q->priv->map)
		munmap(q->priv->map, q->priv->map_size);
	if (q->priv->doorbell >= 0)
		close(q->priv->doorbell);
	if (q->priv->sock >= 0)
		close(q->priv->sock);
	free(q->priv);
	free(q);
}

int qvl_fd(const struct qvl *q)
{
	return q->priv->sock;
}

static void ring_doorbell(struct qvl *q)
{
	uint64_t one = 1;

	if (write(q->priv->doorbell, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the daemon is awake anyway */
	}
}

int qvl_submit(struct qvl *q)
{
	uint32_t tail = __atomic_load_n(&q->hdr->sq_tail, __ATOMIC_RELAXED);
	uint32_t n = q->sq_local_tail - tail;

	if (!n)
		return 0;
	/* release: pairs with the poller's load-acquire of sq_tail in serve():
	 * the SQE stores are visible before the new tail */
	__atomic_store_n(&q->hdr->sq_tail, q->sq_local_tail, __ATOMIC_RELEASE);
	/* seq_cst: pairs with the fence in the poller's arm_sleep() between
	 * setting QVL_SQ_NEED_WAKEUP and re-reading sq_tail */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&q->hdr->sq_flags, __ATOMIC_RELAXED) & QVL_SQ_NEED_WAKEUP)
		ring_doorbell(q);
	return (int)n;
}

/* Is the daemon gone? Epoch 0 (it said so) or EOF on the socket (it died). */
static int daemon_gone(struct qvl *q)
{
	char b;
	ssize_t n;

	/* acquire: pairs with the store-release of epoch in shm_client_kill() */
	if (__atomic_load_n(&q->hdr->epoch, __ATOMIC_ACQUIRE) != q->priv->epoch)
		return 1;
	n = recv(q->priv->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

int qvl_wait_cqe(struct qvl *q, struct qvl_cqe **cqe, int64_t timeout_ns)
{
	uint64_t start = ring_now_ns(), now;
	uint32_t seq;
	int rc;

	for (;;) {
		if ((*cqe = qvl_cqe_peek(q)))
			return 0;
		now = ring_now_ns();
		/* no syscall here: qvl_wait_cqe(q, &c, 0) is a poll */
		if (timeout_ns >= 0 && now - start >= (uint64_t)timeout_ns)
			return __atomic_load_n(&q->hdr->epoch, __ATOMIC_ACQUIRE) != q->priv->epoch
				   ? -ENOTCONN
				   : -ETIMEDOUT;
		if (now - start < (uint64_t)q->priv->spin_ns) {
			ring_cpu_relax();
			continue;
		}
		break;
	}
	for (int check_sock = 0;;) {
		int64_t slice = WAIT_SLICE_NS;

		/* the epoch is a load; the socket check is a syscall, made only
		 * after a slice passed without a wakeup */
		if (__atomic_load_n(&q->hdr->epoch, __ATOMIC_ACQUIRE) != q->priv->epoch ||
		    (check_sock && daemon_gone(q))) {
			rc = -ENOTCONN;
			goto out;
		}
		/* read the word before arming: a wake after this makes FUTEX_WAIT
		 * return at once (the kernel compares it) */
		seq = __atomic_load_n(&q->hdr->cq_futex, __ATOMIC_ACQUIRE);
		__atomic_store_n(&q->hdr->cq_flags, QVL_CQ_NEED_WAKEUP, __ATOMIC_RELAXED);
		/* seq_cst: pairs with the fence in shm_cq_post() between storing
		 * cq_tail and testing QVL_CQ_NEED_WAKEUP */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if ((*cqe = qvl_cqe_peek(q)))
			break;
		/* a slice passed and SQEs are still unconsumed while the poller
		 * sleeps (it left them for want of CQ room, or missed a doorbell):
		 * ring again. Not on the first pass, where the poller is about to
		 * wake for our submit anyway and this would be a wasted syscall. */
		if (check_sock &&
		    __atomic_load_n(&q->hdr->sq_head, __ATOMIC_RELAXED) !=
			__atomic_load_n(&q->hdr->sq_tail, __ATOMIC_RELAXED) &&
		    (__atomic_load_n(&q->hdr->sq_flags, __ATOMIC_RELAXED) & QVL_SQ_NEED_WAKEUP))
			ring_doorbell(q);
		if (timeout_ns >= 0) {
			now = ring_now_ns();
			if (now - start >= (uint64_t)timeout_ns) {
				rc = -ETIMEDOUT;
				goto out;
			}
			if ((int64_t)(timeout_ns - (now - start)) < slice)
				slice = timeout_ns - (int64_t)(now - start);
		}
		rc = ring_futex_wait(&q->hdr->cq_futex, seq, slice);
		if (rc == -EINTR)
			goto out;
		check_sock = rc == -ETIMEDOUT;
		if ((*cqe = qvl_cqe_peek(q)))
			break;
	}
	rc = 0;
out:
	__atomic_store_n(&q->hdr->cq_flags, 0, __ATOMIC_RELAXED);
	return rc;
}
