/* shm_ops for qvld (see serve.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/sched.h"
#include "daemon/serve.h"
#include "daemon/stats.h"
#include "tokenizer.h"

#define JSON_CAP (64 << 10)

static int reply_json(struct qvld_serve *sv, struct shm_request *req, bool stats)
{
	char *buf = malloc(JSON_CAP);
	struct qvl_cqe c = {0};
	uint64_t asize;
	uint8_t *arena = shm_request_arena(req, &asize);

	if (!buf)
		return -ENOMEM;
	size_t n = stats ? qvld_stats_json(sv->stats, buf, JSON_CAP)
			 : qvld_status_json(sv->stats, buf, JSON_CAP);
	c.text_len = (uint32_t)n;
	if (n > req->out_len)
		c.res = -ENOBUFS; /* text_len says how much room it needs */
	else
		memcpy(arena + req->out_off, buf, n);
	free(buf);
	shm_complete(req, &c);
	return 0;
}

/* VOCAB: every token's bytes, laid out as qvl.h says. The region is only
 * written, never read back. */
static int reply_vocab(struct qvld_serve *sv, struct shm_request *req)
{
	struct qvl_cqe c = {0};
	uint64_t asize, need, bytes = 0;
	uint8_t *out = shm_request_arena(req, &asize) + req->out_off;
	uint32_t n = sv->tok ? (uint32_t)qvl_tok_n_vocab(sv->tok) : 0;
	size_t len;

	for (uint32_t i = 0; i < n; i++)
		bytes += qvl_tok_piece(sv->tok, (int32_t)i, &len) ? len : 0;
	need = 4 + 4ull * n + bytes; /* n < 2^31, pieces short: no overflow */
	if (!sv->tok) {
		c.res = -ENOENT;
	} else if (need > req->out_len || bytes > UINT32_MAX) {
		c.res = -ENOBUFS; /* text_len says how much room it needs */
		c.text_len = need > UINT32_MAX ? UINT32_MAX : (uint32_t)need;
	} else {
		uint8_t *b = out + 4 + 4ull * n;
		uint32_t end = 0;
		memcpy(out, &n, 4);
		for (uint32_t i = 0; i < n; i++) {
			const char *p = qvl_tok_piece(sv->tok, (int32_t)i, &len);
			if (p) {
				memcpy(b + end, p, len);
				end += (uint32_t)len;
			}
			memcpy(out + 4 + 4ull * i, &end, 4);
		}
		c.text_len = end;
		c.n_tokens = n;
	}
	shm_complete(req, &c);
	return 0;
}

static int on_submit(void *ctx, struct shm_request *req)
{
	struct qvld_serve *sv = ctx;
	struct qvl_cqe c = {0};
	uint64_t one = 1;

	qvld_stats_submit(sv->stats, shm_client_id(req->client), req->opcode);
	switch (req->opcode) {
	case QVL_OP_GENERATE:
	case QVL_OP_EMBED_IMAGE:
	case QVL_OP_TOKENIZE: /* work that grows with the input: the scheduler thread's */
		return sched_submit(sv->sched, req);
	case QVL_OP_CANCEL:
		c.res = sched_cancel(sv->sched, req->client, req->arg);
		shm_complete(req, &c);
		return 0;
	case QVL_OP_STATS:
		return reply_json(sv, req, true);
	case QVL_OP_STATUS:
		return reply_json(sv, req, false);
	case QVL_OP_VOCAB:
		return reply_vocab(sv, req);
	case QVL_OP_SHUTDOWN:
		log_info("client %u asked for shutdown", shm_client_id(req->client));
		if (write(sv->shutdown_fd, &one, sizeof(one)) < 0)
			return -errno;
		shm_complete(req, &c);
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static void on_connected(void *ctx, struct shm_client *cl)
{
	struct qvld_serve *sv = ctx;
	pid_t pid;
	uid_t uid;
	gid_t gid;

	shm_client_cred(cl, &pid, &uid, &gid);
	qvld_stats_client(sv->stats, shm_client_id(cl), pid, uid, 1);
	log_info("client %u connected (pid %d, uid %u)", shm_client_id(cl), (int)pid,
		 (unsigned)uid);
}

static void on_disconnected(void *ctx, struct shm_client *cl, int why)
{
	struct qvld_serve *sv = ctx;

	sched_client_gone(sv->sched, cl);
	qvld_stats_client(sv->stats, shm_client_id(cl), 0, 0, 0);
	log_info("client %u disconnected (%s)", shm_client_id(cl),
		 why ? qvl_strerror(why) : "end of file");
}

static void on_refused(void *ctx, const struct shm_refusal *r)
{
	struct qvld_serve *sv = ctx;

	qvld_stats_refused(sv->stats);
	log_warn("refused a connection from pid %d uid %u: %s", (int)r->pid, (unsigned)r->uid,
		 r->msg[0] ? r->msg : qvl_strerror(r->code));
}

void qvld_serve_ops(struct qvld_serve *sv, struct shm_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->ctx = sv;
	ops->submit = on_submit;
	ops->connected = on_connected;
	ops->disconnected = on_disconnected;
	ops->refused = on_refused;
}
