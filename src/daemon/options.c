/* The options table and its three users (see options.h). Redis's config.c
 * is the model: one row per option with its name, type, bounds, default and
 * help; parsing, dumping and the documentation test all walk the same rows. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/options.h"
#include "pool.h"
#include "tiers.h"
#include "util.h"

enum opt_type { T_STR, T_INT, T_BOOL, T_MODE, T_UIDS, T_GIDS, T_KV, T_PREC, T_MEM, T_BW, T_CPUS };

/* Types whose value is kept as the string given (checked, then strdup'd). */
static bool held_as_string(enum opt_type t)
{
	return t == T_STR || t == T_KV || t == T_PREC || t == T_MEM || t == T_BW || t == T_CPUS;
}

/* The words a string of a choice type may be, space separated. */
static const char *const choice_words[] = {[T_KV] = "f16 bf16 f32", [T_PREC] = "bf16 exact"};

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	int64_t min, max;
	const char *dflt; /* NULL: computed in qvld_opts_defaults() or empty */
	const char *help;
};

#define O(f) offsetof(struct qvld_opts, f)
static const struct opt table[] = {
    {"model", T_STR, O(model), 0, 0, NULL,
     "model to serve: HF directory, GGUF directory or .gguf file"},
    {"mmproj", T_STR, O(mmproj), 0, 0, NULL, "vision GGUF for a text .gguf"},
    {"demo", T_BOOL, O(demo), 0, 1, "false",
     "without a model: generate the tiny test model into cache_dir once and serve it"},
    {"cache_dir", T_STR, O(cache_dir), 0, 0, NULL, "where --demo keeps its model"},
    {"socket", T_STR, O(socket), 0, 0, NULL, "UNIX socket clients connect to"},
    {"socket_mode", T_MODE, O(socket_mode), 0, 0777, "0660", "permission bits of the socket"},
    {"pidfile", T_STR, O(pidfile), 0, 0, NULL, "pid file (written when daemonized)"},
    {"log_file", T_STR, O(log_file), 0, 0, NULL, "log file (empty: stderr; reopened on SIGHUP)"},
    {"log_level", T_INT, O(log_level), 0, 3, "2", "0 errors, 1 warnings, 2 info, 3 debug"},
    {"foreground", T_BOOL, O(foreground), 0, 1, "false",
     "stay in the foreground (systemd Type=notify)"},
    {"threads", T_INT, O(threads), 0, 4096, "0", "compute threads (0: one per physical core)"},
    {"cpus", T_CPUS, O(cpus), 0, 0, NULL, "explicit CPU list for the compute threads"},
    {"kv_type", T_KV, O(kv_type), 0, 0, "f16", "KV cache type: f16, bf16 or f32"},
    {"precision", T_PREC, O(precision), 0, 0, "bf16",
     "matrix products: bf16 (bf16 activations where the CPU has AVX512-BF16) or exact"},
    {"ctx", T_INT, O(ctx), 1, 1 << 24, "4096", "context positions per sequence"},
    {"max_seqs", T_INT, O(max_seqs), 1, 4096, "16",
     "sequences in the running batch at once (continuous batching)"},
    {"kv_mem", T_MEM, O(kv_mem), 0, 0, NULL,
     "KV cache budget: bytes (K, M, G, T suffixes) or a share of RAM (N%); "
     "empty: ctx x max_seqs positions"},
    {"vision_cache", T_MEM, O(vision_cache), 0, 0, "256M",
     "vision tower output kept for images seen again (bytes with K/M/G/T, or N%; 0: none)"},
    {"cpu_mem", T_MEM, O(cpu_mem), 0, 0, NULL,
     "host memory for the weights of a .qvl pack (bytes with K/M/G/T, or N% of RAM): text "
     "layers that do not fit stream from the file every pass; empty: all resident"},
    {"gpu_mem", T_MEM, O(gpu_mem), 0, 0, NULL,
     "memory of the simulated device (no GPU: a throttled host-memory tier) for text layers "
     "of a .qvl pack; empty: none"},
    {"sim_device_bw", T_BW, O(sim_device_bw), 0, 0, "25G",
     "copy bandwidth of the simulated device, bytes/s (K/M/G: powers of 1000)"},
    {"prefix_cache", T_BOOL, O(prefix_cache), 0, 1, "true",
     "reuse the KV pages of a prompt prefix already computed (system prompts, images)"},
    {"max_queue", T_INT, O(max_queue), 0, 1 << 20, "1024",
     "requests waiting for a batch slot; more complete at once with -EBUSY"},
    {"prefill_chunk", T_INT, O(prefill_chunk), 1, 1 << 20, "256",
     "prompt positions per batched step (all prefills together)"},
    {"prefill_step_pct", T_INT, O(prefill_step_pct), 0, 100000, "100",
     "the layers of long prompts' chunks a step runs take at most N% of a short step "
     "(0: no cut by layers)"},
    {"client_max_seqs", T_INT, O(client_max_seqs), 0, 4096, "0",
     "batch slots one client may hold (0: max_seqs)"},
    {"client_kv_pages", T_INT, O(client_kv_pages), 0, INT64_C(1) << 40, "0",
     "KV pages (64 positions each) one client's sequences may hold (0: no limit)"},
    {"deadline_ms", T_INT, O(deadline_ms), 0, INT64_C(1) << 40, "0",
     "longest a request may take from submission, then it ends with -ETIMEDOUT (0: none)"},
    {"max_clients", T_INT, O(max_clients), 1, 65536, "256", "connected clients at once"},
    {"max_inflight", T_INT, O(max_inflight), 1, 65536, "64", "requests in the daemon per client"},
    {"sq_entries", T_INT, O(sq_entries), 1, 4096, "64", "default submission ring entries"},
    {"arena_mb", T_INT, O(arena_mb), 1, 65536, "64", "default arena MiB per client"},
    {"max_arena_mb", T_INT, O(max_arena_mb), 1, 65536, "1024",
     "largest arena MiB a client may ask"},
    {"spin_us", T_INT, O(spin_us), 0, 1000000, "50", "poller spin before sleeping (microseconds)"},
    {"allow_uids", T_UIDS, O(allow_uids), 0, 0, NULL,
     "users (names or ids, comma separated) allowed besides the daemon's and root"},
    {"allow_gids", T_GIDS, O(allow_gids), 0, 0, NULL, "groups allowed (names or ids)"},
    {"allow_any", T_BOOL, O(allow_any), 0, 1, "false", "accept every peer the socket mode lets in"},
};
#define N_OPTS (sizeof(table) / sizeof(table[0]))

