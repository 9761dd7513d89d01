/* Decode and prefill kernels on 256-bit vectors without VNNI (the AVX2
 * level), included by the AVX2 file after the template (qdot_tmpl.h),
 * whose qd_matmul() tries qz_decode() / qz_gemm_k() first, as the
 * AVX512-VNNI file does with qdot_zmm.h. Same integer sums as the
 * reference (qdot.h), fewer instructions than the template's tiles:
 *
 *  - Q4_K, Q5_K, Q6_K (qy_tile_k): the block's scales decoded in a vector
 *    once per block and row, laid out so that one vpshufb with a constant
 *    mask gives the 16-bit scale words of any 32-value chunk; per chunk one
 *    vpmaddubsw (quants x activation) + one vpmaddwd (x scale words), one
 *    int-to-float conversion and multiply-add per block;
 *  - Q4_0 decode (qy_q40_rows): the 16 bytes of a block broadcast to both
 *    halves by the load, the upper half shifted by 4: the quants in value
 *    order in two instructions; the offset 8 is subtracted in the float
 *    multiply-add (8 x activation sum per block, shared by all rows).
 *
 * 4 weight rows x 1 activation row for decode (the rows of the next 4
 * prefetched at the same offset into L2), 1 x 4 for prefill (16 vector
 * registers: 4 integer and 4 float sums). */
#ifndef QVL_QDOT_YMM_H
#define QVL_QDOT_YMM_H

#include "kern_impl.h"
#include "qdot.h"
#include "qdot_blocks.h"

#define QY_INL static inline __attribute__((always_inline)) QD_T

/* vpshufb masks: 16-bit word c of each 128-bit lane, in every word */
#define QY_W(c) 2 * (c), 2 * (c) + 1
#define QY_L(c) QY_W(c), QY_W(c), QY_W(c), QY_W(c), QY_W(c), QY_W(c), QY_W(c), QY_W(c)
static const uint8_t qy_wsel[8][32] __attribute__((aligned(32))) = {
    {QY_L(0), QY_L(0)}, {QY_L(1), QY_L(1)}, {QY_L(2), QY_L(2)}, {QY_L(3), QY_L(3)},
    {QY_L(4), QY_L(4)}, {QY_L(5), QY_L(5)}, {QY_L(6), QY_L(6)}, {QY_L(7), QY_L(7)}};
#undef QY_L
#undef QY_W
/* Q6_K's 16 scale bytes, even ones first: after sign extension the low
 * lane holds the scales of each chunk's first 16 values, the high lane
 * those of its second 16 */
static const uint8_t qy_q6k_eo[16]
    __attribute__((aligned(16))) = {0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15};

/* The per-block part of a K-quant weight block: sc, the scale words
 * (chunk c's in word c of each lane: qy_wsel[c]); mo, per 16-value
 * activation sum, the Q4_K/Q5_K mins or Q6_K's offset 32 x scale. */
struct qy_wk {
	__m256i sc, mo;
	__m256 d, dmin; /* broadcast */
};

QY_INL void qy_prep_k(struct qy_wk *o, enum qvl_dtype t, const uint8_t *b)
{
	if (t == QVL_DT_Q6_K) {
		__m128i raw = _mm_loadu_si128((const __m128i *)(b + QB_Q6K_SC));
		o->sc = _mm256_cvtepi8_epi16(
		    _mm_shuffle_epi8(raw, _mm_load_si128((const __m128i *)qy_q6k_eo)));
		o->mo = _mm256_slli_epi16(_mm256_cvtepi8_epi16(raw), 5);
		o->d = _mm256_cvtph_ps(_mm_set1_epi16((short)qvl_load_u16(b + QB_Q6K_D)));
		o->dmin = _mm256_setzero_ps();
		return;
	}
	/* Q4_K, Q5_K: bytes 0-7 the scales, 8-15 the mins (qb_k4_scales()) */
	__m128i s = qd_k4_scmn8(b + QB_K4_SC);
	o->sc = _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(s, s));
	o->mo = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(s, s));
	/* d and dmin converted together */
	uint32_t dd;
	memcpy(&dd, b, 4);
	__m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)dd));
	o->d = _mm256_broadcastss_ps(f);
	o->dmin = _mm256_broadcastss_ps(_mm_movehdup_ps(f));
}

/* The unsigned quants of chunk c (values 32c .. 32c + 31) of block b; v:
 * the 32 bytes that chunk's low bits come from (loaded by the caller, one
 * load per two or four chunks), qh the high-bit bytes (Q5_K, Q6_K). */
