/* The io_uring shard reader (nvme.h): a FIFO of 2 qd read slots over one
 * ring, at most qd of them in flight: a slot that completed waits for its
 * turn to be hashed without holding back the queue depth.
 * Slots are issued in file order and retired in the same order, so the
 * CRC of each shard advances sequentially while later reads are in flight,
 * and a staging slot is reused only after its bytes have been hashed.
 * The loop hashes one chunk at a time and refills the queue after each, so
 * the device is never left idle while a backlog of completed chunks is
 * hashed. */
#define _GNU_SOURCE
#include "config.h"

#include "nvme.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <isa-l/crc64.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env.h"
#include "util.h"

#define NV_MAX_REG   (1ull << 30) /* the kernel's limit on one registered buffer */
#define NV_SLOTS(qd) (2 * (qd))
#define NV_MAX_IOV   (NV_SLOTS(NV_MAX_QD) + 64)

struct nv_slot {
	size_t shard;
	uint64_t pos; /* offset of this chunk within the shard */
	uint32_t len; /* bytes to read (aligned) */
	uint32_t got; /* bytes read so far (short reads are resubmitted) */
	uint8_t *buf; /* where the chunk lands */
	int res;      /* <0: the read failed */
	bool done;
};

struct nv_reader {
	struct io_uring ring;
	bool ring_ok;
	int fd;
	bool fixed_file;
	char *path;
	struct nv_opts o;
	bool direct;
	uint8_t *staging; /* nslots * chunk */
	unsigned nslots;
	struct iovec iov[NV_MAX_IOV];
	unsigned niov; /* registered buffers: staging slots, then nv_register pieces */
	bool bufs_registered;
	struct nv_slot *slot;
};

static nv_fault_fn fault_fn;
static void *fault_ctx;

/* The reader's own hook, else the global one. */
static int nv_fault(const struct nv_reader *r, const char *shard, uint64_t off, size_t len)
{
	if (r->o.fault)
		return r->o.fault(r->o.fault_ctx, shard, off, len);
	return fault_fn ? fault_fn(fault_ctx, shard, off, len) : 0;
}
/* Every CRC mismatch and failed read since the process started, for the
 * daemon's counters. Relaxed: plain statistics, nothing is published with
 * them, so they pair with no other access. */
static _Atomic uint64_t bad_shards_total, io_errors_total;

uint64_t nv_bad_shards_total(void)
{
	return atomic_load_explicit(&bad_shards_total, memory_order_relaxed);
}

uint64_t nv_io_errors_total(void)
{
	return atomic_load_explicit(&io_errors_total, memory_order_relaxed);
}

void nv_set_fault(nv_fault_fn fn, void *ctx)
{
	fault_fn = fn;
	fault_ctx = ctx;
}

uint64_t nv_crc64(uint64_t crc, const void *p, size_t n)
{
	return crc64_ecma_refl(crc, p, n);
}

void nv_opts_from_env(struct nv_opts *o)
{
	uint64_t v;

	if (qvl_env_uint("QVL_IO_QD", 1, NV_MAX_QD, &v))
		o->qd = (unsigned)v;
	if (qvl_env_uint("QVL_IO_CHUNK", NV_ALIGN / 1024, NV_MAX_CHUNK / 1024, &v))
		o->chunk = (size_t)(v * 1024 / NV_ALIGN * NV_ALIGN);
	o->buffered = qvl_env_flag("QVL_IO_BUFFERED", o->buffered);
	if (qvl_env_uint("QVL_IO_THREADS", 1, NV_MAX_THREADS, &v))
		o->threads = (unsigned)v;
	o->fill = qvl_env_flag("QVL_IO_FILL", o->fill);
}

void nv_get_opts(const struct nv_reader *r, struct nv_opts *o)
{
	*o = r->o;
	o->buffered = !r->direct;
}

/* A synchronous read of the first block: some filesystems accept O_DIRECT at
 * open and refuse it at the first read. The fault hook sees it too (shard
 * name "o_direct probe"), so tests can make a filesystem refuse O_DIRECT. */
