/* The int8 dot-product kernels (arithmetic in qdot.h), written once for
 * 256-bit vectors and compiled per ISA by the file that includes this one,
 * after defining:
 *   QD_T        the target attribute (functions here use it)
 *   QD_VNNI     1 for vpdpbusd (AVX512-VNNI on ymm), 0 for AVX2
 *               (vpmaddubsw + vpmaddwd)
 *   QD_FN(x)    the ISA suffix: x##_avx2
 * and then defining the wider kernels qd_matmul() tries first (qz_decode,
 * qz_scratch, qz_gemm_k: qdot_zmm.h, qdot_ymm.h), which alone serve Q4_K,
 * Q5_K and Q6_K.
 *
 * A weight block is unpacked in registers into 32 unsigned (or, for Q8_0
 * and the IQ4 types, signed) int8 per vector and multiplied with the
 * activation's int8; every integer sum equals the reference's (qdot_ref.c)
 * exactly, vpmaddubsw cannot saturate: |u| <= 128 and |x| <= 127 give pairs
 * of at most 32512. The tiles are RW weight rows x RX activation rows:
 * decode (m == 1) streams 4 weight rows at a time against one activation
 * row, prefill reuses each unpacked block across 4 activation rows. */
#include <errno.h>

#include "kern_impl.h"
#include "qdot.h"
#include "qdot_blocks.h"

#define QD_INL static inline __attribute__((always_inline)) QD_T

QD_INL float qd_f16(const uint8_t *p)
{
	return _cvtsh_ss(qvl_load_u16(p));
}

QD_INL float qd_hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* init + Σ u·x per group of four bytes (8 int32 lanes); u unsigned */
QD_INL __m256i qd_dot_u8(__m256i init, __m256i u, __m256i x)
{
#if QD_VNNI
	return _mm256_dpbusd_epi32(init, u, x);
#else
	__m256i p = _mm256_maddubs_epi16(u, x);
	return _mm256_add_epi32(init, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* init + Σ w·x with w signed: |w| times x with w's sign */
QD_INL __m256i qd_dot_s8(__m256i init, __m256i w, __m256i x)
{
	return qd_dot_u8(init, _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
}

/* Σ u·x per 16-bit pair times the 16-bit scales sc (8 int32 lanes) */
QD_INL __m256i qd_dot_sc(__m256i u, __m256i x, __m256i sc)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), sc);
}

QD_INL __m256i qd_nibbles(const uint8_t *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)p), f = _mm_set1_epi8(15);
	return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), f), _mm_and_si128(v, f));
}

/* 32 bits to 32 bytes: 0x10 where bit i of h is set */
QD_INL __m256i qd_bits16(uint32_t h)
{
	const __m256i shuf =
	    _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
	__m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf);
	v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
	return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

QD_INL __m256i qd_iq4(__m256i nib)
{
	const __m256i tbl =
	    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qb_iq4nl_values));
	return _mm256_shuffle_epi8(tbl, nib);
}

/* The 12 scale bytes of a Q4_K/Q5_K block as 16 bytes: scales 0-7, mins
 * 0-7 (the bit layout of qb_k4_scales(), four bytes at a time). Reads 16
 * bytes from s (the 4 after the scales are the block's quants). */
QD_INL __m128i qd_k4_scmn8(const uint8_t *s)
{
	__m128i v = _mm_loadu_si128((const __m128i *)s);	   /* a0 a1 a2 (+4 bytes of qs) */
	__m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* a0 a2 a1 a2 */
	__m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* a0 a0 a1 a1 */
	/* lanes 0, 2: a0, a1 & 63; lanes 1, 3: the low (a2) or high (a2 >> 4)
	 * nibbles, or the top two bits of a0 / a1 moved to bits 4-5 */
	__m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
				   _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
	__m128i hi =
	    _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
	return _mm_or_si128(lo, hi);
}

/* ---- shared by the wide files (qdot_zmm.h, qdot_ymm.h) ---------------- */

QD_INL void qd_prefetch(const uint8_t *p, size_t bytes)
{
	for (size_t o = 0; o < bytes; o += 64)
		_mm_prefetch((const char *)p + o, _MM_HINT_T1);
}

/* y[0..n) of a decode kernel fn(R, w, wrow, X, nb, y) of R = 4 or 1 rows */
#define QD_ROWS(fn, X)                                                                             \
	do {                                                                                       \
		size_t j_ = 0;                                                                     \
		for (; j_ + 4 <= n; j_ += 4)                                                       \
			fn(4, w + j_ * wrow, wrow, X, nb, y + j_);                                 \
		for (; j_ < n; j_++)                                                               \
			fn(1, w + j_ * wrow, wrow, X, nb, y + j_);                                 \
	} while (0)

