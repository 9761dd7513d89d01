/* qvld's counters (see stats.h). Latency percentiles come from the last
 * LAT_N requests (a ring), sorted on demand: STATS is rare, requests are not. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/json_out.h"
#include "daemon/log.h"
#include "daemon/stats.h"
#include "kvcache.h"
#include "multimodal.h"
#include "util.h"

#define LAT_N	    1024
#define MAX_CLIENTS 256
#define N_ERR	    8

struct client_stats {
	uint32_t id;
	pid_t pid;
	uid_t uid;
	bool connected;
	uint64_t requests, tokens, errors;
};

struct qvld_stats {
	pthread_mutex_t mu;
	double t_start;
	uint64_t requests, completed, failed, refused, prompt_tokens, gen_tokens;
	double decode_s;
	uint64_t by_op[8];
	struct {
		int code;
		uint64_t n;
	} errs[N_ERR];
	double lat[LAT_N];
	uint64_t n_lat;
	int queued, active;
	/* batched steps: count, sequences and rows summed, largest batch */
	uint64_t steps, step_seqs, step_rows;
	int batch_max;
	double step_s;
	/* the KV pool, as of the last step */
	uint64_t preemptions, prefix_hits, prefix_tokens, kv_used, kv_total, kv_cached, evictions;
	uint64_t split_parts;  /* steps that ran layers of a long prefill (sched_split.c) */
	uint64_t encode_parts; /* steps that ran blocks of an image's encode (sched_encode.c) */
	/* the image cache: tower rows reused / computed, images with rows kept */
	uint64_t vc_hits, vc_misses, vc_entries, vc_towers;
	/* tokens/s over the last window: (gen_tokens at t_win, t_win) */
	uint64_t win_tokens;
	double win_t, rate;
	struct client_stats cl[MAX_CLIENTS];
	int n_cl;
	char model[1024], socket[1024], placement[1024];
	int threads, ctx, max_seqs;
	/* the objects other modules add (qvld_stats_set_section); fn NULL:
	 * none */
	struct {
		size_t (*fn)(void *ctx, char *buf, size_t cap);
		void *ctx;
	} sec[QVLD_SECTIONS];
};

int qvld_stats_create(struct qvld_stats **out)
{
	struct qvld_stats *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->t_start = s->win_t = qvl_now();
	*out = s;
	return 0;
}