const char *qvld_opt_name(int i)
{
	return i >= 0 && (size_t)i < N_OPTS ? table[i].name : NULL;
}

const char *qvld_opt_help(int i)
{
	return i >= 0 && (size_t)i < N_OPTS ? table[i].help : NULL;
}

static const struct opt *find(const char *key)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (!strcmp(table[i].name, key))
			return &table[i];
	return NULL;
}

static int set_ids(struct qvld_opts *o, const struct opt *t, const char *v, const char *where,
		   struct qvl_err *err)
{
	bool uids = t->type == T_UIDS;
	uint32_t *arr = uids ? o->allow_uids : o->allow_gids;
	int *n = uids ? &o->n_allow_uids : &o->n_allow_gids;
	char buf[1024], *save = NULL;

	if (strlen(v) >= sizeof(buf))
		return qvl_errf(err, -EINVAL, "%s: %s: value too long", where, t->name);
	strcpy(buf, v);
	*n = 0;
	for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		int64_t id;
		if (*n == QVLD_MAX_IDS)
			return qvl_errf(err, -EINVAL, "%s: %s: more than %d entries", where,
					t->name, QVLD_MAX_IDS);
		if (qvl_parse_i64(tok, 0, UINT32_MAX - 1, &id) == 0) {
			arr[(*n)++] = (uint32_t)id;
			continue;
		}
		if (uids) {
			struct passwd *pw = getpwnam(tok);
			if (pw) {
				arr[(*n)++] = pw->pw_uid;
				continue;
			}
		} else {
			struct group *gr = getgrnam(tok);
			if (gr) {
				arr[(*n)++] = gr->gr_gid;
				continue;
			}
		}
		return qvl_errf(err, -EINVAL, "%s: %s: no such %s '%s'", where, t->name,
				uids ? "user" : "group", tok);
	}
	return 0;
}

