/* qvl-http: libmicrohttpd handlers (see server.h).
 *
 * A request goes through the access handler several times: first with the
 * headers (route, method, API key, Content-Length checked here, so that a
 * refused request never has its body read), then once per piece of body
 * (appended up to --max-body), then with no data: the body is translated
 * and submitted, and the connection suspends until the bridge resumes it
 * with the answer (non-streamed) or the first chunk (streamed: from then on
 * the reader callback drains the job's SSE bytes). */
#include "config.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/respond.h"
#include "http/server.h"
#include "util.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

enum route {
	R_NONE,
	R_CHAT,
	R_COMPLETIONS,
	R_MODELS,
	R_HEALTH,
	R_METRICS,
};

struct server {
	struct MHD_Daemon *d;
	struct bridge *b;
	struct server_opts o;
	char *api_key;
	/* bytes of request bodies held at once, over every connection: one
	 * body is bounded by --max-body, and this bounds them all (touched by
	 * libmicrohttpd's one thread only) */
	size_t buffered, budget;
};

/* Per-request state (MHD's con_cls). */
struct req {
	enum route route;
	char *body;
	size_t n, cap;
	bool too_big, over_budget;
	struct job *job;
};

static MHD_Result_t send_body(struct server *s, struct MHD_Connection *c, int status,
			      const char *ctype, char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	MHD_Result_t ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status == 401)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	bridge_count(s->b, status);
	return ret;
}

static MHD_Result_t send_error(struct server *s, struct MHD_Connection *c, int status,
			       const char *param, const char *msg)
{
	size_t len = 0;
	char *body = respond_error_json(status, param, msg, &len);

	return body ? send_body(s, c, status, "application/json", body, len) : MHD_NO;
}

static enum route route_of(const char *url, const char *method, const char **want)
{
	static const struct {
		const char *url, *method;
		enum route r;
	} t[] = {
	    {"/v1/chat/completions", "POST", R_CHAT}, {"/v1/completions", "POST", R_COMPLETIONS},
	    {"/v1/models", "GET", R_MODELS},	      {"/health", "GET", R_HEALTH},
	    {"/metrics", "GET", R_METRICS},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(url, t[i].url)) {
			*want = t[i].method;
			return strcmp(method, t[i].method) ? R_NONE : t[i].r;
		}
	*want = NULL;
	return R_NONE;
}

/* Constant-time comparison of the bearer token with the key. */
static bool authorized(const struct server *s, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	size_t kl, hl;
	unsigned char diff = 0;

	if (!s->api_key)
		return true;
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	h += 7;
	kl = strlen(s->api_key);
	hl = strlen(h);
	for (size_t i = 0; i < kl; i++)
		diff |= (unsigned char)(s->api_key[i] ^ (i < hl ? h[i] : 0));
	return !diff && hl == kl;
}

/* The first call: everything that can be refused before reading a body. */
static MHD_Result_t first(struct server *s, struct MHD_Connection *c, const char *url,
			  const char *method, void **con_cls)
{
	const char *want, *cl;
	struct req *rq;
	enum route r = route_of(url, method, &want);
	char msg[160];

	if (r == R_NONE && !want) {
		snprintf(msg, sizeof(msg), "no such endpoint: %.100s", url);
		return send_error(s, c, 404, NULL, msg);
	}
	if (r == R_NONE) {
		snprintf(msg, sizeof(msg), "%.100s takes %s, not %.16s", url, want, method);
		return send_error(s, c, 405, NULL, msg);
	}
	if (r != R_HEALTH && !authorized(s, c))
		return send_error(s, c, 401, NULL,
				  "Incorrect API key provided (Authorization: Bearer KEY)");
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
		snprintf(msg, sizeof(msg), "request body of %.24s bytes is over the limit (%zu)",
			 cl, s->o.max_body);
		return send_error(s, c, 413, NULL, msg);
	}
	if (!(rq = calloc(1, sizeof(*rq))))
		return MHD_NO;
	rq->route = r;
	*con_cls = rq;
	return MHD_YES;
}

static void drop_body(struct server *s, struct req *rq)
{
	s->buffered -= rq->cap;
	free(rq->body);
	rq->body = NULL;
	rq->n = rq->cap = 0;
}

static bool append(struct server *s, struct req *rq, const char *data, size_t n)
{
	size_t max = s->o.max_body;

	if (rq->too_big || rq->over_budget)
		return true; /* keep reading and dropping: answered at the end */
	if (n > max - rq->n) {
		rq->too_big = true;
		drop_body(s, rq);
		return true;
	}
	if (rq->cap - rq->n < n + 1) {
		size_t cap = rq->cap ? rq->cap : 4096;
		while (cap - rq->n < n + 1)
			cap = cap > max / 2 ? max + 1 : cap * 2;
		if (cap - rq->cap > s->budget - s->buffered) {
			rq->over_budget = true;
			drop_body(s, rq);
			return true;
		}
		char *p = realloc(rq->body, cap);
		if (!p)
			return false;
		s->buffered += cap - rq->cap;
		rq->body = p;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->n, data, n);
	rq->n += n;
	return true;
}

