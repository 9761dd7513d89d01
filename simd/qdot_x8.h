/* matmul_fast() of the repacked Q4_0 layout (QVL_DT_Q4_0_X8, qrepack.h),
 * included by qdot_avx2.c and qdot_avx512.c after the template
 * (qdot_tmpl.h). Same integer sums as the reference (qdot.h), per block:
 * isum = Σ n x - 8 s, y += dw dx isum.
 *
 * Decode (m == 1) streams the matrix in address order, one group of 8
 * rows after the other (the hardware prefetcher sees one sequential
 * stream): per block of a group, the 128 nibble bytes are 8 rows x 32
 * quants in 4-byte lanes, so the integer products need only an AND (low
 * nibbles) or a shift and an AND (high) per 64 (zmm) or 32 (ymm) bytes,
 * and the 8 scales, the int-to-float conversion and the multiply-add are
 * one vector for 8 rows; the lanes are the rows: no horizontal sum.
 *  - VNNI (zmm): lanes 0-7 and 8-15 hold two chunks (two 4-quant steps) of
 *    the 8 rows; the activation is made once per call into the matching
 *    vectors (struct qx_act: each step's 4 bytes in its 8 lanes) with the
 *    offset 8 s dx split over the two halves; 4 vpdpbusd per block.
 *  - AVX2 (ymm): one step per vector, its 4 activation bytes broadcast;
 *    the 8 vpmaddubsw int16 products of a block are summed in int16
 *    (8 x 2 x 15 x 127 < 2^15) before one vpmaddwd.
 * Prefill (m > 1): the 8-row panel of the template (qd_gemm32) made from
 * a group without a transpose (the layout is the panel's, nibble-packed);
 * with VNNI, panels of two groups on 512-bit vectors (qx_gemm16: one
 * vpdpbusd feeds 16 rows), a last group of 8 on the 256-bit panel. */
#ifndef QVL_QDOT_X8_H
#define QVL_QDOT_X8_H

#include "qrepack.h"

/* the VNNI decode on 512-bit vectors (two chunks per vector) or, 0, on
 * 256-bit ones as AVX2's with vpdpbusd (as fast streamed, slower in cache:
 * docs/todo-qdot.md) */
#ifndef QX_ZMM
#define QX_ZMM QD_VNNI
#endif
#define QX_INL static inline __attribute__((always_inline)) QD_T
/* at most this many groups at once (qx_rows) */
#define QX_GMAX 4
/* decode batches up to this many rows stream the weights (qx_small) */
#define QX_SMALL_M 16

/* Per activation block: dx and the offset term (8 s dx; the zmm kernel
 * puts half in each of a row's two lanes). The quants are read from the
 * quantized row itself: a copy per lane layout (4 x 64 bytes per block)
 * would be read from L2 at more than twice the weights' rate. */
struct qx_act {
	float d, c;
};

static inline size_t qx_act_bytes(size_t nb)
{
	return nb * sizeof(struct qx_act);
}

QX_INL void qx_act_make(struct qx_act *o, const struct qvl_q8a *x, size_t nb)
{
	for (size_t i = 0; i < nb; i++) {
		o[i].d = x[i].d;
		o[i].c = (QX_ZMM ? 4.0f : 8.0f) * (float)x[i].s * x[i].d;
	}
}

#if QX_ZMM
/* vpermd indices: the block's activation dwords for the lanes of chunk
 * pair 0 (steps 0, 1; high nibbles 4, 5) and pair 1 (2, 3; 6, 7) */
static const uint32_t qx_perm[4][16]
    __attribute__((aligned(64))) = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
				    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
				    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
				    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7}};

/* G groups of 8 rows (gs bytes apart from w) against the activation; group
 * g's outputs at y + g * ys */
QX_INL void qx_rows(const int G, const uint8_t *w, size_t gs, const struct qvl_q8a *xq,
		    const struct qx_act *x, size_t nb, float *y, size_t ys)
{
	const __m512i f = _mm512_set1_epi8(15);
	__m512i pi[4];
	__m512 acc[QX_GMAX];

#pragma GCC unroll 4
	for (int c = 0; c < 4; c++)
		pi[c] = _mm512_load_si512(qx_perm[c]);

#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		acc[g] = _mm512_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		__m512i xv = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)xq[i].q)),
			xs[4];
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++)
			xs[c] = _mm512_permutexvar_epi32(pi[c], xv);