static int nv_probe_direct(struct nv_reader *r)
{
	ssize_t n = pread(r->fd, r->staging, NV_ALIGN, 0);
	int rc = n < 0 ? -errno : 0;

	if (!rc)
		rc = nv_fault(r, "o_direct probe", 0, NV_ALIGN);
	return rc;
}

static int nv_open_file(struct nv_reader *r, struct qvl_err *err)
{
	int rc = 0;

	if (!r->o.buffered) {
		r->fd = open(r->path, O_RDONLY | O_CLOEXEC | O_DIRECT);
		rc = r->fd < 0 ? -errno : nv_probe_direct(r);
		if (rc == 0) {
			r->direct = true;
			return 0;
		}
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		if (rc != -EINVAL)
			return qvl_errf(err, rc, "%s: %s", r->path, strerror(-rc));
		if (!r->o.quiet)
			fprintf(stderr,
				"qvl: %s: O_DIRECT refused (%s); reading through the page cache "
				"instead\n",
				r->path, strerror(-rc));
	}
	r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return qvl_errf(err, -errno, "%s: %s", r->path, strerror(errno));
	return 0;
}

/* The ring, with the flags this liburing and kernel offer: one thread
 * submits and reaps (SINGLE_ISSUER), and task work runs only when we wait
 * (COOP/DEFER_TASKRUN), saving interrupts at high queue depths. */
static int nv_ring(struct nv_reader *r)
{
	unsigned flags = 0;
	int rc;

#if HAVE_DECL_IORING_SETUP_SINGLE_ISSUER && HAVE_DECL_IORING_SETUP_DEFER_TASKRUN
	flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
#elif HAVE_DECL_IORING_SETUP_COOP_TASKRUN
	flags |= IORING_SETUP_COOP_TASKRUN;
#endif
	rc = io_uring_queue_init(r->o.qd, &r->ring, flags);
	if (rc == -EINVAL && flags) /* an older kernel than the headers */
		rc = io_uring_queue_init(r->o.qd, &r->ring, 0);
	return rc;
}

static void nv_register_bufs(struct nv_reader *r)
{
	if (r->bufs_registered)
		io_uring_unregister_buffers(&r->ring);
	r->bufs_registered = io_uring_register_buffers(&r->ring, r->iov, r->niov) == 0;
}

int nv_open(struct nv_reader **out, const char *path, const struct nv_opts *o, struct qvl_err *err)
{
	struct nv_reader *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	r->fd = -1;
	if (o)
		r->o = *o;
	if (!r->o.qd)
		r->o.qd = NV_DEFAULT_QD;
	if (!r->o.chunk)
		r->o.chunk = NV_DEFAULT_CHUNK;
	if (r->o.qd > NV_MAX_QD || r->o.chunk % NV_ALIGN || r->o.chunk > NV_MAX_CHUNK) {
		rc = qvl_errf(err, -EINVAL,
			      "%s: queue depth %u / read size %zu out of range (1..%u reads of a "
			      "multiple of %u bytes up to %u)",
			      path, r->o.qd, r->o.chunk, NV_MAX_QD, NV_ALIGN, NV_MAX_CHUNK);
		goto fail;
	}
	r->nslots = NV_SLOTS(r->o.qd);
	r->slot = calloc(r->nslots, sizeof(*r->slot));
	if (!r->slot || posix_memalign((void **)&r->staging, NV_ALIGN, r->nslots * r->o.chunk)) {
		r->staging = NULL;
		rc = qvl_errf(err, -ENOMEM, "%s: out of memory for %u read buffers", path,
			      r->nslots);
		goto fail;
	}
	rc = nv_open_file(r, err);
	if (rc)
		goto fail;
	rc = nv_ring(r);
	if (rc) {
		rc = qvl_errf(err, rc, "%s: io_uring setup: %s", path, strerror(-rc));
		goto fail;
	}
	r->ring_ok = true;
	r->fixed_file = io_uring_register_files(&r->ring, &r->fd, 1) == 0;
	for (unsigned i = 0; i < r->nslots; i++)
		r->iov[r->niov++] = (struct iovec){r->staging + i * r->o.chunk, r->o.chunk};
	nv_register_bufs(r);
	*out = r;
	return 0;
fail:
	nv_close(r);
	return rc;
}