/* The streamed answer: the job's SSE bytes as the reaper appends them. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct job *j = cls;
	long n = bridge_read(j->bridge, j, buf, max);

	(void)pos;
	return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void reader_free(void *cls)
{
	struct job *j = cls;

	bridge_job_put(j->bridge, j);
}

/* The job has its first CQE: the whole answer, an error, or a stream. */
static MHD_Result_t answer(struct server *s, struct MHD_Connection *c, struct job *j)
{
	struct MHD_Response *r;
	const char *ctype;
	char *body;
	size_t len;
	int status;
	MHD_Result_t ret;

	if (!j->stream || !bridge_stream_ok(s->b, j)) {
		bridge_take(s->b, j, &status, &ctype, &body, &len);
		if (!body)
			return send_error(s, c, 500, NULL, "qvl-http: out of memory");
		return send_body(s, c, status, ctype, body, len);
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, j, reader_free);
	if (!r)
		return MHD_NO;
	bridge_job_get(s->b, j); /* the response's reference */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	bridge_count(s->b, 200);
	return ret;
}

/* The body is complete: translate it and hand it to the bridge. */
static MHD_Result_t submit(struct server *s, struct MHD_Connection *c, struct req *rq)
{
	static const enum job_kind kind[] = {[R_CHAT] = JOB_GENERATE,
					     [R_COMPLETIONS] = JOB_GENERATE,
					     [R_MODELS] = JOB_MODELS,
					     [R_HEALTH] = JOB_HEALTH,
					     [R_METRICS] = JOB_METRICS};
	struct http_limits lim = {.max_image = s->o.max_image};
	struct http_error e = {0};
	struct http_plan *plan = NULL;
	int rc = 0;

	if (rq->over_budget)
		return send_error(
		    s, c, 503, NULL,
		    "qvl-http: too many request bodies being received at once; retry");
	if (rq->too_big) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request body over the limit (%zu bytes)",
			 s->o.max_body);
		return send_error(s, c, 413, NULL, msg);
	}
	if (rq->route == R_CHAT || rq->route == R_COMPLETIONS) {
		if (!(plan = malloc(sizeof(*plan))))
			return send_error(s, c, 500, NULL, "qvl-http: out of memory");
		rc = http_translate(rq->body ? rq->body : "", rq->n,
				    rq->route == R_CHAT ? HTTP_API_CHAT : HTTP_API_COMPLETIONS,
				    &lim, plan, &e);
		drop_body(s, rq);
		if (rc) {
			free(plan);
			return send_error(s, c, e.status, e.param, e.msg);
		}
	}
	double t0 = qvl_now();

	rq->job = bridge_job_new(kind[rq->route], c);
	if (rq->job)
		rq->job->t_start = t0;
	if (!rq->job)
		rc = http_fail(&e, -ENOMEM, 500, NULL, "qvl-http: out of memory");
	else
		rc = bridge_start(s->b, rq->job, plan, &e);
	if (plan) {
		http_plan_free(plan);
		free(plan);
	}
	if (rc) {
		if (rq->job)
			bridge_job_put(s->b, rq->job);
		rq->job = NULL;
		return send_error(s, c, e.status, e.param, e.msg);
	}
	return MHD_YES;
}

static MHD_Result_t access_cb(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct server *s = cls;
	struct req *rq = *con_cls;

	(void)version;
	if (!rq)
		return first(s, c, url, method, con_cls);
	if (*upload_size) {
		if (!append(s, rq, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (!rq->job)
		return submit(s, c, rq);
	/* resumed by the bridge */
	return answer(s, c, rq->job);
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct req *rq = *con_cls;

	(void)c;
	(void)toe;
	if (!rq)
		return;
	if (rq->job) {
		bridge_conn_gone(s->b, rq->job);
		bridge_job_put(s->b, rq->job);
	}
	drop_body(s, rq);
	free(rq);
	*con_cls = NULL;
}

/* Each streamed chunk is a small write that must leave at once: without
 * TCP_NODELAY, Nagle holds it until the client's delayed ACK of the
 * previous one (40 ms on Linux). */
static void conn_cb(void *cls, struct MHD_Connection *c, void **socket_ctx,
		    enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *ci;
	int one = 1;

	(void)cls;
	(void)socket_ctx;
	if (code != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int server_start(const struct server_opts *o, struct bridge *b, struct server **out, uint16_t *port)
{
	struct server *s = calloc(1, sizeof(*s));
	const union MHD_DaemonInfo *di;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->b = b;
	s->o = *o;
	s->budget = o->max_body * 8 > (256u << 20) ? o->max_body * 8 : 256u << 20;
	if (o->addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (o->api_key && !(s->api_key = strdup(o->api_key))) {
		free(s);
		return -ENOMEM;
	}
	s->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, access_cb, s, MHD_OPTION_SOCK_ADDR, o->addr,
	    MHD_OPTION_CONNECTION_LIMIT, o->max_conns, MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s, MHD_OPTION_NOTIFY_CONNECTION, conn_cb, s,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
	if (!s->d) {
		free(s->api_key);
		free(s);
		return -EADDRNOTAVAIL;
	}
	di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	*port = di ? di->port : 0;
	*out = s;
	return 0;
}

void server_quiesce(struct server *s)
{
	MHD_socket fd = MHD_quiesce_daemon(s->d);

	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s->api_key);
	free(s);
}
