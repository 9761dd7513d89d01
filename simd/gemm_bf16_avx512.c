/* The bf16 GEMM of `--precision bf16` for more than DP_MAX_M activation rows
 * (prefill chunks, the vision tower's row blocks): Y = bf16(X) · Wᵀ + bias
 * with vdpbf16ps (bf16 pairs multiplied, f32 accumulation), bf16 weights.
 * Called by qvl_matmul_bf16dot_avx512() (matmul_bf16dot.c), which owns the
 * dispatch and the m <= DP_MAX_M streamed tiles.
 *
 * Operands, both packed per call into the thread's scratch (qact.c):
 * - X: rounded to bf16 and interleaved per row panel of up to GB_MR rows:
 *   word p * mr + r of the panel is the pair (X[r][2p], X[r][2p + 1]), so a
 *   micro-tile's broadcasts are one sequential stream (the rows themselves
 *   are often a multiple of 4 KiB apart: 14 of them in one 12-way L1 set);
 * - W: a panel of 32 weight rows x kc pairs transposed to [p][32 columns]
 *   (pair p of 16 columns is one vector).
 * Micro-tile: mr <= GB_MR = 14 rows x 32 columns, 28 accumulators, per pair
 * p two panel vectors and 14 embedded broadcasts ({1to16}) for 28
 * vdpbf16ps (the previous 8 x 32 tile: 10 loads per 16).
 *
 * W may instead come packed once for all calls (qvl_gemm_bf16_pack(): the
 * same panel words, all k pairs of a panel consecutive), which saves the
 * packing per call (the vision tower: pack_w was 6 % of its cycles, its
 * products 7-10 % faster without, docs/todo-vattn2.md); same bits.
 *
 * X may come packed too (qvl_gemm_bf16_pack_x(), the same words; the
 * vision tower packs each product's X once, its threads splitting the rows,
 * where each thread packed every row for its column half), and an
 * activation may run on each tile as its last k block stores it, and the
 * tile be packed there as the X of the next product (the MLP's fc1 -> fc2:
 * from L1, where a pass of its own read the 4 x wider hidden rows from L3).
 *
 * Blocking (Zen 5: L1d 48 KiB, L2 1 MiB per core): the k pairs in blocks of
 * at most GB_KC (the X block of all rows x kc pairs stays in L2 while every
 * W panel of the column block passes), the columns in blocks of GB_NC (the
 * Y block they accumulate into between k blocks stays in L2 too). Every W
 * pair is packed once per call; X once per call.
 *
 * Summation order per output: k blocks in order, pairs in order within each
 * (one vdpbf16ps chain), the bias first: independent of m's panel split, of
 * n and of the thread split, but not the order of the m <= 64 tiles. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>

#include "gemm_bf16.h"

#define GB_MR 14
#define GB_NR 32

size_t qvl_gemm_bf16_packed_words(size_t n, size_t k)
{
	return (n + GB_NR - 1) / GB_NR * ((k + 1) / 2) * GB_NR;
}

#ifdef HAVE_AVX512BF16_KERNELS
#include "qdot.h"
#include "vec_avx512.h"

#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
#ifndef GB_KC
#define GB_KC 256 /* pairs per k block: a W panel of 32 KiB */
#endif
#define GB_NC 256 /* columns per block: T of 512 rows is 512 KiB */
#ifndef GB_MC
#define GB_MC 512 /* rows per block: X block of 512 rows x GB_KC pairs 512 KiB */
#endif

/* P[p][jj] = pair (W[j0+jj][k0+2p], W[j0+jj][k0+2p+1]), zero beyond k and nr. */
static TBF void pack_w(uint32_t *P, const uint16_t *W, size_t ldw, size_t j0, int nr, size_t k0,
		       size_t kcp, size_t k)
{
	for (int jb = 0; jb < GB_NR; jb += 16) {
		for (size_t p = 0; p < kcp; p += 16) {
			size_t kk = k0 + 2 * p, rem = k - kk; /* bf16 values left in the row */
			__mmask32 mk = rem >= 32 ? (__mmask32)~0u : (__mmask32)((1u << rem) - 1);
			__m512 v[16];
#pragma GCC unroll 16
			for (int r = 0; r < 16; r++)
				v[r] = jb + r < nr
					   ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(
						 mk, W + (j0 + (size_t)(jb + r)) * ldw + kk))
					   : _mm512_setzero_ps();
			v16_transpose(v);
			size_t e = kcp - p < 16 ? kcp - p : 16;
#pragma GCC unroll 16
			for (size_t c = 0; c < e; c++)
				_mm512_store_ps((float *)(P + (p + c) * GB_NR + jb), v[c]);
		}
	}
}

