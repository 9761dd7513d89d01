/* The vision tower (see vision.h; the math is qwen3-vl.md §4). One image at a
 * time: attention never crosses images, so encoding them separately is the
 * cu_seqlens segmentation of the reference. Matmuls are split over the pool
 * by output columns (or rows when there are few columns); everything else by
 * patch rows. The weights and the tower's shape are vision_load.c's. */
#include "vision.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_bf16.h"
#include "kernels.h"
#include "model.h"
#include "pool.h"
#include "preprocess.h"
#include "util.h"
#include "vattn.h"
#include "vattn_f32.h"
#include "vision_impl.h"
#include "vision_prof.h"

#define VIS_QB		64  /* queries per attention block */
#define VIS_XPACK_MAX_N 1024 /* patches up to which a run packs X once per product */

/* ---- parallel pieces ------------------------------------------------------ */

enum vis_op {
	VIS_NONE,
	VIS_MATMUL,
	VIS_LN,
	VIS_ROPE,
	VIS_ATTN,
	VIS_GELU_TANH,
	VIS_GELU_ERF,
	VIS_ADD,
	VIS_PACKX
};

struct vis_job {
	const struct qvl_vision *v;
	enum vis_op op;
	enum vis_stage st; /* for the profile */
	enum vis_op act;   /* VIS_MATMUL: 0 or VIS_GELU_TANH / VIS_GELU_ERF after it */
	size_t rows;	   /* rows of the operation (m for matmuls) */
	float *y;	   /* output (or in/out) */
	size_t ldy;	   /* row stride of y */
	const float *x;	   /* input */
	size_t ldx;	   /* row stride of x */
	const struct vis_lin *lin;
	uint32_t *xp;	      /* VIS_PACKX, VIS_MATMUL: x packed once for the GEMM, or NULL */
	uint32_t *xo;	      /* VIS_MATMUL with xp: y packed too, as the next product's x */
	atomic_int *unpacked; /* with xo: set when a thread wrote y only */
	bool xo_only;	      /* with xo or heads: y not written (vis_matmul) */
	bool heads;	      /* with xp: qkv stored by the GEMM as the bf16 attention's
			       * Q, K, V (vis_qkv_pair), rotated, not as y */
	const struct vis_norm *norm;
	size_t width;	      /* elements per row for LN / activations / add */
	const float *cs, *sn; /* RoPE tables [rows][hv/2] */
	float *kb, *vb;	      /* attention: K [nv][N][hv], V transposed [nv][hv][N]; with
			       * f32attn K and V panels (simd/vattn_f32.h) per head */
	float *sc;	      /* attention scores, scs floats per thread: [VIS_QB][N] for
			       * the GEMMs, the attention kernel's scratch otherwise */
	size_t scs;
	/* bf16 attention (v->bf16attn): Q rows [N][D], K and V laid out per head
	 * (kps, vps words apart) */
	uint16_t *qb;
	uint32_t *kp, *vp;
	size_t kps, vps;
};

/* A product's split over nth threads: by output columns when there are
 * enough of them (every thread then streams only its share of the
 * weights), else by rows. */
static bool vis_col_split(const struct vis_lin *l, int nth)
{
	return (size_t)l->n >= (size_t)nth * 64;
}

/* The row blocks of v->mc (see there) that a thread's `rows` rows run in. */
static size_t vis_row_blocks(const struct qvl_vision *v, size_t rows)
{
	size_t nb = v->mc ? rows / v->mc : 1;
	return nb ? nb : 1;
}

/* qkv's output as the GEMM finishes it (struct qvl_gemm_bf16_out's pair):
 * one head of q, k or v for mr rows, in T; q and k rotated, then all three
 * stored in the bf16 attention's layouts, as the VIS_ROPE pass does from
 * the rows of y (the same rope, the same stores: the same bits), here
 * while the tile is in L2 and without y (9.6 MB per 448x448 block). */
static void vis_qkv_pair(void *ctx, const float *lo, const float *hi, size_t row, int mr,
			 size_t col)
{
	const struct vis_job *j = (const struct vis_job *)ctx;
	const struct qvl_vision *v = j->v;
	const size_t hv = (size_t)v->hv, D = (size_t)v->Dv, part = col / D, h = col % D / hv;
	_Alignas(64) float x[64];

	for (int r = 0; r < mr; r++) {
		const size_t R = row + (size_t)r;
		memcpy(x, lo + (size_t)r * 32, 32 * sizeof(float));
		memcpy(x + 32, hi + (size_t)r * 32, 32 * sizeof(float));
		if (part < 2)
			v->k->rope(x, j->cs + R * hv / 2, j->sn + R * hv / 2, hv / 2);
		qvl_vattn_store_head(part == 0 ? j->qb + R * D + h * hv : NULL,
				     part == 1 ? j->kp + h * j->kps : NULL, j->vp + h * j->vps, x,
				     1.0f / sqrtf((float)hv), R, j->rows, hv);
	}
}

