/* The ISA-independent part of the attention tile kernels (attn_avx512.c,
 * attn_avx2.c): the KV source and its pages, the passes over query vectors,
 * the block loop and the entry points. Included once at the end of each
 * ISA file, which defines before it: ATT_INL / ATT_T (its inline and target
 * attributes), ATT_FN(name) (its entry point names), ATT_B and ATT_D, and
 * the primitives widen_t, score_rows, block_softmax, pv_QVL_DT_{F32,F16,BF16},
 * out_zero and out_scale. The arithmetic of a query vector is the
 * primitives'; what is here only decides which vectors and rows meet, which
 * never changes a vector's bits (see attn_avx512.c). */
#ifndef QVL_ATTN_TILE_H
#define QVL_ATTN_TILE_H

#define ATT_V  64  /* query vectors per pass over the KV rows */
#define ATT_R  4   /* query vectors sharing each load of a K row */
#define ATT_DK 256 /* head sizes up to this: K widened once per block */

/* Where the tile's K and V rows are: contiguous (kv == NULL) or paged. */
struct src {
	const void *K, *V;
	const struct qvl_kv_view *kv;
	enum qvl_dtype t;
	size_t stride;
};

/* K and V of the block at j0: its rows are rows *jj.. of the returned
 * bases. Pages hold whole blocks (page_rows % 64 == 0). */
ATT_INL void blk_base(const struct src *s, size_t j0, const void **K, const void **V, size_t *jj)
{
	if (!s->kv) {
		*K = s->K, *V = s->V, *jj = j0;
		return;
	}
	const struct qvl_kv_view *kv = s->kv;
	const uint8_t *pg = kv->base + (size_t)kv->ids[j0 / kv->page_rows] * kv->page_bytes;
	*K = pg + kv->k_off;
	*V = pg + kv->v_off;
	*jj = j0 % kv->page_rows;
}

/* Ask for every line of nb K and V rows from row jj of the bases K, V.
 * A pass of one query row (decode) asks for this block and the next one
 * before this block's scores: one query row does little work per block,
 * and its loads come one dependent pass at a time (scores, then p·V), so
 * without the requests up front few misses are in flight, and a head's
 * rows in a page are 16 KiB runs, short for the hardware prefetcher. One thread through
 * shuffled 64-position f16 pages, quiet (session 11, scratch
 * /work/bench/s11/ap): 5.1 GB/s of KV with the old prefetch (the next
 * page's first block, prefetcht1), 15.9 with this (a plain read of the
 * same bytes 16.4); 7.9 asking for the next block only, 4.0 for none;
 * 4.6 -> 10.5 at 4096 positions, 6.7 -> 10.2 at AVX2. A prefill tile (up
 * to 32 rows, 64 query vectors a pass) does not ask: pp512 on the 2b
 * shape, its tile calls alternating with and without in one process, CPU
 * time per call with / without 0.992, 0.999 (bf16 GGUF, avx512 / avx2),
 * 1.001, 0.998 (q4_0), p10..p90 of each about 0.95..1.04 (session 12,
 * docs/todo-rev12.md): no gain to keep it for. */
ATT_INL void prefetch_rows(const struct src *s, const void *K, const void *V, size_t jj, size_t nb)
{
	size_t row = s->stride * (s->t == QVL_DT_F32 ? 4 : 2);
	const uint8_t *k = (const uint8_t *)K + jj * row, *v = (const uint8_t *)V + jj * row;

	for (size_t o = 0; o < nb * row; o += 64) {
		_mm_prefetch((const char *)(k + o), _MM_HINT_T0);
		_mm_prefetch((const char *)(v + o), _MM_HINT_T0);
	}
}

static ATT_T void widen_rows(float *F, size_t ld, const void *X, enum qvl_dtype t, size_t stride,
			     size_t jj, size_t nb, size_t d0, size_t dc)
{
	if (t == QVL_DT_F16)
		widen_t(QVL_DT_F16, F, ld, X, stride, jj, nb, d0, dc);
	else if (t == QVL_DT_BF16)
		widen_t(QVL_DT_BF16, F, ld, X, stride, jj, nb, d0, dc);
	else
		widen_t(QVL_DT_F32, F, ld, X, stride, jj, nb, d0, dc);
}

/* One pass: query vectors v < nv (vector v = head v % nq of row v / nq,
 * row r seeing lim0 + r KV rows). State per vector: running max m, sum l. */
