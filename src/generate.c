/* Step-wise generation (see generate.h): the one token loop of qvld and
 * `qvlctl run`. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "gen_prompt.h"
#include "model.h"
#include "multimodal.h"
#include "tokenizer.h"
#include "util.h"

struct gen_session {
	struct qvl_engine *e;
	const struct qvl_tokenizer *tok;
	const struct qvl_model *m;
	struct gen_params gp;
	char *stop_store; /* the copied stop strings */

	struct qvl_mm_prompt mm;
	int32_t *ids; /* prompt ids when not owned by mm */
	struct qvl_chunk prompt;
	size_t H;	  /* hidden size: rows of prompt.embd / deepstack */
	size_t *img_rank; /* [prompt.n + 1]: image tokens before position i */
	float *ds;	  /* a sub-chunk's DeepStack rows, [n_deepstack][n_img][H] */
	size_t ds_cap;	  /* floats */

	/* The input the model has seen is prompt + gen[0..ngen); fed of those
	 * positions are in the KV cache. A step feeds the next chunk of what is
	 * missing (all of it but a budget), and samples once it reaches the
	 * end. Normally one id (the last sampled) is missing; after
	 * gen_reset() (preemption) everything is, and comes back in chunks. */
	int32_t *gen;
	size_t gen_cap, fed, pending; /* pending: positions of the staged chunk */
	struct qvl_chunk staged;

	struct qvl_seq *seq;
	struct qvl_sampler *smp;
	float *logits, *lp_scratch;
	bool want_logits; /* the staged chunk reaches the end: it samples */
	struct qvl_detok dt;
	char *dtbuf;
	size_t dtcap;
	struct gen_stopper st;

	bool prefilled, cancel;
	/* greedy without penalties or logprobs: gen_step() asks the engine for
	 * the argmax only (no logits written); have_id says it did */
	bool argmax_only, have_id, staged_argmax;
	int32_t argmax_id;
	enum gen_stop stop;
	size_t ngen;
	double t0, t_pre, t_dec0, t_dec;
};

const char *gen_stop_name(enum gen_stop s)
{
	switch (s) {
	case GEN_RUNNING:
		return "running";
	case GEN_EOS:
		return "eos";
	case GEN_LENGTH:
		return "length";
	case GEN_STOP_STRING:
		return "stop";
	case GEN_CANCELLED:
		return "cancelled";
	case GEN_CONTEXT:
		return "context";
	case GEN_ERROR:
		return "error";
	}
	return "?";
}

/* The model's end-of-sequence rule: generation_config eos ids, else the
 * config's eos_token_id. */
static bool gen_is_eos(const struct qvl_model *m, int32_t id)
{
	if (m->gen.present && m->gen.n_eos > 0) {
		for (int i = 0; i < m->gen.n_eos && i < 8; i++)
			if (m->gen.eos_token_ids[i] == id)
				return true;
		return false;
	}
	return id == m->config.text.eos_token_id;
}

/* ---- stop strings ------------------------------------------------------ */

int gen_stopper_push(struct gen_stopper *st, const struct gen_params *gp, const char *s, size_t n)
{
	size_t best = SIZE_MAX, keep = 0;

	if (st->matched)
		return 0;
	if (st->cap - st->len < n + 1) {
		size_t cap = st->cap ? st->cap : 256;
		while (cap - st->len < n + 1)
			cap *= 2;
		char *b = realloc(st->buf, cap);
		if (!b)
			return -ENOMEM;
		st->buf = b;
		st->cap = cap;
	}
	memcpy(st->buf + st->len, s, n);
	st->len += n;
	for (int i = 0; i < gp->n_stops; i++) {
		const char *hit = memmem(st->buf, st->len, gp->stops[i], gp->stop_lens[i]);
		if (hit && (size_t)(hit - st->buf) < best)
			best = (size_t)(hit - st->buf);
	}
	if (best != SIZE_MAX) {
		st->len = best;
		st->release = best;
		st->matched = true;
		return 0;
	}
	/* hold the longest tail that could still grow into a stop string; a
	 * stop string starts on a character boundary, so the cut does too */
	for (int i = 0; i < gp->n_stops; i++) {
		size_t sl = gp->stop_lens[i];
		for (size_t k = sl - 1 < st->len ? sl - 1 : st->len; k > keep; k--)
			if (!memcmp(st->buf + st->len - k, gp->stops[i], k)) {
				keep = k;
				break;
			}
	}
	st->release = st->len - keep;
	return 0;
}