/* v is one of the space-separated words of choices */
static bool is_choice(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; *p; p += strcspn(p, " "), p += *p == ' ')
		if (n && !strncmp(p, v, n) && (p[n] == ' ' || !p[n]))
			return true;
	return false;
}

static int set_one(struct qvld_opts *o, const struct opt *t, const char *v, const char *where,
		   struct qvl_err *err)
{
	char *base = (char *)o + t->off;
	int64_t x;

	switch (t->type) {
	case T_MEM: {
		uint64_t bytes;
		if (*v && strcmp(v, "0") && qvld_parse_mem(v, &bytes) < 0)
			return qvl_errf(err, -EINVAL,
					"%s: %s: '%s' is not a size (N, NK, NM, NG, NT) or a "
					"share of RAM (1%%..100%%)",
					where, t->name, v);
		goto str;
	}
	case T_BW: {
		uint64_t bps;
		if (qvl_parse_bw(t->name, v, &bps, err) < 0)
			return qvl_err_prefix(err, -EINVAL, "%s", where);
		goto str;
	}
	case T_CPUS:
		/* checked here, where the flag or file:line is known, not when
		 * the pool is made after the socket is claimed */
		if (*v && qvl_cpulist_check(v, err) < 0)
			return qvl_err_prefix(err, -EINVAL, "%s: %s", where, t->name);
		goto str;
	case T_KV:
	case T_PREC:
		if (!is_choice(choice_words[t->type], v))
			return qvl_errf(err, -EINVAL, "%s: %s: '%s' is not one of: %s", where,
					t->name, v, choice_words[t->type]);
		/* fall through */
	case T_STR:
	str : {
		char *s = strdup(v);
		if (!s)
			return qvl_errf(err, -ENOMEM, "out of memory");
		free(*(char **)base);
		*(char **)base = *s ? s : NULL;
		if (!*s)
			free(s);
		return 0;
	}
	case T_INT:
		if (qvl_parse_i64(v, t->min, t->max, &x) < 0)
			return qvl_errf(err, -EINVAL,
					"%s: %s: '%s' is not an integer in %lld..%lld", where,
					t->name, v, (long long)t->min, (long long)t->max);
		*(int64_t *)base = x;
		return 0;
	case T_MODE: {
		char *end;
		errno = 0;
		unsigned long m = strtoul(v, &end, 8);
		if (!*v || *end || errno || m > (unsigned long)t->max)
			return qvl_errf(err, -EINVAL, "%s: %s: '%s' is not an octal mode (0..0777)",
					where, t->name, v);
		*(int64_t *)base = (int64_t)m;
		return 0;
	}
	case T_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on"))
			*(bool *)base = true;
		else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") ||
			 !strcmp(v, "off"))
			*(bool *)base = false;
		else
			return qvl_errf(err, -EINVAL, "%s: %s: '%s' is not true or false", where,
					t->name, v);
		return 0;
	case T_UIDS:
	case T_GIDS:
		return set_ids(o, t, v, where, err);
	}
	return -EINVAL;
}

int qvld_opt_set(struct qvld_opts *o, const char *key, const char *value, const char *where,
		 struct qvl_err *err)
{
	const struct opt *t = find(key);

	if (!t)
		return qvl_errf(err, -EINVAL, "%s: unknown key '%s'", where, key);
	return set_one(o, t, value, where, err);
}

int qvld_parse_mem(const char *v, uint64_t *bytes)
{
	return qvl_parse_size("", v, true, bytes, NULL); /* offload/: sizes parsed once */
}

static char *user_dir(const char *env, const char *home_sub, const char *leaf)
{
	const char *x = getenv(env), *home = getenv("HOME");
	char buf[4096];

	if (x && *x == '/')
		snprintf(buf, sizeof(buf), "%s/%s", x, leaf);
	else if (home && *home == '/')
		snprintf(buf, sizeof(buf), "%s/%s/%s", home, home_sub, leaf);
	else
		snprintf(buf, sizeof(buf), "/tmp/qvl-%u/%s", (unsigned)getuid(), leaf);
	return strdup(buf);
}