static void vis_work(void *arg, int ith, int nth)
{
	const struct vis_job *j = arg;
	const struct qvl_vision *v = j->v;
	const struct qvl_kernels *k = v->k;
	size_t lo, hi;

	switch (j->op) {
	case VIS_MATMUL: {
		/* split the output columns when there are enough of them (every
		 * thread then streams only its share of the weights), else the
		 * rows; the thread's rows in blocks of v->mc (see there), each
		 * block's activation (fused: the block is still in cache) */
		const struct vis_lin *l = j->lin;
		void (*act)(float *, size_t) = j->act == VIS_GELU_TANH	? k->gelu_tanh
					       : j->act == VIS_GELU_ERF ? k->gelu_erf
									: NULL;
		size_t c0 = 0, c1 = (size_t)l->n, r0 = 0, r1 = j->rows;
		if (vis_col_split(l, nth)) /* packed: whole panels (heads: whole heads) */
			qvl_split((size_t)l->n, j->heads ? 64 : l->wp ? 32 : 16, ith, nth, &c0, &c1);
		else
			qvl_split(j->rows, 1, ith, nth, &r0, &r1);
		if (c0 >= c1 || r0 >= r1)
			return;
		const size_t nb = vis_row_blocks(v, r1 - r0), kp = ((size_t)l->k + 1) / 2;
		const uint32_t *wp =
		    l->wp ? l->wp + c0 / 32 * qvl_gemm_bf16_packed_words(32, (size_t)l->k) : NULL;
		for (size_t b = 0; b < nb; b++) {
			size_t a = r0 + (r1 - r0) * b / nb, e = r0 + (r1 - r0) * (b + 1) / nb;
			/* X packed once by VIS_PACKX (vis_matmul), the
			 * activation on each tile as it is stored */
			const struct qvl_gemm_bf16_out o = {
			    .y = j->xo_only ? NULL : j->y + a * j->ldy + c0,
			    .ldy = j->ldy,
			    .act = act,
			    .xo = j->xo ? j->xo + a * (((size_t)l->n + 1) / 2) : NULL,
			    .kn = (size_t)l->n,
			    .xc = c0,
			    .pair = j->heads ? vis_qkv_pair : NULL,
			    .ctx = (void *)(uintptr_t)j,
			    .row = a};
			const float *bc = l->b ? l->b + c0 : NULL;
			if (j->xp ? qvl_gemm_bf16_packed_xw_avx512(&o, j->xp + a * kp, wp, bc, e - a,
								   c1 - c0, (size_t)l->k) == 0
				  : (j->heads || j->xo) && qvl_gemm_bf16_packed_out_avx512(
						    &o, j->x + a * j->ldx, j->ldx, wp, bc, e - a,
						    c1 - c0, (size_t)l->k) == 0)
				continue;
			/* relaxed: read after qvl_pool_run() returned, whose
			 * completion barrier orders it */
			if (j->unpacked)
				atomic_store_explicit(j->unpacked, 1, memory_order_relaxed);
			/* the packed panels where wmm() would run the GEMM (same
			 * bits), else the row-major W */
			if (!l->wp || e - a < GEMM_BF16_MIN_M ||
			    qvl_gemm_bf16_packed_avx512(
				j->y + a * j->ldy + c0, j->ldy, j->x + a * j->ldx, j->ldx, wp,
				l->b ? l->b + c0 : NULL, e - a, c1 - c0, (size_t)l->k))
				v->wmm(j->y + a * j->ldy + c0, j->ldy, j->x + a * j->ldx, j->ldx,
				       (const char *)l->w + c0 * l->row_bytes, l->dt, (size_t)l->k,
				       l->b ? l->b + c0 : NULL, e - a, c1 - c0, (size_t)l->k);
			for (size_t r = a; r < e && act; r++)
				act(j->y + r * j->ldy + c0, c1 - c0);
		}
		return;
	}
	case VIS_PACKX: {
		/* X of a column-split product for the GEMM, in the row blocks
		 * VIS_MATMUL will call it with, each thread a share of every
		 * block's row panels (both threads packed every row before) */
		const size_t nb = vis_row_blocks(v, j->rows), kk = (size_t)j->lin->k;
		for (size_t b = 0; b < nb; b++) {
			size_t a = j->rows * b / nb, e = j->rows * (b + 1) / nb;
			qvl_gemm_bf16_pack_x(j->xp + a * ((kk + 1) / 2), j->x + a * j->ldx, j->ldx,
					     e - a, kk, ith, nth);
		}
		return;
	}
	case VIS_ATTN: {
		/* items (head, block of VIS_QB queries): scores S = Q·Kᵀ for
		 * the block against every key of the image, softmax per row,
		 * O = S·V; both products run on the GEMM kernel. */
		const size_t N = j->rows, hv = (size_t)v->hv, D = (size_t)v->Dv;
		const size_t nqb = (N + VIS_QB - 1) / VIS_QB;
		const float scale = 1.0f / sqrtf((float)hv);
		float *S = j->sc + (size_t)ith * j->scs;
		qvl_split(nqb * (size_t)v->nv, 1, ith, nth, &lo, &hi);
		for (size_t it = lo; it < hi; it++) {
			const size_t h = it / nqb, q0 = it % nqb * VIS_QB;
			const size_t qn = N - q0 < VIS_QB ? N - q0 : VIS_QB;
			if (v->bf16attn) {
				qvl_vattn_bf16(j->y + q0 * D + h * hv, D, j->qb + q0 * D + h * hv,
					       D, qn, j->kp + h * j->kps, j->vp + h * j->vps, N, hv,
					       S);
				continue;
			}
			if (v->f32attn) {
				k->vattn_f32(j->y + q0 * D + h * hv, D, j->x + q0 * 3 * D + h * hv,
					     3 * D, qn, j->kb + h * qvl_vattn_f32_kp_floats(N, hv),
					     j->vb + h * qvl_vattn_f32_vp_floats(N, hv), N, hv, scale,
					     k->softmax, S);
				continue;
			}
			k->matmul(S, N, j->x + q0 * 3 * D + h * hv, 3 * D, j->kb + h * N * hv,
				  QVL_DT_F32, hv, NULL, qn, N, hv);
			for (size_t r = 0; r < qn; r++) {
				float *sr = S + r * N;
				for (size_t i = 0; i < N; i++)
					sr[i] *= scale;
				k->softmax(sr, N);
			}
			k->matmul(j->y + q0 * D + h * hv, D, S, N, j->vb + h * hv * N, QVL_DT_F32,
				  N, NULL, qn, hv, N);
		}
		return;
	}
	default:
		break;
	}
	qvl_split(j->rows, 1, ith, nth, &lo, &hi);
	for (size_t r = lo; r < hi; r++) {
		float *y = j->y + r * j->ldy;
		switch (j->op) {
		case VIS_LN:
			k->layernorm(y, j->x + r * j->ldx, j->norm->w, j->norm->b, j->width,
				     v->eps);
			break;
		case VIS_ADD:
			k->add(y, j->x + r * j->ldx, j->width);
			break;
		case VIS_ROPE: {
			/* y = qkv row: rotate q and k of every head, then copy k
			 * and v to the per-head buffers */
			const size_t hv = (size_t)v->hv, D = (size_t)v->Dv, N = j->rows;
			const float *cs = j->cs + r * hv / 2, *sn = j->sn + r * hv / 2;
			if (v->bf16attn) {
				for (int h = 0; h < v->nv; h++) {
					k->rope(y + h * hv, cs, sn, hv / 2);
					k->rope(y + D + h * hv, cs, sn, hv / 2);
				}
				qvl_vattn_store_row(j->qb + r * D, j->kp, j->kps, j->vp, j->vps, y,
						    y + D, y + 2 * D, 1.0f / sqrtf((float)hv), r, N,
						    (size_t)v->nv, hv);
				break;
			}
			if (v->f32attn) {
				const size_t kpf = qvl_vattn_f32_kp_floats(N, hv),
					     vpf = qvl_vattn_f32_vp_floats(N, hv);
				for (int h = 0; h < v->nv; h++) {
					float *q = y + h * hv, *kk = y + D + h * hv;
					k->rope(q, cs, sn, hv / 2);
					k->rope(kk, cs, sn, hv / 2);
					qvl_vattn_f32_store_k(j->kb + h * kpf, kk, r, hv);
					qvl_vattn_f32_store_v(j->vb + h * vpf, y + 2 * D + h * hv,
							      r, N, hv);
				}
				break;
			}
			for (int h = 0; h < v->nv; h++) {
				float *q = y + h * hv, *kk = y + D + h * hv;
				k->rope(q, cs, sn, hv / 2);
				k->rope(kk, cs, sn, hv / 2);
				memcpy(j->kb + ((size_t)h * N + r) * hv, kk, hv * sizeof(float));
				for (size_t d = 0; d < hv; d++)
					j->vb[((size_t)h * hv + d) * N + r] = y[2 * D + h * hv + d];
			}
			break;
		}
		default:
			break;
		}
	}
}