/* name(): rows [0, m) x [0, n) of a K-quant product through TILE(t, RW,
 * RX, ...): decode (m == 1) 4 weight rows x 1 activation row, prefill
 * 1 x PX */
#define QD_DEFK(T, name, TILE, PX)                                                                 \
	static QD_T void name(const uint8_t *w, size_t wrow, const struct qvl_q8k *x, size_t xrow, \
			      size_t nb, float *y, size_t ldy, size_t m, size_t n)                 \
	{                                                                                          \
		for (size_t j = 0; m == 1 && j < n; j += 4) {                                      \
			if (n - j >= 4)                                                            \
				TILE(T, 4, 1, w + j * wrow, wrow, x, xrow, nb, y + j, ldy);        \
			else                                                                       \
				for (size_t r = j; r < n; r++)                                     \
					TILE(T, 1, 1, w + r * wrow, wrow, x, xrow, nb, y + r,      \
					     ldy);                                                 \
		}                                                                                  \
		for (size_t j = 0; m > 1 && j < n; j++) {                                          \
			const uint8_t *wj = w + j * wrow;                                          \
			size_t i = 0;                                                              \
			for (; i + PX <= m; i += PX)                                               \
				TILE(T, 1, PX, wj, wrow, x + i * xrow, xrow, nb, y + i * ldy + j,  \
				     ldy);                                                         \
			for (; i < m; i++)                                                         \
				TILE(T, 1, 1, wj, wrow, x + i * xrow, xrow, nb, y + i * ldy + j,   \
				     ldy);                                                         \
		}                                                                                  \
	}

/* qd_gemm_k_tiles(): rows [0, m) x [0, n) of a Q4_K, Q5_K or Q6_K product
 * through TILE (activation rows xrow blocks apart, Y rows ldy apart);
 * false for other types */
#define QD_DEF_GEMM_K(TILE, PX)                                                                    \
	QD_DEFK(QVL_DT_Q4_K, qd_gk_q4k, TILE, PX)                                                  \
	QD_DEFK(QVL_DT_Q5_K, qd_gk_q5k, TILE, PX)                                                  \
	QD_DEFK(QVL_DT_Q6_K, qd_gk_q6k, TILE, PX)                                                  \
	static QD_T bool qd_gemm_k_tiles(enum qvl_dtype t, const uint8_t *w, size_t wrow,          \
					 const void *x, size_t xrow, size_t nb, float *y,          \
					 size_t ldy, size_t m, size_t n)                           \
	{                                                                                          \
		if (t == QVL_DT_Q4_K)                                                              \
			qd_gk_q4k(w, wrow, x, xrow, nb, y, ldy, m, n);                             \
		else if (t == QVL_DT_Q5_K)                                                         \
			qd_gk_q5k(w, wrow, x, xrow, nb, y, ldy, m, n);                             \
		else if (t == QVL_DT_Q6_K)                                                         \
			qd_gk_q6k(w, wrow, x, xrow, nb, y, ldy, m, n);                             \
		else                                                                               \
			return false;                                                              \
		return true;                                                                       \
	}

/* ---- 32-value block types ---------------------------------------------- */

struct qd_w32 {
	__m256i u;    /* 32 quants: unsigned, or signed for Q8_0 / IQ4_NL */
	__m256 dv;    /* scale, broadcast */
	float m;      /* min (Q4_1, Q5_1) */
	int off_lane; /* offset x 32 / 8: subtracted per lane as off_lane * s */
};

QD_INL bool qd_signed32(enum qvl_dtype t)
{
	return t == QVL_DT_Q8_0 || t == QVL_DT_IQ4_NL;
}

QD_INL bool qd_min32(enum qvl_dtype t)
{
	return t == QVL_DT_Q4_1 || t == QVL_DT_Q5_1;
}

QD_INL void qd_unpack32(struct qd_w32 *o, enum qvl_dtype t, const uint8_t *b)
{
	const uint8_t *qs = b + 2;
	uint32_t qh = 0;

	/* F16C converts the scale exactly; broadcast once per block, shared by
	 * every activation row */
	o->dv = _mm256_cvtph_ps(_mm_set1_epi16((short)qvl_load_u16(b)));
	o->m = 0.0f;
	o->off_lane = 0;
	if (qd_min32(t)) {
		o->m = qd_f16(b + 2);
		qs += 2;
	}
	if (t == QVL_DT_Q5_0 || t == QVL_DT_Q5_1) {
		memcpy(&qh, qs, 4);
		qs += 4;
	}
	switch (t) {
	case QVL_DT_Q8_0:
		o->u = _mm256_loadu_si256((const __m256i *)qs);
		break;
	case QVL_DT_IQ4_NL:
		o->u = qd_iq4(qd_nibbles(qs));
		break;
	case QVL_DT_Q5_0:
	case QVL_DT_Q5_1:
		o->u = _mm256_or_si256(qd_nibbles(qs), qd_bits16(qh));
		o->off_lane = t == QVL_DT_Q5_0 ? 2 : 0;
		break;
	default: /* Q4_0, Q4_1 */
		o->u = qd_nibbles(qs);
		o->off_lane = t == QVL_DT_Q4_0 ? 1 : 0;
		break;
	}
#if QD_VNNI
	if (qd_signed32(t)) {
		/* w + 128 as unsigned: Σ (w + 128) x - 128 s */
		o->u = _mm256_xor_si256(o->u, _mm256_set1_epi8((char)0x80));
		o->off_lane = 16;
	}
#endif
}

