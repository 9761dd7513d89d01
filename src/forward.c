/* The decoder forward pass over one slice of tokens (qwen3-vl.md §5.2):
 * embeddings → per layer [RMSNorm → q/k/v → q/k RMSNorm + M-RoPE → KV append
 * → causal GQA attention → o_proj + residual → RMSNorm → SiLU(gate)·up →
 * down + residual (+ DeepStack)] → final RMSNorm → logits.
 *
 * Every step is one pool dispatch: matmuls split by output columns (weight
 * rows: each weight byte is read by exactly one thread, which is what decode
 * at memory bandwidth needs; in decode the columns are shared out in chunks,
 * claim.h), attention by (token, KV head), row-wise steps by tokens. The
 * whole slice goes through each matmul at once (m = slice length), never
 * token by token. Decode takes four dispatches a layer: q/k/v with q/k norm,
 * rope, KV append and attention (threads own whole KV groups), o_proj,
 * gate/up with SiLU·up, down; the residual adds and norms run on the caller
 * between them. Greedy callers get the argmax of the logits fused into the
 * output projection (argmax_task), the logits never written. QVL_PROFILE
 * times each of these stages (profile.h). */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"
#include "kvpool_impl.h"
#include "pool.h"

/* Row-wise steps on fewer rows than this run on the caller: a dispatch costs
 * more than normalising a handful of rows. */
#define ROWS_INLINE 4
/* The residual adds and norms between the matmuls of a decode batch run on
 * the caller up to this many rows: 16 rows of the 2b shape are ~0.5 MB of
 * L2-resident f32, ~10-20 us on one core, while a dispatch wakes the worker
 * and waits for it (under load, for its CPU): 56 dispatches a step fewer. */
#define NORM_INLINE 16

/* Up to this many rows the attention block of a layer is one dispatch
 * (qkv_attn_task): the matmuls stream W (m <= 16, see the kernels), and the
 * per-row work is small enough that owning whole KV groups balances. */
#define FUSE_ATTN_ROWS 16

struct fwd {
	struct qvl_engine *e;
	size_t n;    /* rows in the slice */
	size_t nout; /* rows gathered for output in the last layer */
	int l;
	const struct eng_layer *ly; /* layer l's weights for this pass */
	bool last;		    /* this is the last layer */
	/* current matmul */
	const struct eng_mat *w[3];
	const float *X;
	size_t ldx, m;
	float *Y[3];
	size_t ldy[3];
	int nw;
	bool silu;
	bool share; /* columns handed out through e->claims (claim.h) */
	/* w[p]'s activation prepared once for its type (act_prep), or NULL:
	 * the kernel quantizes X itself */
	const void *xa[3];
	/* the next product's activation, prepared in parts by the threads
	 * that write its X (next_prep), or NULL; pre: this product's, so
	 * matmul() does not make it */
	void *xn;
	const void *pre;
};

/* On the caller below inline_rows rows (or with one thread), else on the
 * pool. */
static void run_min(struct fwd *f, qvl_task_fn fn, size_t rows, size_t inline_rows)
{
	if (rows < inline_rows || f->e->nth == 1)
		fn(f, 0, 1);
	else
		qvl_pool_run(f->e->pool, fn, f);
}

static void run(struct fwd *f, qvl_task_fn fn, size_t rows)
{
	run_min(f, fn, rows, ROWS_INLINE);
}

/* Always on the pool (the caller alone when it is one thread). */
static void run_all(struct fwd *f, qvl_task_fn fn)
{
	if (f->e->nth == 1)
		fn(f, 0, 1);
	else
		qvl_pool_run(f->e->pool, fn, f);
}

static const uint8_t *mat_row(const struct eng_mat *w, size_t j)
{
	return w->data + j * w->row_bytes;
}

/* *buf holds at least bytes (64-byte aligned, rounded up to lines), grown
 * without keeping its contents; false when it cannot grow (*buf unchanged). */
static bool grow_buf(void **buf, size_t *cap, size_t bytes)
{
	void *n;

	if (bytes <= *cap)
		return true;
	bytes = (bytes + 63) & ~(size_t)63;
	if (!(n = aligned_alloc(64, bytes)))
		return false;
	free(*buf);
	*buf = n;
	*cap = bytes;
	return true;
}

/* Up to this many rows (decode batches) a product's columns are claimed
 * (matmul_task); more (prefill) split statically. */
#define SHARE_MAX_ROWS 16

/* act_prep() of many rows: this thread's rows of each prepared type */
static void act_prep_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	const struct qvl_kernels *k = &f->e->k;
	size_t lo, hi;

	qvl_split(f->m, 1, ith, nth, &lo, &hi);
	for (int p = 0; p < f->nw && hi > lo; p++) {
		bool made = false; /* by an earlier weight of the same type */

		for (int q = 0; q < p; q++)
			made = made || f->xa[q] == f->xa[p];
		if (f->xa[p] && !made)
			k->act_part((void *)f->xa[p], f->w[p]->type, f->X, f->ldx, f->m, f->w[p]->k,
				    lo, hi, 0, f->w[p]->k);
	}
}