/* Rows x[0..mr) (ldx apart, k values) to bf16 pairs interleaved: Xp[p * mr + r]
 * for p < kp (the pair past an odd k holds a zero): 16 pairs of each row
 * converted, then transposed so that pair p of the mr rows is one store. */
static TBF void pack_x(uint32_t *Xp, const float *X, size_t ldx, int mr, size_t k, size_t kp)
{
	const __mmask16 mm = (__mmask16)((1u << mr) - 1);

	for (size_t p = 0; p < kp; p += 16) {
		size_t c = 2 * p;
		__mmask16 l = v16_mask(k > c ? k - c : 0);
		__mmask16 h = v16_mask(k > c + 16 ? k - c - 16 : 0);
		__m512 v[16];

#pragma GCC unroll 16
		for (int r = 0; r < 16; r++) {
			const float *x = X + (size_t)r * ldx + c;
			v[r] = r < mr
				   ? (__m512)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(h, x + 16),
								 _mm512_maskz_loadu_ps(l, x))
				   : _mm512_setzero_ps();
		}
		v16_transpose(v);
		size_t e = kp - p < 16 ? kp - p : 16;
#pragma GCC unroll 16
		for (size_t q = 0; q < e; q++)
			_mm512_mask_storeu_epi32(Xp + (p + q) * (size_t)mr, mm, (__m512i)v[q]);
	}
}

/* One micro-tile: mr rows x 32 columns over kcp pairs of A (mr words per
 * pair) and P. The sums start from the bias (or zero) in the first k block,
 * else from the block's accumulator T (mr x 32 contiguous floats); the last
 * k block stores them to Y (ldy, columns masked by m0 and m1), the others to
 * T. T keeps the partial sums out of Y, whose rows are often a multiple of
 * 8 or 24 KiB apart: a block of them in a few L2 sets. */
static inline __attribute__((always_inline)) TBF void
ukern(const int mr, float *Y, size_t ldy, float *T, const uint32_t *A, const uint32_t *P,
      size_t kcp, __mmask16 m0, __mmask16 m1, const float *bias, int first, int last)
{
	__m512 c0[GB_MR], c1[GB_MR];

#pragma GCC unroll 14
	for (int r = 0; r < mr; r++) {
		if (first) {
			c0[r] = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
			c1[r] = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
		} else {
			c0[r] = _mm512_load_ps(T + r * GB_NR);
			c1[r] = _mm512_load_ps(T + r * GB_NR + 16);
		}
	}
	for (size_t p = 0; p < kcp; p++) {
		__m512bh b0 = (__m512bh)_mm512_load_si512(P + p * GB_NR);
		__m512bh b1 = (__m512bh)_mm512_load_si512(P + p * GB_NR + 16);
#pragma GCC unroll 14
		for (int r = 0; r < mr; r++) {
			__m512bh a = (__m512bh)_mm512_set1_epi32((int)A[p * (size_t)mr + r]);
			c0[r] = _mm512_dpbf16_ps(c0[r], b0, a);
			c1[r] = _mm512_dpbf16_ps(c1[r], b1, a);
		}
	}
#pragma GCC unroll 14
	for (int r = 0; r < mr; r++) {
		if (last) {
			_mm512_mask_storeu_ps(Y + r * ldy, m0, c0[r]);
			_mm512_mask_storeu_ps(Y + r * ldy + 16, m1, c1[r]);
		} else {
			_mm512_store_ps(T + r * GB_NR, c0[r]);
			_mm512_store_ps(T + r * GB_NR + 16, c1[r]);
		}
	}
}

static TBF void ukern_any(int mr, float *Y, size_t ldy, float *T, const uint32_t *A,
			  const uint32_t *P, size_t kcp, __mmask16 m0, __mmask16 m1,
			  const float *bias, int first, int last)
{
	switch (mr * 4 + first * 2 + last) {
#define C1(R, F, L)                                                                                \
	case R * 4 + F * 2 + L:                                                                    \
		ukern(R, Y, ldy, T, A, P, kcp, m0, m1, bias, F, L);                                \
		break;
#define C(R) C1(R, 0, 0) C1(R, 0, 1) C1(R, 1, 0) C1(R, 1, 1)
		C(14) C(13) C(12) C(11) C(10) C(9) C(8) C(7) C(6) C(5) C(4) C(3) C(2) C(1)
#undef C
#undef C1
	}
}

