/* The decoder forward pass over one slice of tokens (qwen3-vl.md §5.2):
 * embeddings → per layer [RMSNorm → q/k/v → q/k RMSNorm + M-RoPE → KV append
 * → causal GQA attention → o_proj + residual → RMSNorm → SiLU(gate)·up →
 * down + residual (+ DeepStack)] → final RMSNorm → logits.
 *
 * Every step is one pool dispatch with a static split: matmuls by output
 * columns (weight rows: each weight byte is read by exactly one thread, which
 * is what decode at memory bandwidth needs), attention by (token, head),
 * row-wise steps by tokens. The whole slice goes through each matmul at once
 * (m = slice length), never token by token. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "engine_impl.h"
#include "pool.h"

/* Row-wise steps on fewer rows than this run on the caller: a dispatch costs
 * more than normalising a handful of rows. */
#define ROWS_INLINE 4

struct fwd {
	struct qvl_engine *e;
	struct qvl_seq *s;
	const struct qvl_chunk *c;
	size_t off, n, img0;
	int l;
	size_t r0; /* first row whose output is still needed (last layer) */
	bool last; /* this is the last layer */
	bool want; /* logits wanted */
	float *logits;
	/* current matmul */
	const struct eng_mat *w[3];
	const float *X;
	size_t ldx, m;
	float *Y[3];
	size_t ldy[3];
	int nw;
	bool silu;
};

static void run(struct fwd *f, qvl_task_fn fn, size_t rows)
{
	if (rows < ROWS_INLINE || f->e->nth == 1)
		fn(f, 0, 1);
	else
		qvl_pool_run(f->e->pool, fn, f);
}

static const uint8_t *mat_row(const struct eng_mat *w, size_t j)
{
	return w->data + j * w->row_bytes;
}

/* Y_p[:, lo:hi] for the weights listed in f->w, split over their
 * concatenated rows so q, k and v (or gate and up) share one dispatch. */
static void matmul_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	const struct qvl_kernels *k = &f->e->k;
	size_t total = 0, lo, hi, base = 0;

	if (f->silu) {
		/* gate and up over the same column slice, then SiLU(gate)·up on
		 * that slice while it is still in cache: no separate pass over
		 * [m][I] twice from memory. */
		const struct eng_mat *g = f->w[0], *u = f->w[1];
		qvl_split(g->n, 16, ith, nth, &lo, &hi);
		if (hi <= lo)
			return;
		k->matmul(f->Y[0] + lo, f->ldy[0], f->X, f->ldx, mat_row(g, lo), g->type, g->k,
			  NULL, f->m, hi - lo, g->k);
		k->matmul(f->Y[1] + lo, f->ldy[1], f->X, f->ldx, mat_row(u, lo), u->type, u->k,
			  NULL, f->m, hi - lo, u->k);
		for (size_t i = 0; i < f->m; i++)
			k->silu_mul(f->Y[0] + i * f->ldy[0] + lo, f->Y[0] + i * f->ldy[0] + lo,
				    f->Y[1] + i * f->ldy[1] + lo, hi - lo);
		return;
	}
	for (int p = 0; p < f->nw; p++)
		total += f->w[p]->n;
	qvl_split(total, 16, ith, nth, &lo, &hi);
	for (int p = 0; p < f->nw; p++) {
		const struct eng_mat *w = f->w[p];
		size_t a = lo > base ? lo - base : 0, b = hi - base < w->n ? hi - base : w->n;

		if (hi > base && lo < base + w->n && b > a)
			k->matmul(f->Y[p] + a, f->ldy[p], f->X, f->ldx, mat_row(w, a), w->type,
				  w->k, NULL, f->m, b - a, w->k);
		base += w->n;
	}
}

static void matmul(struct fwd *f)
{
	size_t n = 0;

	for (int p = 0; p < f->nw; p++)
		n += f->w[p]->n;
	/* one thread is enough for a tiny matrix; otherwise split */
	if (f->e->nth == 1 || n * f->w[0]->k * f->m < 4096)
		matmul_task(f, 0, 1);
	else
		qvl_pool_run(f->e->pool, matmul_task, f);
}

/* Embedding rows (image rows replaced), cos/sin of each row's M-RoPE angles,
 * and the first layer's input norm, fused per row: the row is in L1 when it
 * is normalised. */
