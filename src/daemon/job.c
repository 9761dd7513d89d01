/* A GENERATE request inside qvld (see job.h). The client may rewrite its
 * arena at any moment: every input is copied out exactly once (text, ids,
 * stop strings, image bytes) before anything looks at it, and the output
 * region is only ever written. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/job.h"
#include "daemon/log.h"
#include "daemon/stats.h"
#include "engine.h"
#include "image.h"
#include "model.h"
#include "multimodal.h"
#include "util.h"

/* What job_start copies out of the arena. */
struct job_inputs {
	struct gen_msg msgs[QVL_MAX_PARTS];
	char *texts[QVL_MAX_PARTS];
	int n_msgs, n_texts;
	char *raw;
	int32_t *ids;
	size_t n_ids;
	/* as the client sent them: encoded files copied (decoded later, and
	 * only when the engine's image cache does not know them), RGB rows
	 * copied into images[] */
	struct qvl_mm_src srcs[QVL_MAX_IMAGES];
	struct qvl_image images[QVL_MAX_IMAGES];
	void *files[QVL_MAX_IMAGES];
	char names[QVL_MAX_IMAGES][24];
	uint32_t image_at[QVL_MAX_IMAGES]; /* text_at of each, validated <= its message */
	int n_images;
	char *stops[QVL_MAX_STOPS];
	int n_stops;
};

static void inputs_free(struct job_inputs *in)
{
	for (int i = 0; i < in->n_texts; i++)
		free(in->texts[i]);
	for (int i = 0; i < in->n_images; i++) {
		qvl_image_free(&in->images[i]);
		free(in->files[i]);
	}
	for (int i = 0; i < in->n_stops; i++)
		free(in->stops[i]);
	free(in->raw);
	free(in->ids);
}

static char *copy_text(const uint8_t *src, uint64_t len)
{
	char *s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, src, len);
	s[len] = 0;
	return s;
}

static const char *role_of(uint32_t kind)
{
	return kind == QVL_PART_SYSTEM ? "system" : kind == QVL_PART_USER ? "user" : "assistant";
}

/* The request's shape, checked before anything is copied or decoded. */
static int check_shape(const struct shm_request *req, struct qvl_err *err)
{
	const bool raw = req->gen.flags & QVL_GEN_RAW;
	int pending = 0, texts = 0, ids = 0, images = 0;

	for (uint32_t i = 0; i < req->gen.n_parts; i++) {
		switch (req->parts[i].kind) {
		case QVL_PART_USER:
			pending = 0;
			/* fall through */
		case QVL_PART_SYSTEM:
		case QVL_PART_ASSISTANT:
			texts++;
			break;
		case QVL_PART_TOKENS:
			ids++;
			break;
		case QVL_PART_IMAGE:
		case QVL_PART_IMAGE_RGB:
			images++;
			pending++;
			break;
		}
	}
	if (!raw && pending)
		return qvl_errf(err, -EINVAL, "%d image(s) after the last user message", pending);
	if (ids && (texts || images))
		return qvl_errf(err, -EINVAL, "token ids cannot be mixed with text or images");
	if (!ids && !texts)
		return qvl_errf(err, -EINVAL, "no prompt: the request has no text or token part");
	return 0;
}