#pragma GCC unroll 4
		for (int g = 0; g < G; g++) {
			const uint8_t *b = w + g * gs + i * QVL_X8_BLK;
			__m512i v0 = _mm512_loadu_si512(b + 16), v1 = _mm512_loadu_si512(b + 80);
			__m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
							 _mm512_and_si512(v0, f), xs[0]);
			__m512i s1 = _mm512_dpbusd_epi32(
			    _mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(v0, 4), f),
			    xs[1]);
			s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v1, f), xs[2]);
			s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v1, 4), f),
						 xs[3]);
			__m512 dw = _mm512_cvtph_ps(
			    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b)));
			__m512 t = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
						   _mm512_set1_ps(x[i].d), _mm512_set1_ps(x[i].c));
			acc[g] = _mm512_fmadd_ps(dw, t, acc[g]);
		}
	}
#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		_mm256_storeu_ps(y + g * ys, _mm256_add_ps(_mm512_castps512_ps256(acc[g]),
							  _mm256_castpd_ps(_mm512_extractf64x4_pd(
							      _mm512_castps_pd(acc[g]), 1))));
}
#endif

QX_INL __m256i qx_bcast4(const int8_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

QX_INL void qx_rows_ymm(const int G, const uint8_t *w, size_t gs, const struct qvl_q8a *xq,
			const struct qx_act *x, size_t nb, float *y, size_t ys)
{
	const __m256i f = _mm256_set1_epi8(15), one = _mm256_set1_epi16(1);
	const size_t pf = qvl_gemm_blk.qdec_pf1; /* not re-read per block */
	__m256 acc[QX_GMAX];

#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		acc[g] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		__m256i p[QX_GMAX];
#pragma GCC unroll 4
		for (int g = 0; g < G; g++)
			p[g] = _mm256_setzero_si256();
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++) {
			__m256i xl = qx_bcast4(xq[i].q + 4 * c),
				xh = qx_bcast4(xq[i].q + 16 + 4 * c);
#pragma GCC unroll 4
			for (int g = 0; g < G; g++) {
				const uint8_t *b = w + g * gs + i * QVL_X8_BLK;
				__m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
#if QD_VNNI
				p[g] = _mm256_dpbusd_epi32(p[g], _mm256_and_si256(v, f), xl);
				p[g] = _mm256_dpbusd_epi32(
				    p[g], _mm256_and_si256(_mm256_srli_epi16(v, 4), f), xh);
				continue;
#endif
				p[g] = _mm256_add_epi16(
				    p[g], _mm256_maddubs_epi16(_mm256_and_si256(v, f), xl));
				p[g] = _mm256_add_epi16(
				    p[g], _mm256_maddubs_epi16(
					      _mm256_and_si256(_mm256_srli_epi16(v, 4), f), xh));
			}
		}
#pragma GCC unroll 4
		for (int g = 0; g < G; g++) {
			const uint8_t *b = w + g * gs + i * QVL_X8_BLK;
			qvl_qdec_pf(b, QVL_X8_BLK, pf);
			__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
			__m256i is = QD_VNNI ? p[g] : _mm256_madd_epi16(p[g], one);
			__m256 t = _mm256_fmsub_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(x[i].d),
						   _mm256_set1_ps(x[i].c));
			acc[g] = _mm256_fmadd_ps(dw, t, acc[g]);
		}
	}
#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		_mm256_storeu_ps(y + g * ys, acc[g]);
}

/* The decode of a repacked type in S far-apart streams (1-4): the n rows'
 * groups of 8 cut into S parts of L groups, group g of every part read in
 * one step (R(S, ...) with the parts gs bytes and ys outputs apart), the
 * groups left over one at a time (R(1, ...)). R(G, w, gs, ..., y, ys) is a
 * type's kernel, always inlined with G constant; each group's arithmetic
 * is the same whatever G, so a row's result does not depend on S. */