static void embed_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	const struct qvl_chunk *c = f->c;
	size_t lo, hi, H = (size_t)e->H, half = (size_t)e->hd / 2;

	qvl_split(f->n, 1, ith, nth, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		size_t ci = f->off + i;
		float *x = e->x + i * H, *cs = e->cs + i * (size_t)e->hd;
		int32_t id = c->ids[ci], rank = e->ds_rank[i];
		int32_t p[3];

		if (rank >= 0)
			memcpy(x, c->embd + (size_t)rank * H, H * sizeof(float));
		else
			e->k.to_f32(x, mat_row(&e->embd, (size_t)id), e->embd.type, H);
		if (c->pos) {
			p[0] = c->pos[ci][0];
			p[1] = c->pos[ci][1];
			p[2] = c->pos[ci][2];
		} else {
			p[0] = p[1] = p[2] = f->s->next_pos + (int32_t)ci;
		}
		/* angle in f32 = f32(position) * inv_freq, as HF's f32 matmul of
		 * inv_freq by position_ids; cos/sin of that f32 angle. */
		for (size_t j = 0; j < half; j++) {
			float ang = (float)p[e->stream[j]] * e->inv_freq[j];
			cs[j] = (float)cos((double)ang);
			cs[half + j] = (float)sin((double)ang);
		}
		e->k.rmsnorm(e->xb + i * H, x, e->layers[0].attn_norm, H, e->eps);
	}
}

/* Per token: q/k head RMSNorm then M-RoPE (fused: each head is normalised and
 * rotated while in L1), and K/V appended to the cache in its dtype. */
static void qk_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	struct qvl_seq *s = f->s;
	const struct eng_layer *ly = &e->layers[f->l];
	size_t lo, hi, hd = (size_t)e->hd, half = hd / 2;
	size_t qd = (size_t)e->nh * hd, kd = (size_t)e->nkv * hd;
	uint8_t *K = s->kv + (size_t)f->l * s->layer_bytes;
	uint8_t *V = K + s->layer_bytes / 2;
	size_t head_bytes = (size_t)s->n_ctx * hd * s->kv_elem;

	qvl_split(f->n, 1, ith, nth, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		const float *cs = e->cs + i * hd;
		float *q = e->q + i * qd, *k = e->kk + i * kd, *v = e->vv + i * kd;
		size_t pos = (size_t)s->len + i;

		for (int h = 0; h < e->nh; h++) {
			e->k.rmsnorm(q + h * hd, q + h * hd, ly->q_norm, hd, e->eps);
			e->k.rope(q + h * hd, cs, cs + half, half);
		}
		for (int g = 0; g < e->nkv; g++) {
			e->k.rmsnorm(k + g * hd, k + g * hd, ly->k_norm, hd, e->eps);
			e->k.rope(k + g * hd, cs, cs + half, half);
			e->k.from_f32(K + g * head_bytes + pos * hd * s->kv_elem, e->kv_dtype,
				      k + g * hd, hd);
			e->k.from_f32(V + g * head_bytes + pos * hd * s->kv_elem, e->kv_dtype,
				      v + g * hd, hd);
		}
	}
}

/* Causal GQA attention: item t = (row i, head h); items are dealt round-robin
 * so that the long rows at the end of a prefill slice are shared out evenly. */
static void attn_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	struct qvl_seq *s = f->s;
	size_t hd = (size_t)e->hd, qd = (size_t)e->nh * hd;
	const uint8_t *K = s->kv + (size_t)f->l * s->layer_bytes;
	const uint8_t *V = K + s->layer_bytes / 2;
	size_t head_bytes = (size_t)s->n_ctx * hd * s->kv_elem;
	size_t items = f->n * (size_t)e->nh, group = (size_t)(e->nh / e->nkv);
	float scale = (float)(1.0 / sqrt((double)hd));

	for (size_t t = (size_t)ith; t < items; t += (size_t)nth) {
		size_t i = t / (size_t)e->nh, h = t % (size_t)e->nh, g = h / group;

		e->k.attn_head(e->att + i * qd + h * hd, e->q + i * qd + h * hd, K + g * head_bytes,
			       V + g * head_bytes, e->kv_dtype, hd, (size_t)s->len + i + 1, hd,
			       scale);
	}
}

/* x += o_proj output, then the post-attention norm, in one pass over x. */
static void post_attn_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	size_t lo, hi, H = (size_t)e->H;

	qvl_split(f->n - f->r0, 1, ith, nth, &lo, &hi);
	for (size_t i = f->r0 + lo; i < f->r0 + hi; i++)
		e->k.add_rmsnorm(e->xb + i * H, e->x + i * H, e->tmp + i * H,
				 e->layers[f->l].ffn_norm, H, e->eps);
}

