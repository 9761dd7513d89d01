/* The io_uring shard reader (nvme/) and the pack loader under faults:
 * CRC-64/XZ against a bitwise reference; every read size and queue depth
 * gives the same bytes and CRCs; a flipped byte is -EBADMSG naming the
 * shard and counted; an injected failing read fails the load
 * cleanly, naming the shard, and the next load works; O_DIRECT refused
 * (injected at the probe read) falls back to buffered reads and says so; a
 * pack on tmpfs (/dev/shm) loads, through O_DIRECT where this kernel's tmpfs
 * takes it (Linux 6.6+), else through the fallback. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "nvme.h"
#include "pack.h"
#include "pack_tiny.h"
#include "tap.h"

static uint64_t crc64_ref(const uint8_t *p, size_t n)
{
	uint64_t crc = ~0ull;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? crc >> 1 ^ 0xC96C5795D7870F42ull : crc >> 1;
	}
	return ~crc;
}

struct fault {
	const char *shard; /* match this name (NULL: any) */
	int nth;	   /* fail the nth matching read (1-based) */
	int err, seen, fired;
};

static int fault_hook(void *ctx, const char *shard, uint64_t off, size_t len)
{
	struct fault *f = ctx;

	(void)off;
	(void)len;
	if (f->shard && strcmp(f->shard, shard))
		return 0;
	if (++f->seen != f->nth)
		return 0;
	f->fired++;
	return f->err;
}

/* Read the file's shards through a reader with these options (dst NULL
 * when staged), returning nv_read's result. */
static int read_all(const char *path, const struct pack_info *p, const struct nv_opts *o,
		    bool into_memory, struct nv_stats *st, uint64_t *sum, struct qvl_err *err)
{
	struct nv_shard *s = calloc(p->n_shards, sizeof(*s));
	struct nv_reader *r = NULL;
	uint8_t *mem = NULL;
	uint64_t span = p->file_bytes - p->data_off;
	int rc;

	if (into_memory && posix_memalign((void **)&mem, NV_ALIGN, span))
		return -ENOMEM;
	pack_nv_shards(p, mem, s);
	rc = nv_open(&r, path, o, err);
	if (!rc) {
		if (mem)
			nv_register(r, mem, span);
		rc = nv_read(r, s, p->n_shards, true, st, err);
	}
	*sum = 0;
	for (uint32_t i = 0; i < p->n_shards; i++)
		*sum = *sum * 31 + s[i].got_crc;
	if (mem && !rc) /* the bytes in memory are the shards' */
		for (uint32_t i = 0; i < p->n_shards && !rc; i++)
			if (crc64_ref(mem + (p->shards[i].off - p->data_off), p->shards[i].len) !=
			    p->shards[i].crc)
				rc = -EBADMSG;
	nv_close(r);
	free(s);
	free(mem);
	return rc;
}