#define X8_DECODE(R, S, w, wrow, n, y, ...)                                                         \
	do {                                                                                       \
		size_t ng_ = (n) / QVL_X8_ROWS, L_ = (S) > 1 ? ng_ / (size_t)(S) : 0;                \
		size_t gs_ = L_ * QVL_X8_ROWS * (wrow), ys_ = L_ * QVL_X8_ROWS;                    \
		for (size_t g_ = 0; g_ < L_; g_++) {                                               \
			const uint8_t *b_ = (w) + g_ * QVL_X8_ROWS * (wrow);                       \
			float *y_ = (y) + g_ * QVL_X8_ROWS;                                        \
			if ((S) == 4)                                                              \
				R(4, b_, gs_, __VA_ARGS__, y_, ys_);                               \
			else if ((S) == 3)                                                         \
				R(3, b_, gs_, __VA_ARGS__, y_, ys_);                               \
			else                                                                       \
				R(2, b_, gs_, __VA_ARGS__, y_, ys_);                               \
		}                                                                                  \
		for (size_t j_ = (size_t)(S) * L_ * QVL_X8_ROWS; j_ < (n); j_ += QVL_X8_ROWS)      \
			R(1, (w) + j_ * (wrow), 0, __VA_ARGS__, (y) + j_, 0);                      \
	} while (0)

static QD_T void qx_decode(const uint8_t *w, size_t wrow, const struct qvl_q8a *xq, size_t nb,
			   float *y, size_t n, const struct qx_act *x, int S)
{
#if QX_ZMM
	X8_DECODE(qx_rows, S, w, wrow, n, y, xq, x, nb);
#else
	X8_DECODE(qx_rows_ymm, S, w, wrow, n, y, xq, x, nb);
#endif
}

/* The template's 8-row panel (struct qd_panel) of one group: chunk c's low
 * nibbles are step c, its high nibbles step c + 4. */
QX_INL void qx_panel(struct qd_panel *p, const uint8_t *g, size_t nb)
{
	const __m256i f = _mm256_set1_epi8(15);

	p->off = 8;
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = g + i * QVL_X8_BLK;
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++) {
			__m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
			_mm256_storeu_si256((__m256i *)(p->q + i * 256 + 32 * c),
					    _mm256_and_si256(v, f));
			_mm256_storeu_si256((__m256i *)(p->q + i * 256 + 32 * (c + 4)),
					    _mm256_and_si256(_mm256_srli_epi16(v, 4), f));
		}
		_mm256_storeu_ps(p->d + i * 8,
				 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b)));
	}
}

#if QX_ZMM
/* Prefill on 512-bit vectors: a panel of two groups (16 rows), per block 8
 * steps of 64 bytes (lanes 0-7 the first group's rows, 8-15 the second's:
 * one vpdpbusd with 4 broadcast activation bytes feeds 16 rows) and 16 f32
 * scales. */
static inline size_t qx_pan16_bytes(size_t nb)
{
	return nb * (512 + 64);
}

/* Block a (lanes 0-7) and block b (8-15) of two groups as qx_gemm16's 8
 * step vectors u (Q8 0: Q4_0_X8's nibbles, step c the low ones of chunk
 * c, step c + 4 its high ones; 1: Q8_0_X8's 8 chunks made unsigned by an
 * XOR with 0x80), returned: their 16 scales. What the panel makers store
 * and the streamed batch path (qx_small) keeps in registers. */
QX_INL __m512 qx_steps16(const int Q8, const uint8_t *a, const uint8_t *b, __m512i u[8])
{
	const __m512i f = _mm512_set1_epi8(15), sg = _mm512_set1_epi8((char)0x80);

#pragma GCC unroll 8
	for (int c = 0; c < 8; c++) {
		if (!Q8 && c >= 4) /* Q4_0: 4 chunks, 2 steps each */
			break;
		__m512i v = _mm512_inserti64x4(
		    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(a + 16 + 32 * c))),
		    _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c)), 1);
		if (Q8) {
			u[c] = _mm512_xor_si512(v, sg);
		} else {
			u[c] = _mm512_and_si512(v, f);
			u[c + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), f);
		}
	}
	return _mm512_cvtph_ps(
	    _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
				    _mm_loadu_si128((const __m128i *)b), 1));
}