void nv_close(struct nv_reader *r)
{
	if (!r)
		return;
	if (r->ring_ok)
		io_uring_queue_exit(&r->ring);
	if (r->fd >= 0)
		close(r->fd);
	free(r->staging);
	free(r->slot);
	free(r->path);
	free(r);
}

int nv_rebind(struct nv_reader *r, const char *path, const struct nv_opts *o, struct qvl_err *err)
{
	if (strcmp(path, r->path))
		return qvl_errf(err, -EINVAL, "%s: the kept reader reads %s", path, r->path);
	r->o.stop = o->stop;
	r->o.filler = o->filler;
	r->o.fault = o->fault;
	r->o.fault_ctx = o->fault_ctx;
	r->o.fill = o->fill;
	if (r->niov > r->nslots) { /* the last load's destinations, pinned */
		r->niov = r->nslots;
		nv_register_bufs(r);
	}
	return 0;
}

int nv_register(struct nv_reader *r, void *base, size_t len)
{
	uint8_t *p = base;

	r->niov = r->nslots; /* keep the staging slots, replace earlier regions */
	while (len && r->niov < NV_MAX_IOV) {
		size_t n = len < NV_MAX_REG ? len : NV_MAX_REG;

		r->iov[r->niov++] = (struct iovec){p, n};
		p += n;
		len -= n;
	}
	nv_register_bufs(r);
	return r->bufs_registered ? 0 : -ENOMEM;
}

/* The registered buffer holding [p, p + n), or -1. */
static int nv_buf_index(const struct nv_reader *r, const uint8_t *p, size_t n)
{
	if (!r->bufs_registered)
		return -1;
	for (unsigned i = 0; i < r->niov; i++) {
		const uint8_t *b = r->iov[i].iov_base;

		if (p >= b && p + n <= b + r->iov[i].iov_len)
			return (int)i;
	}
	return -1;
}

static void nv_prep(struct nv_reader *r, struct nv_slot *sl, const struct nv_shard *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring); /* qd entries, qd in flight */
	uint8_t *buf = sl->buf + sl->got;
	unsigned n = sl->len - sl->got;
	uint64_t off = s->off + sl->pos + sl->got;
	int fd = r->fixed_file ? 0 : r->fd;
	int idx = nv_buf_index(r, buf, n);

	if (idx >= 0)
		io_uring_prep_read_fixed(sqe, fd, buf, n, off, idx);
	else
		io_uring_prep_read(sqe, fd, buf, n, off);
	if (r->fixed_file)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, sl);
}

struct nv_run {
	struct nv_reader *r;
	struct nv_shard *s;
	size_t n;
	bool keep_going, stop;
	struct nv_stats *st;
	struct qvl_err *err;
	int first;	     /* first error */
	size_t head, queued; /* slots issued and not yet retired, from head */
	size_t busy;	     /* of which reads in flight */
	size_t next;	     /* next shard to issue */
	uint64_t pos;	     /* next chunk of it */
	double crc_t;
	double last_hash; /* seconds of the latest hash, not yet judged */
	double exposed;	  /* hashing after which nothing was in flight */
	double fill_wait; /* idle, waiting for a destination to be filled */
};

static int nv_fail(struct nv_run *x, struct nv_shard *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int nv_fail(struct nv_run *x, struct nv_shard *s, int rc, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	if (!s->status)
		s->status = rc;
	if (!x->first) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		x->first = qvl_errf(x->err, rc, "%s: shard '%s': %s", x->r->path, s->name, msg);
	}
	if (!x->keep_going) {
		x->stop = true;
		/* relaxed: only a hint to the other readers to stop issuing; the
		 * error itself reaches the caller through pthread_join */
		if (x->r->o.stop)
			atomic_store_explicit(x->r->o.stop, true, memory_order_relaxed);
	}
	return rc;
}

