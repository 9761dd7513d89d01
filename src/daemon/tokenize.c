/* QVL_OP_TOKENIZE inside qvld: the text parts, concatenated, as ids
 * (special tokens parsed with QVL_GEN_RAW). Its cost grows with the text,
 * which may fill the client's arena, so it runs on the scheduler thread as
 * one job that finishes in its start step: the poller keeps serving every
 * other client meanwhile. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/job.h"
#include "daemon/stats.h"
#include "tokenizer.h"
#include "util.h"

int job_tokenize(struct job *j, const struct job_env *env)
{
	struct shm_request *req = j->req;
	struct qvl_err err = {{0}};
	struct qvl_cqe c = {0};
	uint64_t asize;
	uint8_t *arena = shm_request_arena(req, &asize);
	char *text = NULL;
	size_t len = 0, n = 0;
	int32_t *ids = NULL;
	int rc = env->tok ? 0 : -EOPNOTSUPP;

	for (uint32_t i = 0; i < req->gen.n_parts && rc == 0; i++) {
		const struct shm_part *p = &req->parts[i];
		if (p->kind != QVL_PART_USER && p->kind != QVL_PART_SYSTEM &&
		    p->kind != QVL_PART_ASSISTANT) {
			rc = qvl_errf(&err, -EINVAL, "part %u: TOKENIZE takes text parts only", i);
			break;
		}
		char *t = realloc(text, len + p->len + 1);
		if (!t) {
			rc = -ENOMEM;
			break;
		}
		text = t;
		memcpy(text + len, arena + p->off, p->len); /* read once */
		len += p->len;
	}
	if (rc == 0)
		rc = qvl_tok_encode(env->tok, text ? text : "", len,
				    (req->gen.flags & QVL_GEN_RAW) != 0, &ids, &n, &err);
	if (rc == 0) {
		c.n_tokens = (uint32_t)n;
		if (n * 4 > req->out_len)
			c.res = -ENOBUFS; /* n_tokens says how much room it needs */
		else
			memcpy(arena + req->out_off, ids, n * 4);
	} else {
		c.res = rc;
		qvld_log_request_error(env->stats, shm_client_id(req->client), req->user_data, rc,
				       err.msg);
	}
	c.queue_ns = (uint64_t)((j->t_start - j->t_submit) * 1e9);
	qvld_stats_done(env->stats, shm_client_id(req->client), c.res, 0, 0,
			qvl_now() - j->t_submit, 0);
	shm_complete(req, &c);
	j->req = NULL;
	free(text);
	free(ids);
	return 1;
}