/* Decode (a few rows) calls a matmul once per chunk of weight rows, and
 * q/k/v and gate/up share X: X is prepared (quantized) here, once per
 * matmul and weight type, on the caller before the dispatch, and every
 * call takes the prepared bytes (kernels.h act_make) instead of
 * quantizing X again (7-14 % of a 64-row call: docs/todo-qfar.md). Only
 * under the fast precision (k.matmul is matmul_fast) and for the types
 * the level prepares; f->xa[p] NULL otherwise, also when the buffer
 * cannot grow (the kernels then quantize per call, as before). Many rows
 * (prefill) are prepared in row parts on the pool, for the types that
 * prepare in parts (the bf16 panels): each thread's kernel calls rounded
 * all m rows again for each of its weights, both threads the same rows
 * (pp512, bf16 GGUF: bp_x 2.7 % of the compute, 1.1 % after). */
static void act_prep(struct fwd *f, const float *X, size_t ldx, size_t m)
{
	struct qvl_engine *e = f->e;
	const struct qvl_kernels *k = &e->k;
	size_t off[3], need = 0;
	bool first[3]; /* w[p] is the first of its type: it makes the bytes */

	for (int p = 0; p < 3; p++)
		f->xa[p] = NULL;
	if (!k->act_bytes || k->matmul != k->matmul_fast)
		return;
	for (int p = 0; p < f->nw; p++) {
		size_t b = k->act_bytes(f->w[p]->type, m, f->w[p]->k);

		off[p] = SIZE_MAX;
		first[p] = false;
		for (int q = 0; q < p; q++)
			if (f->w[q]->type == f->w[p]->type && f->w[q]->k == f->w[p]->k)
				off[p] = off[q]; /* same type: the same bytes */
		if (off[p] == SIZE_MAX && b) {
			off[p] = need;
			first[p] = true;
			need += (b + 63) & ~(size_t)63;
		}
	}
	if (!need)
		return;
	/* many rows: made in row parts on the pool (act_prep_task), each
	 * type that can; the others keep rounding per call */
	if (m > SHARE_MAX_ROWS)
		for (int p = 0; p < f->nw; p++)
			if (off[p] != SIZE_MAX &&
			    !k->act_part(e->xa, f->w[p]->type, NULL, 0, m, f->w[p]->k, 0, 0, 0, 0))
				return;
	if (!grow_buf(&e->xa, &e->xa_cap, need))
		return;
	for (int p = 0; p < f->nw; p++) {
		if (off[p] == SIZE_MAX)
			continue;
		f->xa[p] = (uint8_t *)e->xa + off[p];
		if (first[p] && m <= SHARE_MAX_ROWS)
			k->act_make((uint8_t *)e->xa + off[p], f->w[p]->type, X, ldx, m,
				    f->w[p]->k);
	}
	if (m > SHARE_MAX_ROWS)
		run_all(f, act_prep_task);
}

/* f->X times rows [lo, lo + n) of weight p into Y (ldy): on the prepared
 * activation when there is one */
static void mm(const struct fwd *f, int p, float *Y, size_t ldy, size_t lo, size_t n)
{
	const struct qvl_kernels *k = &f->e->k;
	const struct eng_mat *w = f->w[p];

	if (f->xa[p])
		k->matmul_act(Y, ldy, f->X, f->ldx, f->xa[p], mat_row(w, lo), w->type, w->k, NULL,
			      f->m, n, w->k);
	else
		k->matmul(Y, ldy, f->X, f->ldx, mat_row(w, lo), w->type, w->k, NULL, f->m, n,
			  w->k);
}

/* Columns [lo, hi) of the current matmul. The weights listed in f->w are
 * split over their concatenated rows so q, k and v (or gate and up) share
 * one dispatch. With f->silu: gate and up over the same columns, then
 * SiLU(gate)·up on them by the thread that just wrote them: one dispatch
 * instead of three, and in decode the slice is still in L1/L2 when it is
 * combined instead of re-read from memory. */
static void matmul_range(struct fwd *f, size_t lo, size_t hi)
{
	const struct qvl_kernels *k = &f->e->k;
	size_t base = 0;

	if (f->silu) {
		mm(f, 0, f->Y[0] + lo, f->ldy[0], lo, hi - lo);
		mm(f, 1, f->Y[1] + lo, f->ldy[1], lo, hi - lo);
		for (size_t i = 0; i < f->m; i++)
			k->silu_mul(f->Y[0] + i * f->ldy[0] + lo, f->Y[0] + i * f->ldy[0] + lo,
				    f->Y[1] + i * f->ldy[1] + lo, hi - lo);
		if (f->xn) /* down's X */
			k->act_part(f->xn, f->ly->wd.type, f->Y[0], f->ldy[0], f->m, f->ly->wd.k, 0,
				    f->m, lo, hi);
		return;
	}
	for (int p = 0; p < f->nw; p++) {
		const struct eng_mat *w = f->w[p];
		size_t a = lo > base ? lo - base : 0, b = hi - base < w->n ? hi - base : w->n;

		if (hi > base && lo < base + w->n && b > a)
			mm(f, p, f->Y[p] + a, f->ldy[p], a, b - a);
		base += w->n;
	}
}

/* Columns of the current matmul (gate/up: of each of the two). */
static size_t matmul_cols(const struct fwd *f)
{
	size_t n = 0;

	for (int p = 0; p < (f->silu ? 1 : f->nw); p++)
		n += f->w[p]->n;
	return n;
}