static void vis_task(void *arg, int ith, int nth)
{
	const struct vis_job *j = arg;
	struct vis_prof *p = j->v->prof;
	if (!p) {
		vis_work(arg, ith, nth);
		return;
	}
	uint64_t t0 = vis_prof_thread_ns();
	vis_work(arg, ith, nth);
	/* relaxed: the totals are read after qvl_pool_run() returned, whose
	 * completion barrier orders these adds before the read */
	atomic_fetch_add_explicit(&p->cpu_ns[j->st], vis_prof_thread_ns() - t0,
				  memory_order_relaxed);
}

static void vis_run(const struct qvl_vision *v, struct vis_job *j)
{
	uint64_t t0 = v->prof ? vis_prof_wall_ns() : 0;
	j->v = v;
	if (v->pool)
		qvl_pool_run(v->pool, vis_task, j);
	else
		vis_task(j, 0, 1);
	if (v->prof) {
		v->prof->wall_ns[j->st] += vis_prof_wall_ns() - t0;
		v->prof->calls[j->st]++;
	}
}

/* A job over rows of y and x, the rest of it zero. */
static struct vis_job vis_job_rows(enum vis_op op, enum vis_stage st, float *y, size_t ldy,
				   const float *x, size_t ldx, size_t rows)
{
	return (struct vis_job){
	    .op = op, .st = st, .rows = rows, .y = y, .ldy = ldy, .x = x, .ldx = ldx};
}