static uint64_t nv_alen(uint64_t len)
{
	return (len + NV_ALIGN - 1) / NV_ALIGN * NV_ALIGN;
}

/* Another reader of the same load failed (nv_opts.stop). */
static bool nv_stopped(struct nv_run *x)
{
	/* relaxed: pairs with the relaxed store in nv_fail; a late look only
	 * issues a few more reads, which are drained */
	if (!x->stop && x->r->o.stop && atomic_load_explicit(x->r->o.stop, memory_order_relaxed))
		x->stop = true;
	return x->stop;
}

/* Nothing in flight and the next destination not filled yet: wait for it
 * (the fill thread always advances to the end of its span, or stops with
 * the load). */
static void nv_wait_dst(struct nv_run *x, const uint8_t *buf, size_t n)
{
	double t0 = qvl_now();

	nv_fill_wait(x->r->o.filler, buf, n, x->r->o.stop);
	x->fill_wait += qvl_now() - t0;
}

/* Fill free slots with the next chunks, in file order. */
static void nv_issue(struct nv_run *x)
{
	struct nv_reader *r = x->r;

	if (nv_stopped(x))
		return;

	while (!x->stop && x->busy < r->o.qd && x->queued < r->nslots && x->next < x->n) {
		struct nv_shard *s = &x->s[x->next];
		uint64_t alen = nv_alen(s->len), left = alen - x->pos;
		struct nv_slot *sl = &r->slot[(x->head + x->queued) % r->nslots];
		uint32_t len = (uint32_t)(left < r->o.chunk ? left : r->o.chunk);
		uint8_t *buf = s->dst ? (uint8_t *)s->dst + x->pos
				      : r->staging + (size_t)(sl - r->slot) * r->o.chunk;

		if (s->len == 0) {
			if (s->crc)
				nv_fail(x, s, -EBADMSG, "empty, but its CRC is %016" PRIx64,
					s->crc);
			x->next++;
			continue;
		}
		if (r->o.filler && !nv_fill_ready(r->o.filler, buf, len)) {
			if (x->queued) /* come back after a completion or a hash */
				break;
			nv_wait_dst(x, buf, len);
			if (nv_stopped(x))
				break;
			continue;
		}
		*sl = (struct nv_slot){
		    .shard = x->next,
		    .pos = x->pos,
		    .len = len,
		    .buf = buf,
		};
		nv_prep(r, sl, s);
		x->queued++;
		x->busy++;
		x->pos += sl->len;
		if (x->pos >= alen) {
			x->next++;
			x->pos = 0;
		}
	}
}

/* One completion: a full read, a short one (resubmitted), EOF or an error. */
static void nv_complete(struct nv_run *x, struct nv_slot *sl, int res)
{
	struct nv_shard *s = &x->s[sl->shard];

	if (res >= 0) {
		int f = nv_fault(x->r, s->name, s->off + sl->pos, sl->len);

		if (f < 0)
			res = f;
	}
	if (res < 0) {
		sl->res = res;
	} else if (res == 0) {
		/* past the end: the payload part of the chunk is missing */
		sl->res = sl->pos + sl->got < s->len ? -ENODATA : 0;
	} else {
		x->st->bytes += (unsigned)res;
		sl->got += (unsigned)res;
		if (sl->got < sl->len) {
			nv_prep(x->r, sl, s);
			return;
		}
	}
	x->st->reads++;
	x->busy--;
	sl->done = true;
}