/* Few rows (decode): W is streamed, so chunks of columns can move between
 * threads at no cost in reuse; f->share says the claims are set up. Many
 * rows: the static split, whole packed panels per thread. A decode batch
 * (m > 1) takes up to half a thread's share a chunk (SHARE_SPLITS), in
 * multiples of SHARE_CHUNK_ROWS (whole pairs of 16-row bf16 panels, whole
 * 6-row tiles), claims halving to SHARE_CHUNK_ROWS at the end: each
 * kernel call restarts its weight streams and, unless act_prep rounded the
 * rows once for the stage (the bf16 panels, the X8 types), rounds its m
 * activation rows to bf16 again (m x k values: at 192 columns a call ~5 %
 * of a batch of 16's CPU time, perf, bench_step). Two chunks a thread
 * still let one thread take the other's when it lost its CPU. One row:
 * see SHARE_CHUNK_Q. */
#define SHARE_CHUNK	 64
#define SHARE_CHUNK_ROWS 192
#define SHARE_SPLITS	 2

/* A one-row product costs a call per chunk: chunks of SHARE_CHUNK_Q rows
 * (QVL_QDECODE_ROWS, benchmarks), at least two a thread, which let the
 * kernel read far-apart row streams inside a chunk (qdot_x8_act.h,
 * bp_matvec), and tiles of as many rows for the logits (argmax_task).
 * q4_0 on prepared activations: 512 rows in 4 streams, 256-1024 measured
 * the same, 64 (one stream of 8 groups) 13 % slower. bf16 panels: 64 rows
 * (4 adjacent panels, the activation rounded to bf16 per call) 3-7 %
 * slower than 256-1024 (gate/up of the 2b shape, CPU time, one and two
 * threads; docs/todo-npstep.md). Claims halve down to SHARE_CHUNK at the
 * end of a range (share_min), so the threads still finish a dispatch
 * within a 64-row call of each other. */
#define SHARE_CHUNK_Q 512

static size_t share_chunk(const struct fwd *f)
{
	/* at least SHARE_SPLITS chunks a thread, so that many threads still
	 * share a 1024-row product */
	size_t per = matmul_cols(f) / (SHARE_SPLITS * (size_t)f->e->nth);

	if (qvl_qdecode_rows())
		return qvl_qdecode_rows(); /* QVL_QDECODE_ROWS: exactly that */
	if (f->m > 1) {
		per = per / SHARE_CHUNK_ROWS * SHARE_CHUNK_ROWS;
		return per > SHARE_CHUNK_ROWS ? per : SHARE_CHUNK_ROWS;
	}
	per &= ~(size_t)15;
	if (per >= SHARE_CHUNK_Q)
		return SHARE_CHUNK_Q;
	return per > SHARE_CHUNK ? per : SHARE_CHUNK;
}

/* The smallest claim (claim_next() halves what is left down to it): the
 * old fixed chunks, whose tails end a dispatch close together. */
static size_t share_min(const struct fwd *f)
{
	if (qvl_qdecode_rows())
		return qvl_qdecode_rows();
	return f->m > 1 ? SHARE_CHUNK_ROWS : SHARE_CHUNK;
}

/* o_proj and down take X from the stage before (the
 * attention output, SiLU(gate)·up), which the threads write in parts:
 * each thread prepares the parts it wrote (act_part) while they are in its
 * L1, so the product's dispatch does not start with the caller alone
 * preparing rows half of which are in the other core's cache (down: 16
 * rows of 6144, ~33 us a layer at 2 threads, the worker idle). Prefill
 * the same: there each thread's kernel calls rounded all the rows again.
 * e->xn, or NULL when w's type is not prepared in parts (act_prep's
 * rules, then act_part's). */
static void *next_prep(struct fwd *f, const struct eng_mat *w, size_t m)
{
	struct qvl_engine *e = f->e;
	const struct qvl_kernels *k = &e->k;
	size_t b;

	if (!k->act_part || k->matmul != k->matmul_fast || e->nth == 1 ||
	    !(b = k->act_bytes(w->type, m, w->k)) ||
	    !k->act_part(e->xn, w->type, NULL, 0, m, w->k, 0, 0, 0, 0))
		return NULL;
	if (!grow_buf(&e->xn, &e->xn_cap, b))
		return NULL;
	return e->xn;
}

static void matmul_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	size_t lo, hi;

	if (f->share) {
		while (claim_next(f->e->claims, ith, nth, share_chunk(f), share_min(f), &lo, &hi))
			matmul_range(f, lo, hi);
		return;
	}
	qvl_split(matmul_cols(f), 16, ith, nth, &lo, &hi);
	if (hi > lo)
		matmul_range(f, lo, hi);
}

static void matmul(struct fwd *f)
{
	size_t n = matmul_cols(f);

	/* one thread is enough for a tiny matrix; otherwise split */
	f->share = false;
	for (int p = 0; p < 3; p++)
		f->xa[p] = NULL;
	if (f->e->nth == 1 || n * f->w[0]->k * f->m < 4096) {
		matmul_task(f, 0, 1);
		return;
	}
	if (f->m <= SHARE_MAX_ROWS) {
		claim_init(f->e->claims, f->e->nth, n, 16);
		f->share = true;
	}
	if (f->pre)
		f->xa[0] = f->pre; /* made by the stage before (next_prep) */
	else
		act_prep(f, f->X, f->ldx, f->m);
	qvl_pool_run(f->e->pool, matmul_task, f);
}