void gen_stopper_flush(struct gen_stopper *st)
{
	if (!st->matched)
		st->release = st->len;
}

void gen_stopper_consume(struct gen_stopper *st)
{
	if (!st->release)
		return; /* also: buf may still be NULL */
	memmove(st->buf, st->buf + st->release, st->len - st->release);
	st->len -= st->release;
	st->release = 0;
}

void gen_stopper_free(struct gen_stopper *st)
{
	free(st->buf);
	memset(st, 0, sizeof(*st));
}

/* ---- session ----------------------------------------------------------- */

static int copy_params(struct gen_session *g, const struct gen_params *gp, struct qvl_err *err)
{
	size_t total = 0;
	char *p;

	g->gp = *gp;
	if (gp->top_logprobs < 0 || gp->top_logprobs > GEN_MAX_TOP ||
	    (gp->top_logprobs && !gp->logprobs) || gp->top_logprobs > g->m->config.text.vocab_size)
		return qvl_errf(err, -EINVAL, "top_logprobs: %d (0..%d, with logprobs)",
				gp->top_logprobs, GEN_MAX_TOP);
	if (gp->n_stops < 0 || gp->n_stops > GEN_MAX_STOPS)
		return qvl_errf(err, -EINVAL, "stop strings: %d given (at most %d)", gp->n_stops,
				GEN_MAX_STOPS);
	for (int i = 0; i < gp->n_stops; i++) {
		if (gp->stop_lens[i] == 0 || gp->stop_lens[i] > GEN_MAX_STOP_LEN)
			return qvl_errf(err, -EINVAL, "stop string %d: %zu bytes (must be 1..%d)",
					i + 1, gp->stop_lens[i], GEN_MAX_STOP_LEN);
		if ((unsigned char)gp->stops[i][0] >= 0x80 && (unsigned char)gp->stops[i][0] < 0xC0)
			return qvl_errf(err, -EILSEQ,
					"stop string %d: starts inside a UTF-8 sequence", i + 1);
		total += gp->stop_lens[i];
	}
	g->stop_store = malloc(total + 1);
	if (!g->stop_store)
		return qvl_errf(err, -ENOMEM, "out of memory");
	p = g->stop_store;
	for (int i = 0; i < gp->n_stops; i++) {
		memcpy(p, gp->stops[i], gp->stop_lens[i]);
		g->gp.stops[i] = p;
		p += gp->stop_lens[i];
	}
	return 0;
}