/* qx_steps16 of every block pair, stored: the panel of groups g0, g1 */
QX_INL void qx_store16(const int Q8, uint8_t *q, float *d, const uint8_t *g0, const uint8_t *g1,
		       size_t nb)
{
	const size_t blk = Q8 ? QVL_Q8X_BLK : QVL_X8_BLK;

	for (size_t i = 0; i < nb; i++) {
		__m512i u[8];
		__m512 dv = qx_steps16(Q8, g0 + i * blk, g1 + i * blk, u);
#pragma GCC unroll 8
		for (int s = 0; s < 8; s++)
			_mm512_storeu_si512(q + i * 512 + 64 * s, u[s]);
		_mm512_storeu_ps(d + i * 16, dv);
	}
}

QX_INL void qx_panel16(uint8_t *q, float *d, const uint8_t *g0, const uint8_t *g1, size_t nb)
{
	qx_store16(0, q, d, g0, g1, nb);
}

/* One block of RX activation rows (x, rows xrow blocks apart, block i)
 * against 16 weight rows: u the 8 steps of 64 quant bytes (lanes 0-7 the
 * first group's rows, 8-15 the second's), dv their 16 scales; off: the
 * quants' offset (8 for Q4_0, 128 for Q8_0 made unsigned), -off s per
 * lane. Up to 4 rows, each row's 8 steps in two sums (even, odd steps):
 * one chain of 8 vpdpbusd a row left the core waiting on their latency
 * at the few rows of a decode batch; the integer sums are exact, so the
 * split does not change a bit. */
QX_INL void qx_block16(const int RX, const int off, const __m512i *u, __m512 dv,
		       const struct qvl_q8a *x, size_t xrow, size_t i, __m512 *acc)
{
	const int GS = RX <= 4 ? 2 : 1;
	__m512i is[8][2];

#pragma GCC unroll 8
	for (int q = 0; q < RX; q++) {
		is[q][0] = _mm512_set1_epi32(-off * x[q * xrow + i].s);
		is[q][1] = _mm512_setzero_si512();
	}
#pragma GCC unroll 8
	for (int s = 0; s < 8; s++)
#pragma GCC unroll 8
		for (int q = 0; q < RX; q++) {
			int32_t v;
			memcpy(&v, x[q * xrow + i].q + 4 * s, 4);
			is[q][s % GS] = _mm512_dpbusd_epi32(is[q][s % GS], u[s], _mm512_set1_epi32(v));
		}
#pragma GCC unroll 8
	for (int q = 0; q < RX; q++)
		acc[q] = _mm512_fmadd_ps(
		    _mm512_cvtepi32_ps(GS > 1 ? _mm512_add_epi32(is[q][0], is[q][1]) : is[q][0]),
		    _mm512_mul_ps(dv, _mm512_set1_ps(x[q * xrow + i].d)), acc[q]);
}

/* RX activation rows x the panel's 16 weight rows */
QX_INL void qx_gemm16(const int RX, const int off, const uint8_t *pq, const float *pd,
		      const struct qvl_q8a *x, size_t xrow, size_t nb, float *y, size_t ldy)
{
	__m512 acc[8];

#pragma GCC unroll 8
	for (int q = 0; q < RX; q++)
		acc[q] = _mm512_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		__m512i u[8];
#pragma GCC unroll 8
		for (int s = 0; s < 8; s++)
			u[s] = _mm512_loadu_si512(pq + i * 512 + 64 * s);
		qx_block16(RX, off, u, _mm512_loadu_ps(pd + i * 16), x, xrow, i, acc);
	}
#pragma GCC unroll 8
	for (int q = 0; q < RX; q++)
		_mm512_storeu_ps(y + q * ldy, acc[q]);
}

