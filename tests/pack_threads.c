/* Several I/O threads (nv_read_threads, QVL_IO_THREADS): 1..4 threads read
 * the same bytes and CRCs, staged or into memory, and load the same model;
 * a failing read in one thread stops the others (a read of the last shard
 * is held until the stop flag is up, so that its thread must cancel the
 * rest of its run), every thread drains and the load fails naming the
 * shard; the next load works; a caller's stop flag cancels a load; the
 * destinations filled ahead of the reads hold the same bytes; a reader kept
 * across loads of one shard each (the resident fill's) is opened once, takes
 * each load's fault hook, works after a failed load and refuses another
 * file; a bad QVL_IO_THREADS is ignored. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "nvme.h"
#include "pack.h"
#include "pack_tiny.h"
#include "tap.h"

struct hold {
	const char *fail;   /* fail the first read of this shard */
	const char *hold;   /* hold reads of this shard until *stop */
	atomic_bool *stop;  /* the load's stop flag */
	atomic_int seen;    /* reads of the failing shard; relaxed: a counter */
	atomic_int fired;   /* reads failed; relaxed: joined before reading */
	atomic_int timeout; /* a hold gave up; relaxed: joined before reading */
};

static int hold_hook(void *ctx, const char *shard, uint64_t off, size_t len)
{
	struct hold *h = ctx;
	struct timespec ms = {0, 1000000};

	(void)off;
	(void)len;
	if (!strcmp(shard, h->fail)) {
		/* relaxed: counters, read after pthread_join */
		if (atomic_fetch_add_explicit(&h->seen, 1, memory_order_relaxed))
			return 0;
		atomic_fetch_add_explicit(&h->fired, 1, memory_order_relaxed);
		return -EIO;
	}
	if (strcmp(shard, h->hold))
		return 0;
	/* bounded: 20 s even under ASan on a loaded machine; relaxed: pairs
	 * with the reader's relaxed store of the flag (a hint) */
	for (int i = 0; i < 20000; i++) {
		if (atomic_load_explicit(h->stop, memory_order_relaxed))
			return 0;
		nanosleep(&ms, NULL);
	}
	atomic_fetch_add_explicit(&h->timeout, 1, memory_order_relaxed);
	return 0;
}

/* A digest of every tensor's bytes, in table order. */
static uint64_t model_digest(const struct qvl_model *m)
{
	uint64_t d = 0;

	for (size_t i = 0; i < m->ntensors; i++)
		d = nv_crc64(d, m->tensors[i].data, m->tensors[i].nbytes);
	return d;
}