struct pass {
	float *out;
	const float *q;
	size_t ldo, ldq, nq, nv, lim0, dim;
	float scale;
	bool prefetch; /* ask for each block's rows up front (prefetch_rows) */
};

ATT_INL size_t vec_lim(const struct pass *p, size_t v)
{
	return p->lim0 + v / p->nq;
}

/* Scores of the block at j0 for every live vector into acc[v][0..32):
 * from the block widened once into Kf when several vectors share it, else
 * straight from the cache's rows (the same values, so the same bits). */
ATT_INL void block_scores(const struct pass *p, float *acc, float *Kf, const void *K,
			  const struct src *s, size_t jj, size_t nb, size_t v0)
{
	const float *qv[ATT_R];
	const void *Kb;
	enum qvl_dtype t = s->t;
	size_t ks = s->stride;

	if (p->nv - v0 > 2 && p->dim <= ATT_DK) {
		widen_rows(Kf, ATT_DK, K, s->t, s->stride, jj, nb, 0, p->dim);
		Kb = Kf, t = QVL_DT_F32, ks = ATT_DK;
	} else {
		Kb = (const uint8_t *)K + jj * s->stride * (s->t == QVL_DT_F32 ? 4 : 2);
	}
	for (size_t v = v0; v < p->nv;) {
		size_t R = p->nv - v >= 4 ? 4 : p->nv - v >= 2 ? 2 : 1;
		float *a = acc + v * ATT_B;

		/* 4 vectors per pass over widened rows, at most 2 while
		 * widening in the loop (its registers) */
		if (t != QVL_DT_F32 && R == 4)
			R = 2;
		for (size_t r = 0; r < R; r++)
			qv[r] = p->q + (v + r) / p->nq * p->ldq + (v + r) % p->nq * p->dim;
		if (t == QVL_DT_F32 && R == 4)
			score_rows(4, QVL_DT_F32, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (t == QVL_DT_F32 && R == 2)
			score_rows(2, QVL_DT_F32, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (t == QVL_DT_F32)
			score_rows(1, QVL_DT_F32, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (t == QVL_DT_F16 && R == 2)
			score_rows(2, QVL_DT_F16, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (t == QVL_DT_F16)
			score_rows(1, QVL_DT_F16, a, qv, Kb, ks, nb, p->dim, p->scale);
		else if (R == 2)
			score_rows(2, QVL_DT_BF16, a, qv, Kb, ks, nb, p->dim, p->scale);
		else
			score_rows(1, QVL_DT_BF16, a, qv, Kb, ks, nb, p->dim, p->scale);
		v += R;
	}
}

static ATT_T void run_pass(const struct pass *p, const struct src *s)
{
	_Alignas(64) float Kf[ATT_B * ATT_DK];
	_Alignas(64) float Vf[ATT_B * ATT_D];
	_Alignas(64) float acc[ATT_V * ATT_B];
	float m[ATT_V], l[ATT_V], corr[ATT_V];
	size_t last = vec_lim(p, p->nv - 1), v0 = 0;

	for (size_t v = 0; v < p->nv; v++) {
		float *o = p->out + v / p->nq * p->ldo + v % p->nq * p->dim;

		m[v] = -INFINITY;
		l[v] = 0.0f;
		out_zero(o, p->dim);
	}
	for (size_t j0 = 0; j0 < last; j0 += ATT_B) {
		size_t nb = last - j0 < ATT_B ? last - j0 : ATT_B, jj;
		const void *K, *V;

		/* vectors whose rows end before this block are done */
		while (vec_lim(p, v0) <= j0)
			v0++;
		blk_base(s, j0, &K, &V, &jj);
		if (p->prefetch)
			prefetch_rows(s, K, V, jj, nb);
		if (p->prefetch && j0 + ATT_B < last) {
			const void *Kn, *Vn;
			size_t jn, nn = last - j0 - ATT_B;

			blk_base(s, j0 + ATT_B, &Kn, &Vn, &jn);
			prefetch_rows(s, Kn, Vn, jn, nn < ATT_B ? nn : ATT_B);
		}
		block_scores(p, acc, Kf, K, s, jj, nb, v0);
		for (size_t v = v0; v < p->nv; v++)
			corr[v] = block_softmax(acc + v * ATT_B, vec_lim(p, v) - j0, &m[v], &l[v]);
		/* V widened once when more than two vectors read it */
		bool wide = p->nv - v0 > 2;
		size_t es = s->t == QVL_DT_F32 ? 4 : 2;
		for (size_t d0 = 0; d0 < p->dim; d0 += ATT_D) {
			size_t dc = p->dim - d0 < ATT_D ? p->dim - d0 : ATT_D;
			const void *Vb = (const uint8_t *)V + (jj * s->stride + d0) * es;

			if (wide)
				widen_rows(Vf, ATT_D, V, s->t, s->stride, jj, nb, d0, dc);
			for (size_t v = v0; v < p->nv;) {
				size_t lim = vec_lim(p, v) - j0, nbv = lim < ATT_B ? lim : ATT_B;
				size_t np = v + 1 < p->nv && (v + 1) / p->nq == v / p->nq ? 2 : 1;
				float *o[2];
				const float *pj[2] = {acc + v * ATT_B, acc + (v + 1) * ATT_B};

				o[0] = p->out + v / p->nq * p->ldo + v % p->nq * p->dim + d0;
				o[1] = o[0] + p->dim;
				if (wide)
					pv_QVL_DT_F32(np, o, pj, corr + v, Vf, ATT_D, nbv, dc);
				else if (s->t == QVL_DT_F16)
					pv_QVL_DT_F16(np, o, pj, corr + v, Vb, s->stride, nbv, dc);
				else if (s->t == QVL_DT_BF16)
					pv_QVL_DT_BF16(np, o, pj, corr + v, Vb, s->stride, nbv, dc);
				else
					pv_QVL_DT_F32(np, o, pj, corr + v, Vb, s->stride, nbv, dc);
				v += np;
			}
		}
	}
	for (size_t v = 0; v < p->nv; v++) {
		float *o = p->out + v / p->nq * p->ldo + v % p->nq * p->dim;

		if (l[v] > 0.0f)
			out_scale(o, p->dim, 1.0f / l[v]);
	}
}

/* Rows [0, rows) with nq heads each, row r seeing nkv0 + r KV rows, in
 * passes of at most ATT_V vectors (whole rows, or heads of one row). */
static ATT_T void tile(float *out, size_t ldo, const float *q, size_t ldq, size_t nq, size_t rows,
		       const struct src *s, size_t nkv0, size_t dim, float scale, bool pf)
{
	if (!nq || !rows)
		return;
	if (nq > ATT_V) { /* more heads than a pass holds: groups of heads */
		for (size_t r = 0; r < rows; r++)
			for (size_t h = 0; h < nq; h += ATT_V)
				tile(out + r * ldo + h * dim, ldo, q + r * ldq + h * dim, ldq,
				     nq - h < ATT_V ? nq - h : ATT_V, 1, s, nkv0 + r, dim, scale,
				     pf);
		return;
	}
	size_t per = ATT_V / nq;

	for (size_t r = 0; r < rows; r += per) {
		size_t nr = rows - r < per ? rows - r : per;
		struct pass p = {.out = out + r * ldo,
				 .q = q + r * ldq,
				 .ldo = ldo,
				 .ldq = ldq,
				 .nq = nq,
				 .nv = nr * nq,
				 .lim0 = nkv0 + r,
				 .dim = dim,
				 .scale = scale,
				 .prefetch = pf};
		run_pass(&p, s);
	}
}

ATT_T void ATT_FN(tile)(float *out, size_t ldo, const float *q, size_t ldq, size_t nq, size_t rows,
			const struct qvl_kv_view *kv, size_t nkv0, size_t dim, float scale)
{
	struct src s = {.kv = kv, .t = kv->type, .stride = kv->stride};

	/* the prefetch is decode's (one row); prefill tiles measured no
	 * gain from it (prefetch_rows) */
	tile(out, ldo, q, ldq, nq, rows, &s, nkv0, dim, scale, rows == 1);
}

ATT_T void ATT_FN(paged)(float *out, const float *q, size_t nq, const struct qvl_kv_view *kv,
			 size_t nkv, size_t dim, float scale)
{
	ATT_FN(tile)(out, 0, q, 0, nq, 1, kv, nkv, dim, scale);
}

ATT_T void ATT_FN(gqa)(float *out, const float *q, size_t nq, const void *K, const void *V,
		       enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim, float scale)
{
	struct src s = {.K = K, .V = V, .t = kvtype, .stride = kv_stride};

	tile(out, 0, q, 0, nq, 1, &s, nkv, dim, scale, true);
}

ATT_T void ATT_FN(head)(float *out, const float *q, const void *K, const void *V,
			enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			float scale)
{
	ATT_FN(gqa)(out, q, 1, K, V, kvtype, kv_stride, nkv, dim, scale);
}
#endif