static int read_inputs(const struct shm_request *req, struct job_inputs *in, struct qvl_err *err)
{
	uint64_t asize;
	const uint8_t *arena = shm_request_arena(req, &asize);
	const bool raw = req->gen.flags & QVL_GEN_RAW;
	int pending_images = 0, rc;
	size_t raw_len = 0;

	for (uint32_t i = 0; i < req->gen.n_parts; i++) {
		const struct shm_part *p = &req->parts[i];
		const uint8_t *src = arena + p->off; /* validated: inside the arena */

		switch (p->kind) {
		case QVL_PART_SYSTEM:
		case QVL_PART_USER:
		case QVL_PART_ASSISTANT: {
			char *t = copy_text(src, p->len);
			if (!t)
				return qvl_errf(err, -ENOMEM, "out of memory");
			if (strlen(t) != p->len) {
				free(t);
				return qvl_errf(err, -EINVAL, "part %u: NUL byte inside the text",
						i);
			}
			in->texts[in->n_texts++] = t;
			if (raw) {
				char *r = realloc(in->raw, raw_len + p->len + 1);
				if (!r)
					return qvl_errf(err, -ENOMEM, "out of memory");
				memcpy(r + raw_len, t, p->len + 1);
				raw_len += p->len;
				in->raw = r;
				break;
			}
			int n_img = p->kind == QVL_PART_USER ? pending_images : 0;
			const uint32_t *at = in->image_at + in->n_images - n_img;
			for (int k = 0; k < n_img; k++)
				/* the validator bounded it by len; a split
				 * character would not tokenize */
				if (at[k] < p->len && ((unsigned char)t[at[k]] & 0xC0) == 0x80)
					return qvl_errf(err, -EINVAL,
							"part %u: an image's text_at %u is inside "
							"a UTF-8 character",
							i, at[k]);
			in->msgs[in->n_msgs++] = (struct gen_msg){.role = role_of(p->kind),
								  .text = t,
								  .n_images = n_img,
								  .image_at = n_img ? at : NULL};
			if (p->kind == QVL_PART_USER)
				pending_images = 0;
			break;
		}
		case QVL_PART_TOKENS: {
			size_t n = p->len / sizeof(int32_t);
			if (p->len % sizeof(int32_t))
				return qvl_errf(err, -EINVAL,
						"part %u: %llu bytes of ids (not a "
						"multiple of 4)",
						i, (unsigned long long)p->len);
			int32_t *ids = realloc(in->ids, (in->n_ids + n + 1) * sizeof(int32_t));
			if (!ids)
				return qvl_errf(err, -ENOMEM, "out of memory");
			memcpy(ids + in->n_ids, src, n * sizeof(int32_t));
			in->ids = ids;
			in->n_ids += n;
			break;
		}
		case QVL_PART_IMAGE:
		case QVL_PART_IMAGE_RGB: {
			const int k = in->n_images;
			struct qvl_image *im = &in->images[k];
			if (k == (int)QVL_MAX_IMAGES)
				return qvl_errf(err, -E2BIG, "more than %u images", QVL_MAX_IMAGES);
			snprintf(in->names[k], sizeof(in->names[k]), "image %d", k + 1);
			if (p->kind == QVL_PART_IMAGE_RGB) {
				rc = qvl_image_from_rgb(im, src, p->len, (int)p->width,
							(int)p->height, p->stride, NULL, err);
				if (rc < 0)
					return rc;
				in->srcs[k] = (struct qvl_mm_src){
				    .data = im->rgb,
				    .len = (size_t)im->w * (size_t)im->h * 3,
				    .w = im->w,
				    .h = im->h,
				    .name = in->names[k]};
			} else {
				/* a private copy: its hash and a decoder must not
				 * see bytes change under them */
				in->files[k] = malloc(p->len ? p->len : 1);
				if (!in->files[k])
					return qvl_errf(err, -ENOMEM, "out of memory");
				memcpy(in->files[k], src, p->len);
				in->srcs[k] = (struct qvl_mm_src){
				    .data = in->files[k], .len = p->len, .name = in->names[k]};
			}
			in->image_at[in->n_images++] = p->text_at;
			pending_images++;
			break;
		}
		case QVL_PART_STOP:
			if (in->n_stops == (int)QVL_MAX_STOPS)
				return qvl_errf(err, -E2BIG, "more than %u stop strings",
						QVL_MAX_STOPS);
			in->stops[in->n_stops] = copy_text(src, p->len);
			if (!in->stops[in->n_stops])
				return qvl_errf(err, -ENOMEM, "out of memory");
			in->n_stops++;
			/* as for text: a NUL would silently cut the stop string */
			if (strlen(in->stops[in->n_stops - 1]) != p->len)
				return qvl_errf(err, -EINVAL,
						"part %u: NUL byte inside the stop string", i);
			break;
		default:
			return qvl_errf(err, -EINVAL, "part %u: kind %u", i, p->kind);
		}
	}
	return 0;
}