/* qx_gemm16 on the last 1-7 rows in one pass (a decode batch's rows, or
 * a prefill's last ones), not one pass a row */
static QD_T void qx_gemm16_any(int rx, int off, const uint8_t *pq, const float *pd,
			       const struct qvl_q8a *x, size_t nb, float *y, size_t ldy)
{
	switch (rx) {
#define C(R)                                                                                       \
	case R:                                                                                    \
		qx_gemm16(R, off, pq, pd, x, nb, nb, y, ldy);                                      \
		break;
		C(1) C(2) C(3) C(4) C(5) C(6) C(7)
#undef C
	}
}

/* Rows [0, RX) of a decode batch (RX <= 8) against the 16 weight rows of
 * groups g0, g1 streamed in place (Q8 0: Q4_0_X8, 1: Q8_0_X8): per block
 * the two groups' quants are made in registers into qx_gemm16's 8 step
 * vectors (qx_panel16's, q8x_panel16's layout) and used by every row,
 * where the panel path wrote them to a scratch panel first, worth it
 * only when 8-row passes read it again: qx_block16 either way, hence the
 * same bits. */
QX_INL void qx_small(const int Q8, const int RX, const uint8_t *g0, const uint8_t *g1,
		     const struct qvl_q8a *x, size_t nb, float *y, size_t ldy)
{
	const size_t blk = Q8 ? QVL_Q8X_BLK : QVL_X8_BLK;
	const size_t pf = qvl_gemm_blk.qdec_pf; /* not re-read per block */
	__m512 acc[8];

#pragma GCC unroll 8
	for (int q = 0; q < RX; q++)
		acc[q] = _mm512_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *a = g0 + i * blk, *b = g1 + i * blk;
		__m512i u[8];

		qvl_qdec_pf(a, blk, pf);
		qvl_qdec_pf(b, blk, pf);
		__m512 dv = qx_steps16(Q8, a, b, u);
		qx_block16(RX, Q8 ? 128 : 8, u, dv, x, nb, i, acc);
	}
#pragma GCC unroll 8
	for (int q = 0; q < RX; q++)
		_mm512_storeu_ps(y + q * ldy, acc[q]);
}

static QD_T void qx_small_any(int q8, int rx, const uint8_t *g0, const uint8_t *g1,
			      const struct qvl_q8a *x, size_t nb, float *y, size_t ldy)
{
	switch (rx * 2 + !!q8) {
#define C(R)                                                                                       \
	case 2 * R:                                                                                \
		qx_small(0, R, g0, g1, x, nb, y, ldy);                                             \
		break;                                                                             \
	case 2 * R + 1:                                                                            \
		qx_small(1, R, g0, g1, x, nb, y, ldy);                                             \
		break;
		C(1) C(2) C(3) C(4) C(5) C(6) C(7) C(8)
#undef C
	}
}
#else
static inline size_t qx_pan16_bytes(size_t nb)
{
	(void)nb;
	return 0;
}
#endif

#if !QD_VNNI
/* Without VNNI (the AVX2 level): rows [0, RX) of a decode batch (RX <= 4)
 * against the group of 8 rows at g streamed in place (Q8 0: Q4_0_X8, 1:
 * Q8_0_X8), each chunk's quants made in registers and used by every row:
 * qd_gemm32's integer sums and float steps on its panel (qx_panel,
 * q8x_panel), hence its bits, without the panel written and read back for
 * a few rows. Q4_0 sums a row's 8 steps of vpmaddubsw pairs in int16
 * (qd_sum16); Q8_0 takes |w| against the activation given w's sign and
 * one vpmaddwd a step (its pairs reach 2 x 128 x 127). */
QX_INL void qx_small_ymm(const int Q8, const int RX, const uint8_t *g, const struct qvl_q8a *x,
			 size_t nb, float *y, size_t ldy)
{
	const __m256i f = _mm256_set1_epi8(15), one = _mm256_set1_epi16(1);
	const size_t blk = Q8 ? QVL_Q8X_BLK : QVL_X8_BLK;
	const size_t pf = qvl_gemm_blk.qdec_pf; /* not re-read per block */
	__m256 acc[4];

#pragma GCC unroll 4
	for (int q = 0; q < RX; q++)
		acc[q] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = g + i * blk;
		__m256i h[4], is[4];

		qvl_qdec_pf(b, blk, pf);
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++)
			h[q] = is[q] = _mm256_setzero_si256();