QD_INL void qd_tile32(enum qvl_dtype t, const int RW, const int RX, const uint8_t *w, size_t wrow,
		      const struct qvl_q8a *x, size_t xrow, size_t nb, float *y, size_t ldy)
{
	const size_t bb = t == QVL_DT_Q8_0   ? 34
			  : t == QVL_DT_Q4_1 ? 20
			  : t == QVL_DT_Q5_0 ? 22
			  : t == QVL_DT_Q5_1 ? 24
					     : 18;
	__m256 acc[4][4];
	float macc[4][4];

#pragma GCC unroll 4
	for (int r = 0; r < RW; r++)
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++) {
			acc[r][q] = _mm256_setzero_ps();
			macc[r][q] = 0.0f;
		}
	for (size_t i = 0; i < nb; i++) {
		struct qd_w32 u[4];

#pragma GCC unroll 4
		for (int r = 0; r < RW; r++) {
			const uint8_t *b = w + r * wrow + i * bb;
			/* the same offset RW rows on, into L2 (as the bf16
			 * matvec): the next tile's rows start new pages the
			 * hardware prefetcher would learn too late */
			_mm_prefetch((const char *)b + RW * wrow, _MM_HINT_T1);
			qd_unpack32(&u[r], t, b);
		}
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++) {
			const struct qvl_q8a *xb = x + q * xrow + i;
			__m256i xv = _mm256_loadu_si256((const __m256i *)xb->q);
			__m256 dx = _mm256_broadcast_ss(&xb->d);
#pragma GCC unroll 4
			for (int r = 0; r < RW; r++) {
				__m256i init = _mm256_set1_epi32(-u[r].off_lane * xb->s), p;
#if QD_VNNI
				p = qd_dot_u8(init, u[r].u, xv);
#else
				p = qd_signed32(t) ? qd_dot_s8(init, u[r].u, xv)
						   : qd_dot_u8(init, u[r].u, xv);
#endif
				acc[r][q] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
							    _mm256_mul_ps(u[r].dv, dx), acc[r][q]);
				if (qd_min32(t))
					macc[r][q] += xb->d * u[r].m * (float)xb->s;
			}
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < RX; q++)
#pragma GCC unroll 4
		for (int r = 0; r < RW; r++)
			y[q * ldy + r] = qd_hsum(acc[r][q]) + macc[r][q];
}

/* ---- 256-value block types --------------------------------------------- */

struct qd_wk {
	const uint8_t *b;
	float d, dmin;
	int16_t sc[16]; /* per 16 values */
	__m256i off;	/* per-16 offsets (with d), int16, for madd with bsum */
	__m256i mn;	/* per-16 mins (with dmin), int16 */
};

QD_INL void qd_prepk(struct qd_wk *o, enum qvl_dtype t, const uint8_t *b)
{
	o->b = b;
	o->off = o->mn = _mm256_setzero_si256();
	o->dmin = 0.0f;
	switch (t) {
	case QVL_DT_Q3_K: {
		int8_t sc[16];
		o->d = qd_f16(b + QB_Q3K_D);
		qb_q3k_scales(b + QB_Q3K_SC, sc);
		__m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
		_mm256_storeu_si256((__m256i *)o->sc, s16);
		o->off = _mm256_slli_epi16(s16, 2);
		break;
	}
	case QVL_DT_Q2_K: {
		__m128i s8 = _mm_loadu_si128((const __m128i *)b);
		__m128i f = _mm_set1_epi8(15);
		o->d = qd_f16(b + QB_Q2K_D);
		o->dmin = qd_f16(b + QB_Q2K_D + 2);
		_mm256_storeu_si256((__m256i *)o->sc, _mm256_cvtepu8_epi16(_mm_and_si128(s8, f)));
		o->mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), f));
		break;
	}
	default: /* IQ4_XS */
		o->d = qd_f16(b);
		for (int j = 0; j < 8; j++)
			o->sc[2 * j] = o->sc[2 * j + 1] = (int16_t)qb_iq4xs_scale(b, j);
		break;
	}
}

/* The 32 quants of chunk c (values 32c .. 32c + 31), unsigned (signed for
 * IQ4_XS). */
