/* qvl-http: the ring connection, the reaper thread and the jobs in flight
 * (see bridge.h).
 *
 * Locking: one mutex (b->mu) guards the connection pointer, the job list
 * and every job's mutable fields. libmicrohttpd runs one internal thread,
 * the only caller of MHD_suspend_connection (from the access handler or the
 * reader callback, under b->mu, so that the reaper never sees a job marked
 * suspended whose connection is not). The reaper calls
 * MHD_resume_connection after dropping b->mu: a suspended connection cannot
 * complete, so its job (held by the connection's reference) stays alive
 * until then. */
#include "config.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "http/bridge.h"
#include "http/respond.h"
#include "http/vocab.h"
#include "json.h"
#include "util.h"

#define CANCEL_BIT   (1ull << 63) /* user_data of our CANCEL SQEs */
#define WAIT_NS	     50000000ll	  /* reaper: re-check stop and pending cancels */
#define RETRY_US     200000	  /* reconnect attempts while qvld is away */
#define QUERY_OUT    (64u << 10)
#define HUP_CHECK_S  0.05  /* reaper: poll the waiting sockets for a hang-up */
#define DEFAULT_MAXT 4096u /* max_tokens when neither the request nor qvld says */

struct bridge {
	pthread_mutex_t mu;
	struct qvl *q; /* NULL while qvld is away; set and cleared by the reaper */
	struct job *jobs;
	uint64_t next_ud;
	uint32_t ctx;		 /* qvld's context length (STATUS at connect) */
	struct http_vocab vocab; /* token texts (VOCAB at connect; reaper thread only) */
	bool stop;		 /* set under mu by bridge_destroy */
	bool said_away;		 /* logged that qvld is away (once per outage) */
	pthread_t reaper;
	bool reaper_started;
	char socket[4096];
	bool default_socket;
	uint64_t arena_size;
	/* counters for /metrics */
	uint64_t http[6]; /* by status class: 1xx..5xx, [0] others */
	uint64_t cancels, connects, disconnects, hangups;
	/* the hang-up check (reaper thread only) */
	struct pollfd *pfd;
	struct job **pjob;
	size_t pcap;
	double t_hup;
};

void job_append(struct job *j, const char *s, size_t n)
{
	if (j->out_cap - j->out_n < n) {
		size_t cap = j->out_cap ? j->out_cap : 4096;
		while (cap - j->out_n < n) {
			if (cap > SIZE_MAX / 2) {
				j->oom = true;
				return;
			}
			cap *= 2;
		}
		char *p = realloc(j->out, cap);
		if (!p) {
			j->oom = true;
			return;
		}
		j->out = p;
		j->out_cap = cap;
	}
	memcpy(j->out + j->out_n, s, n);
	j->out_n += n;
}

struct job *bridge_job_new(enum job_kind kind, struct MHD_Connection *conn)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = kind;
	j->conn = conn;
	j->fd = -1;
	j->refs = 1;
	j->created = (long long)time(NULL);
	return j;
}

static void put_locked(struct job *j)
{
	if (--j->refs)
		return;
	free(j->out);
	free(j);
}

void bridge_job_get(struct bridge *b, struct job *j)
{
	pthread_mutex_lock(&b->mu);
	j->refs++;
	pthread_mutex_unlock(&b->mu);
}

void bridge_job_put(struct bridge *b, struct job *j)
{
	pthread_mutex_lock(&b->mu);
	put_locked(j);
	pthread_mutex_unlock(&b->mu);
}