/* Retire the head slot if it completed: hash, compare at the shard's end. */
static void nv_retire(struct nv_run *x)
{
	struct nv_reader *r = x->r;

	if (x->queued && r->slot[x->head].done) {
		struct nv_slot *sl = &r->slot[x->head];
		struct nv_shard *s = &x->s[sl->shard];
		uint64_t pay = s->len - sl->pos < sl->len ? s->len - sl->pos : sl->len;

		if (sl->res == -ENODATA) {
			x->st->io_errors++;
			s->truncated = true;
			nv_fail(x, s, -EBADMSG,
				"file ends at %" PRIu64 ", inside the shard (offset %" PRIu64
				", %" PRIu64 " bytes): truncated",
				s->off + sl->pos + sl->got, s->off, s->len);
		} else if (sl->res < 0) {
			x->st->io_errors++;
			nv_fail(x, s, sl->res, "read of %u bytes at offset %" PRIu64 " failed: %s",
				sl->len, s->off + sl->pos, strerror(-sl->res));
		} else if (!s->status) {
			double t0 = qvl_now();

			s->got_crc = nv_crc64(s->got_crc, sl->buf, pay);
			x->last_hash = qvl_now() - t0;
			x->crc_t += x->last_hash;
			if (sl->pos + pay == s->len && s->got_crc != s->crc) {
				x->st->bad_shards++;
				nv_fail(x, s, -EBADMSG,
					"CRC-64 mismatch: stored %016" PRIx64
					", computed %016" PRIx64 " (offset %" PRIu64 ", %" PRIu64
					" bytes)",
					s->crc, s->got_crc, s->off, s->len);
			}
		}
		x->head = (x->head + 1) % r->nslots;
		x->queued--;
	}
}

int nv_read(struct nv_reader *r, struct nv_shard *s, size_t n, bool keep_going, struct nv_stats *st,
	    struct qvl_err *err)
{
	struct nv_stats dummy = {0};
	struct nv_run x = {
	    .r = r, .s = s, .n = n, .keep_going = keep_going, .st = st ? st : &dummy, .err = err};
	double t0 = qvl_now();
	uint64_t bad0 = x.st->bad_shards, err0 = x.st->io_errors;

	for (size_t i = 0; i < n; i++) {
		s[i].status = 0;
		s[i].got_crc = 0;
		s[i].truncated = false;
		if (s[i].off % NV_ALIGN || (s[i].dst && (uintptr_t)s[i].dst % NV_ALIGN))
			return qvl_errf(err, -EINVAL,
					"%s: shard '%s': offset %" PRIu64
					" or buffer not %u-byte aligned",
					r->path, s[i].name, s[i].off, NV_ALIGN);
	}
	nv_issue(&x);
	while (x.queued) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		/* a completed chunk waiting to be hashed: submit and reap without
		 * blocking; else wait for a completion */
		int rc = r->slot[x.head].done ? io_uring_submit_and_get_events(&r->ring)
					      : io_uring_submit_and_wait(&r->ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			/* the ring itself failed: nothing more will complete */
			x.first = qvl_errf(err, rc, "%s: io_uring: %s", r->path, strerror(-rc));
			break;
		}
		io_uring_for_each_cqe(&r->ring, head, cqe)
		{
			nv_complete(&x, io_uring_cqe_get_data(cqe), cqe->res);
			seen++;
		}
		io_uring_cq_advance(&r->ring, seen);
		/* the previous hash ran while every read in flight completed:
		 * the device waited on it (an upper bound of that wait) */
		if (!x.busy)
			x.exposed += x.last_hash;
		x.last_hash = 0;
		nv_retire(&x);
		nv_issue(&x);
	}
	x.exposed += x.last_hash;
	for (size_t i = x.next; i < n && x.stop; i++)
		if (!s[i].status)
			s[i].status = -ECANCELED;
	if (!x.first && x.stop && x.next < n)
		x.first = qvl_errf(err, -ECANCELED,
				   "%s: shard '%s': not read: another reader of this load failed",
				   r->path, s[x.next].name);
	atomic_fetch_add_explicit(&bad_shards_total, x.st->bad_shards - bad0, memory_order_relaxed);
	atomic_fetch_add_explicit(&io_errors_total, x.st->io_errors - err0, memory_order_relaxed);
	x.st->seconds += qvl_now() - t0;
	x.st->crc_seconds += x.crc_t;
	x.st->crc_exposed_seconds += x.exposed;
	x.st->fill_wait_seconds += x.fill_wait;
	x.st->threads = x.st->threads ? x.st->threads : 1;
	x.st->direct = r->direct;
	x.st->fixed_bufs = r->bufs_registered;
	x.st->qd = r->o.qd;
	x.st->chunk = r->o.chunk;
	return x.first;
}