/* Whether l over m rows runs on the bf16 GEMM over packed panels, split by
 * columns (the products whose output the GEMM can hand over per tile). */
static bool vis_gemm_path(const struct qvl_vision *v, const struct vis_lin *l, size_t m)
{
	const int nth = v->pool ? qvl_pool_size(v->pool) : 1;

	return l->wp && vis_col_split(l, nth) && m / vis_row_blocks(v, m) >= GEMM_BF16_MIN_M;
}

/* y = x · Wᵀ + b, then the activation act (VIS_NONE, VIS_GELU_TANH,
 * VIS_GELU_ERF). Where the product runs on the GEMM over packed panels,
 * split by columns, x packed once: x_packed when a previous product left it
 * there (its return value), else in a pass of its own into xpack (a pool
 * run: ~1 us while the workers spin) instead of by each thread for every
 * row; and y packed into y_pack instead for the next product (NULL: not),
 * or, with heads (qkv: the attention job's buffers and rope tables), q, k
 * and v rotated into the attention's layouts (vis_qkv_pair), y itself then
 * not written (fc1's 4 x wider rows: 12.8 MB of stores per 448x448 block
 * that only a fallback read; qkv's 9.6 MB and the RoPE pass). y_pack,
 * heads and x_packed work without xpack too (X then packed per call). Same
 * bits: the same packed words, the same tiles. Returns whether y_pack
 * holds y packed or the heads are stored; y is written only when it
 * returns false. */
static bool vis_matmul(const struct qvl_vision *v, enum vis_stage st, float *y, size_t ldy,
		       const float *x, size_t ldx, const struct vis_lin *l, size_t m,
		       enum vis_op act, uint32_t *xpack, uint32_t *x_packed, uint32_t *y_pack,
		       const struct vis_job *heads)
{
	struct vis_job j = vis_job_rows(VIS_MATMUL, st, y, ldy, x, ldx, m);
	atomic_int unpacked = 0;

	j.act = act;
	j.lin = l;
	/* on the GEMM path: X packed once by a pass of its own when xpack is
	 * given; the heads, the packed output and a packed X given also
	 * where no X-pack pass runs (above VIS_XPACK_MAX_N) */
	const bool gemm = vis_gemm_path(v, l, m), packed = gemm && xpack;
	if (!packed && !(gemm && (heads || y_pack || x_packed))) {
		vis_run(v, &j);
		return false;
	}
	if (heads) { /* the attention's buffers and rope tables */
		j.heads = true;
		j.qb = heads->qb;
		j.kp = heads->kp;
		j.vp = heads->vp;
		j.kps = heads->kps;
		j.vps = heads->vps;
		j.cs = heads->cs;
		j.sn = heads->sn;
	}
	if (x_packed) {
		j.xp = x_packed;
	} else if (packed) {
		struct vis_job pj = j;
		pj.op = VIS_PACKX;
		pj.xp = j.xp = xpack;
		vis_run(v, &pj);
	}
	j.xo = y_pack;
	j.xo_only = y_pack || heads;
	j.unpacked = &unpacked;
	vis_run(v, &j);
	/* relaxed: the pool run's completion barrier orders the workers' stores */
	if (!j.xo_only || !atomic_load_explicit(&unpacked, memory_order_relaxed))
		return j.xo_only;
	/* a thread could not take the GEMM (its scratch): it wrote its rows of
	 * y, the others only their packed words; y whole again (the same bits) */
	j.xo = NULL;
	j.xo_only = j.heads = false;
	j.unpacked = NULL;
	vis_run(v, &j);
	return false;
}