void qvld_stats_destroy(struct qvld_stats *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static struct client_stats *client(struct qvld_stats *s, uint32_t id)
{
	for (int i = 0; i < s->n_cl; i++)
		if (s->cl[i].id == id)
			return &s->cl[i];
	if (s->n_cl == MAX_CLIENTS) {
		/* forget the oldest disconnected client */
		for (int i = 0; i < s->n_cl; i++)
			if (!s->cl[i].connected) {
				memmove(&s->cl[i], &s->cl[i + 1],
					(size_t)(s->n_cl - i - 1) * sizeof(s->cl[0]));
				s->n_cl--;
				break;
			}
		if (s->n_cl == MAX_CLIENTS)
			return NULL;
	}
	memset(&s->cl[s->n_cl], 0, sizeof(s->cl[0]));
	s->cl[s->n_cl].id = id;
	return &s->cl[s->n_cl++];
}

void qvld_stats_client(struct qvld_stats *s, uint32_t id, pid_t pid, uid_t uid, int connected)
{
	pthread_mutex_lock(&s->mu);
	struct client_stats *c = client(s, id);
	if (c) {
		if (connected) {
			c->pid = pid;
			c->uid = uid;
		}
		c->connected = connected;
	}
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_submit(struct qvld_stats *s, uint32_t id, uint8_t opcode)
{
	pthread_mutex_lock(&s->mu);
	s->requests++;
	s->by_op[opcode & 7]++;
	struct client_stats *c = client(s, id);
	if (c)
		c->requests++;
	pthread_mutex_unlock(&s->mu);
}

static void count_error(struct qvld_stats *s, int code)
{
	for (int i = 0; i < N_ERR; i++)
		if (s->errs[i].code == code || s->errs[i].code == 0) {
			s->errs[i].code = code;
			s->errs[i].n++;
			return;
		}
	s->errs[N_ERR - 1].n++; /* the last slot collects the rest */
}

void qvld_stats_done(struct qvld_stats *s, uint32_t id, int res, uint32_t n_prompt, uint32_t n_gen,
		     double latency_s, double decode_s)
{
	pthread_mutex_lock(&s->mu);
	s->completed++;
	s->prompt_tokens += n_prompt;
	s->gen_tokens += n_gen;
	s->decode_s += decode_s;
	s->lat[s->n_lat++ % LAT_N] = latency_s;
	struct client_stats *c = client(s, id);
	if (c)
		c->tokens += n_gen;
	if (res < 0) {
		s->failed++;
		count_error(s, res);
		if (c)
			c->errors++;
	}
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_refused(struct qvld_stats *s)
{
	pthread_mutex_lock(&s->mu);
	s->refused++;
	pthread_mutex_unlock(&s->mu);
}

void qvld_log_request_error(struct qvld_stats *s, uint32_t client, uint64_t user_data, int rc,
			    const char *msg)
{
	(void)s;
	log_warn("client %u request %llu: %s", client, (unsigned long long)user_data,
		 msg && *msg ? msg : qvl_strerror(rc));
}

void qvld_stats_set_gauges(struct qvld_stats *s, int queued, int active)
{
	pthread_mutex_lock(&s->mu);
	s->queued = queued;
	s->active = active;
	double now = qvl_now();
	if (now - s->win_t >= 1.0) {
		s->rate = (double)(s->gen_tokens - s->win_tokens) / (now - s->win_t);
		s->win_tokens = s->gen_tokens;
		s->win_t = now;
	}
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_kv(struct qvld_stats *s, const struct qvl_kv_usage *u, uint64_t preemptions)
{
	pthread_mutex_lock(&s->mu);
	s->preemptions = preemptions;
	s->prefix_hits = u->prefix_hits;
	s->prefix_tokens = u->prefix_tokens_reused;
	s->kv_used = u->pages_used;
	s->kv_total = u->pages_total;
	s->kv_cached = u->pages_cached;
	s->evictions = u->evictions;
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_vision(struct qvld_stats *s, const struct qvl_mm_cache_stats *v)
{
	pthread_mutex_lock(&s->mu);
	s->vc_hits = v->hits;
	s->vc_misses = v->misses;
	s->vc_entries = v->entries;
	s->vc_towers = v->towers_built;
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_split_part(struct qvld_stats *s)
{
	pthread_mutex_lock(&s->mu);
	s->split_parts++;
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_encode_part(struct qvld_stats *s)
{
	pthread_mutex_lock(&s->mu);
	s->encode_parts++;
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_step(struct qvld_stats *s, int batch, size_t rows, double seconds)
{
	pthread_mutex_lock(&s->mu);
	s->steps++;
	s->step_seqs += (uint64_t)batch;
	s->step_rows += rows;
	s->step_s += seconds;
	if (batch > s->batch_max)
		s->batch_max = batch;
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_set_info(struct qvld_stats *s, const char *model, const char *socket,
			 const char *placement, int threads, int ctx, int max_seqs)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->model, sizeof(s->model), "%s", model);
	snprintf(s->socket, sizeof(s->socket), "%s", socket);
	snprintf(s->placement, sizeof(s->placement), "%s", placement);
	s->threads = threads;
	s->ctx = ctx;
	s->max_seqs = max_seqs;
	pthread_mutex_unlock(&s->mu);
}

void qvld_stats_set_section(struct qvld_stats *s, enum qvld_section sec,
			    size_t (*fn)(void *ctx, char *buf, size_t cap), void *ctx)
{
	pthread_mutex_lock(&s->mu);
	s->sec[sec].fn = fn;
	s->sec[sec].ctx = ctx;
	pthread_mutex_unlock(&s->mu);
}

/* ,"name":{...} from section sec's callback, when there is one (called
 * with s->mu held) */
static void put_section(struct json_out *o, const struct qvld_stats *s, enum qvld_section sec)
{
	static const char *const names[QVLD_SECTIONS] = {"tiers", "vision"};

	if (!s->sec[sec].fn || o->n >= o->cap)
		return;
	json_put(o, ",\"%s\":", names[sec]);
	if (o->n < o->cap)
		o->n += s->sec[sec].fn(s->sec[sec].ctx, o->b + o->n, o->cap - o->n);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

size_t qvld_stats_json(struct qvld_stats *s, char *buf, size_t cap)
{
	static const char *ops[8] = {"nop",    "generate", "tokenize", "embed_image",
				     "cancel", "stats",	   "status",   "shutdown"};
	struct json_out o = {buf, cap, 0};
	double lat[LAT_N], p50 = 0, p99 = 0;

	pthread_mutex_lock(&s->mu);
	size_t n = s->n_lat < LAT_N ? (size_t)s->n_lat : LAT_N;
	memcpy(lat, s->lat, n * sizeof(double));
	qsort(lat, n, sizeof(double), cmp_d);
	if (n) {
		p50 = lat[(n - 1) / 2];
		p99 = lat[(n - 1) * 99 / 100];
	}
	json_put(&o,
		 "{\"uptime_s\":%.3f,\"requests\":%llu,\"completed\":%llu,\"failed\":%llu,"
		 "\"refused_connections\":%llu,\"queued\":%d,\"active_sequences\":%d,"
		 "\"prompt_tokens\":%llu,\"generated_tokens\":%llu,\"tokens_per_s\":%.2f,"
		 "\"decode_tokens_per_s\":%.2f,\"latency_p50_s\":%.6f,\"latency_p99_s\":%.6f,"
		 "\"latency_samples\":%zu,",
		 qvl_now() - s->t_start, (unsigned long long)s->requests,
		 (unsigned long long)s->completed, (unsigned long long)s->failed,
		 (unsigned long long)s->refused, s->queued, s->active,
		 (unsigned long long)s->prompt_tokens, (unsigned long long)s->gen_tokens, s->rate,
		 s->decode_s > 0 ? (double)s->gen_tokens / s->decode_s : 0.0, p50, p99, n);
	json_put(&o,
		 "\"steps\":%llu,\"step_rows\":%llu,\"step_s\":%.6f,\"batch_size_max\":%d,"
		 "\"batch_size_mean\":%.3f,\"preemptions\":%llu,\"prefix_hits\":%llu,"
		 "\"prefix_tokens_reused\":%llu,\"kv_pages_used\":%llu,\"kv_pages_total\":%llu,"
		 "\"kv_pages_cached\":%llu,\"kv_evictions\":%llu,\"split_parts\":%llu,"
		 "\"encode_parts\":%llu,\"vision_cache_hits\":%llu,\"vision_cache_misses\":%llu,"
		 "\"vision_cache_entries\":%llu,\"vision_towers_built\":%llu,",
		 (unsigned long long)s->steps, (unsigned long long)s->step_rows, s->step_s,
		 s->batch_max, s->steps ? (double)s->step_seqs / (double)s->steps : 0.0,
		 (unsigned long long)s->preemptions, (unsigned long long)s->prefix_hits,
		 (unsigned long long)s->prefix_tokens, (unsigned long long)s->kv_used,
		 (unsigned long long)s->kv_total, (unsigned long long)s->kv_cached,
		 (unsigned long long)s->evictions, (unsigned long long)s->split_parts,
		 (unsigned long long)s->encode_parts, (unsigned long long)s->vc_hits,
		 (unsigned long long)s->vc_misses, (unsigned long long)s->vc_entries,
		 (unsigned long long)s->vc_towers);
	json_put(&o, "\"by_opcode\":{");
	for (int i = 0; i < 8; i++)
		json_put(&o, "%s\"%s\":%llu", i ? "," : "", ops[i],
			 (unsigned long long)s->by_op[i]);
	json_put(&o, "},\"errors\":{");
	for (int i = 0, k = 0; i < N_ERR; i++)
		if (s->errs[i].n)
			json_put(&o, "%s\"%s\":%llu", k++ ? "," : "",
				 strerrorname_np(-s->errs[i].code)
				     ? strerrorname_np(-s->errs[i].code)
				     : "other",
				 (unsigned long long)s->errs[i].n);
	json_put(&o, "},\"clients\":[");
	for (int i = 0; i < s->n_cl; i++) {
		const struct client_stats *c = &s->cl[i];
		json_put(&o,
			 "%s{\"id\":%u,\"pid\":%d,\"uid\":%u,\"connected\":%s,\"requests\":%llu,"
			 "\"tokens\":%llu,\"errors\":%llu}",
			 i ? "," : "", c->id, (int)c->pid, (unsigned)c->uid,
			 c->connected ? "true" : "false", (unsigned long long)c->requests,
			 (unsigned long long)c->tokens, (unsigned long long)c->errors);
	}
	json_put(&o, "],\"placement\":");
	json_put_str(&o, s->placement);
	put_section(&o, s, QVLD_SECTION_TIERS);
	json_put(&o, "}");
	pthread_mutex_unlock(&s->mu);
	return json_finish(&o);
}

size_t qvld_status_json(struct qvld_stats *s, char *buf, size_t cap)
{
	struct json_out o = {buf, cap, 0};
	int clients = 0;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->n_cl; i++)
		clients += s->cl[i].connected;
	json_put(&o, "{\"version\":\"%s\",\"pid\":%d,\"uptime_s\":%.3f,\"model\":", PACKAGE_VERSION,
		 (int)getpid(), qvl_now() - s->t_start);
	json_put_str(&o, s->model);
	json_put(&o, ",\"socket\":");
	json_put_str(&o, s->socket);
	json_put(&o,
		 ",\"threads\":%d,\"ctx\":%d,\"max_seqs\":%d,\"clients\":%d,\"queued\":%d,"
		 "\"active_sequences\":%d,\"placement\":",
		 s->threads, s->ctx, s->max_seqs, clients, s->queued, s->active);
	json_put_str(&o, s->placement);
	put_section(&o, s, QVLD_SECTION_TIERS);
	put_section(&o, s, QVLD_SECTION_VISION);
	json_put(&o, "}");
	pthread_mutex_unlock(&s->mu);
	return json_finish(&o);
}