/* Embedding rows (image rows replaced), cos/sin of each row's M-RoPE angles,
 * and the first layer's input norm, fused per row: the row is in L1 when it
 * is normalised. */
static void embed_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	size_t lo, hi, H = (size_t)e->H, half = (size_t)e->hd / 2;

	qvl_split(f->n, 1, ith, nth, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		const struct eng_row *r = &e->rows[i];
		const struct qvl_chunk *c = r->c;
		float *x = e->x + i * H, *cs = e->cs + i * (size_t)e->hd;
		int32_t p[3];

		if (r->rank >= 0)
			memcpy(x, c->embd + (size_t)r->rank * H, H * sizeof(float));
		else
			e->k.to_f32(x, mat_row(&e->embd, (size_t)c->ids[r->ci]), e->embd.type, H);
		if (c->pos) {
			p[0] = c->pos[r->ci][0];
			p[1] = c->pos[r->ci][1];
			p[2] = c->pos[r->ci][2];
		} else {
			p[0] = p[1] = p[2] = r->s->next_pos + (int32_t)r->ci;
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

/* Rows [i0, i1), KV groups [g0, g1) (with their query heads): q/k head
 * RMSNorm then M-RoPE (each head normalised and rotated while in L1), and
 * K/V appended to the cache in its dtype. */
/* Prefetch bytes [o, o + nb) of page's K and V rows of layer l, KV group g,
 * a line of each at a time: for the append's stores (write, kept: T0) or
 * for the attention's one read (NTA). */
static inline void kv_ask_lines(const struct kv_pool *p, uint32_t page, int l, int g, size_t o,
				size_t nb, bool write)
{
	const char *K = (const char *)kv_page_rows(p, page, l, 0, g);
	const char *V = (const char *)kv_page_rows(p, page, l, 1, g);

	for (size_t end = o + nb; o < end; o += 64) {
		if (write) {
			__builtin_prefetch(K + o, 1, 3);
			__builtin_prefetch(V + o, 1, 3);
		} else {
			__builtin_prefetch(K + o, 0, 0);
			__builtin_prefetch(V + o, 0, 0);
		}
	}
}

/* Ask for the cache lines row i appends to (KV groups [g0, g1)): each
 * 256-byte row lands in a line not yet read, and the append's stores wait
 * for it. Asked one row ahead: norm + rope + append 1.07-1.15 -> 0.89-1.05
 * ms a thread a step (bench_step 16 x 32, thread CPU timers, 4 runs each
 * alternated, 19:28 UTC, load 2.3). */
static void kv_ask_append(const struct fwd *f, size_t i, size_t g0, size_t g1)
{
	const struct qvl_engine *e = f->e;
	size_t pos = (size_t)e->rows[i].pos, P = e->kv->g.page_tokens, rb = e->kv->g.row_bytes;
	uint32_t page = e->rows[i].s->kv.pages[pos / P];

	for (size_t g = g0; g < g1; g++)
		kv_ask_lines(e->kv, page, f->l, (int)g, (pos % P) * rb, rb, true);
}

static void qk_rows(struct fwd *f, size_t i0, size_t i1, size_t g0, size_t g1)
{
	struct qvl_engine *e = f->e;
	const struct eng_layer *ly = &e->layers[f->l];
	size_t hd = (size_t)e->hd, half = hd / 2, group = (size_t)(e->nh / e->nkv);
	size_t qd = (size_t)e->nh * hd, kd = (size_t)e->nkv * hd;

	for (size_t i = i0; i < i1; i++) {
		const struct qvl_seq *s = e->rows[i].s;
		size_t pos = (size_t)e->rows[i].pos, P = e->kv->g.page_tokens;
		uint32_t page = s->kv.pages[pos / P];
		size_t off = (pos % P) * e->kv->g.row_bytes;
		const float *cs = e->cs + i * hd;
		float *q = e->q + i * qd, *k = e->kk + i * kd, *v = e->vv + i * kd;

		if (i + 1 < i1)
			kv_ask_append(f, i + 1, g0, g1);
		for (size_t h = g0 * group; h < g1 * group; h++) {
			e->k.rmsnorm(q + h * hd, q + h * hd, ly->q_norm, hd, e->eps);
			e->k.rope(q + h * hd, cs, cs + half, half);
		}
		for (size_t g = g0; g < g1; g++) {
			e->k.rmsnorm(k + g * hd, k + g * hd, ly->k_norm, hd, e->eps);
			e->k.rope(k + g * hd, cs, cs + half, half);
			e->k.from_f32(kv_page_rows(e->kv, page, f->l, 0, (int)g) + off, e->kv_dtype,
				      k + g * hd, hd);
			e->k.from_f32(kv_page_rows(e->kv, page, f->l, 1, (int)g) + off, e->kv_dtype,
				      v + g * hd, hd);
		}
	}
}

static void qk_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	size_t lo, hi;

	qvl_split(f->n, 1, ith, nth, &lo, &hi);
	qk_rows(f, lo, hi, 0, (size_t)f->e->nkv);
}

/* Causal GQA attention of rows [i0, i0 + nr) (one sequence, consecutive
 * positions) with KV head g and its group of query heads: one attn_tile, so
 * each K/V block is widened once for the tile's rows and heads, not once
 * per row and query head. A row sees its own sequence's cache up to and
 * including its position, through the sequence's page table; its result
 * does not depend on the tile (attn_tile's contract), so a row computes
 * the same alone in decode, in any prefill chunk and in a batch. */
static void attn_rows(struct fwd *f, size_t i0, size_t nr, size_t g)
{
	struct qvl_engine *e = f->e;
	size_t hd = (size_t)e->hd, qd = (size_t)e->nh * hd, group = (size_t)(e->nh / e->nkv);
	float scale = (float)(1.0 / sqrt((double)hd));
	const struct kv_pool *p = e->kv;
	const uint8_t *base = kv_page_rows(p, 0, 0, 0, 0);
	struct qvl_kv_view kv = {
	    .base = base,
	    .ids = e->rows[i0].s->kv.pages,
	    .page_bytes = kv_pool_page_bytes(p),
	    .page_rows = p->g.page_tokens,
	    .k_off = (size_t)(kv_page_rows(p, 0, f->l, 0, (int)g) - base),
	    .v_off = (size_t)(kv_page_rows(p, 0, f->l, 1, (int)g) - base),
	    .stride = hd,
	    .type = e->kv_dtype};

	e->k.attn_tile(e->att + i0 * qd + g * group * hd, qd, e->q + i0 * qd + g * group * hd, qd,
		       group, nr, &kv, (size_t)e->rows[i0].pos + 1, hd, scale);
}

/* Rows after i0 that continue its tile: same sequence, next position, at
 * most ATTN_TILE_ROWS rows (two passes of the kernel's 64 query vectors at
 * 2 heads a group; longer tiles would balance worse between threads). */
#define ATTN_TILE_ROWS 32
static size_t tile_len(const struct qvl_engine *e, size_t i0, size_t n)
{
	size_t r = 1;

	while (i0 + r < n && r < ATTN_TILE_ROWS && e->rows[i0 + r].s == e->rows[i0].s &&
	       e->rows[i0 + r].pos == e->rows[i0].pos + (int)r)
		r++;
	return r;
}

/* Rows [i0, i1) of o_proj's X (the attention output) under KV head g,
 * prepared (next_prep) while they are in this thread's cache. */
static void attn_prep(struct fwd *f, size_t i0, size_t i1, size_t g)
{
	struct qvl_engine *e = f->e;
	size_t qd = (size_t)e->nh * e->hd, c = (size_t)(e->nh / e->nkv) * e->hd;

	e->k.act_part(f->xn, f->ly->wo.type, e->att, qd, f->n, qd, i0, i1, g * c, (g + 1) * c);
}

/* Items (tile, KV head) dealt round-robin: each thread takes its share of
 * the KV heads of every tile, so the long tiles at the end of a prefill
 * slice are shared out evenly. Every thread walks the same tiling. */
static void attn_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	size_t nkv = (size_t)f->e->nkv, t = 0;

	for (size_t i0 = 0, nr; i0 < f->n; i0 += nr) {
		nr = tile_len(f->e, i0, f->n);
		for (size_t g = 0; g < nkv; g++, t++)
			if (t % (size_t)nth == (size_t)ith) {
				attn_rows(f, i0, nr, g);
				if (f->xn)
					attn_prep(f, i0, i0 + nr, g);
			}
	}
}