static void sampling(const struct shm_request *req, const struct qvl_model *m,
		     struct qvl_sample_params *sp)
{
	const struct qvl_gen_req *g = &req->gen;

	if (g->flags & QVL_GEN_MODEL_DEFAULTS) {
		qvl_sample_defaults(sp, &m->gen);
	} else {
		qvl_sample_defaults(sp, NULL);
		sp->greedy = g->temperature <= 0;
		sp->temperature = g->temperature;
		sp->top_k = g->top_k;
		sp->top_p = g->top_p > 0 ? g->top_p : 1.0f;
		sp->min_p = g->min_p;
		sp->repeat_penalty = g->repeat_penalty > 0 ? g->repeat_penalty : 1.0f;
		sp->presence_penalty = g->presence_penalty;
		sp->frequency_penalty = g->frequency_penalty;
	}
	if (g->flags & QVL_GEN_GREEDY)
		sp->greedy = true;
	sp->seed = g->seed;
}

/* Bytes the output region needs before its text part (qvl.h's layout). */
static uint64_t out_fixed(const struct shm_request *req)
{
	return qvl_gen_text_offset(&req->gen);
}

static void post_final(struct job *j, const struct job_env *env, int res, uint32_t stop,
		       const char *msg)
{
	struct qvl_cqe c = {0};
	double pre = 0, dec = 0, now = qvl_now();

	if (j->g)
		gen_times(j->g, &pre, &dec);
	c.res = res;
	c.n_tokens = j->n_ids;
	c.text_len = j->text_len;
	if (res < 0 && msg && *msg) {
		/* a failed request's message goes where its text would: the
		 * client can show the reason, not just the errno */
		size_t n = strlen(msg);
		uint64_t asize, fixed = out_fixed(j->req);
		uint8_t *out = shm_request_arena(j->req, &asize) + j->req->out_off;
		/* a region too small for all of it (a short --max-tokens) gets
		 * its beginning, cut where a UTF-8 sequence starts */
		if (fixed <= j->req->out_len && n > j->req->out_len - fixed) {
			n = (size_t)(j->req->out_len - fixed);
			while (n && ((unsigned char)msg[n] & 0xC0) == 0x80)
				n--;
		}
		if (fixed <= j->req->out_len && n <= j->req->out_len - fixed) {
			memcpy(out + fixed, msg, n);
			c.text_len = (uint32_t)n;
		}
	}
	c.n_prompt = j->n_prompt;
	c.stop = stop;
	c.prefill_ns = (uint64_t)(pre * 1e9);
	c.decode_ns = (uint64_t)(dec * 1e9);
	c.queue_ns = (uint64_t)(((j->started ? j->t_start : now) - j->t_submit) * 1e9);
	qvld_stats_done(env->stats, shm_client_id(j->req->client), res, j->n_prompt, j->n_ids,
			now - j->t_submit, dec);
	log_debug("client %u request %llu: %u prompt + %u generated tokens, stop %u, res %d, "
		  "%.3f s queued, %.3f s prefill, %.3f s decode",
		  shm_client_id(j->req->client), (unsigned long long)j->req->user_data, j->n_prompt,
		  j->n_ids, stop, res, (double)c.queue_ns / 1e9, pre, dec);
	shm_complete(j->req, &c);
	j->req = NULL;
}

void job_abort(struct job *j, const struct job_env *env, int res, uint32_t stop)
{
	post_final(j, env, res, stop, NULL);
}