/* Row panel i of np over m rows: rows [m i / np, m (i + 1) / np), at most
 * GB_MR each when np = ceil(m / GB_MR) (sizes differ by one at most). */
static inline size_t panel_row(size_t m, size_t np, size_t i)
{
	return m * i / np;
}

/* Part i of np of the lines of the W panel (rows j0.. j0 + nr, pairs p0 ..
 * p0 + kcp) into L2: the next panel's, spread over the current panel's
 * micro-tiles (a panel is 32 short pieces of rows, which the hardware
 * prefetchers do not cover: its loads stalled a quarter of the time). */
static inline void prefetch_w(const uint16_t *W, size_t ldw, size_t j0, size_t nr, size_t p0,
			      size_t kcp, size_t i, size_t np)
{
	size_t lpr = (kcp + 15) / 16, nl = nr * lpr; /* 16 pairs per 64-byte line */
	size_t t = nl * i / np, te = nl * (i + 1) / np, r = t / lpr, l = t % lpr;
	const uint16_t *w = W + (j0 + r) * ldw + 2 * p0;

	for (; t < te; t++) {
		_mm_prefetch((const char *)(w + 32 * l), _MM_HINT_T1);
		if (++l == lpr)
			l = 0, w += ldw;
	}
}

/* Part i of np of the lines of a pre-packed panel block (kcp pairs x 32
 * words, contiguous) into L2, as prefetch_w() does for the rows. */
static inline void prefetch_p(const uint32_t *P, size_t kcp, size_t i, size_t np)
{
	size_t nl = kcp * GB_NR / 16, t = nl * i / np, te = nl * (i + 1) / np;

	for (; t < te; t++)
		_mm_prefetch((const char *)(P + 16 * t), _MM_HINT_T1);
}

/* Rows [0, m) of one row block: X packed at Xp (kp pairs per row), the
 * column blocks of GB_NC through the accumulators T (m x GB_NC floats). */
static TBF void gemm_block(float *Y, size_t ldy, const uint32_t *Xp, float *T, const uint16_t *W,
			   size_t ldw, const uint32_t *Wp, const float *bias, size_t m, size_t n,
			   size_t k, size_t kc, const struct qvl_gemm_bf16_out *o)
{
	void (*act)(float *y, size_t n) = o ? o->act : NULL;
	const size_t kpo = o && o->xo ? (o->kn + 1) / 2 : 0;
	/* no rows y wanted (only the packed output): the last k block leaves
	 * each tile in its accumulators T, in L2, instead of writing Y */
	const bool ty = o && !o->y;
	_Alignas(64) uint32_t Pb[GB_KC * GB_NR];
	size_t kp = (k + 1) / 2, np = (m + GB_MR - 1) / GB_MR;

	for (size_t jc = 0; jc < n; jc += GB_NC) {
		size_t jce = n - jc < GB_NC ? n : jc + GB_NC;
		for (size_t p0 = 0; p0 < kp; p0 += kc) {
			size_t kcp = kp - p0 < kc ? kp - p0 : kc;
			for (size_t j0 = jc; j0 < jce; j0 += GB_NR) {
				int nr = jce - j0 >= GB_NR ? GB_NR : (int)(jce - j0);
				__mmask16 m0 = v16_mask((size_t)nr),
					  m1 = v16_mask(nr > 16 ? (size_t)nr - 16 : 0);
				const float *bj = bias ? bias + j0 : NULL;
				float *Tj = T + (j0 - jc) * m;

				/* the next panel: of this column block, else
				 * the first of the next k block (or none) */
				size_t jn = j0 + GB_NR, pn = p0;
				if (jn >= jce)
					jn = jc, pn = p0 + kc;
				size_t kcn = pn < kp ? (kp - pn < kc ? kp - pn : kc) : 0;
				size_t nrn = jce - jn < GB_NR ? jce - jn : GB_NR;

				/* the panel's k block: packed here, or where
				 * qvl_gemm_bf16_pack() put it (the same words) */
				const uint32_t *P = Pb;
				if (Wp)
					P = Wp + (j0 / GB_NR * kp + p0) * GB_NR;
				else
					pack_w(Pb, W, ldw, j0, nr, 2 * p0, kcp, k);
				for (size_t i = 0; i < np; i++) {
					if (kcn && Wp)
						prefetch_p(Wp + (jn / GB_NR * kp + pn) * GB_NR, kcn,
							   i, np);
					else if (kcn)
						prefetch_w(W, ldw, jn, nrn, pn, kcn, i, np);
					size_t r0 = panel_row(m, np, i),
					       r1 = panel_row(m, np, i + 1);
					int mr = (int)(r1 - r0);
					float *Yt = ty ? Tj + r0 * GB_NR : Y + r0 * ldy + j0;
					size_t ldt = ty ? GB_NR : ldy;
					ukern_any(mr, Yt, ldt, Tj + r0 * GB_NR,
						  Xp + r0 * kp + p0 * (size_t)mr, P, kcp, m0, m1,
						  bj, p0 == 0, p0 + kcp == kp);
					/* the activation on the tile just stored, still
					 * in L1 (a pass of its own re-read it from L3) */
					for (int r = 0; act && p0 + kcp == kp && r < mr; r++)
						act(Yt + (size_t)r * ldt, (size_t)nr);
					/* and as the next product's X: this row
					 * panel's pairs of these columns */
					if (kpo && p0 + kcp == kp)
						pack_x(o->xo + r0 * kpo +
							   (o->xc + j0) / 2 * (size_t)mr,
						       Yt, ldt, mr, (size_t)nr, ((size_t)nr + 1) / 2);
					/* and to the caller with the panel before, still
					 * in T (L2): 64 columns of these rows */
					if (ty && o->pair && p0 + kcp == kp && (j0 / GB_NR & 1))
						o->pair(o->ctx, Yt - GB_NR * m, Yt, o->row + r0, mr,
							o->xc + j0 - GB_NR);
				}
			}
		}
	}
}