/* Row i's attention with KV head g, then that part of o_proj's X
 * prepared (next_prep). */
static void attn_item(struct fwd *f, size_t i, size_t g)
{
	attn_rows(f, i, 1, g);
	if (f->xn)
		attn_prep(f, i, i + 1, g);
}

/* Ask for every line of row i's K and V rows of KV head g (its positions
 * so far), into L1 without displacing L2 (the products' activation rows).
 * A decode item (one row, one KV group: 2 x 16 KiB at 32 positions) waits
 * on its misses with little work to cover them, and its kernel's own
 * requests (attn_tile.h prefetch_rows) start only when it does: asking
 * for the next item's while one is attended keeps misses in flight across
 * items. Attention loop of 16 sequences x 28 layers x 8 groups, 2 threads,
 * CPU time, variants alternated (scratch /work/bench/s15/kvpf/ah.c, load
 * 2.4-3.7): 32 positions 3.50 -> 2.93 ms a thread (NTA; T0 3.03; 2 items
 * ahead 3.12; T1 / T2 slower than none, 3.57 / 3.60 against 3.43), 60
 * positions 4.78 -> 4.83 (the kernel already asks for its second block
 * ahead). */
static void kv_ask(const struct fwd *f, size_t i, size_t g)
{
	const struct qvl_engine *e = f->e;
	const struct kv_pool *p = e->kv;
	size_t n = (size_t)e->rows[i].pos + 1, P = p->g.page_tokens, rb = p->g.row_bytes;
	const uint32_t *pages = e->rows[i].s->kv.pages;

	for (size_t j0 = 0; j0 < n; j0 += P)
		kv_ask_lines(p, pages[j0 / P], f->l, (int)g, 0, (n - j0 < P ? n - j0 : P) * rb, false);
}