/* x += down output (+ DeepStack row at image positions, after the MLP as in
 * §7), then the next layer's input norm or the final norm, in one pass. */
static void post_mlp_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	const struct qvl_chunk *c = f->c;
	size_t lo, hi, H = (size_t)e->H;
	const float *nw = f->last ? e->out_norm : e->layers[f->l + 1].attn_norm;
	bool ds = c->n_img && f->l < c->n_deepstack;

	qvl_split(f->n - f->r0, 1, ith, nth, &lo, &hi);
	for (size_t i = f->r0 + lo; i < f->r0 + hi; i++) {
		float *x = e->x + i * H;
		int32_t rank = e->ds_rank[i];

		if (ds && rank >= 0) {
			e->k.add(x, e->tmp + i * H, H);
			e->k.add(x, c->deepstack + ((size_t)f->l * c->n_img + (size_t)rank) * H, H);
			e->k.rmsnorm(e->xb + i * H, x, nw, H, e->eps);
		} else {
			e->k.add_rmsnorm(e->xb + i * H, x, e->tmp + i * H, nw, H, e->eps);
		}
	}
}

static void set_mm(struct fwd *f, const float *X, size_t ldx, size_t m)
{
	f->X = X;
	f->ldx = ldx;
	f->m = m;
	f->silu = false;
}

void eng_forward_rows(struct qvl_engine *e, struct qvl_seq *s, const struct qvl_chunk *c,
		      size_t off, size_t n, size_t img0, float *logits, bool all, bool want)
{
	struct fwd f = {.e = e, .s = s, .c = c, .off = off, .n = n, .img0 = img0};
	size_t H = (size_t)e->H, qd = (size_t)e->nh * e->hd, kd = (size_t)e->nkv * e->hd;
	size_t I = (size_t)e->I, rank = img0;

	f.logits = logits;
	f.want = want;
	for (size_t i = 0; i < n; i++)
		e->ds_rank[i] =
		    c->n_img && c->ids[off + i] == e->image_token_id ? (int32_t)rank++ : -1;
	run(&f, embed_task, n);

	for (int l = 0; l < e->L; l++) {
		const struct eng_layer *ly = &e->layers[l];

		f.l = l;
		f.last = l == e->L - 1;
		f.r0 = 0;
		set_mm(&f, e->xb, H, n);
		f.nw = 3;
		f.w[0] = &ly->wq, f.Y[0] = e->q, f.ldy[0] = qd;
		f.w[1] = &ly->wk, f.Y[1] = e->kk, f.ldy[1] = kd;
		f.w[2] = &ly->wv, f.Y[2] = e->vv, f.ldy[2] = kd;
		matmul(&f);
		run(&f, qk_task, n);
		if (f.last && !want)
			break; /* the cache is filled; nothing reads this layer's output */
		run(&f, attn_task, n * (size_t)e->nh);

		/* In the last layer only the rows whose logits are wanted go on. */
		if (f.last && !all)
			f.r0 = n - 1;
		size_t m = n - f.r0;
		set_mm(&f, e->att + f.r0 * qd, qd, m);
		f.nw = 1;
		f.w[0] = &ly->wo, f.Y[0] = e->tmp + f.r0 * H, f.ldy[0] = H;
		matmul(&f);
		run(&f, post_attn_task, m);

		set_mm(&f, e->xb + f.r0 * H, H, m);
		f.nw = 2;
		f.silu = true;
		f.w[0] = &ly->wg, f.Y[0] = e->gate, f.ldy[0] = I;
		f.w[1] = &ly->wu, f.Y[1] = e->up, f.ldy[1] = I;
		matmul(&f);

		set_mm(&f, e->gate, I, m);
		f.nw = 1;
		f.w[0] = &ly->wd, f.Y[0] = e->tmp + f.r0 * H, f.ldy[0] = H;
		matmul(&f);
		run(&f, post_mlp_task, m);
	}
	if (!want)
		return;

	/* logits = final-normed rows · outᵀ, split over the vocabulary */
	size_t r0 = all ? 0 : n - 1;
	set_mm(&f, e->xb + r0 * H, H, n - r0);
	f.nw = 1;
	f.w[0] = &e->out, f.Y[0] = logits, f.ldy[0] = (size_t)e->V;
	matmul(&f);
}
