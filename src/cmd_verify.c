/* qvlctl verify FILE.qvl: check a pack's header, metadata, tables and every
 * shard's CRC-64, reading through the io_uring reader (nvme/) without
 * keeping the bytes; names each bad shard. Exit 0: all good; 1: damaged
 * (or unreadable); 2: usage. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "nvme.h"
#include "pack.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: qvlctl verify FILE.qvl [--qd N] [--read-size KIB] [--threads N]\n"
		"                     [--buffered] [--shards]\n"
		"\n"
		"Check a qvl pack: the header, metadata and tensor table, and the CRC-64 of\n"
		"every shard (qvl-pack(5)). Each damaged shard is named on stderr; the exit\n"
		"status is 0 when everything is good and 1 otherwise.\n"
		"\n"
		"  --qd N           reads in flight, over all threads (default %u)\n"
		"  --read-size KIB  bytes per read in KiB, a multiple of 4 (default %u)\n"
		"  --threads N      I/O threads, one ring each (default %u here)\n"
		"  --buffered       read through the page cache instead of O_DIRECT\n"
		"  --shards         list the shards first: name, offset, bytes, CRC-64\n"
		"  --help           show this help\n",
		NV_DEFAULT_QD, NV_DEFAULT_CHUNK / 1024, nv_default_threads());
}

static int verify_file(const char *path, const struct nv_opts *o, bool list)
{
	struct qvl_err err = {{0}};
	struct nv_stats st = {0};
	struct nv_shard *s = NULL;
	struct pack_info p;
	uint8_t *head;
	uint64_t fsize, bad = 0;
	int rc = pack_read_head(path, &p, &head, &fsize, &err);

	if (rc)
		return cli_fail("verify", rc, &err);
	if (fsize != p.file_bytes) {
		fprintf(stderr,
			"qvlctl verify: %s: %" PRIu64 " bytes, but the header says %" PRIu64
			": %s\n",
			path, fsize, p.file_bytes, fsize < p.file_bytes ? "truncated" : "extended");
		bad++;
	}
	s = calloc(p.n_shards, sizeof(*s));
	if (!s) {
		rc = qvl_errf(&err, -ENOMEM, "out of memory");
		goto out;
	}
	pack_nv_shards(&p, NULL, s);
	for (uint32_t i = 0; list && i < p.n_shards; i++)
		printf("shard %s offset %" PRIu64 " bytes %" PRIu64 " crc64 %016" PRIx64 "\n",
		       p.shards[i].name, p.shards[i].off, p.shards[i].len, p.shards[i].crc);
	rc = nv_read_threads(path, o, s, p.n_shards, true, &st, &err);
	for (uint32_t i = 0; i < p.n_shards; i++) {
		if (!s[i].status)
			continue;
		bad++;
		if (s[i].truncated)
			fprintf(
			    stderr,
			    "qvlctl verify: %s: shard '%s': truncated (the file ends inside it)\n",
			    path, s[i].name);
		else if (s[i].status == -EBADMSG)
			fprintf(stderr,
				"qvlctl verify: %s: shard '%s': CRC-64 mismatch (stored %016" PRIx64
				", computed %016" PRIx64 ")\n",
				path, s[i].name, s[i].crc, s[i].got_crc);
		else
			fprintf(stderr, "qvlctl verify: %s: shard '%s': %s\n", path, s[i].name,
				qvl_strerror(s[i].status));
	}
	if (rc && !bad) /* a ring itself failed */
		goto out;
	rc = 0;
	/* the CRC's share: of the threads' time (CPU spent hashing), and of the
	 * wall time (hashing the device waited on: nv_stats) */
	printf("%s: %" PRIu32 " shards, %" PRIu32 " tensors, %" PRIu64
	       " bytes: %s\nread: %.3f s, %.0f MB/s, CRC %.1f%% of the time exposed, %.0f%% of "
	       "the threads' time (%s, %s, %u thread%s, qd %u, %zu KiB reads)\n",
	       path, p.n_shards, p.n_tensors, p.file_bytes, bad ? "DAMAGED" : "ok", st.seconds,
	       st.seconds > 0 ? (double)st.bytes / st.seconds / 1e6 : 0.0,
	       st.seconds > 0 ? 100.0 * st.crc_exposed_seconds / st.seconds : 0.0,
	       st.seconds > 0 && st.threads ? 100.0 * st.crc_seconds / st.seconds / st.threads
					    : 0.0,
	       st.direct ? "O_DIRECT" : "buffered",
	       st.fixed_bufs ? "registered buffers" : "plain buffers", st.threads,
	       st.threads == 1 ? "" : "s", st.qd, st.chunk / 1024);
out:
	free(s);
	pack_free(&p);
	free(head);
	if (rc)
		return cli_fail("verify", rc, &err);
	if (bad)
		fprintf(stderr, "qvlctl verify: %s: %" PRIu64 " problem%s found\n", path, bad,
			bad == 1 ? "" : "s");
	return bad ? 1 : 0;
}

int cmd_verify(int argc, char **argv)
{
	enum { OPT_QD = 256, OPT_RS, OPT_THREADS, OPT_BUFFERED, OPT_SHARDS, OPT_HELP };
	static const struct option longopts[] = {
	    {"qd", required_argument, NULL, OPT_QD},
	    {"read-size", required_argument, NULL, OPT_RS},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"buffered", no_argument, NULL, OPT_BUFFERED},
	    {"shards", no_argument, NULL, OPT_SHARDS},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct nv_opts o = {0};
	bool list = false;
	struct cli cl;
	int64_t v;
	int c;

	nv_opts_from_env(&o);
	cli_init(&cl, "verify", argc, argv, "h", longopts);
	while ((c = cli_next(&cl)) != -1) {
		switch (c) {
		case OPT_QD:
			if (cli_int("verify", "--qd", optarg, 1, NV_MAX_QD, &v))
				return 2;
			o.qd = (unsigned)v;
			break;
		case OPT_RS:
			if (cli_int("verify", "--read-size", optarg, 4, NV_MAX_CHUNK / 1024, &v))
				return 2;
			if (v % 4)
				return cli_usage(
				    "verify", "--read-size: %s KiB is not a multiple of 4", optarg);
			o.chunk = (size_t)v * 1024;
			break;
		case OPT_THREADS:
			if (cli_int("verify", "--threads", optarg, 1, NV_MAX_THREADS, &v))
				return 2;
			o.threads = (unsigned)v;
			break;
		case OPT_BUFFERED:
			o.buffered = true;
			break;
		case OPT_SHARDS:
			list = true;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			return cli_opt_error(&cl, c);
		}
	}
	const char *file;
	int rc = cli_operand("verify", argc, argv, "FILE.qvl", &file);
	return rc ? rc : verify_file(file, &o, list);
}