#pragma GCC unroll 8
		for (int c = 0; c < 8; c++) {
			if (!Q8 && c >= 4)
				break;
			__m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
			if (Q8) {
				__m256i a = _mm256_abs_epi8(v);
#pragma GCC unroll 4
				for (int q = 0; q < RX; q++)
					is[q] = _mm256_add_epi32(
					    is[q], _mm256_madd_epi16(
						       _mm256_maddubs_epi16(
							   a, _mm256_sign_epi8(
								  qx_bcast4(x[q * nb + i].q + 4 * c), v)),
						       one));
				continue;
			}
			__m256i lo = _mm256_and_si256(v, f),
				hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), f);
#pragma GCC unroll 4
			for (int q = 0; q < RX; q++) {
				h[q] = _mm256_add_epi16(
				    h[q], _mm256_maddubs_epi16(lo, qx_bcast4(x[q * nb + i].q + 4 * c)));
				h[q] = _mm256_add_epi16(
				    h[q],
				    _mm256_maddubs_epi16(hi, qx_bcast4(x[q * nb + i].q + 16 + 4 * c)));
			}
		}
		__m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++) {
			if (!Q8)
				is[q] = _mm256_add_epi32(_mm256_set1_epi32(-8 * x[q * nb + i].s),
							 _mm256_madd_epi16(h[q], one));
			acc[q] = _mm256_fmadd_ps(
			    _mm256_cvtepi32_ps(is[q]),
			    _mm256_mul_ps(dv, _mm256_broadcast_ss(&x[q * nb + i].d)), acc[q]);
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < RX; q++)
		_mm256_storeu_ps(y + q * ldy, acc[q]);
}

static QD_T void qx_small_ymm_any(int q8, int rx, const uint8_t *g, const struct qvl_q8a *x,
				  size_t nb, float *y, size_t ldy)
{
	switch (rx * 2 + !!q8) {
#define C(R)                                                                                       \
	case 2 * R:                                                                                \
		qx_small_ymm(0, R, g, x, nb, y, ldy);                                              \
		break;                                                                             \
	case 2 * R + 1:                                                                            \
		qx_small_ymm(1, R, g, x, nb, y, ldy);                                              \
		break;
		C(1) C(2) C(3) C(4)
#undef C
	}
}
#endif

/* scratch bytes of qx_prefill's panels */
QX_INL size_t qx_prefill_bytes(enum qvl_dtype t, size_t nb)
{
	size_t pan = qd_panel_bytes(t, nb), p16 = qx_pan16_bytes(nb);

	return pan > p16 ? pan : p16;
}

/* Makers of a 32-value X8 type's 8-row panel (the template's struct
 * qd_panel, its off set) and 16-row panel (qx_gemm16's layout) from groups
 * of rows; Q8_0's are in qdot_x8_q80.h. */
typedef void (*qx_pan_fn)(struct qd_panel *p, const uint8_t *g, size_t nb);
typedef void (*qx_pan16_fn)(uint8_t *q, float *d, const uint8_t *g0, const uint8_t *g1, size_t nb);
#if QX_ZMM
#define QX_PAN16(f) (f)
#else
#define QX_PAN16(f) NULL
#endif

/* Prefill (m > 1) of 32-value X8 type t (offset off, per lane -off s, in
 * the 16-row panels): the activation rows (quantized at xq, rb bytes
 * each) in chunks whose bytes stay in L2; per chunk and pair of groups a
 * 16-row panel on 512-bit vectors, a group left over on the 8-row panel
 * (all groups without VNNI); scr: the panel scratch. */