QD_INL __m256i qd_chunkk(enum qvl_dtype t, const uint8_t *b, int c)
{
	const __m256i three = _mm256_set1_epi8(3);
	int h = c / 4, cc = c % 4;

	switch (t) {
	case QVL_DT_Q3_K: {
		__m256i qs = _mm256_loadu_si256((const __m256i *)(b + QB_Q3K_QS + 32 * h));
		__m256i hm = _mm256_loadu_si256((const __m256i *)b);
		__m256i lo = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * cc), three);
		__m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + cc)));
		__m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
		return _mm256_or_si256(lo, _mm256_and_si256(hb, _mm256_set1_epi8(4)));
	}
	case QVL_DT_Q2_K: {
		__m256i qs = _mm256_loadu_si256((const __m256i *)(b + QB_Q2K_QS + 32 * h));
		return _mm256_and_si256(_mm256_srli_epi16(qs, 2 * cc), three);
	}
	default: /* IQ4_XS */
		return qd_iq4(qd_nibbles(b + QB_IQ4XS_QS + 16 * c));
	}
}

QD_INL void qd_tilek(enum qvl_dtype t, const int RW, const int RX, const uint8_t *w, size_t wrow,
		     const struct qvl_q8k *x, size_t xrow, size_t nb, float *y, size_t ldy)
{
	const size_t bb = t == QVL_DT_Q3_K ? 110 : t == QVL_DT_Q2_K ? 84 : 136;
	const bool has_min = t == QVL_DT_Q2_K, has_off = t == QVL_DT_Q3_K;
	__m256 acc[4][4], macc[4][4];

#pragma GCC unroll 4
	for (int r = 0; r < RW; r++)
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++)
			acc[r][q] = macc[r][q] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		struct qd_wk wk[4];
		__m256i is[4][4];

#pragma GCC unroll 4
		for (int r = 0; r < RW; r++) {
			const uint8_t *b = w + r * wrow + i * bb;
			_mm_prefetch((const char *)b + RW * wrow, _MM_HINT_T1);
			_mm_prefetch((const char *)b + RW * wrow + 64, _MM_HINT_T1);
			_mm_prefetch((const char *)b + RW * wrow + 128, _MM_HINT_T1);
			qd_prepk(&wk[r], t, b);
#pragma GCC unroll 4
			for (int q = 0; q < RX; q++)
				is[r][q] = _mm256_setzero_si256();
		}
#pragma GCC unroll 8
		for (int c = 0; c < 8; c++) {
#pragma GCC unroll 4
			for (int r = 0; r < RW; r++) {
				__m256i u = qd_chunkk(t, wk[r].b, c);
				__m256i sc = _mm256_set_m128i(_mm_set1_epi16(wk[r].sc[2 * c + 1]),
							      _mm_set1_epi16(wk[r].sc[2 * c]));
				__m256i au = u;
				if (t == QVL_DT_IQ4_XS)
					au = _mm256_abs_epi8(u);
#pragma GCC unroll 4
				for (int q = 0; q < RX; q++) {
					__m256i xv = _mm256_loadu_si256(
					    (const __m256i *)((x + q * xrow + i)->q + 32 * c));
					if (t == QVL_DT_IQ4_XS)
						xv = _mm256_sign_epi8(xv, u);
					is[r][q] =
					    _mm256_add_epi32(is[r][q], qd_dot_sc(au, xv, sc));
				}
			}
		}
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++) {
			const struct qvl_q8k *xb = x + q * xrow + i;
			__m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsum);
#pragma GCC unroll 4
			for (int r = 0; r < RW; r++) {
				__m256i p = is[r][q];
				if (has_off)
					p = _mm256_sub_epi32(p, _mm256_madd_epi16(bs, wk[r].off));
				acc[r][q] =
				    _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
						    _mm256_set1_ps(xb->d * wk[r].d), acc[r][q]);
				if (has_min)
					macc[r][q] = _mm256_fmadd_ps(
					    _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, wk[r].mn)),
					    _mm256_set1_ps(xb->d * wk[r].dmin), macc[r][q]);
			}
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < RX; q++)
#pragma GCC unroll 4
		for (int r = 0; r < RW; r++)
			y[q * ldy + r] = qd_hsum(_mm256_sub_ps(acc[r][q], macc[r][q]));
}

