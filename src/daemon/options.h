/* qvld's settings: one table (options.c) drives the command line, the
 * qvl.conf parser (INI through libinih), `qvld --dump-config` and the test
 * that qvl.conf(5) documents every key. Precedence: built-in default <
 * qvl.conf < command line. */
#ifndef QVLD_OPTIONS_H
#define QVLD_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "daemon/sockpath.h"

#define QVLD_MAX_IDS 32

struct qvld_opts {
	char *model, *mmproj, *socket, *config, *pidfile, *log_file, *cpus, *cache_dir;
	char *kv_type, *precision, *kv_mem, *vision_cache;
	char *cpu_mem, *gpu_mem, *sim_device_bw; /* the tiered pool (offload/tiers.h) */
	int64_t threads, ctx, max_seqs, max_queue, prefill_chunk, client_max_seqs, deadline_ms;
	int64_t client_kv_pages, prefill_step_pct;
	int64_t max_clients, max_inflight, sq_entries, spin_us;
	int64_t arena_mb, max_arena_mb, socket_mode, log_level;
	bool foreground, demo, prefix_cache;
	uint32_t allow_uids[QVLD_MAX_IDS], allow_gids[QVLD_MAX_IDS];
	int n_allow_uids, n_allow_gids;
	bool allow_any;
};

/* Fill the defaults (paths depend on the uid: see qvld(8)). */
int qvld_opts_defaults(struct qvld_opts *o);
void qvld_opts_free(struct qvld_opts *o);

/* Set one option by its qvl.conf key ("threads") from text. Errors name
 * `where` ("qvl.conf:12" or "--threads"), the key and the value. */
int qvld_opt_set(struct qvld_opts *o, const char *key, const char *value, const char *where,
		 struct qvl_err *err);

/* Parse a qvl.conf file (sections: [qvld]; keys from the table). -ENOENT
 * when it does not exist (the caller decides whether that is an error). */
int qvld_conf_load(struct qvld_opts *o, const char *path, struct qvl_err *err);

/* --kv-mem, --cpu-mem: "N" bytes, with a K, M, G or T suffix (powers of
 * 1024; fractions and a trailing B or iB allowed), or "N%" of the machine's
 * RAM (1..100). -EINVAL. qvl_parse_size() (offload/tiers.h) does it. */
int qvld_parse_mem(const char *v, uint64_t *bytes);

/* Every key = value, as a qvl.conf that would reproduce o. */
void qvld_opts_dump(const struct qvld_opts *o, FILE *f);

/* The table, for --help and the man-page test: name i (NULL past the end). */
const char *qvld_opt_name(int i);
const char *qvld_opt_help(int i);

#endif
