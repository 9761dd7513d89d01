/* The io_uring shard reader: reads extents of one file ("shards", each with a
 * name and an expected CRC) with O_DIRECT into registered buffers, and checks
 * every shard's CRC-64 with ISA-L as its bytes complete, before the caller
 * may use them. A shard whose CRC does not match is -EBADMSG: named in the
 * message, counted in the stats, and its bytes are never reported good.
 *
 * One reader owns one ring and one open file, and is driven by one thread
 * (one ring per I/O thread: make one reader per thread). Reads are issued
 * in file order, `qd` in flight, `chunk` bytes each; completions are reaped
 * in batches, and the CRC always advances in file order, so that hashing the
 * oldest chunk overlaps the reads still in flight.
 *
 * Where O_DIRECT is refused (the open or the first read fails with EINVAL:
 * tmpfs before Linux 6.6, some FUSE and network filesystems) the reader
 * reopens the file buffered, says so on stderr once (unless quiet) and
 * reports it in nv_stats.direct.
 *
 * Several I/O threads (nv_read_threads): the shard list is cut into
 * contiguous runs of about equal bytes, one per thread, each with its own
 * reader (ring, registered file and buffers), so that hashing spreads over
 * cores; the first error stops every thread from issuing more reads, each
 * drains what it has in flight, and the call fails naming the shard.
 *
 * Fault injection (as SQLite's test VFS): nv_set_fault() installs a hook
 * that sees every completed read and may replace its result with an error,
 * so that tests can fail the n-th read of a load. Tests only; set it before
 * any reader runs. nv_opts.fault overrides it for one reader (called from
 * that reader's thread only). */
#ifndef QVL_NVME_H
#define QVL_NVME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define NV_ALIGN	 4096u	    /* O_DIRECT offset, length and buffer alignment */
#define NV_DEFAULT_QD	 16u	    /* reads in flight */
#define NV_DEFAULT_CHUNK (1u << 20) /* bytes per read */
#define NV_MAX_QD	 256u
#define NV_MAX_CHUNK	 (64u << 20)

#define NV_MAX_THREADS 16u

/* The fault hook: called for every completed read with the shard's name and
 * the file range; a negative return replaces the read's result. */
typedef int (*nv_fault_fn)(void *ctx, const char *shard, uint64_t off, size_t len);

struct nv_opts {
	unsigned qd;   /* reads in flight (1..NV_MAX_QD); 0: NV_DEFAULT_QD */
	size_t chunk;  /* bytes per read, a multiple of NV_ALIGN; 0: NV_DEFAULT_CHUNK */
	bool buffered; /* do not try O_DIRECT */
	bool quiet;    /* no warning on stderr when falling back to buffered reads */
	/* nv_read_threads: I/O threads (1..NV_MAX_THREADS; 0: nv_default_threads());
	 * qd is the total, shared among them. nv_open ignores it. */
	unsigned threads;
	/* this reader's fault hook (tests); NULL: the global one (nv_set_fault) */
	nv_fault_fn fault;
	void *fault_ctx;
	/* shared by the readers of one load (may be NULL): set on a reader's first
	 * error unless keep_going, and checked before each read is issued, so
	 * that one failing reader stops the others. nv_read_threads makes its
	 * own when NULL; a caller's lets it cancel the load from outside (the
	 * unread shards are then -ECANCELED). */
	atomic_bool *stop;
	/* destination memory made ready ahead of the reads (set by
	 * nv_read_threads with fill): a read into the filler's span is issued
	 * only once that part is faulted in; NULL: no such wait */
	struct nv_fill *filler;
	/* nv_read_threads: fault the destinations in (MADV_POPULATE_WRITE) on
	 * a thread per run, ahead of its reads, instead of all at once when
	 * they are registered (QVL_IO_FILL=0|1) */
	bool fill;
	/* nv_read_threads: a reader the caller keeps across loads of the same
	 * file (the resident fill reads a layer per load): the run read on the
	 * calling thread uses *keep, opened there on first use, so that its
	 * ring, file and staging buffers are set up once; later loads give it
	 * their own stop, filler and fault hook (nv_rebind), its depth, read
	 * size and O_DIRECT stay as opened. A ring belongs to the thread that
	 * made it (SINGLE_ISSUER): one kept reader per calling thread. The
	 * caller nv_close()s it. NULL: each load opens and closes its own. */
	struct nv_reader **keep;
};

/* One extent to read and check. off is NV_ALIGN-aligned; the reader reads
 * len rounded up to NV_ALIGN, so dst (NV_ALIGN-aligned) must have room for
 * that; dst NULL reads through the reader's own staging buffers (verify,
 * benchmarks: the bytes are checked and dropped). */
struct nv_shard {
	const char *name;
	uint64_t off, len;
	uint64_t crc; /* expected CRC-64 (nv_crc64) of the len payload bytes */
	void *dst;
	/* results */
	int status; /* 0, -EBADMSG (CRC mismatch), -EIO, ... */
	uint64_t got_crc;
	bool truncated; /* the file ends inside the shard */
};