QX_INL void qx_prefill(enum qvl_dtype t, int off, qx_pan_fn pan, qx_pan16_fn pan16,
		       const uint8_t *w, size_t wrow, const uint8_t *xq, size_t rb, size_t nb,
		       float *Y, size_t ldy, size_t m, size_t n, uint8_t *scr)
{
	struct qd_panel p = {scr, (float *)(void *)(scr + nb * 256), NULL, scr + nb * 320, 0};
	size_t mc = (256 << 10) / rb;

	(void)off, (void)pan16;
	mc = mc < QD_GX ? QD_GX : mc;
	for (size_t i0 = 0; i0 < m; i0 += mc) {
		size_t i1 = i0 + mc < m ? i0 + mc : m, j = 0;
		const struct qvl_q8a *x = (const struct qvl_q8a *)(xq + i0 * rb);
#if QX_ZMM
		for (; m <= QX_SMALL_M && j + 2 * QVL_X8_ROWS <= n; j += 2 * QVL_X8_ROWS)
			/* the chunk's rows, 8 a pass; the two groups (2 x 144
			 * or 272 nb bytes) are still in L1 / L2 for the second */
			for (size_t i = 0; i < i1 - i0; i += 8)
				qx_small_any(t == QVL_DT_Q8_0, i1 - i0 - i < 8 ? (int)(i1 - i0 - i) : 8,
					     w + j * wrow, w + (j + 8) * wrow, x + i * nb, nb,
					     Y + (i0 + i) * ldy + j, ldy);
		for (; j + 2 * QVL_X8_ROWS <= n; j += 2 * QVL_X8_ROWS) {
			size_t i = 0;
			float *y = Y + i0 * ldy + j, *pd = (float *)(void *)(scr + nb * 512);
			pan16(scr, pd, w + j * wrow, w + (j + 8) * wrow, nb);
			for (; i + 8 <= i1 - i0; i += 8)
				qx_gemm16(8, off, scr, pd, x + i * nb, nb, nb, y + i * ldy, ldy);
			if (i < i1 - i0)
				qx_gemm16_any((int)(i1 - i0 - i), off, scr, pd, x + i * nb, nb,
					      y + i * ldy, ldy);
		}
#endif
#if !QD_VNNI
		/* a decode batch's few rows: 4 a pass, the group in L1 for
		 * the next */
		for (; m <= QX_SMALL_M && j < n; j += QVL_X8_ROWS)
			for (size_t i = 0; i < i1 - i0; i += 4)
				qx_small_ymm_any(t == QVL_DT_Q8_0,
						 i1 - i0 - i < 4 ? (int)(i1 - i0 - i) : 4, w + j * wrow,
						 x + i * nb, nb, Y + (i0 + i) * ldy + j, ldy);
#endif
		for (; j < n; j += QVL_X8_ROWS) {
			size_t i = 0;
			float *y = Y + i0 * ldy + j;
			pan(&p, w + j * wrow, nb);
			for (; i + QD_GX <= i1 - i0; i += QD_GX)
				qd_gemm32(t, QD_GX, &p, x + i * nb, nb, nb, y + i * ldy, ldy);
			for (; i < i1 - i0; i++)
				qd_gemm32(t, 1, &p, x + i * nb, nb, nb, y + i * ldy, ldy);
		}
	}
}

/* Q4_0_X8 on the prepared activation (qdot_x8_act.h: the rows quantized,
 * for one row its struct qx_act after them at xo); scr: the panels of
 * qx_prefill. */
QX_INL void qx_run(float *Y, size_t ldy, const uint8_t *xa, size_t xo, const uint8_t *w,
		   size_t ldw, size_t m, size_t n, size_t k, uint8_t *scr, int S)
{
	size_t nb = k / 32, wrow = ldw / 32 * 18;

	if (m == 1)
		qx_decode(w, wrow, (const struct qvl_q8a *)(const void *)xa, nb, Y, n,
			  (const struct qx_act *)(const void *)(xa + xo), S);
	else
		qx_prefill(QVL_DT_Q4_0, 8, qx_panel, QX_PAN16(qx_panel16), w, wrow, xa,
			   qvl_qdot_act_bytes(QVL_DT_Q4_0, k), nb, Y, ldy, m, n, scr);
}

#endif