QY_INL __m256i qy_chunk_k(enum qvl_dtype t, int c, __m256i v, __m256i qh)
{
	const __m256i f = _mm256_set1_epi8(15);

	if (t == QVL_DT_Q6_K) {
		/* v: ql of chunk c % 4 < 2 (low nibbles) or c % 4 - 2 (high);
		 * qh bits 2 (c % 4), +1 moved to bits 4, 5 */
		int cc = c % 4;
		__m256i lo = _mm256_and_si256(cc >= 2 ? _mm256_srli_epi16(v, 4) : v, f);
		__m256i hi = cc == 0   ? _mm256_slli_epi16(qh, 4)
			     : cc == 1 ? _mm256_slli_epi16(qh, 2)
			     : cc == 2 ? qh
				       : _mm256_srli_epi16(qh, 2);
		return _mm256_or_si256(lo, _mm256_and_si256(hi, _mm256_set1_epi8(0x30)));
	}
	__m256i n = _mm256_and_si256(c % 2 ? _mm256_srli_epi16(v, 4) : v, f);
	if (t == QVL_DT_Q5_K) {
		/* bit c of each qh byte to bit 4 (a 16-bit shift by at most 4
		 * keeps bit 4 of each byte within its byte) */
		__m256i hb = c <= 4 ? _mm256_slli_epi16(qh, 4 - c) : _mm256_srli_epi16(qh, c - 4);
		n = _mm256_or_si256(n, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
	}
	return n;
}

QY_INL size_t qy_bb(enum qvl_dtype t)
{
	return t == QVL_DT_Q4_K ? 144 : t == QVL_DT_Q5_K ? 176 : 210;
}

/* RW weight rows x RX activation rows (RW x RX <= 4) of a Q4_K, Q5_K or
 * Q6_K product: each chunk unpacked once per weight row, used by every
 * activation row. */
QY_INL void qy_tile_k(enum qvl_dtype t, const int RW, const int RX, const uint8_t *w, size_t wrow,
		      const struct qvl_q8k *x, size_t xrow, size_t nb, float *y, size_t ldy)
{
	const size_t bb = qy_bb(t);
	__m256 acc[4][4];

#pragma GCC unroll 4
	for (int r = 0; r < RW; r++)
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++)
			acc[r][q] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
#pragma GCC unroll 4
		for (int r = 0; r < RW; r++) {
			const uint8_t *b = w + r * wrow + i * bb;
			struct qy_wk wk;
			__m256i is[4], v = _mm256_setzero_si256(), qh = v;
			if (RX == 1)
				qd_prefetch(b + RW * wrow, bb);
			qy_prep_k(&wk, t, b);
#pragma GCC unroll 4
			for (int q = 0; q < RX; q++) {
				const struct qvl_q8k *xb = x + q * xrow + i;
				is[q] = _mm256_setzero_si256();
				/* Q6_K: Σ_j sc_j 32 s_j subtracted lane-wise */
				if (t == QVL_DT_Q6_K)
					is[q] = _mm256_sub_epi32(
					    is[q], _mm256_madd_epi16(_mm256_loadu_si256(
									 (const __m256i *)xb->bsum),
								     wk.mo));
			}
			if (t == QVL_DT_Q5_K)
				qh = _mm256_loadu_si256((const __m256i *)(b + QB_Q5K_QH));
#pragma GCC unroll 8
			for (int c = 0; c < 8; c++) {
				if (t == QVL_DT_Q6_K) {
					int h = c / 4;
					if (c % 4 == 0)
						qh = _mm256_loadu_si256(
						    (const __m256i *)(b + QB_Q6K_QH + 32 * h));
					v = _mm256_loadu_si256(
					    (const __m256i *)(b + 64 * h + 32 * (c % 2)));
				} else if (c % 2 == 0) {
					size_t qs = t == QVL_DT_Q4_K ? QB_Q4K_QS : QB_Q5K_QS;
					v = _mm256_loadu_si256((const __m256i *)(b + qs + 16 * c));
				}
				__m256i u = qy_chunk_k(t, c, v, qh);
				__m256i sc = _mm256_shuffle_epi8(
				    wk.sc, _mm256_load_si256((const __m256i *)qy_wsel[c]));
#pragma GCC unroll 4
				for (int q = 0; q < RX; q++) {
					__m256i xv = _mm256_loadu_si256(
					    (const __m256i *)((x + q * xrow + i)->q + 32 * c));
					is[q] = _mm256_add_epi32(
					    is[q],
					    _mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), sc));
				}
			}