static void vis_rows(const struct qvl_vision *v, enum vis_op op, enum vis_stage st, float *y,
		     size_t ldy, const float *x, size_t ldx, size_t rows, size_t width,
		     const struct vis_norm *norm)
{
	struct vis_job j = vis_job_rows(op, st, y, ldy, x, ldx, rows);

	j.width = width;
	j.norm = norm;
	vis_run(v, &j);
}

/* ---- position embedding and rotary tables (§4.2, §4.3) ------------------ */

/* torch.linspace(0, S-1, g) in float32 */
static float vis_linspace(int S, int g, int i)
{
	if (g == 1)
		return 0.0f;
	const float end = (float)(S - 1), step = end / (float)(g - 1);
	return i < g / 2 ? step * (float)i : end - step * (float)(g - 1 - i);
}

static void vis_patch_pos(const struct qvl_vision *v, int gw, size_t r, int *prow, int *pcol)
{
	const int M = v->M;
	const int mw = (int)(r % M), mh = (int)(r / M % M);
	const int bw = (int)(r / (M * M) % (gw / M)), bh = (int)(r / (M * M * (gw / M)));
	*prow = bh * M + mh;
	*pcol = bw * M + mw;
}

/* x[r] += interpolated position embedding; cos/sin tables for RoPE. */
static void vis_pos(const struct qvl_vision *v, int gh, int gw, size_t N, float *x, float *cs,
		    float *sn)
{
	const int S = v->S, D = v->Dv, hv = v->hv, q = hv / 4;
	for (size_t r = 0; r < N; r++) {
		int i, jx;
		vis_patch_pos(v, gw, r, &i, &jx);
		const float hy = vis_linspace(S, gh, i), wx = vis_linspace(S, gw, jx);
		const int fy = (int)hy, fx = (int)wx;
		const int cy = fy + 1 < S ? fy + 1 : S - 1, cx = fx + 1 < S ? fx + 1 : S - 1;
		const float dy = hy - (float)fy, dx = wx - (float)fx;
		const float w00 = (1 - dy) * (1 - dx), w01 = (1 - dy) * dx, w10 = dy * (1 - dx),
			    w11 = dy * dx;
		const float *e00 = v->pos + ((size_t)fy * S + fx) * D,
			    *e01 = v->pos + ((size_t)fy * S + cx) * D,
			    *e10 = v->pos + ((size_t)cy * S + fx) * D,
			    *e11 = v->pos + ((size_t)cy * S + cx) * D;
		float *xr = x + r * D;
		for (int d = 0; d < D; d++)
			xr[d] += w00 * e00[d] + w01 * e01[d] + w10 * e10[d] + w11 * e11[d];
		float *c = cs + r * (size_t)(hv / 2), *s = sn + r * (size_t)(hv / 2);
		for (int t = 0; t < q; t++) {
			float a = (float)i * v->inv_freq[t], b = (float)jx * v->inv_freq[t];
			c[t] = cosf(a);
			s[t] = sinf(a);
			c[q + t] = cosf(b);
			s[q + t] = sinf(b);
		}
	}
}

/* ---- encode --------------------------------------------------------------- */

/* The bf16 attention's buffers (simd/vattn.h) for N patches into j: Q rows,
 * per-head K and V layouts, per-thread scratch; one allocation at *mem.
 * -ENOMEM (also when the sizes overflow). */
static int vis_bf16attn_alloc(const struct qvl_vision *v, size_t N, size_t nth, struct vis_job *j,
			      void **mem)
{
	const size_t D = (size_t)v->Dv, hv = (size_t)v->hv, nv = (size_t)v->nv;
	size_t qw, kw, vw, sw, tot;
	j->kps = qvl_vattn_kp_words(N, hv);
	j->vps = qvl_vattn_vp_words(N, hv);
	j->scs = (qvl_vattn_scratch_floats(N) + 15) & ~(size_t)15; /* 64-byte apart */
	/* all in 4-byte words: Q is N*D bf16 = N*D/2 words (D even) */
	if (__builtin_mul_overflow(N, D / 2, &qw) || __builtin_mul_overflow(nv, j->kps, &kw) ||
	    __builtin_mul_overflow(nv, j->vps, &vw) || __builtin_mul_overflow(nth, j->scs, &sw) ||
	    __builtin_add_overflow(qw, kw, &tot) || __builtin_add_overflow(tot, vw, &tot) ||
	    __builtin_add_overflow(tot, sw + 16, &tot) || tot > SIZE_MAX / 4)
		return -ENOMEM;
	uint32_t *w = malloc(tot * 4);
	if (!w)
		return -ENOMEM;
	*mem = w;
	j->qb = (uint16_t *)(void *)w;
	j->kp = w + qw;
	j->vp = j->kp + kw;
	j->sc = (float *)(void *)(j->vp + vw);
	return 0;
}