/* Decode (few rows): the whole attention block of a layer in one dispatch.
 * Work items are whole KV groups: a thread computes their q, k and v rows
 * (its share of the three weight matrices, each byte read by one thread),
 * norms and rotates them, appends K/V and attends, with no barrier in
 * between: nothing it reads was written by another thread. Groups are
 * claimed (claim.h), each thread's own half first, two groups a claim (the
 * calls stay 256+ columns: each restarts its weight streams), so that on a
 * loaded machine a thread that lost its CPU no longer holds the stage: with
 * the static split this stage took 34-40 % of a batch of 16's step for 14 %
 * of the weights (QVL_PROFILE=16, load 5). */
static void qkv_attn_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	size_t hd = (size_t)e->hd, group = (size_t)(e->nh / e->nkv), g0, g1;
	size_t qd = (size_t)e->nh * hd, kd = (size_t)e->nkv * hd;
	size_t qr = group * hd, per = (size_t)e->nkv / (SHARE_SPLITS * (size_t)nth);

	per = per ? per : 1;

	/* f->w: wq, wk, wv; f->X: xb (qkv_attn) */
	while (claim_next(e->claims, ith, nth, per, per, &g0, &g1)) {
		mm(f, 0, e->q + g0 * qr, qd, g0 * qr, (g1 - g0) * qr);
		mm(f, 1, e->kk + g0 * hd, kd, g0 * hd, (g1 - g0) * hd);
		mm(f, 2, e->vv + g0 * hd, kd, g0 * hd, (g1 - g0) * hd);
		qk_rows(f, 0, f->n, g0, g1);
		/* items (row, group) in row order, the next one asked for
		 * while this one is attended (kv_ask) */
		kv_ask(f, 0, g0);
		for (size_t t = 0, ng = g1 - g0, ni = f->n * ng; t < ni; t++) {
			if (t + 1 < ni)
				kv_ask(f, (t + 1) / ng, g0 + (t + 1) % ng);
			attn_item(f, t / ng, g0 + t % ng);
		}
	}
}

/* x += o_proj output, then the post-attention norm, in one pass over x. */
static void post_attn_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	size_t lo, hi, H = (size_t)e->H;

	qvl_split(f->m, 1, ith, nth, &lo, &hi);
	for (size_t i = lo; i < hi; i++)
		e->k.add_rmsnorm(e->xb + i * H, e->x + i * H, e->tmp + i * H,
				 e->layers[f->l].ffn_norm, H, e->eps);
}

/* x += down output (+ DeepStack row at image positions, after the MLP as in
 * §7), then the next layer's input norm or the final norm, in one pass. */