/* The row blocks of a call of m rows: nmb of at most GB_MC rows, block b
 * rows [m b / nmb, m (b + 1) / nmb); the packed X of a block is its row
 * panels in order, panel rows r0..r1 at Xp + r0 * kp (so the blocks, and
 * the call, are m * kp words in row order). */
static inline size_t row_blocks(size_t m)
{
	return (m + GB_MC - 1) / GB_MC;
}

/* Xq: X packed by qvl_gemm_bf16_pack_x() (X unused), or NULL: packed here
 * per row block into the thread's scratch. */
static TBF int gemm(float *Y, size_t ldy, const float *X, size_t ldx, const uint32_t *Xq,
		    const uint16_t *W, size_t ldw, const uint32_t *Wp, const float *bias, size_t m,
		    size_t n, size_t k, const struct qvl_gemm_bf16_out *o)
{
	size_t kp = (k + 1) / 2, nkb, kc, nmb, mb, xw;
	uint32_t *Xp;

	nkb = (kp + GB_KC - 1) / GB_KC;
	kc = ((kp + nkb - 1) / nkb + 15) & ~(size_t)15; /* whole 16-pair transposes */
	nmb = row_blocks(m);
	mb = (m + nmb - 1) / nmb; /* rows of the largest */
	/* the thread's scratch (qact.c), grown once: packed X (unless given),
	 * then T */
	if (mb > SIZE_MAX / 4 / (kp + GB_NC))
		return -ENOMEM;
	xw = Xq ? 0 : (mb * kp + 15) & ~(size_t)15;
	if (!(Xp = qvl_qact_scratch((xw + mb * GB_NC) * 4)))
		return -ENOMEM;
	for (size_t b = 0; b < nmb; b++) {
		size_t a = m * b / nmb, e = m * (b + 1) / nmb, np = (e - a + GB_MR - 1) / GB_MR;
		struct qvl_gemm_bf16_out ob = {0};
		for (size_t i = 0; !Xq && i < np; i++) {
			size_t r0 = panel_row(e - a, np, i), r1 = panel_row(e - a, np, i + 1);
			pack_x(Xp + r0 * kp, X + (a + r0) * ldx, ldx, (int)(r1 - r0), k, kp);
		}
		if (o) { /* this row block's rows of the packed output */
			ob = *o;
			if (ob.xo)
				ob.xo += a * ((ob.kn + 1) / 2);
			ob.row += a;
		}
		gemm_block(Y ? Y + a * ldy : NULL, ldy, Xq ? Xq + a * kp : Xp, (float *)(Xp + xw), W, ldw, Wp,
			   bias, e - a, n, k, kc, o ? &ob : NULL);
	}
	return 0;
}

TBF int qvl_gemm_bf16_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const uint16_t *W,
			     size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	return gemm(Y, ldy, X, ldx, NULL, W, ldw, NULL, bias, m, n, k, NULL);
}