int gen_create(struct gen_session **out, struct qvl_engine *e, const struct qvl_tokenizer *tok,
	       const struct gen_prompt *p, const struct gen_params *gp, struct qvl_err *err)
{
	struct gen_session *g = calloc(1, sizeof(*g));
	const struct qvl_model *m = qvl_engine_model(e);
	const int V = m->config.text.vocab_size;
	int rc;

	*out = NULL;
	if (!g)
		return qvl_errf(err, -ENOMEM, "out of memory");
	g->e = e;
	g->tok = tok;
	g->m = m;
	rc = copy_params(g, gp, err);
	if (rc < 0)
		goto fail;
	if (gp->n_ctx <= 0) {
		rc = qvl_errf(err, -EINVAL, "context of %d positions", gp->n_ctx);
		goto fail;
	}
	rc = gen_prompt_build(e, tok, p, &g->mm, &g->ids, &g->prompt, err);
	if (rc < 0)
		goto fail;
	/* checked before any work; `qvlctl run` adds its hints to the messages */
	if (g->prompt.n == 0) {
		rc = qvl_errf(err, -EINVAL, "empty prompt: nothing to run");
		goto fail;
	}
	if (g->prompt.n > (size_t)gp->n_ctx) {
		rc = qvl_errf(err, -ENOSPC, "prompt of %zu tokens is longer than the context (%d)",
			      g->prompt.n, gp->n_ctx);
		goto fail;
	}
	for (size_t i = 0; i < g->prompt.n; i++)
		if (g->prompt.ids[i] < 0 || g->prompt.ids[i] >= V) {
			rc = qvl_errf(err, -EINVAL,
				      "token %zu: id %d out of range (vocabulary has %d ids)", i,
				      g->prompt.ids[i], V);
			goto fail;
		}
	g->H = (size_t)m->config.text.hidden_size;
	if (g->prompt.n_img) {
		g->img_rank = malloc((g->prompt.n + 1) * sizeof(size_t));
		if (!g->img_rank) {
			rc = qvl_errf(err, -ENOMEM, "out of memory");
			goto fail;
		}
		g->img_rank[0] = 0;
		for (size_t i = 0; i < g->prompt.n; i++)
			g->img_rank[i + 1] =
			    g->img_rank[i] + (g->prompt.ids[i] == m->config.image_token_id);
	}
	g->logits = malloc((size_t)V * sizeof(float));
	if (gp->logprobs)
		g->lp_scratch = malloc((size_t)V * sizeof(float));
	if (tok) {
		g->dtcap = 3 * (qvl_tok_max_piece(tok) + 8) + 64;
		g->dtbuf = malloc(g->dtcap);
		qvl_detok_init(&g->dt, tok);
	}
	if (!g->logits || (gp->logprobs && !g->lp_scratch) || (tok && !g->dtbuf)) {
		rc = qvl_errf(err, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = qvl_sampler_create(&g->smp, &gp->sp, V, err);
	if (rc < 0)
		goto fail;
	g->argmax_only = qvl_sampler_is_argmax(g->smp) && !gp->logprobs;
	rc = qvl_seq_create(e, gp->n_ctx, &g->seq, err);
	if (rc < 0)
		goto fail;
	*out = g;
	return 0;
fail:
	gen_destroy(g);
	return rc;
}

void gen_destroy(struct gen_session *g)
{
	if (!g)
		return;
	qvl_seq_destroy(g->seq);
	qvl_sampler_free(g->smp);
	qvl_mm_prompt_free(&g->mm);
	free(g->ids);
	free(g->img_rank);
	free(g->ds);
	free(g->gen);
	free(g->logits);
	free(g->lp_scratch);
	free(g->dtbuf);
	free(g->stop_store);
	gen_stopper_free(&g->st);
	free(g);
}

/* Positions of input the model must still see before the next sample. */
static size_t total_in(const struct gen_session *g)
{
	return g->prompt.n + g->ngen;
}

/* The prompt's positions [a, a + n) as a chunk of their own: image rows
 * from the first image token among them, DeepStack rows gathered into the
 * [layer][n_img][H] layout the engine indexes (a stride of the chunk's own
 * image count). */
static int stage_prompt(struct gen_session *g, size_t a, size_t n)
{
	const struct qvl_chunk *p = &g->prompt;
	struct qvl_chunk *c = &g->staged;

	*c = *p;
	c->ids = p->ids + a;
	c->n = n;
	if (p->pos)
		c->pos = p->pos + a;
	if (!p->n_img || (a == 0 && n == p->n))
		return 0;
	size_t r0 = g->img_rank[a], ni = g->img_rank[a + n] - r0, L = (size_t)p->n_deepstack;
	c->n_img = ni;
	c->embd = ni ? p->embd + r0 * g->H : NULL;
	c->img_keys = ni && p->img_keys ? p->img_keys + r0 : NULL;
	c->deepstack = NULL;
	if (!ni) {
		c->n_deepstack = 0;
		return 0;
	}
	if (L) {
		size_t need = L * ni * g->H;
		if (need > g->ds_cap) {
			float *d = realloc(g->ds, need * sizeof(float));
			if (!d)
				return -ENOMEM;
			g->ds = d;
			g->ds_cap = need;
		}
		for (size_t l = 0; l < L; l++)
			memcpy(g->ds + l * ni * g->H, p->deepstack + (l * p->n_img + r0) * g->H,
			       ni * g->H * sizeof(float));
		c->deepstack = g->ds;
	}
	return 0;
}

int gen_next(struct gen_session *g, size_t budget, struct qvl_batch_item *it)
{
	size_t end = total_in(g), n;

	memset(it, 0, sizeof(*it));
	if (g->stop != GEN_RUNNING || g->cancel)
		return 0;
	if (g->mm.pending) /* image rows not there yet: gen_encode_step() first */
		return -EBUSY;
	/* never past the prompt's end in one chunk: prompt positions carry
	 * images and M-RoPE positions, generated ids are plain text */
	if (g->fed < g->prompt.n)
		end = g->prompt.n;
	n = end - g->fed;
	if (budget && n > budget)
		n = budget;
	if (g->fed < g->prompt.n) {
		if (stage_prompt(g, g->fed, n) < 0)
			return -ENOMEM;
	} else {
		g->staged = (struct qvl_chunk){.ids = g->gen + (g->fed - g->prompt.n), .n = n};
	}
	g->pending = n;
	g->want_logits = g->fed + n == total_in(g);
	g->have_id = false; /* the caller's forward writes the logits */
	if (!g->t0)
		g->t0 = qvl_now();
	it->seq = g->seq;
	it->chunk = g->staged;
	if (g->want_logits) {
		g->staged_argmax = g->argmax_only;
		if (g->argmax_only)
			it->argmax = &g->argmax_id;
		else
			it->logits = g->logits;
	}
	return (int)n;
}

const struct qvl_chunk *gen_next_chunk(struct gen_session *g, float **logits)
{
	struct qvl_batch_item it;

	if (gen_next(g, 0, &it) <= 0)
		return NULL;
	/* this caller always wants the logits (cmd_run keeps them) */
	*logits = g->logits;
	g->staged_argmax = false;
	return &g->staged;
}

/* Text that left the detokenizer goes through the stop matcher; a negative
 * w (an unknown id) is no text. */
static int emit_text(struct gen_session *g, long w)
{
	if (w <= 0)
		return 0;
	return gen_stopper_push(&g->st, &g->gp, g->dtbuf, (size_t)w);
}

static int finish(struct gen_session *g, enum gen_stop why)
{
	int rc = 0;

	g->stop = why;
	if (g->tok && why != GEN_STOP_STRING && why != GEN_CANCELLED && why != GEN_ERROR) {
		rc = emit_text(g, qvl_detok_flush(&g->dt, g->dtbuf, g->dtcap));
		gen_stopper_flush(&g->st);
	}
	return rc < 0 ? rc : 0;
}

/* log softmax of x at id and at the k most likely ids (top_ids/top_lp) */
static float logprobs_of(const float *x, size_t n, int32_t id, int k, int32_t *top_ids,
			 float *top_lp)
{
	float mx = x[0];
	double s = 0, ls;

	for (size_t i = 1; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	for (size_t i = 0; i < n; i++)
		s += exp((double)(x[i] - mx));
	ls = log(s);
	if (k > 0) {
		qvl_top_k(x, n, (size_t)k, top_ids);
		for (int i = 0; i < k; i++)
			top_lp[i] = (float)((double)(x[top_ids[i]] - mx) - ls);
	}
	return (float)((double)(x[id] - mx) - ls);
}

int gen_advance(struct gen_session *g, int rc, struct gen_out *out, struct qvl_err *err)
{
	const size_t V = (size_t)g->m->config.text.vocab_size;
	double now = qvl_now();

	gen_stopper_consume(&g->st);
	memset(out, 0, sizeof(*out));
	out->text = g->st.buf;
	if (g->stop != GEN_RUNNING) {
		out->stop = g->stop;
		return 0;
	}
	if (rc == -ECANCELED) {
		finish(g, GEN_CANCELLED);
		out->stop = g->stop;
		return 0;
	}
	if (rc == -ENOSPC) {
		/* the context (or, alone in the KV budget, the pool) is full */
		rc = finish(g, GEN_CONTEXT);
		goto done;
	}
	if (rc < 0) {
		finish(g, GEN_ERROR);
		out->stop = g->stop;
		return rc;
	}
	g->fed += g->pending;
	g->pending = 0;
	if (g->fed < total_in(g))
		goto done; /* a chunk of a prefill: nothing to sample yet */
	g->have_id = g->staged_argmax;
	if (!g->prefilled) {
		g->prefilled = true;
		g->t_pre = now - g->t0;
		g->t_dec0 = now;
		for (size_t i = 0; i < g->prompt.n; i++)
			qvl_sampler_accept(g->smp, g->prompt.ids[i]);
		if (g->gp.max_tokens == 0) {
			rc = finish(g, GEN_LENGTH);
			goto done;
		}
	}
	if (g->lp_scratch)
		memcpy(g->lp_scratch, g->logits, V * sizeof(float));
	int32_t id = g->have_id ? g->argmax_id : qvl_sample(g->smp, g->logits);

	if (!g->gp.ignore_eos && gen_is_eos(g->m, id)) {
		rc = finish(g, GEN_EOS);
		goto done;
	}
	if (g->ngen == g->gen_cap) {
		size_t cap = g->gen_cap ? 2 * g->gen_cap : 64;
		int32_t *ng = realloc(g->gen, cap * sizeof(int32_t));
		if (!ng) {
			rc = qvl_errf(err, -ENOMEM, "out of memory");
			finish(g, GEN_ERROR);
			goto done;
		}
		g->gen = ng;
		g->gen_cap = cap;
	}
	g->gen[g->ngen] = id; /* before ngen++: total_in() then counts it */
	out->has_id = true;
	out->id = id;
	if (g->lp_scratch)
		out->logprob = logprobs_of(g->lp_scratch, V, id, g->gp.top_logprobs, out->top_ids,
					   out->top_lp);
	g->ngen++;
	if (qvl_sampler_accept_output(g->smp, id) < 0) {
		rc = qvl_errf(err, -ENOMEM, "out of memory");
		finish(g, GEN_ERROR);
		goto done;
	}
	if (g->tok) {
		/* an id the tokenizer does not know (the model's vocabulary is
		 * padded past it) has no text; run reports such ids */
		long w = qvl_detok_push(&g->dt, id, g->dtbuf, g->dtcap);

		out->no_text = w == -EINVAL;
		rc = emit_text(g, w);
		if (rc < 0) {
			qvl_errf(err, rc, "out of memory");
			finish(g, GEN_ERROR);
			goto done;
		}
		if (g->st.matched) {
			rc = finish(g, GEN_STOP_STRING);
			goto done;
		}
	}
	if (g->ngen == g->gp.max_tokens)
		rc = finish(g, GEN_LENGTH);
	else if (g->fed >= (size_t)g->gp.n_ctx)
		rc = finish(g, GEN_CONTEXT);
done:
	if (g->prefilled)
		g->t_dec = qvl_now() - g->t_dec0;
	out->text = g->st.buf;
	out->text_len = g->st.release;
	out->stop = g->stop;
	if (rc < 0 && !err->msg[0])
		qvl_errf(err, rc, "%s", qvl_strerror(rc));
	return rc;
}

int gen_step(struct gen_session *g, struct gen_out *out, struct qvl_err *err)
{
	struct qvl_batch_item it;
	int rc = gen_next(g, 0, &it);

	if (rc < 0)
		return gen_advance(g, rc, out, err);
	if (rc == 0)
		return gen_advance(g, g->stop == GEN_RUNNING ? -ECANCELED : 0, out, err);
	rc = qvl_engine_forward(g->e, &it, 1, err);
	return gen_advance(g, rc, out, err);
}

void gen_cancel(struct gen_session *g)
{
	g->cancel = true;
}

bool gen_done(const struct gen_session *g)
{
	return g->stop != GEN_RUNNING;
}

struct qvl_seq *gen_seq(struct gen_session *g)
{
	return g->seq;
}

void gen_reset(struct gen_session *g)
{
	qvl_seq_reset(g->seq);
	g->fed = 0;
	g->pending = 0;
}

int gen_attach_prefix(struct gen_session *g, size_t *reused, struct qvl_err *err)
{
	struct qvl_prefix pf = {.ids = g->prompt.ids,
				.n = g->prompt.n,
				.pos = g->prompt.pos,
				.img_keys = g->prompt.n_img ? g->prompt.img_keys : NULL};
	size_t n = 0;
	int rc;

	*reused = 0;
	if (g->fed || g->stop != GEN_RUNNING)
		return 0;
	rc = qvl_seq_attach_prefix(g->e, g->seq, &pf, &n, err);
	if (rc < 0)
		return rc;
	g->fed = n;
	*reused = n;
	return 0;
}

size_t gen_missing(const struct gen_session *g)
{
	return g->stop == GEN_RUNNING ? total_in(g) - g->fed : 0;
}

int gen_encode_left(const struct gen_session *g)
{
	return g->stop == GEN_RUNNING ? qvl_mm_pending_blocks(&g->mm) : 0;
}

size_t gen_encode_patches(const struct gen_session *g)
{
	return qvl_mm_pending_patches(&g->mm);
}

int gen_encode_step(struct gen_session *g, int blocks, struct qvl_err *err)
{
	return qvl_mm_encode_step(g->e, &g->mm, blocks, err);
}

size_t gen_n_prompt(const struct gen_session *g)
{
	return g->prompt.n;
}

void gen_times(const struct gen_session *g, double *prefill_s, double *decode_s)
{
	*prefill_s = g->t_pre;
	*decode_s = g->t_dec;
}