static void vis_merge(const struct qvl_vision *v, const struct vis_merger *mg, bool post_norm,
		      const float *x, size_t N, float *u, float *t, float *out, uint32_t *xpack,
		      uint32_t *hpack)
{
	const size_t D = (size_t)v->Dv, w4 = 4 * D, nt = N / 4;
	if (post_norm)
		vis_rows(v, VIS_LN, VST_MERGE, u, w4, x, w4, nt, w4, &mg->norm);
	else
		vis_rows(v, VIS_LN, VST_MERGE, u, D, x, D, N, D, &mg->norm);
	/* u viewed [N/4][4D]: one 2x2 merge window per row */
	/* t only packed where fc2 reads it packed (the tiny tower's narrow
	 * fc2 is split by rows: it reads t) */
	bool t_packed = vis_matmul(v, VST_MERGE, t, w4, u, w4, &mg->fc1, nt, VIS_GELU_ERF, xpack,
				   NULL, hpack && vis_gemm_path(v, &mg->fc2, nt) ? hpack : NULL,
				   NULL);
	vis_matmul(v, VST_MERGE, out, (size_t)v->Do, t, w4, &mg->fc2, nt, VIS_NONE, xpack,
		   t_packed ? hpack : NULL, NULL, NULL);
}

void qvl_vision_set_progress(struct qvl_vision *v, void (*fn)(void *ctx, int done, int depth),
			     void *ctx)
{
	v->progress = fn;
	v->progress_ctx = ctx;
}

/* A tower pass in progress (qvl_vision_begin): the activations, rope tables
 * and attention scratch of one image, kept between the calls that run its
 * blocks, so that a pass cut anywhere gives the bits of one uncut pass (the
 * same operations in the same order on the same buffers). */
struct qvl_vision_run {
	struct qvl_vision *v;
	size_t N;
	float *x, *u, *att, *qkv, *h, *cs, *sn;
	void *ab;	 /* the bf16 attention's buffers, or NULL */
	uint32_t *xpack; /* a product's X packed once (vis_xpack_alloc), or NULL */
	uint32_t *hpack; /* fc1's output packed as fc2's X, or NULL */
	struct vis_job aj;
	float *main, *ds;
	size_t ds_stride;
	int b; /* blocks done */
};

/* The X-pack pass's buffers (vis_matmul): xpack for a product's input, N
 * rows of kx = max(patch_dim, D) (the mergers' N / 4 rows of 4 D are
 * N D / 2 words too), only when x; hpack for fc1's output as fc2's input,
 * N rows of hsz = max(I, D) (the mergers' 4 D: N D / 2 words). Without
 * them each thread packs its own rows of X from f32, the same bits. */
static void vis_xpack_alloc(struct qvl_vision_run *r, size_t kx, size_t hsz, bool x)
{
	const size_t wb = sizeof(uint32_t);
	size_t xw, hw;

	if (__builtin_mul_overflow(r->N, (kx + 1) / 2, &xw) || xw > SIZE_MAX / wb ||
	    __builtin_mul_overflow(r->N, (hsz + 1) / 2, &hw) || hw > SIZE_MAX / wb)
		return;
	r->xpack = x ? malloc(xw * wb) : NULL;
	r->hpack = malloc(hw * wb);
	if ((x && !r->xpack) || !r->hpack) {
		free(r->xpack);
		free(r->hpack);
		r->xpack = r->hpack = NULL;
	}
}