int job_start(struct job *j, const struct job_env *env)
{
	struct job_inputs *in = calloc(1, sizeof(*in));
	const struct qvl_model *m = qvl_engine_model(env->e);
	struct qvl_err err = {{0}};
	struct gen_params gp = {0};
	struct gen_prompt p = {0};
	uint64_t asize;
	int rc;

	j->started = true;
	j->t_start = qvl_now();
	if (j->req->opcode == QVL_OP_EMBED_IMAGE || j->req->opcode == QVL_OP_TOKENIZE) {
		free(in);
		return j->req->opcode == QVL_OP_TOKENIZE ? job_tokenize(j, env) : job_embed(j, env);
	}
	if (!in) {
		rc = -ENOMEM;
		goto fail;
	}
	shm_request_arena(j->req, &asize);
	if (out_fixed(j->req) > j->req->out_len) {
		rc = qvl_errf(&err, -ENOBUFS,
			      "output region of %llu bytes is smaller than the %llu its ids need",
			      (unsigned long long)j->req->out_len,
			      (unsigned long long)out_fixed(j->req));
		goto fail;
	}
	rc = check_shape(j->req, &err);
	if (rc == 0)
		rc = read_inputs(j->req, in, &err);
	if (rc < 0)
		goto fail;
	sampling(j->req, m, &gp.sp);
	gp.max_tokens = j->req->gen.max_tokens;
	gp.ignore_eos = j->req->gen.flags & QVL_GEN_IGNORE_EOS;
	gp.logprobs = j->req->gen.flags & QVL_GEN_LOGPROBS;
	gp.top_logprobs = (int)j->req->gen.top_logprobs; /* validated: flag set, <= 20 */
	gp.n_ctx = env->n_ctx;
	for (int i = 0; i < in->n_stops; i++) {
		gp.stops[i] = in->stops[i];
		gp.stop_lens[i] = strlen(in->stops[i]);
	}
	gp.n_stops = in->n_stops;
	if (in->n_ids) {
		p.ids = in->ids;
		p.n_ids = in->n_ids;
	} else if (j->req->gen.flags & QVL_GEN_RAW) {
		p.raw = in->raw;
	} else {
		p.msgs = in->msgs;
		p.n_msgs = (size_t)in->n_msgs;
	}
	p.images = in->srcs;
	p.n_images = in->n_images;
	p.defer_encode = env->defer_encode;
	rc = gen_create(&j->g, env->e, env->tok, &p, &gp, &err);
	if (rc < 0)
		goto fail;
	j->n_prompt = (uint32_t)gen_n_prompt(j->g);
	inputs_free(in);
	free(in);
	return 0;
fail:
	if (in) {
		inputs_free(in);
		free(in);
	}
	qvld_log_request_error(env->stats, shm_client_id(j->req->client), j->req->user_data, rc,
			       err.msg);
	post_final(j, env, rc, QVL_STOP_ERROR, err.msg[0] ? err.msg : qvl_strerror(rc));
	return rc;
}

static uint32_t stop_code(enum gen_stop s)
{
	switch (s) {
	case GEN_EOS:
		return QVL_STOP_EOS;
	case GEN_LENGTH:
		return QVL_STOP_LENGTH;
	case GEN_STOP_STRING:
		return QVL_STOP_STRING;
	case GEN_CANCELLED:
		return QVL_STOP_CANCELLED;
	case GEN_CONTEXT:
		return QVL_STOP_CONTEXT;
	case GEN_ERROR:
		return QVL_STOP_ERROR;
	case GEN_RUNNING:
		break;
	}
	return QVL_STOP_NONE;
}

size_t job_attach(struct job *j)
{
	struct qvl_err err = {{0}};
	size_t n = 0;

	if (!j->g)
		return 0;
	if (gen_attach_prefix(j->g, &n, &err) < 0) {
		log_warn("client %u request %llu: prefix reuse: %s", shm_client_id(j->req->client),
			 (unsigned long long)j->req->user_data, err.msg);
		return 0;
	}
	return n;
}

