/* qvld: the daemon. Startup order (each step can fail with a message naming
 * what and why; nothing is served before the last):
 *   settings (defaults < qvl.conf < flags) -> log -> daemonize (the parent
 *   waits for the verdict) -> claim the socket (lock, stale check) -> map
 *   the model, create the engine, load the tokenizer -> self-check (one
 *   forward pass) -> place threads -> scheduler -> listen + poller ->
 *   READY=1.
 * Then the main thread sleeps in epoll on a signalfd (SIGTERM/SIGINT drain
 * and exit, SIGHUP reopens the log), an eventfd (QVL_OP_SHUTDOWN) and a
 * one-second timerfd (the cron: gauges, tokens/s window). Shutdown: STOPPING=1,
 * refuse new requests, let every in-flight one finish, stop the poller. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../simd/kernels.h"
#include "daemon/demo.h"
#include "daemon/lifecycle.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/options.h"
#include "daemon/placement.h"
#include "daemon/sched.h"
#include "daemon/serve.h"
#include "daemon/json_out.h"
#include "daemon/stats.h"
#include "engine.h"
#include "env.h"
#include "generate.h"
#include "model.h"
#include "pool.h"
#include "run_common.h"
#include "shm.h"
#include "tiers.h"
#include "tokenizer.h"
#include "util.h"

#ifndef QVLD_SYSCONFDIR
#define QVLD_SYSCONFDIR "/etc"
#endif

enum { O_DUMP = 256, O_HELP, O_VERSION };

/* Flags that map to qvl.conf keys: the flag name with '-' for '_'. */
static const struct option longopts[] = {
    {"model", required_argument, NULL, 'm'},
    {"mmproj", required_argument, NULL, 0},
    {"socket", required_argument, NULL, 0},
    {"config", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 0},
    {"cpus", required_argument, NULL, 0},
    {"ctx", required_argument, NULL, 0},
    {"max-seqs", required_argument, NULL, 0},
    {"kv-mem", required_argument, NULL, 0},
    {"cpu-mem", required_argument, NULL, 0},
    {"gpu-mem", required_argument, NULL, 0},
    {"sim-device-bw", required_argument, NULL, 0},
    {"max-queue", required_argument, NULL, 0},
    {"prefix-cache", required_argument, NULL, 0},
    {"vision-cache", required_argument, NULL, 0},
    {"prefill-chunk", required_argument, NULL, 0},
    {"prefill-step-pct", required_argument, NULL, 0},
    {"client-max-seqs", required_argument, NULL, 0},
    {"client-kv-pages", required_argument, NULL, 0},
    {"deadline-ms", required_argument, NULL, 0},
    {"kv-type", required_argument, NULL, 0},
    {"precision", required_argument, NULL, 0},
    {"pidfile", required_argument, NULL, 0},
    {"log-file", required_argument, NULL, 0},
    {"log-level", required_argument, NULL, 0},
    {"cache-dir", required_argument, NULL, 0},
    {"foreground", no_argument, NULL, 'f'},
    {"demo", no_argument, NULL, 0},
    {"dump-config", no_argument, NULL, O_DUMP},
    {"help", no_argument, NULL, O_HELP},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: qvld [--model MODEL] [--mmproj FILE] [--socket PATH] [--config FILE]\n"
		"            [--threads N] [--cpus LIST] [--ctx N] [--max-seqs N] [--kv-type T]\n"
		"            [--kv-mem SIZE|N%%] [--max-queue N] [--prefill-chunk N]\n"
		"            [--prefill-step-pct N]\n"
		"            [--client-max-seqs N] [--deadline-ms N] [--prefix-cache BOOL]\n"
		"            [--vision-cache SIZE|N%%] [--client-kv-pages N]\n"
		"            [--cpu-mem SIZE|N%%] [--gpu-mem SIZE] [--sim-device-bw BW]\n"
		"            [--precision P] [--pidfile FILE] [--log-file FILE] [--log-level N]\n"
		"            [--cache-dir DIR] [--foreground] [--demo] [--dump-config]\n\n"
		"Settings come from qvl.conf (default %s/qvl/qvl.conf when it exists);\n"
		"flags win. qvl.conf keys:\n",
		QVLD_SYSCONFDIR);
	for (int i = 0; qvld_opt_name(i); i++)
		fprintf(f, "  %-14s %s\n", qvld_opt_name(i), qvld_opt_help(i));
	fprintf(f, "\nSee qvld(8) and qvl.conf(5).\n");
}