TBF void qvl_gemm_bf16_pack(uint32_t *Wp, const uint16_t *W, size_t ldw, size_t n, size_t k)
{
	size_t kp = (k + 1) / 2;

	for (size_t j0 = 0; j0 < n; j0 += GB_NR)
		pack_w(Wp + j0 / GB_NR * kp * GB_NR, W, ldw, j0,
		       n - j0 >= GB_NR ? GB_NR : (int)(n - j0), 0, kp, k);
}

TBF int qvl_gemm_bf16_packed_avx512(float *Y, size_t ldy, const float *X, size_t ldx,
				    const uint32_t *Wp, const float *bias, size_t m, size_t n,
				    size_t k)
{
	return gemm(Y, ldy, X, ldx, NULL, NULL, 0, Wp, bias, m, n, k, NULL);
}

TBF void qvl_gemm_bf16_pack_x(uint32_t *Xp, const float *X, size_t ldx, size_t m, size_t k,
			      int part, int nparts)
{
	size_t kp = (k + 1) / 2, nmb = row_blocks(m);

	for (size_t b = 0; b < nmb; b++) {
		size_t a = m * b / nmb, e = m * (b + 1) / nmb, np = (e - a + GB_MR - 1) / GB_MR;
		size_t i0 = np * (size_t)part / (size_t)nparts,
		       i1 = np * (size_t)(part + 1) / (size_t)nparts;
		for (size_t i = i0; i < i1; i++) {
			size_t r0 = panel_row(e - a, np, i), r1 = panel_row(e - a, np, i + 1);
			pack_x(Xp + (a + r0) * kp, X + (a + r0) * ldx, ldx, (int)(r1 - r0), k, kp);
		}
	}
}

/* pair takes whole 64-column heads from the tiles, so only without y */
static bool out_bad(const struct qvl_gemm_bf16_out *o, size_t n)
{
	return o->pair && (o->y || n % (2 * GB_NR));
}

TBF int qvl_gemm_bf16_packed_xw_avx512(const struct qvl_gemm_bf16_out *o, const uint32_t *Xp,
				       const uint32_t *Wp, const float *bias, size_t m, size_t n,
				       size_t k)
{
	if (out_bad(o, n))
		return -EINVAL;
	return gemm(o->y, o->ldy, NULL, 0, Xp, NULL, 0, Wp, bias, m, n, k, o);
}

TBF int qvl_gemm_bf16_packed_out_avx512(const struct qvl_gemm_bf16_out *o, const float *X,
					size_t ldx, const uint32_t *Wp, const float *bias, size_t m,
					size_t n, size_t k)
{
	if (out_bad(o, n))
		return -EINVAL;
	return gemm(o->y, o->ldy, X, ldx, NULL, NULL, 0, Wp, bias, m, n, k, o);
}
#else /* no AVX512-BF16 kernels in this build: never called (qvl_kernels_bf16dot() false) */

void qvl_gemm_bf16_pack(uint32_t *Wp, const uint16_t *W, size_t ldw, size_t n, size_t k)
{
	(void)Wp, (void)W, (void)ldw, (void)n, (void)k;
}

int qvl_gemm_bf16_packed_avx512(float *Y, size_t ldy, const float *X, size_t ldx,
				const uint32_t *Wp, const float *bias, size_t m, size_t n, size_t k)
{
	(void)Y, (void)ldy, (void)X, (void)ldx, (void)Wp, (void)bias, (void)m, (void)n, (void)k;
	return -ENOTSUP;
}

void qvl_gemm_bf16_pack_x(uint32_t *Xp, const float *X, size_t ldx, size_t m, size_t k, int part,
			  int nparts)
{
	(void)Xp, (void)X, (void)ldx, (void)m, (void)k, (void)part, (void)nparts;
}

int qvl_gemm_bf16_packed_xw_avx512(const struct qvl_gemm_bf16_out *o, const uint32_t *Xp,
				   const uint32_t *Wp, const float *bias, size_t m, size_t n,
				   size_t k)
{
	(void)o, (void)Xp, (void)Wp, (void)bias, (void)m, (void)n, (void)k;
	return -ENOTSUP;
}

int qvl_gemm_bf16_packed_out_avx512(const struct qvl_gemm_bf16_out *o, const float *X, size_t ldx,
				    const uint32_t *Wp, const float *bias, size_t m, size_t n,
				    size_t k)
{
	(void)o, (void)X, (void)ldx, (void)Wp, (void)bias, (void)m, (void)n, (void)k;
	return -ENOTSUP;
}
#endif