int qvl_vision_begin(struct qvl_vision *v, const struct qvl_pixels *px, float *main, float *ds,
		     size_t ds_stride, struct qvl_vision_run **out, struct qvl_err *err)
{
	const size_t N = (size_t)px->n, D = (size_t)v->Dv, I = (size_t)v->Iv;
	const int gh = px->grid[1], gw = px->grid[2];
	struct qvl_vision_run *r;
	float *kb, *vb, *sc;
	size_t nfl, kbn, vbn;

	*out = NULL;
	if (px->dim != v->patch_dim || px->grid[0] != 1 || gh <= 0 || gw <= 0 || gh % v->M ||
	    gw % v->M || (size_t)gh * (size_t)gw != N)
		return qvl_errf(
		    err, -EINVAL,
		    "vision: pixel grid (%d, %d, %d) x %d does not fit the tower (patch "
		    "dim %d, merge %d)",
		    px->grid[0], gh, gw, px->dim, v->patch_dim, v->M);
	/* x, u, att: N*D each; kb, vb: N*D each, with f32attn their padded
	 * layouts; qkv 3ND; h N*max(I, D); cs, sn N*hv/2 each; scores scs per
	 * thread: VIS_QB*N for the GEMMs, the f32 kernel's scratch (64-byte
	 * apart) with f32attn (the bf16 attention has its own, below) */
	const size_t hsz = I > D ? I : D, nth = v->pool ? (size_t)qvl_pool_size(v->pool) : 1;
	const size_t nv = (size_t)v->nv, hv = (size_t)v->hv;
	size_t scs = (qvl_vattn_f32_scratch_floats(N) + 15) & ~(size_t)15, scn;
	kbn = vbn = N * D;
	if ((!v->f32attn && __builtin_mul_overflow(N, (size_t)VIS_QB, &scs)) ||
	    __builtin_mul_overflow(scs, nth, &scn) ||
	    __builtin_mul_overflow(N, 6 * D + hsz + hv, &nfl) ||
	    (v->f32attn && (__builtin_mul_overflow(nv, qvl_vattn_f32_kp_floats(N, hv), &kbn) ||
			    __builtin_mul_overflow(nv, qvl_vattn_f32_vp_floats(N, hv), &vbn))) ||
	    __builtin_add_overflow(nfl, kbn, &nfl) || __builtin_add_overflow(nfl, vbn, &nfl) ||
	    __builtin_add_overflow(nfl, scn, &nfl))
		return qvl_errf(err, -EFBIG, "vision: %zu patches is too many", N);
	r = calloc(1, sizeof(*r));
	if (!r || !(r->x = malloc(nfl * sizeof(float)))) {
		free(r);
		return qvl_errf(err, -ENOMEM, "vision: cannot allocate activations for %zu patches",
				N);
	}
	r->v = v;
	r->N = N;
	r->main = main;
	r->ds = ds;
	r->ds_stride = ds_stride;
	r->u = r->x + N * D;
	r->att = r->u + N * D;
	kb = r->att + N * D;
	vb = kb + kbn;
	r->qkv = vb + vbn;
	if (v->f32attn) {
		/* the keys past N in each head's last panel (scored, then
		 * ignored) and the values past hv in each last panel (read,
		 * not stored) must be finite: zero, and never written after */
		const size_t kpf = qvl_vattn_f32_kp_floats(N, hv),
			     tail = N / VATTN_F32_KP * VATTN_F32_KP * hv;
		const size_t vpf = qvl_vattn_f32_vp_floats(N, hv), vlast = hv / 16 * 16 * N;
		for (size_t h = 0; h < nv; h++) {
			memset(kb + h * kpf + tail, 0, (kpf - tail) * sizeof(float));
			/* hv % 16: the last V panel (only it has pads) */
			memset(vb + h * vpf + vlast, 0, (vpf - vlast) * sizeof(float));
		}
	}
	r->h = r->qkv + 3 * N * D;
	r->cs = r->h + N * hsz;
	r->sn = r->cs + N * (size_t)(v->hv / 2);
	sc = r->sn + N * (size_t)(v->hv / 2);
	r->aj = (struct vis_job){.op = VIS_ATTN,
				 .st = VST_ATTN,
				 .rows = N,
				 .y = r->att,
				 .x = r->qkv,
				 .kb = kb,
				 .vb = vb,
				 .sc = sc,
				 .scs = scs};
	if (v->bf16attn && vis_bf16attn_alloc(v, N, nth, &r->aj, &r->ab)) {
		free(r->x);
		free(r);
		return qvl_errf(err, -ENOMEM,
				"vision: cannot allocate bf16 attention buffers for %zu patches",
				N);
	}

	/* The X-pack passes only up to VIS_XPACK_MAX_N patches: measured
	 * quiet (docs/todo-vis4.md), 448x448 (784 patches, fc2's packed X
	 * 6.4 MB) 3.5 % less tower time with them, 1024x768 (3072, 25 MB: out
	 * of the caches between the pass that writes it and the product that
	 * reads it) ~1.5 % more. fc1's output packed for fc2 at every size:
	 * fc1 then writes only that (25 MB at 1024x768, not its 50 MB of f32
	 * rows) and fc2 packs nothing (each thread packed every row of them). */
	if (v->packed)
		vis_xpack_alloc(r, (size_t)v->patch_dim > D ? (size_t)v->patch_dim : D, hsz,
				N <= VIS_XPACK_MAX_N);
	vis_matmul(v, VST_PATCH, r->x, D, px->x, (size_t)px->dim, &v->patch, N, VIS_NONE, r->xpack,
		   NULL, NULL, NULL);
	{
		uint64_t t0 = v->prof ? vis_prof_thread_ns() : 0,
			 w0 = v->prof ? vis_prof_wall_ns() : 0;
		vis_pos(v, gh, gw, N, r->x, r->cs, r->sn);
		if (v->prof) {
			/* relaxed, on the caller thread between pool runs (their
			 * barriers order it with the workers' adds in vis_task) */
			atomic_fetch_add_explicit(&v->prof->cpu_ns[VST_POS],
						  vis_prof_thread_ns() - t0, memory_order_relaxed);
			v->prof->wall_ns[VST_POS] += vis_prof_wall_ns() - w0;
			v->prof->calls[VST_POS]++;
		}
	}
	*out = r;
	return 0;
}