/* Returns 0 to continue, 1 error, 2 usage, -1 done (help/version/dump). */
static int settings(int argc, char **argv, struct qvld_opts *o)
{
	struct qvl_err err = {{0}};
	const char *conf = NULL;
	bool dump = false;
	int c, idx, rc;

	if (qvld_opts_defaults(o) < 0) {
		fprintf(stderr, "qvld: out of memory\n");
		return 1;
	}
	/* pass 1: --config, --help, --version, --dump-config */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		if (c == 'c')
			conf = optarg;
		else if (c == O_HELP) {
			usage(stdout);
			return -1;
		} else if (c == O_VERSION) {
			printf("qvld %s\n", PACKAGE_VERSION);
			return -1;
		} else if (c == O_DUMP) {
			dump = true;
		} else if (c == '?') {
			fprintf(stderr, "qvld: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qvld: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!conf)
		conf = getenv("QVL_CONF");
	if (conf && *conf) {
		rc = qvld_conf_load(o, conf, &err);
		if (rc < 0) {
			fprintf(stderr, "qvld: %s\n", err.msg);
			return 1;
		}
		o->config = strdup(conf);
	} else {
		const char *dflt = QVLD_SYSCONFDIR "/qvl/qvl.conf";
		rc = qvld_conf_load(o, dflt, &err);
		if (rc < 0 && rc != -ENOENT) {
			fprintf(stderr, "qvld: %s\n", err.msg);
			return 1;
		}
		if (rc == 0)
			o->config = strdup(dflt);
	}
	/* pass 2: flags override the file */
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		char key[32], where[48];
		const char *val = optarg;
		if (c == 'c' || c == O_HELP || c == O_VERSION || c == O_DUMP)
			continue;
		snprintf(key, sizeof(key), "%s", longopts[idx].name);
		for (char *p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		snprintf(where, sizeof(where), "--%s", longopts[idx].name);
		if (longopts[idx].has_arg == no_argument)
			val = "true";
		if (qvld_opt_set(o, key, val, where, &err) < 0) {
			fprintf(stderr, "qvld: %s\n", err.msg);
			return 2;
		}
	}
	if (dump) {
		qvld_opts_dump(o, stdout);
		return -1;
	}
	return 0;
}

/* The tiered pool's placement, once at load (qvlctl tiers has it live). */
static void log_tiers(struct tier_pool *t)
{
	char buf[1024], *p;
	size_t n = tier_json(t, buf, sizeof(buf));

	/* the head of the JSON has the budgets, the counts and the device's
	 * name (a simulation, and it says so); the per-shard placement is
	 * for qvlctl tiers */
	if ((p = strstr(buf, ",\"placement\"")))
		*p = 0;
	log_info("tiers: %s%s", buf, n && p ? "}" : "");
}

static size_t tiers_json(void *ctx, char *buf, size_t cap)
{
	return tier_json(ctx, buf, cap);
}

/* The vision tower's state for `qvlctl status`: none (a text-only model),
 * resident (read at open), or the late read's: waiting (not started),
 * reading, ready, failed (with the error naming the shard). */
static size_t vision_json(void *ctx, char *buf, size_t cap)
{
	const struct qvl_model *m = ctx;
	struct json_out o = {buf, cap, 0};
	struct qvl_late_status ls;
	const char *state;

	memset(&ls, 0, sizeof(ls));
	if (!m->config.vision.present)
		state = "none";
	else if (!qvl_model_late_status(m, &ls))
		state = "resident";
	else if (!ls.started)
		state = "waiting";
	else if (ls.pending)
		state = "reading";
	else
		state = ls.rc < 0 ? "failed" : "ready";
	json_put(&o, "{\"state\":\"%s\"", state);
	if (ls.shards)
		json_put(&o, ",\"late_shards\":%u,\"late_bytes\":%llu,\"read_s\":%.3f", ls.shards,
			 (unsigned long long)ls.bytes, ls.seconds);
	if (ls.rc < 0) {
		json_put(&o, ",\"error\":");
		json_put_str(&o, ls.msg);
	}
	json_put(&o, "}");
	return json_finish(&o);
}

struct daemon {
	struct qvld_opts o;
	struct qvl_model *m;
	struct tier_pool *tiers; /* a .qvl opened with budgets (offload/), or NULL */
	struct qvl_engine *e;
	struct qvl_tokenizer *tok;
	struct qvld_stats *stats;
	struct sched *sched;
	struct shm_poller *poller;
	struct qvld_placement pl;
	pthread_t poller_th;
	bool poller_started;
	bool late_pending; /* the vision tower's late read not reported yet */
	bool fill_pending; /* the streamed start's resident fill not reported yet */
	int lock_fd, listen_fd, shutdown_fd, sig_fd, timer_fd, ep;
	char *model_path;
};

/* One short greedy generation: the weights are readable, the kernels work
 * on this CPU, the logits are finite. */
static int self_check(struct daemon *d, struct qvl_err *err)
{
	static const int32_t ids[] = {1, 2, 3};
	struct gen_prompt p = {.ids = ids, .n_ids = 3};
	struct gen_params gp = {.max_tokens = 1, .n_ctx = 8, .ignore_eos = true, .logprobs = true};
	struct gen_session *g;
	struct gen_out out;
	int rc;

	qvl_sample_defaults(&gp.sp, NULL);
	gp.sp.greedy = true;
	rc = gen_create(&g, d->e, NULL, &p, &gp, err);
	if (rc < 0)
		return rc;
	rc = gen_step(g, &out, err);
	if (rc == 0 && (!out.has_id || !isfinite(out.logprob)))
		rc = qvl_errf(err, -EBADMSG, "self-check: the first logits are not finite");
	gen_destroy(g);
	return rc;
}

static void *poller_main(void *arg)
{
	struct daemon *d = arg;
	if (qvld_pin_self(d->pl.poller_pu) < 0)
		log_warn("poller thread: cannot bind to PU %d", d->pl.poller_pu);
	int rc = shm_poller_run(d->poller);
	if (rc < 0)
		log_err("poller stopped: %s", qvl_strerror(rc));
	return NULL;
}

/* The tokenizer loaded on a thread of its own (start()). */
struct tok_job {
	pthread_t th;
	const struct qvl_model *m;
	struct qvl_tokenizer *tok; /* NULL: none (err says why) */
	struct qvl_err err;
	double seconds;
};

static void *tok_main(void *arg)
{
	struct tok_job *j = arg;
	double t0 = qvl_now();

	if (qvl_tok_load(&j->tok, j->m, &j->err) < 0)
		j->tok = NULL;
	j->seconds = qvl_now() - t0;
	return NULL;
}

/* More compute threads than CPUs this process may run on (taskset, a
 * cgroup's cpuset) only take turns on them, and every pass's barrier then
 * waits for a descheduled thread: clamped as qvlctl does (pool.h
 * qvl_threads_fit). The default (0: one per physical core with an allowed
 * CPU) is within it; --cpus is checked against the mask by the pool. */
static void clamp_threads(struct daemon *d)
{
	char why[192];

	if (d->o.cpus)
		return;
	d->o.threads = qvl_threads_fit((int)d->o.threads, why, sizeof(why));
	if (why[0])
		log_warn("%s", why);
}

static int start(struct daemon *d, struct qvl_err *err)
{
	struct qvl_engine_opts eo;
	int stale, rc;

	clamp_threads(d);
	/* a daemon serves many tokens: its weights are worth the copy into
	 * huge pages at start (engine.h) */
	eo = (struct qvl_engine_opts){
	    .threads = (int)d->o.threads, .cpus = d->o.cpus, .copy_weights = true};

	rc = qvld_socket_claim(d->o.socket, &d->lock_fd, &stale, err);
	if (rc < 0)
		return rc;
	if (stale)
		log_warn("%s: replaced a stale socket (nobody was listening)", d->o.socket);
	if (!d->o.model) {
		if (!d->o.demo)
			return qvl_errf(err, -EINVAL,
					"no model: give --model, model = in qvl.conf, or --demo");
		rc = qvld_demo_model(d->o.cache_dir, &d->model_path, err);
		if (rc < 0)
			return rc;
	} else if (!(d->model_path = strdup(d->o.model))) {
		return -ENOMEM;
	}
	qvld_notify("STATUS=loading the model");
	/* both checked against their choices when set (options.c) */
	run_parse_kv(d->o.kv_type, &eo.kv_dtype);
	uint64_t vc = 0;
	if (d->o.vision_cache && strcmp(d->o.vision_cache, "0") &&
	    qvld_parse_mem(d->o.vision_cache, &vc) == 0)
		eo.vision_cache_bytes = (size_t)vc;
	/* the KV budget: --kv-mem, else room for max_seqs full contexts */
	uint64_t kv_bytes = 0;
	if (d->o.kv_mem && qvld_parse_mem(d->o.kv_mem, &kv_bytes) == 0)
		eo.kv_bytes = (size_t)kv_bytes;
	else
		eo.kv_pages = (size_t)d->o.max_seqs *
			      (((size_t)d->o.ctx + QVL_KV_PAGE_TOKENS - 1) / QVL_KV_PAGE_TOKENS);
	qvl_precision_parse(d->o.precision, &eo.precision);
	/* the tiered pool's budgets: each was checked when set (options.c) */
	struct tier_opts to = {0};
	if (d->o.cpu_mem)
		qvl_parse_size("cpu_mem", d->o.cpu_mem, true, &to.cpu_mem, NULL);
	if (d->o.gpu_mem)
		qvl_parse_size("gpu_mem", d->o.gpu_mem, false, &to.gpu_mem, NULL);
	if (d->o.sim_device_bw)
		qvl_parse_bw("sim_device_bw", d->o.sim_device_bw, &to.sim_bw, NULL);
	/* a text prompt needs no vision tower: a pack's is read once the
	 * socket is up (QVL_VISION_LATE=0: with the rest, before) */
	to.vision_late = qvl_env_flag("QVL_VISION_LATE", true);
	/* and without budgets, every text layer streams until its resident
	 * copy is read behind the socket (offload/fill.c; QVL_STREAM_START=0:
	 * the whole text model is read before) */
	to.stream_start = qvl_env_flag("QVL_STREAM_START", true);
	double t0 = qvl_now();
	if ((rc = qvl_kernels_init(err)) < 0 ||
	    (rc = tier_model_open(&d->m, &d->tiers, d->model_path, d->o.mmproj, &to, err)) < 0)
		return rc;
	double t_open = qvl_now();
	/* the tokenizer's parse (0.3 s quiet, over a second loaded) beside the
	 * engine's set-up: neither needs the other */
	struct tok_job tj = {.m = d->m};
	bool tok_th = pthread_create(&tj.th, NULL, tok_main, &tj) == 0;
	if (!tok_th)
		tok_main(&tj);
	eo.wsrc = tier_weight_src(d->tiers);
	rc = qvl_engine_create(&d->e, d->m, &eo, err);
	double t_engine = qvl_now();
	if (tok_th)
		pthread_join(tj.th, NULL);
	d->tok = tj.tok;
	if (rc < 0)
		return rc;
	if (qvl_env_flag("QVL_LOAD_TRACE", false))
		fprintf(stderr,
			"qvl: qvld: model opened in %.3f s, engine %.3f s, tokenizer %.3f s "
			"(beside it), both done %.3f s after the open\n",
			t_open - t0, t_engine - t_open, tj.seconds, qvl_now() - t_open);
	if (d->tiers)
		log_tiers(d->tiers);
	if (to.stream_start && !to.cpu_mem && !to.gpu_mem && !tier_streamed_start(d->tiers))
		log_info("streamed start: not for this model (a .qvl pack whose layers the engine "
			 "does not repack at load): the text model was read before the socket");
	if (tier_streamed_start(d->tiers))
		log_info("streamed start: the text layers are served from the streaming window "
			 "until their resident copies are read behind the socket (loaded in %.3f "
			 "s)",
			 qvl_now() - t0);
	if (!d->tok)
		log_warn("%s: no tokenizer (%s): only token-id prompts will work", d->model_path,
			 tj.err.msg);
	/* a streamed start's check would read every layer once more before the
	 * socket: the first request checks them (each shard's CRC before
	 * compute reads it, as always) */
	rc = tier_streamed_start(d->tiers) ? 0 : self_check(d, err);
	if (rc < 0)
		return qvl_err_prefix(err, rc, "self-check");
	log_info("loaded %s (%s) in %.3f s, kernels %s, precision %s, KV cache %s", d->model_path,
		 qvl_format_name(d->m->format), qvl_now() - t0, qvl_kern.name,
		 run_precision_desc(eo.precision), qvl_dtype_name(eo.kv_dtype));

	char pool[1024], placement[1500];
	qvld_place((int)d->o.threads, d->o.cpus, &d->pl);
	qvl_pool_describe(qvl_engine_pool(d->e), pool, sizeof(pool));
	snprintf(placement, sizeof(placement),
		 "compute: %s; scheduler: PU %d (thread 0); poller: PU %d (%s)", pool,
		 d->pl.sched_pu, d->pl.poller_pu, d->pl.poller_why);
	log_info("placement: %s", placement);
	if ((rc = qvld_stats_create(&d->stats)) < 0)
		return qvl_errf(err, rc, "out of memory");
	if (d->tiers)
		qvld_stats_set_section(d->stats, QVLD_SECTION_TIERS, tiers_json, d->tiers);
	qvld_stats_set_section(d->stats, QVLD_SECTION_VISION, vision_json, d->m);
	qvld_stats_set_info(d->stats, d->model_path, d->o.socket, placement,
			    qvl_engine_threads(d->e), (int)d->o.ctx, (int)d->o.max_seqs);

	/* (not for a streamed start: its window goes once the layers are
	 * resident; until then a cut costs a restart of the window's reads) */
	if (eo.wsrc && !tier_streamed_start(d->tiers) && d->o.prefill_step_pct) {
		/* the streaming window reads layers in the cyclic order of whole
		 * passes; a prefill cut by layers between other steps would make
		 * it restart at every cut */
		log_info("tiered pool: prefill_step_pct %lld -> 0 (layer-cut prefill off while "
			 "layers stream)", (long long)d->o.prefill_step_pct);
		d->o.prefill_step_pct = 0;
	}
	/* images encoded a few tower blocks per step, as long prompts are
	 * prefilled a few layers per step; 0: inside job_start(), as before */
	struct job_env env = {.e = d->e,
			      .tok = d->tok,
			      .n_ctx = (int)d->o.ctx,
			      .stats = d->stats,
			      .defer_encode = d->o.prefill_step_pct > 0};
	struct sched_opts so = {.max_seqs = (int)d->o.max_seqs,
				.max_queue = (int)d->o.max_queue,
				.prefill_chunk = (int)d->o.prefill_chunk,
				.prefill_step = (double)d->o.prefill_step_pct / 100.0,
				.client_max_seqs = (int)d->o.client_max_seqs,
				.client_kv_pages = d->o.client_kv_pages,
				.deadline_s = (double)d->o.deadline_ms / 1000.0,
				.prefix_cache = d->o.prefix_cache};
	if ((rc = sched_create(&d->sched, &env, &so, err)) < 0 ||
	    (rc = sched_start(d->sched, d->pl.sched_pu, err)) < 0)
		return rc;

	static struct qvld_serve sv;
	static struct shm_ops ops;
	static uid_t uids[QVLD_MAX_IDS];
	static gid_t gids[QVLD_MAX_IDS];
	struct shm_policy pol = {0};
	for (int i = 0; i < d->o.n_allow_uids; i++)
		uids[i] = d->o.allow_uids[i];
	for (int i = 0; i < d->o.n_allow_gids; i++)
		gids[i] = d->o.allow_gids[i];
	pol.allow_uids = uids;
	pol.n_allow_uids = (size_t)d->o.n_allow_uids;
	pol.allow_gids = gids;
	pol.n_allow_gids = (size_t)d->o.n_allow_gids;
	pol.allow_any = d->o.allow_any;
	pol.sq_entries = (uint32_t)d->o.sq_entries;
	pol.arena_size = (uint64_t)d->o.arena_mb << 20;
	pol.max_arena_size = (uint64_t)d->o.max_arena_mb << 20;
	pol.max_inflight = (uint32_t)d->o.max_inflight;
	pol.spin_us = (uint32_t)d->o.spin_us;
	pol.max_clients = (uint32_t)d->o.max_clients;
	sv = (struct qvld_serve){
	    .sched = d->sched, .stats = d->stats, .tok = d->tok, .shutdown_fd = d->shutdown_fd};
	qvld_serve_ops(&sv, &ops);
	if ((rc = shm_listen(d->o.socket, (unsigned)d->o.socket_mode, &d->listen_fd, err)) < 0 ||
	    (rc = shm_poller_create(d->listen_fd, &pol, &ops, &d->poller, err)) < 0)
		return rc;
	rc = pthread_create(&d->poller_th, NULL, poller_main, d);
	if (rc)
		return qvl_errf(err, -rc, "poller thread: %s", strerror(rc));
	d->poller_started = true;
	if (tier_streamed_start(d->tiers)) {
		/* the vision tower follows the text layers (fill.c) */
		if ((rc = tier_fill_start(d->tiers, err)) < 0)
			return rc;
		d->fill_pending = true;
		log_info("reading the text layers' resident copies behind the socket");
	}
	struct qvl_late_status ls;
	if (tier_streamed_start(d->tiers) && qvl_model_late_status(d->m, &ls)) {
		d->late_pending = true;
	} else if (qvl_model_late_status(d->m, &ls)) {
		if ((rc = qvl_model_load_late(d->m, err)) < 0)
			return rc;
		d->late_pending = true;
		log_info("reading the vision tower (%u shards, %.0f MB) behind the socket: image "
			 "requests wait for it",
			 ls.shards, (double)ls.bytes / 1e6);
	}
	return 0;
}

/* Once, when the streamed start's resident fill has ended: how it went. */
static void check_fill(struct daemon *d)
{
	struct tier_fill_status fs;

	if (!d->fill_pending || !tier_fill_status(d->tiers, &fs) || fs.pending)
		return;
	d->fill_pending = false;
	if (fs.rc < 0)
		log_err("resident fill stopped after %u of %u layers: %s: requests that reach "
			"that layer fail",
			fs.filled, fs.layers, fs.msg);
	else
		log_info("resident fill: %u layers (%.1f MB, CRC checked) in %.3f s (read %.3f "
			 "s, memory %.3f s, first waiting %.3f s for the first pass): every "
			 "layer computes from its resident copy now",
			 fs.filled, (double)fs.bytes / 1e6, fs.seconds, fs.read_seconds,
			 fs.mem_seconds, fs.wait_seconds);
}

/* Once, when the vision tower's late read has ended: how it went. */
static void check_late(struct daemon *d)
{
	struct qvl_late_status ls;

	if (!d->late_pending || !qvl_model_late_status(d->m, &ls) || !ls.started || ls.pending)
		return;
	d->late_pending = false;
	if (ls.rc < 0)
		log_err("vision tower: %s: image requests fail, text requests go on", ls.msg);
	else
		log_info("vision tower read in %.3f s (%.1f MB, CRC checked; read %.3f s, memory "
			 "%.3f s)",
			 ls.seconds, (double)ls.bytes / 1e6, ls.read_seconds, ls.fill_seconds);
}

static int setup_fds(struct daemon *d, struct qvl_err *err)
{
	sigset_t set;
	struct itimerspec its = {{1, 0}, {1, 0}};

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	/* before any thread exists, so every thread inherits the mask */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGPIPE);
	d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	d->shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	if (d->sig_fd < 0 || d->shutdown_fd < 0 || d->timer_fd < 0 || d->ep < 0)
		return qvl_errf(err, -errno, "signalfd/eventfd/timerfd/epoll: %s", strerror(errno));
	timerfd_settime(d->timer_fd, 0, &its, NULL);
	int fds[] = {d->sig_fd, d->shutdown_fd, d->timer_fd};
	for (int i = 0; i < 3; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
		if (epoll_ctl(d->ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			return qvl_errf(err, -errno, "epoll_ctl: %s", strerror(errno));
	}
	return 0;
}

static void main_loop(struct daemon *d)
{
	for (;;) {
		struct epoll_event ev[4];
		int n = epoll_wait(d->ep, ev, 4, -1);
		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			if (fd == d->sig_fd) {
				struct signalfd_siginfo si;
				if (read(fd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					int rc = qvld_log_reopen();
					log_info("SIGHUP: log reopened%s",
						 rc < 0 ? " (failed)" : "");
					continue;
				}
				log_info("signal %d: draining", (int)si.ssi_signo);
				return;
			} else if (fd == d->shutdown_fd) {
				uint64_t v;
				if (read(fd, &v, sizeof(v)) == sizeof(v))
					return;
			} else if (fd == d->timer_fd) {
				uint64_t v;
				int q, a;
				if (read(fd, &v, sizeof(v)) < 0)
					continue;
				check_fill(d);
				check_late(d);
				sched_counts(d->sched, &q, &a);
				qvld_stats_set_gauges(d->stats, q, a);
			}
		}
	}
}

static void stop(struct daemon *d)
{
	if (d->sched)
		sched_drain(d->sched); /* new requests get -ESHUTDOWN meanwhile */
	if (d->poller_started) {
		shm_poller_stop(d->poller);
		pthread_join(d->poller_th, NULL);
	}
	if (d->poller)
		shm_poller_destroy(d->poller);
	if (d->listen_fd >= 0)
		unlink(d->o.socket);
	sched_destroy(d->sched);
	qvld_stats_destroy(d->stats);
	qvl_tok_free(d->tok);
	qvl_engine_destroy(d->e);
	tier_close(d->tiers); /* before the model it points into */
	if (d->m)
		qvl_model_close(d->m);
}

int main(int argc, char **argv)
{
	struct daemon d = {.lock_fd = -1, .listen_fd = -1, .shutdown_fd = -1};
	struct qvl_err err = {{0}};
	int rc;

	rc = settings(argc, argv, &d.o);
	if (rc) {
		qvld_opts_free(&d.o);
		return rc < 0 ? 0 : rc;
	}
	rc = qvld_log_open(d.o.log_file, (int)d.o.log_level);
	if (rc < 0) {
		fprintf(stderr, "qvld: log_file %s: %s\n", d.o.log_file, strerror(-rc));
		return 1;
	}
	if (!d.o.foreground && !d.o.pidfile) {
		/* daemonized: a pid file beside the socket unless one is set */
		char pf[4200], *slash;
		snprintf(pf, sizeof(pf), "%s", d.o.socket);
		slash = strrchr(pf, '/');
		snprintf(slash ? slash + 1 : pf, sizeof(pf) - (size_t)(slash ? slash + 1 - pf : 0),
			 "qvld.pid");
		d.o.pidfile = strdup(pf);
	}
	if (!d.o.foreground && (rc = qvld_daemonize(&err)) < 0) {
		fprintf(stderr, "qvld: %s\n", err.msg);
		return 1;
	}
	if ((rc = setup_fds(&d, &err)) == 0)
		rc = start(&d, &err);
	if (rc == 0 && d.o.pidfile)
		rc = qvld_pidfile_write(d.o.pidfile, &err);
	if (rc < 0) {
		const char *msg = err.msg[0] ? err.msg : qvl_strerror(rc);
		log_err("%s", msg);
		/* the log already went to stderr when no log file is set */
		if (d.o.foreground && !qvld_log_on_stderr())
			fprintf(stderr, "qvld: %s\n", msg);
		qvld_daemon_ready(rc, msg);
		stop(&d);
		free(d.model_path);
		qvld_opts_free(&d.o);
		return 1;
	}
	log_info("serving %s on %s (pid %d)", d.model_path, d.o.socket, (int)getpid());
	qvld_notify("READY=1\nSTATUS=serving");
	qvld_daemon_ready(0, NULL);
	main_loop(&d);
	qvld_notify("STOPPING=1\nSTATUS=draining");
	stop(&d);
	if (d.o.pidfile)
		unlink(d.o.pidfile);
	log_info("stopped");
	free(d.model_path);
	qvld_opts_free(&d.o);
	qvld_log_close();
	return 0;
}