static void unlink_job(struct bridge *b, struct job *j)
{
	for (struct job **p = &b->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	j->next = NULL;
}

/* The ring is done with j: free its arena regions, drop the ring's ref. */
static void ring_done(struct bridge *b, struct job *j)
{
	qvl_release(j->r);
	j->r = NULL;
	j->done = true;
	unlink_job(b, j);
	put_locked(j);
}

/* If j's connection waits and there is something for it, queue it on *rl
 * (resumed by resume_all after the lock is dropped). */
static void wake(struct job *j, struct job **rl)
{
	if (!j->suspended || j->conn_gone)
		return;
	if (!j->done && !(j->stream && j->started && j->out_n > j->out_sent))
		return;
	j->suspended = false;
	j->rnext = *rl;
	*rl = j;
}

static void resume_all(struct job *rl)
{
	while (rl) {
		struct job *n = rl->rnext;
		MHD_resume_connection(rl->conn);
		rl = n;
	}
}

/* Every job in flight fails (qvld went away, or we stop). Locked. */
static void fail_all(struct bridge *b, int status, const char *msg, struct job **rl)
{
	while (b->jobs) {
		struct job *j = b->jobs;
		if (!j->conn_gone)
			respond_fail(j, status, msg);
		j->started = true;
		j->done = true;
		wake(j, rl);
		ring_done(b, j);
	}
}

static void send_cancel(struct bridge *b, struct job *j)
{
	struct qvl_sqe *sqe = b->q ? qvl_sqe_get(b->q) : NULL;

	if (!b->q)
		return;
	if (!sqe) {
		j->cancel_pending = true; /* the reaper retries */
		return;
	}
	sqe->opcode = QVL_OP_CANCEL;
	sqe->arg = j->user_data;
	sqe->user_data = CANCEL_BIT | j->user_data;
	j->cancel_pending = false;
	b->cancels++;
	qvl_submit(b->q);
}

static bool hung_up(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* libmicrohttpd does not watch a suspended connection, so a client that
 * leaves a non-streamed request (or a stream before its first token) would
 * be noticed only when the answer is written: poll their sockets for a
 * hang-up and cancel those in the daemon. The answer to the cancel resumes
 * the connection, whose write then fails and closes it. Reaper, locked. */
static void check_hangups(struct bridge *b)
{
	size_t n = 0;
	double now = qvl_now();

	if (now - b->t_hup < HUP_CHECK_S)
		return;
	b->t_hup = now;
	for (struct job *j = b->jobs; j; j = j->next) {
		if (j->fd < 0 || !j->suspended || j->done || j->conn_gone || j->hung_up ||
		    j->half_closed)
			continue;
		if (n == b->pcap) {
			size_t cap = b->pcap ? 2 * b->pcap : 64;
			struct pollfd *pf = realloc(b->pfd, cap * sizeof(*pf));
			if (pf)
				b->pfd = pf;
			struct job **pj = pf ? realloc(b->pjob, cap * sizeof(*pj)) : NULL;
			if (!pj)
				break; /* the rest waits for the next round */
			b->pjob = pj;
			b->pcap = cap;
		}
		b->pfd[n] = (struct pollfd){.fd = j->fd, .events = POLLRDHUP};
		b->pjob[n++] = j;
	}
	if (!n || poll(b->pfd, n, 0) <= 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (b->pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			struct job *j = b->pjob[i];
			j->hung_up = true;
			b->hangups++;
			send_cancel(b, j);
		}
}

void bridge_conn_gone(struct bridge *b, struct job *j)
{
	pthread_mutex_lock(&b->mu);
	j->conn_gone = true;
	if (!j->done && j->r)
		send_cancel(b, j);
	pthread_mutex_unlock(&b->mu);
}

/* The parts, flags and sampling of plan into r. */
static int build(struct bridge *b, struct qvl_req *r, const struct http_plan *p, bool stream,
		 uint32_t *max_tokens)
{
	uint32_t fl = p->flags;
	int rc = 0;

	for (uint32_t i = 0; !rc && i < p->n_parts; i++) {
		const struct http_part *pt = &p->parts[i];
		switch (pt->kind) {
		case QVL_PART_IMAGE:
			rc = qvl_req_add_image(r, pt->data, pt->len);
			if (!rc && pt->text_at)
				rc = qvl_req_set_image_at(r, pt->text_at);
			break;
		case QVL_PART_STOP:
			rc = qvl_req_add_stop(r, pt->data, pt->len);
			break;
		case QVL_PART_TOKENS:
			rc = qvl_req_add_tokens(r, (const int32_t *)(const void *)pt->data,
						pt->len / 4);
			break;
		default:
			rc = qvl_req_add_text(r, pt->kind, pt->data, pt->len);
			break;
		}
	}
	fl |= stream ? QVL_GEN_STREAM : 0;
	/* these clear MODEL_DEFAULTS: before the flags */
	if (!rc && !(fl & QVL_GEN_MODEL_DEFAULTS))
		rc = qvl_req_set_sampling(r, &p->s);
	if (!rc && p->frequency_penalty != 0)
		rc = qvl_req_set_frequency_penalty(r, p->frequency_penalty);
	if (!rc)
		rc = qvl_req_set_flags(r, fl);
	if (!rc)
		rc = qvl_req_set_top_logprobs(r, p->top_logprobs);
	*max_tokens = p->max_tokens ? p->max_tokens : b->ctx ? b->ctx : DEFAULT_MAXT;
	if (*max_tokens > QVL_MAX_TOKENS)
		*max_tokens = QVL_MAX_TOKENS;
	if (!rc)
		rc = qvl_req_set_max_tokens(r, *max_tokens);
	return rc;
}

static uint8_t opcode_of(enum job_kind k)
{
	return k == JOB_GENERATE  ? QVL_OP_GENERATE
	       : k == JOB_METRICS ? QVL_OP_STATS
				  : QVL_OP_STATUS;
}

static int submit_locked(struct bridge *b, struct job *j, const struct http_plan *plan,
			 struct http_error *e)
{
	struct qvl_req *r = NULL;
	struct qvl_sqe tmp, *sqe;
	uint64_t out = QUERY_OUT;
	uint32_t mt = 0;
	int rc;

	if (b->stop)
		return http_fail(e, -ESHUTDOWN, 503, NULL, "qvl-http is shutting down");
	if (!b->q)
		return http_fail(e, -ENOTCONN, 503, NULL, "qvld is not reachable at %s",
				 b->default_socket ? "its default socket" : b->socket);
	if ((rc = qvl_req_new(b->q, opcode_of(j->kind), &r)) < 0)
		goto fail;
	if (j->kind == JOB_GENERATE) {
		if ((rc = build(b, r, plan, j->stream, &mt)) < 0)
			goto fail;
		/* ids, logprobs, alternatives, then 32 bytes of text per
		 * token: mt <= 2^20, k <= 20, no overflow */
		out =
		    (uint64_t)mt * (4 + 32 + (plan->logprobs ? 4 : 0) + 8ull * plan->top_logprobs) +
		    4096;
	}
	if ((rc = qvl_req_prep(r, &tmp, b->next_ud, out)) < 0)
		goto fail;
	if (!(sqe = qvl_sqe_get(b->q))) {
		qvl_release(r);
		return http_fail(e, -EBUSY, 429, NULL, "qvl-http: the submission ring is full");
	}
	*sqe = tmp;
	if ((rc = qvl_submit(b->q)) < 0)
		goto fail;
	j->r = r;
	j->max_tokens = j->kind == JOB_GENERATE ? mt : 0;
	j->user_data = b->next_ud++;
	j->refs++; /* the ring's */
	j->next = b->jobs;
	b->jobs = j;
	return 0;
fail:
	qvl_release(r);
	if (rc == -ENOMEM || rc == -ENOSPC)
		return http_fail(e, rc, 429, NULL, "qvl-http: the ring's arena is full; retry");
	if (rc == -E2BIG)
		return http_fail(e, rc, 413, NULL, "request: %s", qvl_strerror(rc));
	if (rc == -EINVAL)
		return http_fail(e, rc, 400, NULL, "request: %s", qvl_strerror(rc));
	return http_fail(e, rc, 500, NULL, "qvl-http: submit: %s", qvl_strerror(rc));
}

int bridge_start(struct bridge *b, struct job *j, const struct http_plan *plan,
		 struct http_error *e)
{
	int rc;

	if (j->kind == JOB_GENERATE) {
		j->api = plan->api;
		j->stream = plan->stream;
		j->include_usage = plan->stream && plan->include_usage;
		j->logprobs = plan->logprobs;
		snprintf(j->model, sizeof(j->model), "%s", plan->model);
	}
	j->bridge = b;
	if (j->kind == JOB_GENERATE && j->conn) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(j->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		j->fd = ci ? ci->connect_fd : -1;
		/* a client that sent its request and shut its side at once
		 * (curl --no-keepalive does not, some scripts do) still reads the
		 * answer: only a hang-up that comes later means it left */
		j->half_closed = j->fd >= 0 && hung_up(j->fd);
	}
	pthread_mutex_lock(&b->mu);
	snprintf(j->id, sizeof(j->id), "%s-%llx%llx",
		 j->kind != JOB_GENERATE   ? "q"
		 : j->api == HTTP_API_CHAT ? "chatcmpl"
					   : "cmpl",
		 (unsigned long long)j->created, (unsigned long long)b->next_ud);
	rc = submit_locked(b, j, plan, e);
	j->t_submit = qvl_now();
	if (!rc) {
		j->suspended = true;
		MHD_suspend_connection(j->conn);
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

long bridge_read(struct bridge *b, struct job *j, char *buf, size_t max)
{
	long n = 0;

	pthread_mutex_lock(&b->mu);
	if (j->out_n > j->out_sent) {
		if (!j->t_sent)
			j->t_sent = qvl_now();
		size_t k = j->out_n - j->out_sent < max ? j->out_n - j->out_sent : max;
		memcpy(buf, j->out + j->out_sent, k);
		j->out_sent += k;
		if (j->out_sent == j->out_n)
			j->out_sent = j->out_n = 0;
		n = (long)k;
	} else if (j->done || j->oom) {
		n = -1;
	} else {
		j->suspended = true;
		MHD_suspend_connection(j->conn);
	}
	pthread_mutex_unlock(&b->mu);
	return n;
}

void bridge_take(struct bridge *b, struct job *j, int *status, const char **ctype, char **body,
		 size_t *len)
{
	pthread_mutex_lock(&b->mu);
	*status = j->oom ? 500 : j->status;
	*ctype = j->ctype;
	*body = j->oom ? NULL : j->out;
	*len = j->oom ? 0 : j->out_n;
	if (j->oom)
		free(j->out);
	j->out = NULL;
	j->out_n = j->out_cap = j->out_sent = 0;
	pthread_mutex_unlock(&b->mu);
}

bool bridge_stream_ok(struct bridge *b, struct job *j)
{
	bool ok;

	pthread_mutex_lock(&b->mu);
	ok = j->stream && j->status == 200 && !j->oom;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void bridge_count(struct bridge *b, int status)
{
	pthread_mutex_lock(&b->mu);
	b->http[status >= 100 && status < 600 ? status / 100 : 0]++;
	pthread_mutex_unlock(&b->mu);
}

/* User + system CPU of every thread of this process, exited ones included:
 * what the bridge costs the machine its daemon computes on (bench_http). */
static double own_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The bridge's own lines for /metrics. Locked. */
static void own_metrics(struct bridge *b, char *buf, size_t cap)
{
	size_t n = 0, live = 0;

	for (struct job *j = b->jobs; j; j = j->next)
		live++;
	n += (size_t)snprintf(buf + n, cap - n, "# TYPE qvl_http_responses_total counter\n");
	for (int c = 2; c <= 5 && n < cap; c++)
		n += (size_t)snprintf(buf + n, cap - n,
				      "qvl_http_responses_total{class=\"%dxx\"} %llu\n", c,
				      (unsigned long long)b->http[c]);
	if (n < cap)
		snprintf(buf + n, cap - n,
			 "# TYPE qvl_http_jobs_in_flight gauge\nqvl_http_jobs_in_flight %zu\n"
			 "# TYPE qvl_http_cancels_total counter\nqvl_http_cancels_total %llu\n"
			 "# TYPE qvl_http_hangups_total counter\nqvl_http_hangups_total %llu\n"
			 "# TYPE qvl_http_daemon_connects_total counter\n"
			 "qvl_http_daemon_connects_total %llu\n"
			 "# TYPE qvl_http_cpu_seconds_total counter\n"
			 "qvl_http_cpu_seconds_total %.6f\n",
			 live, (unsigned long long)b->cancels, (unsigned long long)b->hangups,
			 (unsigned long long)b->connects, own_cpu_seconds());
}

static struct job *find(struct bridge *b, uint64_t ud)
{
	for (struct job *j = b->jobs; j; j = j->next)
		if (j->user_data == ud)
			return j;
	return NULL;
}

/* One CQE. Locked. */
static void on_cqe(struct bridge *b, const struct qvl_cqe *c, struct job **rl)
{
	bool final = !(c->flags & QVL_CQE_F_MORE);
	struct job *j;

	if (c->user_data & CANCEL_BIT || !(j = find(b, c->user_data)))
		return;
	if (!j->t_cqe) {
		j->t_cqe = qvl_now();
		j->t_post = (double)c->post_ns * 1e-9;
	}
	if (j->kind == JOB_GENERATE) {
		if (!j->conn_gone)
			respond_generate(j, c, j->r, &b->vocab);
	} else if (final && !j->conn_gone) {
		uint64_t cap;
		const char *o = qvl_req_out(j->r, &cap);
		char *txt = o ? strndup(o, c->text_len < cap ? c->text_len : cap) : NULL;
		char extra[1024];
		own_metrics(b, extra, sizeof(extra));
		if (txt)
			respond_query(j, c, txt, extra);
		else
			respond_fail(j, 500, "qvl-http: out of memory");
		free(txt);
	}
	if (final) {
		j->started = true;
		j->done = true;
	}
	wake(j, rl);
	if (final)
		ring_done(b, j);
}

/* One synchronous query at connect (the reaper's own ring, nothing else
 * in flight): its final CQE, seen, or NULL. */
static const struct qvl_cqe *query(struct qvl *q, struct qvl_req *r, uint64_t out,
				   struct qvl_cqe *c)
{
	struct qvl_sqe *sqe;
	struct qvl_cqe *cq;

	if (!(sqe = qvl_sqe_get(q)) || qvl_req_prep(r, sqe, 1, out) || qvl_submit(q) < 0 ||
	    qvl_wait_cqe(q, &cq, 5000000000ll))
		return NULL;
	*c = *cq;
	qvl_cqe_seen(q);
	return c;
}

/* The token texts for logprobs: without them (an old qvld, no tokenizer)
 * tokens are named by the text of their chunk instead. Reaper thread. */
static void fetch_vocab(struct bridge *b, struct qvl *q)
{
	uint64_t out = 4u << 20, cap;
	struct qvl_req *r = NULL;
	struct qvl_cqe c;

	http_vocab_free(&b->vocab);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (qvl_req_new(q, QVL_OP_VOCAB, &r) || !query(q, r, out, &c)) {
			qvl_release(r);
			return;
		}
		if (c.res == -ENOBUFS && c.text_len > out) {
			out = c.text_len;
			qvl_release(r);
			r = NULL;
			continue;
		}
		const void *o = qvl_req_out(r, &cap);
		int rc = c.res ? c.res : http_vocab_parse(&b->vocab, o, cap, &c);
		if (rc < 0)
			fprintf(stderr, "qvl-http: qvld's token texts: %s\n", qvl_strerror(rc));
		break;
	}
	qvl_release(r);
}

/* Connect, and learn the context length from STATUS. */
static struct qvl *try_connect(struct bridge *b)
{
	struct qvl_opts o = {.arena_size = b->arena_size};
	struct qvl_req *r = NULL;
	const struct qvl_cqe *c;
	struct qvl *q;
	int rc = qvl_connect(b->default_socket ? NULL : b->socket, &o, &q);

	if (rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM) { /* arena refused: its default */
		o.arena_size = 0;
		rc = qvl_connect(b->default_socket ? NULL : b->socket, &o, &q);
	}
	if (rc < 0) {
		if (!b->said_away)
			fprintf(stderr, "qvl-http: qvld at %s: %s (retrying)\n",
				b->default_socket ? "the default socket" : b->socket,
				qvl_strerror(rc));
		b->said_away = true;
		return NULL;
	}
	uint32_t ctx = 0;
	struct qvl_cqe cq;
	if (!qvl_req_new(q, QVL_OP_STATUS, &r) && (c = query(q, r, QUERY_OUT, &cq))) {
		struct qvl_err e;
		struct json_doc d;
		const char *txt = qvl_req_text(r);
		int64_t v = 0;
		if (!c->res && c->text_len < QUERY_OUT &&
		    !json_parse(&d, txt, c->text_len, "status", &e)) {
			if (d.tok[0].type == JSON_OBJECT &&
			    !json_int64(&d, json_get(&d, 0, "ctx"), &v) && v > 0 && v <= INT32_MAX)
				ctx = (uint32_t)v;
			json_free(&d);
		}
	}
	qvl_release(r);
	fetch_vocab(b, q);
	fprintf(stderr, "qvl-http: connected to qvld (context %u, %u token texts)\n", ctx,
		b->vocab.n);
	b->said_away = false;
	pthread_mutex_lock(&b->mu);
	b->ctx = ctx;
	b->connects++;
	b->q = q;
	pthread_mutex_unlock(&b->mu);
	return q;
}

static void *reaper(void *arg)
{
	struct bridge *b = arg;
	struct qvl *q = NULL;

	for (;;) {
		struct job *rl = NULL;
		struct qvl_cqe *c;
		int rc;

		pthread_mutex_lock(&b->mu);
		bool stop = b->stop;
		pthread_mutex_unlock(&b->mu);
		if (stop)
			break;
		if (!q && !(q = try_connect(b))) {
			usleep(RETRY_US);
			continue;
		}
		rc = qvl_wait_cqe(q, &c, WAIT_NS);
		pthread_mutex_lock(&b->mu);
		if (rc == -ETIMEDOUT || rc == -EINTR) {
			for (struct job *j = b->jobs; j; j = j->next)
				if (j->cancel_pending)
					send_cancel(b, j);
			check_hangups(b);
		} else if (rc < 0) {
			fprintf(stderr, "qvl-http: qvld went away: %s\n", qvl_strerror(rc));
			fail_all(b, 503, "qvld went away", &rl);
			b->q = NULL;
			b->disconnects++;
		} else {
			while ((c = qvl_cqe_peek(q))) {
				struct qvl_cqe cq = *c;
				on_cqe(b, &cq, &rl);
				qvl_cqe_seen(q);
			}
			check_hangups(b);
		}
		pthread_mutex_unlock(&b->mu);
		resume_all(rl);
		if (rc < 0 && rc != -ETIMEDOUT && rc != -EINTR) {
			qvl_disconnect(q);
			q = NULL;
		}
	}
	return NULL;
}

int bridge_create(const struct bridge_opts *o, struct bridge **out)
{
	struct bridge *b = calloc(1, sizeof(*b));
	int rc;

	*out = NULL;
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->mu, NULL);
	b->next_ud = 1;
	b->arena_size = o->arena_size;
	b->default_socket = !o->socket;
	snprintf(b->socket, sizeof(b->socket), "%s", o->socket ? o->socket : "");
	if ((rc = -pthread_create(&b->reaper, NULL, reaper, b))) {
		pthread_mutex_destroy(&b->mu);
		free(b);
		return rc;
	}
	b->reaper_started = true;
	*out = b;
	return 0;
}

void bridge_stop(struct bridge *b)
{
	struct job *rl = NULL;

	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_mutex_unlock(&b->mu);
	if (b->reaper_started)
		pthread_join(b->reaper, NULL);
	b->reaper_started = false;
	pthread_mutex_lock(&b->mu);
	for (struct job *j = b->jobs; j; j = j->next)
		send_cancel(b, j);
	fail_all(b, 503, "qvl-http is shutting down", &rl);
	pthread_mutex_unlock(&b->mu);
	resume_all(rl);
}

void bridge_destroy(struct bridge *b)
{
	if (!b)
		return;
	bridge_stop(b);
	if (b->q)
		qvl_disconnect(b->q);
	http_vocab_free(&b->vocab);
	free(b->pfd);
	free(b->pjob);
	pthread_mutex_destroy(&b->mu);
	free(b);
}