int qvl_vision_blocks_left(const struct qvl_vision_run *r)
{
	return r->v->depth - r->b;
}

int qvl_vision_run(struct qvl_vision_run *r, int k)
{
	struct qvl_vision *v = r->v;
	const size_t N = r->N, D = (size_t)v->Dv, I = (size_t)v->Iv;
	float *x = r->x, *u = r->u, *att = r->att, *qkv = r->qkv, *h = r->h;

	for (; k > 0 && r->b < v->depth; k--, r->b++) {
		const int b = r->b;
		const struct vis_block *bk = &v->blk[b];
		vis_rows(v, VIS_LN, VST_LN, u, D, x, D, N, D, &bk->n1);
		struct vis_job rj = r->aj;
		rj.op = VIS_ROPE;
		rj.st = VST_ROPE;
		rj.y = qkv;
		rj.ldy = 3 * D;
		rj.cs = r->cs;
		rj.sn = r->sn;
		/* the rope and the attention's layouts on qkv's tiles where the
		 * heads are two GEMM panels, else a pass over the rows */
		if (!vis_matmul(v, VST_QKV, qkv, 3 * D, u, D, &bk->qkv, N, VIS_NONE, r->xpack,
				NULL, NULL, v->bf16attn && v->hv == 64 ? &rj : NULL))
			vis_run(v, &rj);
		vis_run(v, &r->aj);
		vis_matmul(v, VST_PROJ, u, D, att, D, &bk->proj, N, VIS_NONE, r->xpack, NULL, NULL,
			   NULL);
		vis_rows(v, VIS_ADD, VST_ADD, x, D, u, D, N, D, NULL);
		vis_rows(v, VIS_LN, VST_LN, u, D, x, D, N, D, &bk->n2);
		bool h_packed = vis_matmul(
		    v, VST_FC1, h, I, u, D, &bk->fc1, N, VIS_GELU_TANH, r->xpack, NULL,
		    r->hpack && vis_gemm_path(v, &bk->fc2, N) ? r->hpack : NULL, NULL);
		vis_matmul(v, VST_FC2, u, D, h, I, &bk->fc2, N, VIS_NONE, r->xpack,
			   h_packed ? r->hpack : NULL, NULL, NULL);
		vis_rows(v, VIS_ADD, VST_ADD, x, D, u, D, N, D, NULL);
		int ki = v->ds_of_block[b];
		if (ki >= 0 && r->ds)
			vis_merge(v, &v->ds[ki], true, x, N, u, att,
				  r->ds + (size_t)ki * r->ds_stride, r->xpack, r->hpack);
		if (v->progress)
			v->progress(v->progress_ctx, b + 1, v->depth);
	}
	return v->depth - r->b;
}

int qvl_vision_end(struct qvl_vision_run *r)
{
	int rc = -ECANCELED;

	if (!r)
		return rc;
	if (r->b == r->v->depth) {
		vis_merge(r->v, &r->v->merger, false, r->x, r->N, r->u, r->att, r->main, r->xpack,
			  r->hpack);
		if (r->v->prof)
			r->v->prof->images++;
		rc = 0;
	}
	free(r->ab);
	free(r->xpack);
	free(r->hpack);
	free(r->x);
	free(r);
	return rc;
}

/* The uncut pass is the cut one run in one go: one code path, so the two
 * cannot drift apart. */
int qvl_vision_encode(struct qvl_vision *v, const struct qvl_pixels *px, float *main, float *ds,
		      size_t ds_stride, struct qvl_err *err)
{
	struct qvl_vision_run *r;
	int rc = qvl_vision_begin(v, px, main, ds, ds_stride, &r, err);

	if (rc)
		return rc;
	qvl_vision_run(r, v->depth);
	return qvl_vision_end(r);
}

int qvl_vision_depth(const struct qvl_vision *v)
{
	return v->depth;
}