struct nv_stats {
	uint64_t bytes;	     /* read from the file */
	uint64_t reads;	     /* read requests completed */
	uint64_t bad_shards; /* CRC mismatches */
	uint64_t io_errors;  /* failed reads (injected ones included) */
	double seconds;	     /* wall time of nv_read */
	double crc_seconds;  /* of which computing CRCs */
	bool direct;	     /* O_DIRECT was used */
	bool fixed_bufs;     /* reads went into registered buffers */
	unsigned qd;
	size_t chunk;
	/* of crc_seconds, the hashing after which the ring had no read left in
	 * flight (the device idle for this reader, waiting on the CRC): the
	 * wall time the CRC costs. Over several threads, the largest. */
	double crc_exposed_seconds;
	unsigned threads; /* I/O threads that read (nv_read_threads) */
	/* destination memory (nv_read_threads): seconds spent faulting it in
	 * (summed over threads: the fill threads', or registering it all when
	 * not filling) and seconds a reader had nothing in flight waiting for
	 * its next destination (the largest over threads) */
	double fill_seconds, fill_wait_seconds;
	unsigned opens; /* readers opened (rings set up); a kept one counts once */
};

struct nv_reader;
struct nv_fill;

/* For the reader (threads.c defines them): whether [p, p + n) may be read
 * into now (outside f's span, or faulted in), and a wait until it may or
 * *stop is raised. */
bool nv_fill_ready(struct nv_fill *f, const void *p, size_t n);
void nv_fill_wait(struct nv_fill *f, const void *p, size_t n, const atomic_bool *stop);

/* Open path for reading (O_DIRECT unless o->buffered) and set up the ring. */
int nv_open(struct nv_reader **out, const char *path, const struct nv_opts *o, struct qvl_err *err);
void nv_close(struct nv_reader *r);
/* A kept reader (nv_opts.keep) taking the next load over path: that load's
 * stop flag, filler and fault hook, and no destinations of an earlier load
 * registered. -EINVAL when r reads another file. */
int nv_rebind(struct nv_reader *r, const char *path, const struct nv_opts *o, struct qvl_err *err);
/* Register [base, base + len) (NV_ALIGN-aligned) as the destination of later
 * reads, so that they use fixed buffers. Optional: when the kernel refuses
 * (RLIMIT_MEMLOCK), reads into that memory still work, unregistered. */
int nv_register(struct nv_reader *r, void *base, size_t len);
/* Read and check the shards (in the order given, which should be file
 * order). Every shard's status is set. keep_going: read every shard even
 * after a bad one (verify); otherwise stop issuing reads at the first error.
 * Returns 0 when every shard is good, else the first error (err names the
 * shard); st (may be NULL) accumulates. In-flight reads are always drained
 * before returning. */
int nv_read(struct nv_reader *r, struct nv_shard *s, size_t n, bool keep_going, struct nv_stats *st,
	    struct qvl_err *err);
/* The options in effect (defaults filled in). */
void nv_get_opts(const struct nv_reader *r, struct nv_opts *o);

/* Bad shards (CRC mismatches) and failed reads counted by every reader of
 * this process so far (nv_stats has them per call). */
uint64_t nv_bad_shards_total(void);
uint64_t nv_io_errors_total(void);

/* CRC-64/XZ (ECMA-182 polynomial, reflected, ~0 in and out) through ISA-L's
 * crc64_ecma_refl; crc is the value so far (0 to start). */
uint64_t nv_crc64(uint64_t crc, const void *p, size_t n);

/* Install the process-wide fault hook; NULL removes it. */
void nv_set_fault(nv_fault_fn fn, void *ctx);

/* Read and check the shards (in file order) with o->threads I/O threads, one
 * reader each on a contiguous run of shards of about equal bytes. Shards
 * with a dst are read into it. With o->fill, a fill thread per run faults
 * the run's destinations in (MADV_POPULATE_WRITE, 16 MiB at a time, in read
 * order) ahead of its reader, which reads into them unregistered; without,
 * each thread registers the span of its run's destinations as its fixed
 * buffers when they have no gaps (registering pins: it faults the span in
 * before the first read). Memory between destinations is never faulted in
 * by either. Results as nv_read: every shard's
 * status set; 0 or the error of the first failing shard in file order
 * (others in that load are -ECANCELED when they were never read); st (may
 * be NULL) accumulates bytes, reads and CPU-seconds of CRC over threads,
 * and the wall time. Every thread has drained and exited on return. */
int nv_read_threads(const char *path, const struct nv_opts *o, struct nv_shard *s, size_t n,
		    bool keep_going, struct nv_stats *st, struct qvl_err *err);
/* min(NV_MAX_THREADS, 4, online CPUs): loading has the machine to itself, and
 * beyond a few rings one device gains nothing. */
unsigned nv_default_threads(void);

/* Defaults from the environment (QVL_IO_QD, QVL_IO_CHUNK in KiB,
 * QVL_IO_BUFFERED=1, QVL_IO_THREADS, QVL_IO_FILL), for loads that have no command-line options;
 * invalid values are ignored with a warning. */
void nv_opts_from_env(struct nv_opts *o);

#endif