int qvld_opts_defaults(struct qvld_opts *o)
{
	struct qvl_err err;

	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < N_OPTS; i++)
		if (table[i].dflt && set_one(o, &table[i], table[i].dflt, "default", &err) < 0)
			return -EINVAL;
	o->socket = qvld_default_socket();
	o->cache_dir =
	    getuid() == 0 ? strdup("/var/cache/qvl") : user_dir("XDG_CACHE_HOME", ".cache", "qvl");
	if (!o->socket || !o->cache_dir)
		return -ENOMEM;
	return 0;
}

void qvld_opts_free(struct qvld_opts *o)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (held_as_string(table[i].type))
			free(*(char **)((char *)o + table[i].off));
	free(o->config);
	memset(o, 0, sizeof(*o));
}

struct conf_ctx {
	struct qvld_opts *o;
	const char *path;
	struct qvl_err *err;
	FILE *f;
	int line; /* lines read so far: inih calls back right after reading one */
	int rc;
};

/* Debian's libinih is built without INI_HANDLER_LINENO: count lines in the
 * reader so that errors can name them. */
static char *conf_read(char *str, int num, void *stream)
{
	struct conf_ctx *c = stream;
	char *r = fgets(str, num, c->f);
	if (r)
		c->line++;
	return r;
}

static int conf_line(void *user, const char *section, const char *name, const char *value)
{
	struct conf_ctx *c = user;
	char where[4200];

	snprintf(where, sizeof(where), "%s:%d", c->path, c->line);
	if (strcmp(section, "qvld")) {
		c->rc =
		    qvl_errf(c->err, -EINVAL, "%s: key '%s' in section [%s] (keys go in [qvld])",
			     where, name, section);
		return 0;
	}
	if (!value) {
		c->rc = qvl_errf(c->err, -EINVAL, "%s: key '%s' has no value", where, name);
		return 0;
	}
	c->rc = qvld_opt_set(c->o, name, value, where, c->err);
	return c->rc == 0;
}

int qvld_conf_load(struct qvld_opts *o, const char *path, struct qvl_err *err)
{
	struct conf_ctx c = {.o = o, .path = path, .err = err};
	FILE *f = fopen(path, "r");
	int r;

	if (!f)
		return qvl_errf(err, -errno, "%s: %s", path, strerror(errno));
	c.f = f;
	r = ini_parse_stream(conf_read, &c, conf_line, &c);
	fclose(f);
	if (c.rc < 0)
		return c.rc;
	if (r > 0)
		return qvl_errf(err, -EINVAL, "%s:%d: not 'key = value' or '[section]'", path, r);
	if (r < 0)
		return qvl_errf(err, -EIO, "%s: cannot read", path);
	return 0;
}

static void dump_ids(FILE *f, const uint32_t *v, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%u", i ? "," : "", v[i]);
}

void qvld_opts_dump(const struct qvld_opts *o, FILE *f)
{
	fprintf(f, "[qvld]\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *t = &table[i];
		const char *base = (const char *)o + t->off;

		fprintf(f, "%s = ", t->name);
		switch (t->type) {
		case T_STR:
		case T_KV:
		case T_PREC:
		case T_MEM:
		case T_BW:
		case T_CPUS: {
			const char *s = *(char *const *)base;
			fprintf(f, "%s", s ? s : "");
			break;
		}
		case T_INT:
			fprintf(f, "%lld", (long long)*(const int64_t *)base);
			break;
		case T_MODE:
			fprintf(f, "0%03llo", (unsigned long long)*(const int64_t *)base);
			break;
		case T_BOOL:
			fprintf(f, "%s", *(const bool *)base ? "true" : "false");
			break;
		case T_UIDS:
			dump_ids(f, o->allow_uids, o->n_allow_uids);
			break;
		case T_GIDS:
			dump_ids(f, o->allow_gids, o->n_allow_gids);
			break;
		}
		fprintf(f, "\n");
	}
}