int job_stage(struct job *j, size_t budget, struct qvl_batch_item *it)
{
	return gen_next(j->g, budget, it);
}

/* Token i's alternatives into the TOP_LOGPROBS block (k validated <= 20) */
static void write_top(uint8_t *top, uint32_t i, const struct gen_out *o, uint32_t k)
{
	uint8_t *dst = top + (uint64_t)i * k * sizeof(struct qvl_top_logprob);

	for (uint32_t a = 0; a < k; a++) {
		struct qvl_top_logprob e = {o->top_ids[a], o->top_lp[a]};
		memcpy(dst + a * sizeof(e), &e, sizeof(e));
	}
}

int job_advance(struct job *j, const struct job_env *env, int rc)
{
	return job_advance_why(j, env, rc, NULL);
}

int job_advance_why(struct job *j, const struct job_env *env, int rc, const char *why)
{
	struct shm_request *req = j->req;
	struct qvl_err err = {{0}};
	struct gen_out o;
	uint64_t asize;
	uint8_t *out = shm_request_arena(req, &asize) + req->out_off;
	const uint64_t fixed = out_fixed(req), text_cap = req->out_len - fixed;

	if (rc == -ECANCELED || rc == -ETIMEDOUT)
		gen_cancel(j->g);
	rc = gen_advance(j->g, rc == -ETIMEDOUT ? -ECANCELED : rc, &o, &err);
	if (rc < 0 && !err.msg[0] && why && *why)
		qvl_errf(&err, rc, "%s: %s", qvl_strerror(rc), why);
	if (rc < 0) {
		qvld_log_request_error(env->stats, shm_client_id(req->client), req->user_data, rc,
				       err.msg);
		/* never the partial text in place of a reason */
		post_final(j, env, rc, QVL_STOP_ERROR, err.msg[0] ? err.msg : qvl_strerror(rc));
		return 1;
	}
	if (o.has_id) {
		/* the output region is the client's: write, never read back */
		memcpy(out + (uint64_t)j->n_ids * 4, &o.id, 4);
		if (req->gen.flags & QVL_GEN_LOGPROBS)
			memcpy(out + (uint64_t)req->gen.max_tokens * 4 + (uint64_t)j->n_ids * 4,
			       &o.logprob, 4);
		if (req->gen.top_logprobs)
			write_top(out + qvl_gen_top_offset(&req->gen), j->n_ids, &o,
				  req->gen.top_logprobs);
		j->n_ids++;
	}
	enum gen_stop stop = o.stop;
	if (o.text_len) {
		if (o.text_len > text_cap - j->text_len) {
			/* the region is full: end here (QVL_STOP_LENGTH) rather than
			 * cut a UTF-8 sequence */
			gen_cancel(j->g);
			stop = GEN_LENGTH;
		} else {
			memcpy(out + fixed + j->text_len, o.text, o.text_len);
			j->text_len += (uint32_t)o.text_len;
		}
	}
	if (stop != GEN_RUNNING) {
		/* a deadline ends the request like a cancel, with what it has so
		 * far, and says why in res */
		post_final(j, env, j->expired ? -ETIMEDOUT : 0, stop_code(stop), NULL);
		return 1;
	}
	if ((req->gen.flags & QVL_GEN_STREAM) && (o.has_id || o.text_len)) {
		struct qvl_cqe c = {
		    .n_tokens = j->n_ids, .text_len = j->text_len, .n_prompt = j->n_prompt};
		/* -EAGAIN (CQ full) drops a chunk harmlessly: counts are cumulative */
		shm_post_more(req, &c);
	}
	return 0;
}

bool job_encoding(const struct job *j)
{
	return j->g && gen_encode_left(j->g) > 0;
}

void job_free(struct job *j)
{
	if (!j)
		return;
	gen_destroy(j->g);
	free(j);
}