int main(void)
{
	const char *tiny = getenv("QVL_TINY");
	char dir[] = "/tmp/qvl-pack-reader.XXXXXX", path[4200], shm[200];
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	struct pack_info p;
	uint8_t *head, buf[1000];
	uint64_t fsize, sum0 = 0, sum;
	struct fault f;
	int rc;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	if (!tiny || access(tiny, F_OK)) {
		skip_all("no tiny model (QVL_TINY)");
	}
	plan(20);
	ok(nv_crc64(0, "123456789", 9) == 0x995dc9bbdf1939faull, "CRC-64/XZ check value");
	rc = 0;
	for (size_t n = 0; n <= sizeof(buf); n += 37)
		rc |=
		    nv_crc64(nv_crc64(0, buf, n / 3), buf + n / 3, n - n / 3) != crc64_ref(buf, n);
	ok(!rc, "ISA-L CRC-64, split anywhere, equals the bitwise reference");

	rc = pack_tiny(tiny, dir, path, sizeof(path), &err);
	ok(rc == 0, "pack the tiny model (%s)", rc ? err.msg : "ok");
	rc = pack_read_head(path, &p, &head, &fsize, &err);
	ok(rc == 0 && fsize == p.file_bytes, "read the head back");
	if (rc)
		return done_testing();

	/* reader geometry: same CRCs whatever the depth, read size and target */
	static const struct nv_opts geo[] = {
	    {.qd = 1, .chunk = 4096, .quiet = true},
	    {.qd = 3, .chunk = 12288, .quiet = true},
	    {.qd = 64, .chunk = 1 << 20, .quiet = true},
	    {.qd = 8, .chunk = 65536, .buffered = true, .quiet = true},
	};
	rc = 0;
	for (size_t g = 0; g < sizeof(geo) / sizeof(geo[0]); g++) {
		for (int mem = 0; mem < 2; mem++) {
			struct nv_stats st = {0};
			int r = read_all(path, &p, &geo[g], mem, &st, &sum, &err);

			if (!g && !mem)
				sum0 = sum;
			if (r || sum != sum0 || st.bad_shards) {
				diag("qd %u chunk %zu mem %d: %d %s", geo[g].qd, geo[g].chunk, mem,
				     r, err.msg);
				rc = 1;
			}
		}
	}
	ok(!rc, "qd 1..64, reads of 4 KiB..1 MiB, staged or into memory: every shard good");

	/* an injected failing read: the load fails cleanly, the next one works */
	f = (struct fault){.shard = "text.layer.2", .nth = 1, .err = -EIO};
	nv_set_fault(fault_hook, &f);
	rc = qvl_model_open(&m, path, NULL, &err);
	ok(rc == -EIO && !m, "injected EIO fails the load (%d)", rc);
	ok(strstr(err.msg, "shard 'text.layer.2'") && strstr(err.msg, "failed"),
	   "the message names the shard: %s", err.msg);
	ok(f.fired == 1, "the hook fired once");
	f = (struct fault){.shard = NULL, .nth = 5, .err = -EIO};
	rc = qvl_model_open(&m, path, NULL, &err);
	ok(rc == -EIO && !m, "a failure in the middle of the queue drains and fails cleanly");
	nv_set_fault(NULL, NULL);
	rc = qvl_model_open(&m, path, NULL, &err);
	ok(rc == 0 && m && m->ntensors == 115, "the next load works (%s)", rc ? err.msg : "ok");
	qvl_model_close(m);
	m = NULL;

	/* a flipped byte: -EBADMSG naming the shard, counted, nothing handed out */
	{
		uint64_t bad0 = nv_bad_shards_total(), at = p.shards[1].off + p.shards[1].len / 3;
		int fd = open(path, O_RDWR);
		uint8_t byte = 0;

		rc = fd >= 0 && pread(fd, &byte, 1, (off_t)at) == 1 ? 0 : -1;
		byte ^= 0x10;
		if (!rc && pwrite(fd, &byte, 1, (off_t)at) != 1)
			rc = -1;
		rc = rc ? rc : qvl_model_open(&m, path, NULL, &err);
		ok(rc == -EBADMSG && !m && strstr(err.msg, p.shards[1].name) &&
		       strstr(err.msg, "CRC-64 mismatch"),
		   "a flipped byte in shard %s: %s", p.shards[1].name, err.msg);
		ok(nv_bad_shards_total() == bad0 + 1, "counted once as a bad shard");
		byte ^= 0x10;
		if (fd >= 0 && pwrite(fd, &byte, 1, (off_t)at) == 1)
			rc = qvl_model_open(&m, path, NULL, &err);
		ok(rc == 0 && m, "restored, the pack loads again");
		qvl_model_close(m);
		m = NULL;
		if (fd >= 0)
			close(fd);
	}

	/* O_DIRECT refused at the first read: the reader falls back */
	{
		struct nv_opts o = {.quiet = false}, got;
		struct nv_reader *r = NULL;

		f = (struct fault){.shard = "o_direct probe", .nth = 1, .err = -EINVAL};
		nv_set_fault(fault_hook, &f);
		diag("a warning about O_DIRECT is expected on stderr:");
		rc = nv_open(&r, path, &o, &err);
		nv_set_fault(NULL, NULL);
		ok(rc == 0 && f.fired == 1, "O_DIRECT refused: the reader still opens");
		if (r)
			nv_get_opts(r, &got);
		ok(r && got.buffered, "and reads buffered");
		nv_close(r);
		f = (struct fault){.shard = "o_direct probe", .nth = 1, .err = -EINVAL};
		nv_set_fault(fault_hook, &f);
		rc = qvl_model_open(&m, path, NULL, &err);
		nv_set_fault(NULL, NULL);
		ok(rc == 0 && m, "a pack loads through the fallback (%s)", rc ? err.msg : "ok");
		qvl_model_close(m);
		m = NULL;
	}

	/* a real tmpfs */
	snprintf(shm, sizeof(shm), "/dev/shm/qvl-pack-reader-%d.qvl", (int)getpid());
	{
		char cmd[4500];
		int fd;
		bool direct_ok;
		struct nv_stats st = {0};
		struct nv_opts o = {.quiet = true};

		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, shm);
		if (access("/dev/shm", W_OK) || system(cmd)) {
			skip(3, "no writable /dev/shm");
		} else {
			void *blk = NULL;

			fd = open(shm, O_RDONLY | O_DIRECT);
			direct_ok = fd >= 0 && !posix_memalign(&blk, 4096, 4096) &&
				    pread(fd, blk, 4096, 0) == 4096;
			if (fd >= 0)
				close(fd);
			free(blk);
			diag("this kernel's tmpfs %s O_DIRECT", direct_ok ? "takes" : "refuses");
			rc = read_all(shm, &p, &o, true, &st, &sum, &err);
			ok(rc == 0 && sum == sum0, "every shard read from tmpfs is good");
			ok(st.direct == direct_ok, "the reader used %s, as the kernel allows",
			   st.direct ? "O_DIRECT" : "buffered reads");
			rc = qvl_model_open(&m, shm, NULL, &err);
			ok(rc == 0 && m, "the pack loads from tmpfs (%s)", rc ? err.msg : "ok");
			qvl_model_close(m);
			unlink(shm);
		}
	}
	/* bad options are refused with a message */
	{
		struct nv_opts o = {.qd = 4, .chunk = 1000};
		struct nv_reader *r = NULL;

		rc = nv_open(&r, path, &o, &err);
		ok(rc == -EINVAL && !r && strstr(err.msg, "multiple of 4096"),
		   "a read size that is not a multiple of 4096 is refused");
	}
	pack_free(&p);
	free(head);
	unlink(path);
	rmdir(dir);
	return done_testing();
}