/* ---- prefill for the 32-value types: 8 weight rows interleaved ---------
 * A panel holds, per block, 8 steps of 32 bytes: step s has in lane r the
 * quants 4s .. 4s+3 of weight row r (an 8x8 transpose of the unpacked
 * blocks, made once per panel and reused by every activation row). One
 * vpdpbusd (or vpmaddubsw + vpmaddwd) with 4 activation bytes broadcast
 * then adds to each row's own lane: after 8 steps lane r holds row r's
 * whole integer block sum, and the f32 scaling is one multiply-add for 8
 * rows instead of one per row, so the integer units set the pace. The
 * offset (8 for Q4_0, 16 for Q5_0, 128 for signed quants made unsigned)
 * is the lanes' starting value, -offset x the activation block's sum.
 * AVX2's vpmaddubsw takes one unsigned operand and its int16 pairs would
 * overflow with w + 128: signed weights (Q8_0, IQ4_NL) keep |w| in the
 * panel and w beside it, and each step gives the broadcast activation
 * bytes w's sign per lane (vpsignb) before the multiply. */

#define QD_PW 8 /* weight rows per panel */

struct qd_panel {
	uint8_t *q;   /* [nb][8 steps][32] */
	float *d, *m; /* [nb][8] */
	uint8_t *sg;  /* signed weights without VNNI: w itself, as q */
	int off;      /* per lane: off x s */
};

/* the panel keeps |w| and w (AVX2, signed weights) */
/* Without VNNI: the panel's quants are 0-15 (Q4_0), so a row's 8 steps of
 * vpmaddubsw pairs fit int16 (8 x 2 x 15 x 128 < 2^15) and are summed
 * there before one vpmaddwd, as the one-row decode does (qdot_x8.h
 * qx_rows_ymm); the integer sum is the same, so are the bits. */
QD_INL bool qd_sum16(enum qvl_dtype t)
{
	return !QD_VNNI && t == QVL_DT_Q4_0;
}

QD_INL bool qd_signpanel(enum qvl_dtype t)
{
	return !QD_VNNI && qd_signed32(t);
}

/* Scratch bytes of a panel of nb blocks of type t. */
QD_INL size_t qd_panel_bytes(enum qvl_dtype t, size_t nb)
{
	return nb * (qd_signpanel(t) ? 576 : 320);
}

QD_INL void qd_tr8(__m256i r[8])
{
	__m256 a[8], b[8];

	for (int i = 0; i < 8; i += 2) {
		a[i] = _mm256_unpacklo_ps(_mm256_castsi256_ps(r[i]), _mm256_castsi256_ps(r[i + 1]));
		a[i + 1] =
		    _mm256_unpackhi_ps(_mm256_castsi256_ps(r[i]), _mm256_castsi256_ps(r[i + 1]));
	}
	for (int i = 0; i < 8; i += 4) {
		b[i] = _mm256_shuffle_ps(a[i], a[i + 2], 0x44);
		b[i + 1] = _mm256_shuffle_ps(a[i], a[i + 2], 0xee);
		b[i + 2] = _mm256_shuffle_ps(a[i + 1], a[i + 3], 0x44);
		b[i + 3] = _mm256_shuffle_ps(a[i + 1], a[i + 3], 0xee);
	}
	for (int i = 0; i < 4; i++) {
		r[i] = _mm256_castps_si256(_mm256_permute2f128_ps(b[i], b[i + 4], 0x20));
		r[i + 4] = _mm256_castps_si256(_mm256_permute2f128_ps(b[i], b[i + 4], 0x31));
	}
}

QD_INL void qd_pack32(enum qvl_dtype t, struct qd_panel *p, const uint8_t *w, size_t wrow,
		      size_t nb)
{
	const size_t bb = qvl_dtype_info(t)->blk_bytes;

	for (size_t i = 0; i < nb; i++) {
		__m256i u[8];
		for (int r = 0; r < QD_PW; r++) {
			struct qd_w32 o;
			const uint8_t *b = w + r * wrow + i * bb;
			qd_unpack32(&o, t, b);
			u[r] = o.u;
			p->d[i * 8 + r] = qd_f16(b);
			p->m[i * 8 + r] = o.m;
			p->off = o.off_lane * 8;
		}
		qd_tr8(u);
		for (int s = 0; s < 8; s++) {
			_mm256_storeu_si256((__m256i *)(p->q + i * 256 + 32 * s),
					    qd_signpanel(t) ? _mm256_abs_epi8(u[s]) : u[s]);
			if (qd_signpanel(t))
				_mm256_storeu_si256((__m256i *)(p->sg + i * 256 + 32 * s), u[s]);
		}
	}
}

/* lanes of acc += u (unsigned) x 4 activation bytes broadcast, those
 * given the sign of sg's bytes first when sgn */
QD_INL __m256i qd_dot4(__m256i acc, __m256i u, const int8_t *x, bool sgn, __m256i sg)
{
	int32_t v;

	memcpy(&v, x, 4);
	__m256i xb = _mm256_set1_epi32(v);
	return qd_dot_u8(acc, u, sgn ? _mm256_sign_epi8(xb, sg) : xb);
}

/* vpdpbusd's latency (4-5 cycles) over its throughput (2 per cycle) wants
 * 8-10 independent sums in flight: with VNNI, 8 activation rows (32
 * registers) and even/odd steps in separate sums */