#pragma GCC unroll 4
			for (int q = 0; q < RX; q++) {
				const struct qvl_q8k *xb = x + q * xrow + i;
				/* (d isum - dmin msum) dx */
				__m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(is[q]), wk.d);
				if (t != QVL_DT_Q6_K)
					f = _mm256_fnmadd_ps(
					    _mm256_cvtepi32_ps(_mm256_madd_epi16(
						_mm256_loadu_si256((const __m256i *)xb->bsum),
						wk.mo)),
					    wk.dmin, f);
				acc[r][q] =
				    _mm256_fmadd_ps(f, _mm256_broadcast_ss(&xb->d), acc[r][q]);
			}
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < RW; r++)
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++)
			y[q * ldy + r] = qd_hsum(acc[r][q]);
}

/* ---- Q4_0 decode ------------------------------------------------------- */

/* R weight rows against one activation row: per block the quants in value
 * order (low nibbles, then high), Σ n x - 8 s = Σ lanes (dot - s). */
QY_INL void qy_q40_rows(const int R, const uint8_t *w, size_t wrow, const struct qvl_q8a *x,
			size_t nb, float *y)
{
	const __m256i f = _mm256_set1_epi8(15), one = _mm256_set1_epi16(1);
	const __m256i sh = _mm256_setr_epi64x(0, 0, 4, 4);
	__m256 acc[4];

#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
		acc[r] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		__m256i xq = _mm256_loadu_si256((const __m256i *)x[i].q);
		__m256 xd = _mm256_broadcast_ss(&x[i].d);
		/* each of the 8 lanes takes s of the 8 s: dx s per lane */
		__m256 xc = _mm256_set1_ps(x[i].d * (float)x[i].s);
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			const uint8_t *b = w + r * wrow + i * 18;
			_mm_prefetch((const char *)b + R * wrow, _MM_HINT_T1);
			__m256i u = _mm256_and_si256(
			    _mm256_srlv_epi64(_mm256_broadcastsi128_si256(
						  _mm_loadu_si128((const __m128i *)(b + 2))),
					      sh),
			    f);
			__m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, xq), one);
			__m256 dw = _mm256_cvtph_ps(_mm_set1_epi16((short)qvl_load_u16(b)));
			acc[r] = _mm256_fmadd_ps(dw, _mm256_fmsub_ps(_mm256_cvtepi32_ps(p), xd, xc),
						 acc[r]);
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
		y[r] = qd_hsum(acc[r]);
}

/* ---- driver ------------------------------------------------------------ */

QD_DEF_GEMM_K(qy_tile_k, 4)

/* ---- K-quant prefill: panels of 8 weight rows ------------------------- */

/* One block of 8 weight rows, made once per call and reused by every
 * activation row: the quants as the template's panels (chunk c, step s:
 * lane r holds row r's quants 32c + 4s .. 32c + 4s + 3), then per 16
 * values the rows' scales (lane r: row r's scale in both words), the mins
 * (Q4_K, Q5_K: pairs p = 0..3, lane r: row r's mins 2p, 2p + 1) or
 * offsets (Q6_K: pairs p = 0..7 of 32 x scale), and d, dmin. A step is
 * one vpmaddubsw with 4 activation bytes broadcast; G steps are summed in
 * int16 before one vpmaddwd with the scale words, G x 2 x 127 x the
 * largest quant staying below 2^15: G = 8 for Q4_K (15), 4 for Q5_K
 * (31), 2 for Q6_K (63). */
struct qy_kpan {
	uint8_t q[8][8][32];
	int16_t sc[16][16];
	int16_t mo[8][16];
	float d[8], dmin[8];
};

/* chunk c of block b, unpacked */
QY_INL __m256i qy_chunk_at(enum qvl_dtype t, const uint8_t *b, int c)
{
	const uint8_t *v, *qh = b + QB_Q5K_QH;

	if (t == QVL_DT_Q6_K) {
		v = b + 64 * (c / 4) + 32 * (c % 2);
		qh = b + QB_Q6K_QH + 32 * (c / 4);
	} else {
		v = b + (t == QVL_DT_Q4_K ? QB_Q4K_QS : QB_Q5K_QS) + 32 * (c / 2);
	}
	return qy_chunk_k(t, c, _mm256_loadu_si256((const __m256i *)v),
			  _mm256_loadu_si256((const __m256i *)qh));
}