static void post_mlp_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	size_t lo, hi, H = (size_t)e->H;
	const float *nw = f->last ? e->out_norm : e->layers[f->l + 1].attn_norm;

	qvl_split(f->m, 1, ith, nth, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		const struct eng_row *r = &e->rows[i];
		const struct qvl_chunk *c = r->c;
		float *x = e->x + i * H;

		if (r->rank >= 0 && f->l < c->n_deepstack) {
			e->k.add(x, e->tmp + i * H, H);
			e->k.add(x, c->deepstack + ((size_t)f->l * c->n_img + (size_t)r->rank) * H,
				 H);
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

/* The decode's attention block (qkv_attn_task) with its X prepared once. */
static void qkv_attn(struct fwd *f)
{
	const struct eng_layer *ly = f->ly;

	set_mm(f, f->e->xb, (size_t)f->e->H, f->n);
	f->nw = 3;
	f->w[0] = &ly->wq, f->w[1] = &ly->wk, f->w[2] = &ly->wv;
	act_prep(f, f->X, f->ldx, f->m);
	claim_init(f->e->claims, f->e->nth, (size_t)f->e->nkv, 1);
	run_all(f, qkv_attn_task);
}

/* Last layer: only rows whose logits or argmax are wanted go on through
 * o_proj and the MLP. Move them (x, attention output, row description) to
 * the front; j <= i, so copying in order never overwrites a row still to be
 * moved. */
static size_t gather_out_rows(struct qvl_engine *e, size_t n)
{
	size_t H = (size_t)e->H, qd = (size_t)e->nh * e->hd, j = 0;

	for (size_t i = 0; i < n; i++) {
		if (!e->rows[i].logits && !e->rows[i].argmax)
			continue;
		if (i != j) {
			memcpy(e->x + j * H, e->x + i * H, H * sizeof(float));
			memcpy(e->att + j * qd, e->att + i * qd, qd * sizeof(float));
			e->rows[j] = e->rows[i];
		}
		e->out_dst[j] = e->rows[i].logits;
		e->out_arg[j++] = e->rows[i].argmax;
	}
	return j;
}

/* Fused greedy output: logits of f->m rows (xb rows from f->X) over the
 * vocabulary tiles this thread claims (its own slice first, claim.h),
 * ARG_TILE ids at a time into a tile that stays in L1, each tile reduced
 * to its maximum at once. Several rows: tiles of ARG_TILE_ROWS ids written
 * at their place in e->lscratch (free here: logits_group() runs in its own
 * dispatch), 256 KB for 16 rows, in L2; fewer, longer calls (198 tiles
 * of 768 ids a step before) restart the weight streams less often. The
 * thread's best per row goes to
 * arg_val/arg_idx[ith]; argmax_reduce() combines them. A thread that got
 * no tile keeps -inf and id SIZE_MAX. */
#define ARG_TILE      256
#define ARG_TILE_ROWS 4096

static void argmax_task(void *arg, int ith, int nth)
{
	struct fwd *f = arg;
	struct qvl_engine *e = f->e;
	float tile1[ARG_TILE_ROWS], *tile = tile1;
	float *best = e->arg_val + (size_t)ith * ENG_LOGIT_ROWS;
	size_t lo, hi, *bidx = e->arg_idx + (size_t)ith * ENG_LOGIT_ROWS;
	size_t ts, ts_min, ld;

	if (f->m > 1) {
		ts = ARG_TILE_ROWS;
		ts_min = ARG_TILE_ROWS / 4;
		ld = (size_t)e->V;
	} else {
		/* the decode chunk, up to the tile's room, down to ARG_TILE */
		size_t c = share_chunk(f);
		ts = ld = c < ARG_TILE ? ARG_TILE : c > ARG_TILE_ROWS ? ARG_TILE_ROWS : c;
		ts_min = ts % ARG_TILE ? ts : ARG_TILE;
	}

	for (size_t r = 0; r < f->m; r++) {
		best[r] = -INFINITY;
		bidx[r] = SIZE_MAX;
	}
	while (claim_next(e->claims, ith, nth, ts, ts_min, &lo, &hi)) {
		if (f->m > 1)
			tile = e->lscratch + lo;
		mm(f, 0, tile, ld, lo, hi - lo);
		for (size_t r = 0; r < f->m; r++) {
			float v;
			size_t i = lo + e->k.argmax(tile + r * ld, hi - lo, &v);

			/* tiles come in any order: ties go to the lower id */
			if (v > best[r] || (v == best[r] && i < bidx[r])) {
				best[r] = v;
				bidx[r] = i;
			}
		}
	}
}

/* The largest of the threads' maxima, the lower id on ties; a row with no
 * value above -inf gets 0, as the argmax kernel over the whole row would. */
static void argmax_reduce(struct qvl_engine *e, size_t m, int32_t *const *dst, int nth)
{
	for (size_t r = 0; r < m; r++) {
		float best = -INFINITY;
		size_t id = SIZE_MAX;

		for (int t = 0; t < nth; t++) {
			float v = e->arg_val[(size_t)t * ENG_LOGIT_ROWS + r];
			size_t i = e->arg_idx[(size_t)t * ENG_LOGIT_ROWS + r];

			if (v > best || (v == best && i < id)) {
				best = v;
				id = i;
			}
		}
		*dst[r] = best > -INFINITY ? (int32_t)id : 0;
	}
}

/* Output rows [j0, j0 + m) that want only their argmax. */
static void argmax_out(struct fwd *f, size_t j0, size_t m)
{
	struct qvl_engine *e = f->e;
	int nth = e->nth;

	set_mm(f, e->xb + j0 * (size_t)e->H, (size_t)e->H, m);
	act_prep(f, f->X, f->ldx, m); /* f->w[0] is e->out (logits_out) */
	claim_init(e->claims, nth, e->out.n, 16);
	if (nth == 1)
		argmax_task(f, 0, 1);
	else
		qvl_pool_run(e->pool, argmax_task, f);
	eng_prof_mark(e->prof, EST_LOGITS);
	argmax_reduce(e, m, e->out_arg + j0, nth);
	eng_prof_mark(e->prof, EST_ARGMAX);
}

/* Output rows [j0, j0 + m) whose logits are wanted, through the scratch so
 * that the output matrix is read once for the group, not once per row. */
static void logits_group(struct fwd *f, size_t j0, size_t m)
{
	struct qvl_engine *e = f->e;
	size_t H = (size_t)e->H, V = (size_t)e->V;

	set_mm(f, e->xb + j0 * H, H, m);
	f->Y[0] = e->lscratch;
	matmul(f);
	for (size_t j = 0; j < m; j++)
		memcpy(e->out_dst[j0 + j], e->lscratch + j * V, V * sizeof(float));
}

/* The argmax of rows that also have logits, from the logits written. */
static void argmax_of_logits(struct qvl_engine *e, size_t nout)
{
	for (size_t j = 0; j < nout; j++)
		if (e->out_dst[j] && e->out_arg[j]) {
			float v;
			*e->out_arg[j] = (int32_t)e->k.argmax(e->out_dst[j], (size_t)e->V, &v);
		}
}

/* logits = final-normed rows · outᵀ, split over the vocabulary: straight
 * into the caller's buffer when every row wants logits and their
 * destinations are one contiguous block (a prefill with all_logits, or one
 * row); else runs of rows of one kind (logits, or argmax only) in groups of
 * up to ENG_LOGIT_ROWS. */
static void logits_out(struct fwd *f)
{
	struct qvl_engine *e = f->e;
	size_t H = (size_t)e->H, V = (size_t)e->V;
	bool contiguous = e->out_dst[0] != NULL;

	for (size_t j = 1; j < f->nout; j++)
		contiguous &= e->out_dst[j] == e->out_dst[0] + j * V;
	f->nw = 1;
	f->w[0] = &e->out;
	f->ldy[0] = V;
	if (contiguous) {
		set_mm(f, e->xb, H, f->nout);
		f->Y[0] = e->out_dst[0];
		matmul(f);
		eng_prof_mark(e->prof, EST_LOGITS);
	} else {
		for (size_t j0 = 0, m; j0 < f->nout; j0 += m) {
			bool fused = !e->out_dst[j0];

			for (m = 1;
			     m < ENG_LOGIT_ROWS && j0 + m < f->nout && !e->out_dst[j0 + m] == fused;
			     m++)
				;
			if (fused)
				argmax_out(f, j0, m);
			else
				logits_group(f, j0, m);
		}
		eng_prof_mark(e->prof, EST_LOGITS);
	}
	argmax_of_logits(e, f->nout);
	eng_prof_mark(e->prof, EST_ARGMAX);
}

int eng_forward_rows(struct qvl_engine *e, size_t n, struct qvl_err *err)
{
	return eng_forward_layers(e, n, 0, e->L, err);
}

int eng_forward_layers(struct qvl_engine *e, size_t n, int l0, int l1, struct qvl_err *err)
{
	struct fwd f = {.e = e, .n = n};
	size_t H = (size_t)e->H, qd = (size_t)e->nh * e->hd, kd = (size_t)e->nkv * e->hd;
	size_t I = (size_t)e->I, m = n;
	/* a few rows (decode): threads own whole KV groups, see qkv_attn_task */
	bool fuse_attn = n <= FUSE_ATTN_ROWS && e->nkv % e->nth == 0;

	f.m = n;
	/* the embeddings and head may still be landing (a streamed start
	 * reads them behind the open: offload/embed.c) */
	if ((l0 == 0 || l1 == e->L) && e->wsrc.shared) {
		int rc = e->wsrc.shared(e->wsrc.ctx, err);

		if (rc < 0)
			return rc;
	}
	eng_prof_begin(e->prof, n, e->rows[0].pos);
	if (l0 == 0) {
		run(&f, embed_task, n);
		eng_prof_mark(e->prof, EST_EMBED);
	}

	for (int l = l0; l < l1; l++) {
		struct eng_layer tmp;
		const struct eng_layer *ly;
		void *xn = NULL; /* the next product's X, prepared in parts */
		int rc = eng_layer_begin(e, l, &tmp, &ly, err);

		if (rc < 0) {
			eng_prof_end(e->prof);
			return rc; /* a layer's weights could not be read */
		}
		f.l = l;
		f.ly = ly;
		f.last = l == e->L - 1;
		if (fuse_attn) {
			f.xn = next_prep(&f, &ly->wo, n);
			qkv_attn(&f);
			xn = f.xn, f.xn = NULL;
			eng_prof_mark(e->prof, EST_QKV);
		} else {
			set_mm(&f, e->xb, H, n);
			f.nw = 3;
			f.w[0] = &ly->wq, f.Y[0] = e->q, f.ldy[0] = qd;
			f.w[1] = &ly->wk, f.Y[1] = e->kk, f.ldy[1] = kd;
			f.w[2] = &ly->wv, f.Y[2] = e->vv, f.ldy[2] = kd;
			matmul(&f);
			eng_prof_mark(e->prof, EST_QKV);
			run(&f, qk_task, n);
			eng_prof_mark(e->prof, EST_QKROPE);
			f.xn = next_prep(&f, &ly->wo, n);
			run(&f, attn_task, n * (size_t)e->nkv);
			xn = f.xn, f.xn = NULL;
			eng_prof_mark(e->prof, EST_ATTN);
		}

		if (f.last) {
			f.nout = m = gather_out_rows(e, n);
			if (m != n)
				xn = NULL; /* rows moved: o_proj prepares its own */
			if (!m) {
				eng_layer_end(e, l);
				eng_prof_end(e->prof);
				return 0; /* the cache is filled; no logits wanted */
			}
		}
		set_mm(&f, e->att, qd, m);
		f.nw = 1;
		f.w[0] = &ly->wo, f.Y[0] = e->tmp, f.ldy[0] = H;
		f.pre = xn;
		matmul(&f);
		f.pre = NULL;
		eng_prof_mark(e->prof, EST_OPROJ);
		run_min(&f, post_attn_task, m, NORM_INLINE + 1);
		eng_prof_mark(e->prof, EST_RES1);

		set_mm(&f, e->xb, H, m);
		f.nw = 2;
		f.silu = true;
		f.w[0] = &ly->wg, f.Y[0] = e->gate, f.ldy[0] = I;
		f.w[1] = &ly->wu, f.Y[1] = e->up, f.ldy[1] = I;
		f.xn = next_prep(&f, &ly->wd, m);
		matmul(&f);
		xn = f.xn, f.xn = NULL;
		eng_prof_mark(e->prof, EST_GATEUP);

		set_mm(&f, e->gate, I, m);
		f.nw = 1;
		f.w[0] = &ly->wd, f.Y[0] = e->tmp, f.ldy[0] = H;
		f.pre = xn;
		matmul(&f);
		f.pre = NULL;
		eng_prof_mark(e->prof, EST_DOWN);
		eng_layer_end(e, l); /* the post-MLP step uses only norms */
		run_min(&f, post_mlp_task, m, NORM_INLINE + 1);
		eng_prof_mark(e->prof, f.last ? EST_FINAL : EST_RES2);
	}
	if (l1 == e->L)
		logits_out(&f);
	eng_prof_end(e->prof);
	return 0;
}