#define QD_GX (QD_VNNI ? 8 : 4)
#define QD_GS (QD_VNNI ? 2 : 1)

QD_INL void qd_gemm32(enum qvl_dtype t, const int RX, const struct qd_panel *p,
		      const struct qvl_q8a *x, size_t xrow, size_t nb, float *y, size_t ldy)
{
	__m256 acc[QD_GX];

#pragma GCC unroll 8
	for (int q = 0; q < RX; q++)
		acc[q] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *pq = p->q + i * 256;
		__m256i is[QD_GX][QD_GS];
#pragma GCC unroll 8
		for (int q = 0; q < RX; q++) {
			is[q][0] = _mm256_set1_epi32(-p->off * x[q * xrow + i].s);
			if (QD_GS > 1)
				is[q][QD_GS - 1] = _mm256_setzero_si256();
		}
		if (qd_sum16(t)) {
			/* the 8 steps' vpmaddubsw pairs summed in int16, one
			 * vpmaddwd a row: 16 ops a row and block, not 24 */
			__m256i h[QD_GX];
#pragma GCC unroll 8
			for (int q = 0; q < RX; q++)
				h[q] = _mm256_setzero_si256();
#pragma GCC unroll 8
			for (int s = 0; s < 8; s++) {
				__m256i u = _mm256_loadu_si256((const __m256i *)(pq + 32 * s));
#pragma GCC unroll 8
				for (int q = 0; q < RX; q++) {
					int32_t v;
					memcpy(&v, x[q * xrow + i].q + 4 * s, 4);
					h[q] = _mm256_add_epi16(
					    h[q], _mm256_maddubs_epi16(u, _mm256_set1_epi32(v)));
				}
			}
#pragma GCC unroll 8
			for (int q = 0; q < RX; q++)
				is[q][0] = _mm256_add_epi32(
				    is[q][0], _mm256_madd_epi16(h[q], _mm256_set1_epi16(1)));
		} else {
#pragma GCC unroll 8
			for (int s = 0; s < 8; s++) {
				__m256i u = _mm256_loadu_si256((const __m256i *)(pq + 32 * s)),
					sg = u;
				if (qd_signpanel(t))
					sg = _mm256_loadu_si256(
					    (const __m256i *)(p->sg + i * 256 + 32 * s));
#pragma GCC unroll 8
				for (int q = 0; q < RX; q++)
					is[q][s % QD_GS] = qd_dot4(is[q][s % QD_GS], u,
								   x[q * xrow + i].q + 4 * s,
								   qd_signpanel(t), sg);
			}
		}
		__m256 dv = _mm256_loadu_ps(p->d + i * 8);
#pragma GCC unroll 8
		for (int q = 0; q < RX; q++) {
			const struct qvl_q8a *xb = x + q * xrow + i;
			__m256i sum =
			    QD_GS > 1 ? _mm256_add_epi32(is[q][0], is[q][QD_GS - 1]) : is[q][0];
			acc[q] =
			    _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum),
					    _mm256_mul_ps(dv, _mm256_broadcast_ss(&xb->d)), acc[q]);
			if (qd_min32(t))
				acc[q] =
				    _mm256_fmadd_ps(_mm256_loadu_ps(p->m + i * 8),
						    _mm256_set1_ps(xb->d * (float)xb->s), acc[q]);
		}
	}
#pragma GCC unroll 8
	for (int q = 0; q < RX; q++)
		_mm256_storeu_ps(y + q * ldy, acc[q]);
}

/* Rows [j, j + 8) of W against activation rows [i0, i1) through a panel. */
typedef void (*qd_gemm_fn)(const uint8_t *w, size_t wrow, const void *x, size_t xrow, size_t nb,
			   size_t nx, float *y, size_t ldy, uint8_t *scratch);

#define QD_DEFGEMM(T, name)                                                                        \
	static QD_T void QD_FN(name)(const uint8_t *w, size_t wrow, const void *xv, size_t xrow,   \
				     size_t nb, size_t nx, float *y, size_t ldy, uint8_t *scr)     \
	{                                                                                          \
		const struct qvl_q8a *x = xv;                                                      \
		struct qd_panel p = {scr, (float *)(void *)(scr + nb * 256),                       \
				     (float *)(void *)(scr + nb * 288), scr + nb * 320, 0};        \
		size_t i = 0;                                                                      \
		qd_pack32(T, &p, w, wrow, nb);                                                     \
		for (; i + QD_GX <= nx; i += QD_GX)                                                \
			qd_gemm32(T, QD_GX, &p, x + i * xrow, xrow, nb, y + i * ldy, ldy);         \
		for (; i < nx; i++)                                                                \
			qd_gemm32(T, 1, &p, x + i * xrow, xrow, nb, y + i * ldy, ldy);             \
	}