/* block i of the 8 rows at w into o */
QY_INL void qy_kpack(enum qvl_dtype t, struct qy_kpan *o, const uint8_t *w, size_t wrow, size_t i)
{
	const size_t bb = qy_bb(t);

	for (int c = 0; c < 8; c++) {
		__m256i u[8];
		for (int r = 0; r < 8; r++)
			u[r] = qy_chunk_at(t, w + r * wrow + i * bb, c);
		qd_tr8(u);
		for (int s = 0; s < 8; s++)
			_mm256_storeu_si256((__m256i *)o->q[c][s], u[s]);
	}
	for (int r = 0; r < 8; r++) {
		const uint8_t *b = w + r * wrow + i * bb;
		if (t == QVL_DT_Q6_K) {
			const int8_t *sc = (const int8_t *)(b + QB_Q6K_SC);
			for (int h = 0; h < 16; h++)
				o->sc[h][2 * r] = o->sc[h][2 * r + 1] = sc[h];
			for (int p = 0; p < 8; p++) {
				o->mo[p][2 * r] = (int16_t)(32 * sc[2 * p]);
				o->mo[p][2 * r + 1] = (int16_t)(32 * sc[2 * p + 1]);
			}
			o->d[r] = qd_f16(b + QB_Q6K_D);
			o->dmin[r] = 0.0f;
		} else {
			uint8_t sc[8], mn[8];
			qb_k4_scales(b + QB_K4_SC, sc, mn);
			for (int h = 0; h < 16; h++)
				o->sc[h][2 * r] = o->sc[h][2 * r + 1] = sc[h / 2];
			for (int p = 0; p < 4; p++) {
				o->mo[p][2 * r] = mn[2 * p];
				o->mo[p][2 * r + 1] = mn[2 * p + 1];
			}
			o->d[r] = qd_f16(b);
			o->dmin[r] = qd_f16(b + 2);
		}
	}
}

QY_INL __m256i qy_ld(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/* RX activation rows against the 8 rows of panel p: y[q * ldy + 0..7] */
QY_INL void qy_kgemm(enum qvl_dtype t, const int RX, const struct qy_kpan *p,
		     const struct qvl_q8k *x, size_t xrow, size_t nb, float *y, size_t ldy)
{
	const int G = t == QVL_DT_Q4_K ? 8 : t == QVL_DT_Q5_K ? 4 : 2;
	__m256 acc[4];

#pragma GCC unroll 4
	for (int q = 0; q < RX; q++)
		acc[q] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const struct qy_kpan *pb = p + i;
		__m256i is[4];
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++)
			is[q] = _mm256_setzero_si256();
#pragma GCC unroll 8
		for (int c = 0; c < 8; c++)
#pragma GCC unroll 4
			for (int g = 0; g < 8; g += G) {
				__m256i h[4];
#pragma GCC unroll 8
				for (int s = g; s < g + G; s++) {
					__m256i u = qy_ld(pb->q[c][s]);
#pragma GCC unroll 4
					for (int q = 0; q < RX; q++) {
						int32_t v;
						memcpy(&v, x[q * xrow + i].q + 32 * c + 4 * s, 4);
						__m256i pr =
						    _mm256_maddubs_epi16(u, _mm256_set1_epi32(v));
						h[q] = s == g ? pr : _mm256_add_epi16(h[q], pr);
					}
				}
				__m256i scv = qy_ld(pb->sc[(8 * c + g) / 4]);
#pragma GCC unroll 4
				for (int q = 0; q < RX; q++)
					is[q] =
					    _mm256_add_epi32(is[q], _mm256_madd_epi16(h[q], scv));
			}
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++) {
			const struct qvl_q8k *xb = x + q * xrow + i;
			__m256i o = _mm256_setzero_si256();
			__m256 f;
			if (t == QVL_DT_Q6_K) {
				/* Σ_j 32 sc_j s_j: bsum pairs as they lie */
#pragma GCC unroll 8
				for (int k = 0; k < 8; k++) {
					int32_t v;
					memcpy(&v, xb->bsum + 2 * k, 4);
					o = _mm256_add_epi32(
					    o, _mm256_madd_epi16(qy_ld(pb->mo[k]),
								 _mm256_set1_epi32(v)));
				}
				f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(is[q], o)),
						  _mm256_loadu_ps(pb->d));
			} else {
				/* the 32-value sums S_j = bsum 2j + bsum 2j+1,
				 * pairs (S_2k, S_2k+1) broadcast */
				__m128i sj = _mm_hadd_epi16(
				    _mm_loadu_si128((const __m128i *)xb->bsum),
				    _mm_loadu_si128((const __m128i *)(xb->bsum + 8)));
				__m256i s2 = _mm256_broadcastsi128_si256(sj);
				o = _mm256_madd_epi16(qy_ld(pb->mo[0]),
						      _mm256_shuffle_epi32(s2, 0x00));
				o = _mm256_add_epi32(
				    o, _mm256_madd_epi16(qy_ld(pb->mo[1]),
							 _mm256_shuffle_epi32(s2, 0x55)));
				o = _mm256_add_epi32(
				    o, _mm256_madd_epi16(qy_ld(pb->mo[2]),
							 _mm256_shuffle_epi32(s2, 0xaa)));
				o = _mm256_add_epi32(
				    o, _mm256_madd_epi16(qy_ld(pb->mo[3]),
							 _mm256_shuffle_epi32(s2, 0xff)));
				f = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(o),
						     _mm256_loadu_ps(pb->dmin),
						     _mm256_mul_ps(_mm256_cvtepi32_ps(is[q]),
								   _mm256_loadu_ps(pb->d)));
			}
			acc[q] = _mm256_fmadd_ps(f, _mm256_broadcast_ss(&xb->d), acc[q]);
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < RX; q++)
		_mm256_storeu_ps(y + q * ldy, acc[q]);
}