int main(void)
{
	const char *tiny = getenv("QVL_TINY");
	char dir[] = "/tmp/qvl-pack-threads.XXXXXX", path[4200];
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	struct pack_info p;
	struct nv_shard *s;
	uint8_t *head, *mem = NULL;
	uint64_t fsize, sum0 = 0, dig0 = 0, span;
	int rc;

	if (!tiny || access(tiny, F_OK))
		skip_all("no tiny model (QVL_TINY)");
	plan(17);
	rc = pack_tiny(tiny, dir, path, sizeof(path), &err);
	ok(rc == 0, "pack the tiny model (%s)", rc ? err.msg : "ok");
	rc = rc ? rc : pack_read_head(path, &p, &head, &fsize, &err);
	if (rc)
		return done_testing();
	span = p.file_bytes - p.data_off;
	s = calloc(p.n_shards, sizeof(*s));
	if (!s || posix_memalign((void **)&mem, NV_ALIGN, span))
		return 1;

	/* the same CRCs and bytes whatever the thread count */
	rc = 0;
	for (unsigned t = 1; t <= 4; t++) {
		for (int into = 0; into < 2; into++) {
			struct nv_opts o = {.threads = t, .qd = 8, .chunk = 8192, .quiet = true};
			struct nv_stats st = {0};
			uint64_t sum = 0;
			int r;

			memset(mem, 0, span);
			pack_nv_shards(&p, into ? mem : NULL, s);
			r = nv_read_threads(path, &o, s, p.n_shards, false, &st, &err);
			for (uint32_t i = 0; i < p.n_shards; i++) {
				sum = sum * 31 + s[i].got_crc;
				if (into && nv_crc64(0, s[i].dst, s[i].len) != p.shards[i].crc)
					r = r ? r : -EBADMSG;
			}
			if (t == 1 && !into)
				sum0 = sum;
			if (r || sum != sum0 || st.threads != t || st.bytes < span - NV_ALIGN) {
				diag("%u threads, into %d: %d (%s), %u threads ran, %" PRIu64
				     " bytes",
				     t, into, r, r ? err.msg : "ok", st.threads, st.bytes);
				rc = 1;
			}
		}
	}
	ok(!rc, "1..4 threads, staged or into memory: the same CRCs, the bytes in place");

	/* destinations filled ahead of the reads (nv_opts.fill): fresh memory
	 * of a new mapping each time, the same bytes, the fill timed */
	rc = 0;
	for (unsigned t = 1; t <= 4; t++) {
		struct nv_opts o = {
		    .threads = t, .qd = 8, .chunk = 65536, .quiet = true, .fill = true};
		struct nv_stats st = {0};
		uint8_t *fresh =
		    mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int r;

		if (fresh == MAP_FAILED)
			return 1;
		pack_nv_shards(&p, fresh, s);
		r = nv_read_threads(path, &o, s, p.n_shards, false, &st, &err);
		for (uint32_t i = 0; i < p.n_shards && !r; i++)
			if (nv_crc64(0, s[i].dst, s[i].len) != p.shards[i].crc)
				r = -EBADMSG;
		if (r || st.fill_seconds <= 0) {
			diag("fill, %u threads: %d (%s), fill %.6f s", t, r, r ? err.msg : "ok",
			     st.fill_seconds);
			rc = 1;
		}
		munmap(fresh, span);
	}
	ok(!rc, "1..4 threads filling fresh memory ahead of the reads: the bytes in place");

	/* one kept reader (nv_opts.keep) for a load per shard into fresh
	 * memory, filled ahead, as offload/fill.c reads a layer per load;
	 * the second load's own hook fails it, the third works */
	{
		struct nv_reader *kept = NULL, *first = NULL;
		struct hold h = {.fail = p.shards[1].name, .hold = ""};
		atomic_bool never = false;
		unsigned opens = 0;
		bool good = p.n_shards >= 3;
		uint8_t *fresh =
		    mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (fresh == MAP_FAILED)
			return 1;
		h.stop = &never;
		pack_nv_shards(&p, fresh, s);
		for (uint32_t i = 0; i < p.n_shards; i++) {
			atomic_bool stop = false;
			struct nv_opts o = {.threads = 2,
					    .qd = 4,
					    .chunk = 65536,
					    .quiet = true,
					    .fill = true,
					    .stop = &stop,
					    .keep = &kept};
			struct nv_stats st = {0};
			int r;

			if (i == 1) {
				o.fault = hold_hook;
				o.fault_ctx = &h;
			}
			r = nv_read_threads(path, &o, &s[i], 1, false, &st, &err);
			opens += st.opens;
			first = i ? first : kept;
			if (i == 1 ? r != -EIO || s[1].status != -EIO
				   : r || nv_crc64(0, s[i].dst, s[i].len) != p.shards[i].crc) {
				diag("kept reader, shard %u: %d (%s)", i, r, r ? err.msg : "bytes");
				good = false;
			}
		}
		ok(good && kept && kept == first && opens == 1,
		   "a kept reader: %u loads of a shard each, %u reader opened, the second "
		   "load's fault hook failed it alone",
		   p.n_shards, opens);
		struct nv_opts o = {.quiet = true, .keep = &kept};
		rc = nv_read_threads("/nonexistent.qvl", &o, s, 1, false, NULL, &err);
		ok(rc == -EINVAL && strstr(err.msg, "kept reader"),
		   "a kept reader of another file: %s", err.msg);
		nv_close(kept);
		munmap(fresh, span);
	}

	/* the same model whatever QVL_IO_THREADS */
	rc = 0;
	for (int t = 1; t <= 4; t++) {
		char v[8];
		int r;

		snprintf(v, sizeof(v), "%d", t);
		setenv("QVL_IO_THREADS", v, 1);
		r = qvl_model_open(&m, path, NULL, &err);
		if (!r && t == 1)
			dig0 = model_digest(m);
		if (r || model_digest(m) != dig0) {
			diag("QVL_IO_THREADS=%d: %d %s", t, r, r ? err.msg : "other bytes");
			rc = 1;
		}
		qvl_model_close(m);
		m = NULL;
	}
	ok(!rc && dig0, "QVL_IO_THREADS=1..4 load the same tensors");

	/* a failing read in the first thread stops the last one */
	for (unsigned t = 2; t <= 4; t += 2) {
		atomic_bool stop = false;
		struct hold h = {
		    .fail = p.shards[0].name, .hold = p.shards[p.n_shards - 1].name, .stop = &stop};
		struct nv_opts o = {.threads = t,
				    .qd = 2 * t,
				    .chunk = 4096,
				    .quiet = true,
				    .fault = hold_hook,
				    .fault_ctx = &h,
				    .stop = &stop,
				    /* 4 threads: the fill threads stop too */
				    .fill = t == 4};
		struct nv_stats st = {0};
		bool set = true;

		pack_nv_shards(&p, mem, s);
		rc = nv_read_threads(path, &o, s, p.n_shards, false, &st, &err);
		for (uint32_t i = 0; i < p.n_shards; i++)
			set &= s[i].status == 0 || s[i].status == -EIO || s[i].status == -ECANCELED;
		ok(rc == -EIO && strstr(err.msg, p.shards[0].name) && s[0].status == -EIO &&
		       atomic_load(&h.fired) == 1,
		   "%u threads: the failing read fails the load, naming its shard: %s", t, err.msg);
		ok(s[p.n_shards - 1].status == -ECANCELED && !atomic_load(&h.timeout) && set,
		   "the last thread stopped issuing: its last shard is cancelled (%d)",
		   s[p.n_shards - 1].status);
	}

	/* the global hook through the loader, then the next load works */
	setenv("QVL_IO_THREADS", "3", 1);
	{
		struct hold h = {.fail = p.shards[p.n_shards / 2].name, .hold = ""};
		atomic_bool never = false;

		h.stop = &never;
		nv_set_fault(hold_hook, &h);
		rc = qvl_model_open(&m, path, NULL, &err);
		nv_set_fault(NULL, NULL);
		ok(rc == -EIO && !m && strstr(err.msg, p.shards[p.n_shards / 2].name),
		   "3 threads: an injected EIO fails the load cleanly: %s", err.msg);
		rc = qvl_model_open(&m, path, NULL, &err);
		ok(rc == 0 && m && model_digest(m) == dig0, "the next load works (%s)",
		   rc ? err.msg : "same tensors");
		qvl_model_close(m);
		m = NULL;
	}

	/* cancelled from outside before it starts */
	{
		atomic_bool stop = true;
		struct nv_opts o = {.threads = 2, .quiet = true, .stop = &stop};
		bool all = true;

		pack_nv_shards(&p, mem, s);
		rc = nv_read_threads(path, &o, s, p.n_shards, false, NULL, &err);
		for (uint32_t i = 0; i < p.n_shards; i++)
			all &= s[i].status == -ECANCELED;
		ok(rc == -ECANCELED && all, "a stop flag raised by the caller cancels every shard");
	}

	/* QVL_IO_THREADS out of range: ignored, with a warning */
	{
		struct nv_opts o = {0};

		setenv("QVL_IO_THREADS", "99", 1);
		diag("a warning about QVL_IO_THREADS=99 is expected on stderr:");
		nv_opts_from_env(&o);
		ok(o.threads == 0, "QVL_IO_THREADS=99 is ignored");
		setenv("QVL_IO_THREADS", "2", 1);
		nv_opts_from_env(&o);
		ok(o.threads == 2, "QVL_IO_THREADS=2 is taken");
		ok(nv_default_threads() >= 1 && nv_default_threads() <= 4,
		   "the default is 1..4 threads (%u here)", nv_default_threads());
	}
	{
		struct nv_opts o = {.threads = NV_MAX_THREADS + 1};

		rc = nv_read_threads(path, &o, s, p.n_shards, false, NULL, &err);
		ok(rc == -EINVAL && strstr(err.msg, "I/O threads"), "too many threads: %s",
		   err.msg);
	}
	unsetenv("QVL_IO_THREADS");
	free(s);
	free(mem);
	pack_free(&p);
	free(head);
	unlink(path);
	rmdir(dir);
	return done_testing();
}