QD_DEFGEMM(QVL_DT_Q4_0, qd_gemm_q4_0)
QD_DEFGEMM(QVL_DT_Q4_1, qd_gemm_q4_1)
QD_DEFGEMM(QVL_DT_Q5_0, qd_gemm_q5_0)
QD_DEFGEMM(QVL_DT_Q5_1, qd_gemm_q5_1)
QD_DEFGEMM(QVL_DT_Q8_0, qd_gemm_q8_0)
QD_DEFGEMM(QVL_DT_IQ4_NL, qd_gemm_iq4_nl)

/* the types with a panel path (the rest: NULL, tiles) */
static const qd_gemm_fn QD_FN(qd_gemms)[QVL_DT_COUNT] = {
    [QVL_DT_Q4_0] = QD_FN(qd_gemm_q4_0), [QVL_DT_Q4_1] = QD_FN(qd_gemm_q4_1),
    [QVL_DT_Q5_0] = QD_FN(qd_gemm_q5_0), [QVL_DT_Q5_1] = QD_FN(qd_gemm_q5_1),
    [QVL_DT_Q8_0] = QD_FN(qd_gemm_q8_0), [QVL_DT_IQ4_NL] = QD_FN(qd_gemm_iq4_nl),
};

/* ---- drivers ----------------------------------------------------------- */

/* One tile of nw (1..4) weight rows x nx (1..4) activation rows. */
typedef void (*qd_tile_fn)(int nw, int nx, const uint8_t *w, size_t wrow, const void *x,
			   size_t xrow, size_t nb, float *y, size_t ldy);

#define QD_TILE_CASES(tile, t, X)                                                                  \
	switch (nw * 8 + nx) {                                                                     \
	case 4 * 8 + 1:                                                                            \
		tile(t, 4, 1, w, wrow, X, xrow, nb, y, ldy);                                       \
		break;                                                                             \
	case 2 * 8 + 4:                                                                            \
		tile(t, 2, 4, w, wrow, X, xrow, nb, y, ldy);                                       \
		break;                                                                             \
	case 1 * 8 + 4:                                                                            \
		tile(t, 1, 4, w, wrow, X, xrow, nb, y, ldy);                                       \
		break;                                                                             \
	default:                                                                                   \
		for (int r_ = 0; r_ < nw; r_++)                                                    \
			for (int q_ = 0; q_ < nx; q_++)                                            \
				tile(t, 1, 1, w + r_ * wrow, wrow, X + q_ * xrow, xrow, nb,        \
				     y + q_ * ldy + r_, ldy);                                      \
	}

/* The tile entry of type T: TILE (qd_tile32 or qd_tilek) on activation
 * blocks XT. */
#define QD_DEFTILE(T, name, TILE, XT)                                                              \
	static QD_T void QD_FN(name)(int nw, int nx, const uint8_t *w, size_t wrow,                \
				     const void *xv, size_t xrow, size_t nb, float *y, size_t ldy) \
	{                                                                                          \
		const XT *x = xv;                                                                  \
		QD_TILE_CASES(TILE, T, x)                                                          \
	}

QD_DEFTILE(QVL_DT_Q8_0, qd_q8_0, qd_tile32, struct qvl_q8a)
QD_DEFTILE(QVL_DT_Q4_0, qd_q4_0, qd_tile32, struct qvl_q8a)
QD_DEFTILE(QVL_DT_Q4_1, qd_q4_1, qd_tile32, struct qvl_q8a)
QD_DEFTILE(QVL_DT_Q5_0, qd_q5_0, qd_tile32, struct qvl_q8a)
QD_DEFTILE(QVL_DT_Q5_1, qd_q5_1, qd_tile32, struct qvl_q8a)
QD_DEFTILE(QVL_DT_IQ4_NL, qd_iq4_nl, qd_tile32, struct qvl_q8a)
QD_DEFTILE(QVL_DT_Q3_K, qd_q3_k, qd_tilek, struct qvl_q8k)
QD_DEFTILE(QVL_DT_Q2_K, qd_q2_k, qd_tilek, struct qvl_q8k)
QD_DEFTILE(QVL_DT_IQ4_XS, qd_iq4_xs, qd_tilek, struct qvl_q8k)

static const qd_tile_fn QD_FN(qd_tiles)[QVL_DT_COUNT] = {
    [QVL_DT_Q8_0] = QD_FN(qd_q8_0),	[QVL_DT_Q4_0] = QD_FN(qd_q4_0),
    [QVL_DT_Q4_1] = QD_FN(qd_q4_1),	[QVL_DT_Q5_0] = QD_FN(qd_q5_0),
    [QVL_DT_Q5_1] = QD_FN(qd_q5_1),	[QVL_DT_IQ4_NL] = QD_FN(qd_iq4_nl),
    [QVL_DT_Q3_K] = QD_FN(qd_q3_k),	[QVL_DT_Q2_K] = QD_FN(qd_q2_k),
    [QVL_DT_IQ4_XS] = QD_FN(qd_iq4_xs),
};