/* rows [0, n / 8 * 8) of W through panels (m >= 4); returns the rows done */
#define QY_DEFKP(T, name)                                                                          \
	static QD_T size_t name(const uint8_t *w, size_t wrow, const struct qvl_q8k *x,            \
				size_t xrow, size_t nb, float *y, size_t ldy, size_t m, size_t n,  \
				struct qy_kpan *p)                                                 \
	{                                                                                          \
		size_t j = 0;                                                                      \
		for (; j + 8 <= n; j += 8) {                                                       \
			size_t q = 0;                                                              \
			for (size_t i = 0; i < nb; i++)                                            \
				qy_kpack(T, p + i, w + j * wrow, wrow, i);                         \
			for (; q + 4 <= m; q += 4)                                                 \
				qy_kgemm(T, 4, p, x + q * xrow, xrow, nb, y + q * ldy + j, ldy);   \
			for (; q < m; q++)                                                         \
				qy_kgemm(T, 1, p, x + q * xrow, xrow, nb, y + q * ldy + j, ldy);   \
		}                                                                                  \
		return j;                                                                          \
	}

QY_DEFKP(QVL_DT_Q4_K, qy_kp_q4k)
QY_DEFKP(QVL_DT_Q5_K, qy_kp_q5k)
QY_DEFKP(QVL_DT_Q6_K, qy_kp_q6k)

static inline bool qy_is_k(enum qvl_dtype t)
{
	return t == QVL_DT_Q4_K || t == QVL_DT_Q5_K || t == QVL_DT_Q6_K;
}

/* Scratch bytes qz_decode() (m == 1) or qz_gemm_k() need beyond the
 * quantized activation rows: the K-quant panel. */
static size_t qz_scratch(enum qvl_dtype t, size_t nb, size_t m)
{
	return m >= 4 && qy_is_k(t) ? nb * sizeof(struct qy_kpan) : 0;
}

/* Rows [0, m) x [0, n) of a Q4_K, Q5_K or Q6_K product: panels of 8
 * weight rows when m >= 4, the tiles for the rest; false for other types.
 * scr: qz_scratch() bytes. */
static QD_T bool qz_gemm_k(enum qvl_dtype t, const uint8_t *w, size_t wrow, const void *x,
			   size_t xrow, size_t nb, float *y, size_t ldy, size_t m, size_t n,
			   void *scr)
{
	size_t j = 0;

	if (!qy_is_k(t))
		return false;
	if (m >= 4) {
		j = t == QVL_DT_Q4_K   ? qy_kp_q4k(w, wrow, x, xrow, nb, y, ldy, m, n, scr)
		    : t == QVL_DT_Q5_K ? qy_kp_q5k(w, wrow, x, xrow, nb, y, ldy, m, n, scr)
				       : qy_kp_q6k(w, wrow, x, xrow, nb, y, ldy, m, n, scr);
	}
	return qd_gemm_k_tiles(t, w + j * wrow, wrow, x, xrow, nb, y + j, ldy, m, n - j);
}

/* y[0..n) = rows of w against the quantized activation row x, if this
 * file has a kernel for t. */
static QD_T bool qz_decode(enum qvl_dtype t, const uint8_t *w, size_t wrow, const void *x,
			   size_t nb, float *y, size_t n, void *scr)
{
	(void)scr;
	if (t == QVL_DT_Q4_0) {
		QD_ROWS(qy_q40_rows, (const struct qvl_q8a *)x);
		return true;
	}
	return qd_gemm_k_tiles(t, w, wrow, x, nb, nb, y, 1, 1, n);
}

#endif