/* The including file's wider kernels (qdot_zmm.h, qdot_ymm.h): the decode
 * kernel of type t or false, its scratch beyond the activation row, and
 * Q4_K, Q5_K, Q6_K (which have no tile here) or false. */
static QD_T bool qz_decode(enum qvl_dtype t, const uint8_t *w, size_t wrow, const void *x,
			   size_t nb, float *y, size_t n, void *scr);
static size_t qz_scratch(enum qvl_dtype t, size_t nb, size_t m);
static QD_T bool qz_gemm_k(enum qvl_dtype t, const uint8_t *w, size_t wrow, const void *x,
			   size_t xrow, size_t nb, float *y, size_t ldy, size_t m, size_t n,
			   void *scr);

/* Y = X · Wᵀ through the tiles: X quantized once into the thread's scratch;
 * activation rows in chunks whose quantized bytes stay in L2 (about 256 KiB)
 * while every W row passes over them, so W is streamed m / chunk times. */
static QD_T int QD_FN(qd_matmul)(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
				 enum qvl_dtype t, size_t ldw, const float *bias, size_t m,
				 size_t n, size_t k)
{
	const struct qvl_dtype_info *di = qvl_dtype_info(t);
	qd_tile_fn tile = (unsigned)t < QVL_DT_COUNT ? QD_FN(qd_tiles)[t] : NULL;
	size_t rb = qvl_qdot_act_bytes(t, k), ab = qvl_qdot_act_blk(t);
	size_t nb = k / ab, xrow = nb, wrow = ldw / di->blk * di->blk_bytes;
	qd_gemm_fn gemm = m >= 4 && tile ? QD_FN(qd_gemms)[t] : NULL;
	/* the panel (8 rows: 256 bytes of quants + 64 of scales per block,
	 * + 256 of signs for AVX2 signed weights)
	 * after the quantized activations */
	size_t pan = gemm ? qd_panel_bytes(t, nb) : 0, xbytes = (m * rb + 63) & ~(size_t)63;
	if (m == 1 || !gemm)
		pan = qz_scratch(t, nb, m);
	uint8_t *xq = qvl_qact_scratch(xbytes + pan);
	/* 2 weight rows x 4 activation rows; the K-quants' 3 accumulator
	 * sets per tile leave room for that only with 32 vector registers */
	int pw = ab == QVL_QA_BLK || QD_VNNI ? 2 : 1;
	size_t mc;

	if (!xq)
		return -ENOMEM;
	/* only Q4_K, Q5_K and Q6_K have no tile: the wider kernels take them */
	if (!tile && t != QVL_DT_Q4_K && t != QVL_DT_Q5_K && t != QVL_DT_Q6_K)
		return -EINVAL;
	for (size_t i = 0; i < m; i++)
		qvl_qact_row_avx2(xq + i * rb, t, X + i * ldx, k);
	const uint8_t *w = W;
	if (m == 1) {
		size_t j = 0;
		if (qz_decode(t, w, wrow, xq, nb, Y, n, xq + xbytes))
			j = n;
		for (; j + 4 <= n; j += 4)
			tile(4, 1, w + j * wrow, wrow, xq, xrow, nb, Y + j, ldy);
		if (j < n)
			tile((int)(n - j), 1, w + j * wrow, wrow, xq, xrow, nb, Y + j, ldy);
	} else {
		mc = (256 << 10) / (rb ? rb : 1);
		mc = mc < 4 ? 4 : mc & ~(size_t)3;
		for (size_t i0 = 0; i0 < m; i0 += mc) {
			size_t i1 = i0 + mc < m ? i0 + mc : m, j = 0;
			if (qz_gemm_k(t, w, wrow, xq + i0 * rb, xrow, nb, Y + i0 * ldy, ldy,
				      i1 - i0, n, xq + xbytes))
				continue;
			if (gemm)
				for (; j + QD_PW <= n; j += QD_PW)
					gemm(w + j * wrow, wrow, xq + i0 * rb, xrow, nb, i1 - i0,
					     Y + i0 * ldy + j, ldy, xq + xbytes);
			for (; j < n; j += (size_t)pw) {
				int nw = n - j >= (size_t)pw ? pw : 1;
				for (size_t i = i0; i < i1; i += 4) {
					int nx = i1 - i >= 4 ? 4 : (int)(i1 - i);
					tile(nw, nx, w + j * wrow, wrow, xq + i * rb, xrow, nb,
					     Y + i * ldy + j, ldy);
				}
			}
		}
	}
	qvl_qdot_add_bias(Y, ldy, bias, m, n);
	return 0;
}
