/* Decode (m == 1) kernels on 512-bit vectors for the weight types a
 * downloaded GGUF spends most bytes on (Q4_K, Q5_K, Q6_K, Q4_0), included
 * by the AVX512-VNNI file after the template (qdot_tmpl.h), whose
 * qd_matmul() calls qz_decode() first. Same integer sums as the reference
 * (qdot.h), fewer instructions than the template's 256-bit tiles: decode
 * streams each weight byte once, and with two vCPUs the issue slots, not
 * the bytes, were setting the pace (docs/todo-qdot.md).
 *
 *  - the K-quants unpack 64 quants per vector (a 64-byte load gives two
 *    32-value sub-blocks' nibbles in its low and high halves) and apply the
 *    per-sub-block scales in the integer domain with one vpdpwssd per 64
 *    quants (vpmaddubsw pairs x 16-bit scales), so each block costs one
 *    int-to-float conversion and one multiply-add per row;
 *  - the 32-value types unpack two blocks per vector and scale each block's
 *    lanes by a vector of per-lane scales (weight x activation);
 *  - 4 weight rows share each activation vector; the weight rows of the
 *    next 4 are prefetched at the same offset into L2. */
#ifndef QVL_QDOT_ZMM_H
#define QVL_QDOT_ZMM_H

#include "kern_impl.h"
#include "qdot.h"
#include "qdot_blocks.h"

#define QZ_INL static inline __attribute__((always_inline)) QD_T

/* ---- Q4_K, Q5_K, Q6_K -------------------------------------------------- */

/* The 12 scale bytes of a Q4_K/Q5_K block as 16 words: scales 0-7, mins
 * 0-7 (qd_k4_scmn8()). */
QZ_INL __m256i qz_k4_scmn(const uint8_t *s)
{
	return _mm256_cvtepu8_epi16(qd_k4_scmn8(s));
}

/* vpermw indices: vector c of a block holds values 64c .. 64c + 63, i.e.
 * Q4_K sub-blocks (32 values) 2c and 2c + 1, Q6_K scales (16 values)
 * 4c .. 4c + 3; then the Q4_K mins each twice (one per 16-value sum) */
#define QZ_H(a, b)                                                                                 \
	a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b, b, b, b, b, b, b,  \
	    b, b
#define QZ_Q(a)                                                                                    \
	a, a, a, a, a, a, a, a, a + 1, a + 1, a + 1, a + 1, a + 1, a + 1, a + 1, a + 1, a + 2,     \
	    a + 2, a + 2, a + 2, a + 2, a + 2, a + 2, a + 2, a + 3, a + 3, a + 3, a + 3, a + 3,    \
	    a + 3, a + 3, a + 3
static const uint16_t qz_k4_idx[5][32]
    __attribute__((aligned(64))) = {{QZ_H(0, 1)},
				    {QZ_H(2, 3)},
				    {QZ_H(4, 5)},
				    {QZ_H(6, 7)},
				    {8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15}};
static const uint16_t qz_q6k_idx[4][32]
    __attribute__((aligned(64))) = {{QZ_Q(0)}, {QZ_Q(4)}, {QZ_Q(8)}, {QZ_Q(12)}};
#undef QZ_H
#undef QZ_Q

/* One Q4_K, Q5_K or Q6_K weight block unpacked: per 64-value vector c its
 * quants (unsigned) and each 16-bit pair's scale; mo: the mins per 16-value
 * activation sum, or the Q6_K offset 32 x each scale (words). */
struct qz_wk {
	__m512i u[4], s[4];
	__m256i mo;
	float d, dmin;
};

QZ_INL void qz_unpack_k(struct qz_wk *o, enum qvl_dtype t, const uint8_t *b)
{
	const __m512i f = _mm512_set1_epi8(15);

	if (t != QVL_DT_Q6_K) {
		/* 64 bytes = nibble groups 2h, 2h + 1; group g's low nibbles
		 * are values 64g + [0, 32), its high ones 64g + [32, 64) */
		__m512i sw = _mm512_castsi256_si512(qz_k4_scmn(b + QB_K4_SC));
#pragma GCC unroll 2
		for (int h = 0; h < 2; h++) {
			__m512i v = _mm512_loadu_si512(
			    b + (t == QVL_DT_Q4_K ? QB_Q4K_QS : QB_Q5K_QS) + 64 * h);
			__m512i lo = _mm512_and_si512(v, f);
			__m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), f);
			o->u[2 * h] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
			o->u[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2));
		}
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++)
			o->s[c] = _mm512_permutexvar_epi16(_mm512_load_si512(qz_k4_idx[c]), sw);
		o->mo = _mm256_permutexvar_epi16(_mm256_load_si256((const __m256i *)qz_k4_idx[4]),
						 _mm512_castsi512_si256(sw));
		if (t == QVL_DT_Q5_K) {
			/* bit j of qh byte l: the fifth bit of value 32j + l;
			 * vector c's halves want bits 2c, 2c + 1 at bit 4: a
			 * 64-bit rotate by 4 - bit keeps bit 4 of each byte
			 * within its byte */
			const __m512i m10 = _mm512_set1_epi8(0x10);
			__m512i qh = _mm512_broadcast_i64x4(
			    _mm256_loadu_si256((const __m256i *)(b + QB_Q5K_QH)));
#pragma GCC unroll 4
			for (int c = 0; c < 4; c++) {
				__m512i r = _mm512_rolv_epi64(
				    qh,
				    _mm512_setr_epi64(4 - 2 * c, 4 - 2 * c, 4 - 2 * c, 4 - 2 * c,
						      3 - 2 * c, 3 - 2 * c, 3 - 2 * c, 3 - 2 * c));
				/* 0xf8: u | (r & 0x10) */
				o->u[c] = _mm512_ternarylogic_epi32(o->u[c], r, m10, 0xf8);
			}
		}
		o->d = qd_f16(b);
		o->dmin = qd_f16(b + 2);
		return;
	}
	/* Q6_K: 64 bytes of ql = values 128h + [0, 64) (low nibbles) and
	 * + [64, 128) (high); qh bits 0-1 / 2-3 / 4-5 / 6-7 of byte l are the
	 * top bits of values l, l + 32, l + 64, l + 96: moved to bits 4-5 per
	 * 256-bit half */
	const __m512i m30 = _mm512_set1_epi8(0x30);
	const __m512i shl = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
	const __m512i shr = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
	__m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + QB_Q6K_SC)));
	__m512i sw = _mm512_castsi256_si512(sc);
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++) {
		__m512i l = _mm512_loadu_si512(b + 64 * h);
		__m512i qh = _mm512_broadcast_i64x4(
		    _mm256_loadu_si256((const __m256i *)(b + QB_Q6K_QH + 32 * h)));
		/* 0xec: (l & f) | the masked high bits */
		o->u[2 * h] = _mm512_ternarylogic_epi32(
		    l, _mm512_and_si512(_mm512_sllv_epi64(qh, shl), m30), f, 0xec);
		o->u[2 * h + 1] = _mm512_ternarylogic_epi32(
		    _mm512_srli_epi16(l, 4), _mm512_and_si512(_mm512_srlv_epi64(qh, shr), m30), f,
		    0xec);
	}
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++)
		o->s[c] = _mm512_permutexvar_epi16(_mm512_load_si512(qz_q6k_idx[c]), sw);
	o->mo = _mm256_slli_epi16(sc, 5);
	o->d = qd_f16(b + QB_Q6K_D);
	o->dmin = 0.0f;
}

/* RW weight rows x RX activation rows of a Q4_K, Q5_K or Q6_K product: each
 * weight block unpacked once, used by every activation row; the integer
 * sums as qdot.h's, one vpmaddubsw + vpdpwssd per 64 quants. Decode
 * (RX == 1) prefetches the next RW rows' block into L2. */
QZ_INL void qz_tile_k(enum qvl_dtype t, const int RW, const int RX, const uint8_t *w, size_t wrow,
		      const struct qvl_q8k *x, size_t xrow, size_t nb, float *y, size_t ldy)
{
	const size_t bb = t == QVL_DT_Q4_K ? 144 : t == QVL_DT_Q5_K ? 176 : 210;
	__m512 acc[4][8];

#pragma GCC unroll 4
	for (int r = 0; r < RW; r++)
#pragma GCC unroll 8
		for (int q = 0; q < RX; q++)
			acc[r][q] = _mm512_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		/* decode: the one activation block loaded once for all rows */
		__m512i x1[4];
		__m256i bs1 = _mm256_loadu_si256((const __m256i *)x[i].bsum);
#pragma GCC unroll 4
		for (int c = 0; RX == 1 && c < 4; c++)
			x1[c] = _mm512_loadu_si512(x[i].q + 64 * c);
#pragma GCC unroll 4
		for (int r = 0; r < RW; r++) {
			const uint8_t *b = w + r * wrow + i * bb;
			struct qz_wk wk;
			if (RX == 1)
				qd_prefetch(b + RW * wrow, bb);
			qz_unpack_k(&wk, t, b);
#pragma GCC unroll 8
			for (int q = 0; q < RX; q++) {
				const struct qvl_q8k *xb = x + q * xrow + i;
				__m256i mo = _mm256_madd_epi16(
				    RX == 1 ? bs1 : _mm256_loadu_si256((const __m256i *)xb->bsum),
				    wk.mo);
				/* Q6_K: Σ_j sc_j 32 s_j subtracted lane-wise */
				__m512i is = t == QVL_DT_Q6_K
						 ? _mm512_zextsi256_si512(
						       _mm256_sub_epi32(_mm256_setzero_si256(), mo))
						 : _mm512_setzero_si512();
#pragma GCC unroll 4
				for (int c = 0; c < 4; c++)
					is = _mm512_dpwssd_epi32(
					    is,
					    _mm512_maddubs_epi16(
						wk.u[c], RX == 1
							     ? x1[c]
							     : _mm512_loadu_si512(xb->q + 64 * c)),
					    wk.s[c]);
				acc[r][q] =
				    _mm512_fmadd_ps(_mm512_cvtepi32_ps(is),
						    _mm512_set1_ps(xb->d * wk.d), acc[r][q]);
				if (t != QVL_DT_Q6_K)
					acc[r][q] = _mm512_fnmadd_ps(
					    _mm512_cvtepi32_ps(_mm512_zextsi256_si512(mo)),
					    _mm512_set1_ps(xb->d * wk.dmin), acc[r][q]);
			}
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < RW; r++)
#pragma GCC unroll 8
		for (int q = 0; q < RX; q++)
			y[q * ldy + r] = _mm512_reduce_add_ps(acc[r][q]);
}

/* ---- Q4_0 -------------------------------------------------------------- */

/* Two blocks (a, b) per vector: bytes 0-15 the low nibbles of a (values
 * 0-15), 16-31 those of b, 32-47 the high nibbles of a (16-31), 48-63 those
 * of b. The activation of each pair, made once per call in that order
 * (struct qz_x40), with each 4-byte lane's activation scale and
 * 8 x scale x the lane's sum: a block's offset 8 costs no work per row. */
struct qz_x40 {
	__m512i q;
	__m512 d, c;
};

static inline size_t qz_q40_scratch(size_t nb)
{
	return (nb + 1) / 2 * sizeof(struct qz_x40);
}

QZ_INL void qz_q40_act(struct qz_x40 *o, const struct qvl_q8a *x, size_t nb)
{
	const __m512i one = _mm512_set1_epi8(1);

	for (size_t p = 0; p < (nb + 1) / 2; p++) {
		const struct qvl_q8a *a = x + 2 * p, *b = a + 1;
		bool has_b = 2 * p + 1 < nb;
		__m256i qa = _mm256_loadu_si256((const __m256i *)a->q);
		__m256i qb =
		    has_b ? _mm256_loadu_si256((const __m256i *)b->q) : _mm256_setzero_si256();
		__m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(qa), qb, 1);
		q = _mm512_shuffle_i64x2(q, q, _MM_SHUFFLE(3, 1, 2, 0));
		__m512 d = _mm512_mask_blend_ps(0xf0f0, _mm512_set1_ps(a->d),
						_mm512_set1_ps(has_b ? b->d : 0.0f));
		__m512 ls = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), one, q));
		o[p].q = q;
		o[p].d = d;
		o[p].c = _mm512_mul_ps(_mm512_mul_ps(ls, d), _mm512_set1_ps(8.0f));
	}
}

/* vpermw: the two blocks' quants twice (each at an even offset); vpermw: each lane's block scale */
static const uint16_t qz_q40_qidx[32]
    __attribute__((aligned(64))) = {1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17,
				    1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17};
static const uint16_t qz_q40_didx[32]
    __attribute__((aligned(64))) = {0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9};

QZ_INL void qz_q40_rows(const int R, const uint8_t *w, size_t wrow, const struct qz_x40 *x,
			size_t nb, float *y)
{
	const __m512i f = _mm512_set1_epi8(15), qidx = _mm512_load_si512(qz_q40_qidx);
	const __m512i didx = _mm512_load_si512(qz_q40_didx);
	const __m512i sh = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
	size_t np = (nb + 1) / 2;
	__m512 acc[4];

	for (int r = 0; r < R; r++)
		acc[r] = _mm512_setzero_ps();
	for (size_t p = 0; p < np; p++) {
		/* a lone last block: the second block's bytes read as zeros */
		__mmask64 mk = 2 * p + 1 < nb ? (__mmask64)0xfffffffff : (__mmask64)0x3ffff;
		__m512i xq = x[p].q;
		__m512 xd = x[p].d, xc = x[p].c;
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			const uint8_t *b = w + r * wrow + p * 36;
			_mm_prefetch((const char *)b + R * wrow, _MM_HINT_T1);
			__m512i raw = _mm512_maskz_loadu_epi8(mk, b);
			__m512i u = _mm512_and_si512(
			    _mm512_srlv_epi64(_mm512_permutexvar_epi16(qidx, raw), sh), f);
			__m512 dw = _mm512_cvtph_ps(
			    _mm512_castsi512_si256(_mm512_permutexvar_epi16(didx, raw)));
			__m512 t = _mm512_fmsub_ps(
			    _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, xq)),
			    xd, xc);
			acc[r] = _mm512_fmadd_ps(dw, t, acc[r]);
		}
	}
	for (int r = 0; r < R; r++)
		y[r] = _mm512_reduce_add_ps(acc[r]);
}

/* ---- driver ------------------------------------------------------------ */

QD_DEF_GEMM_K(qz_tile_k, 8)

static QD_T void qz_q40(const uint8_t *w, size_t wrow, const void *xq, size_t nb, float *y,
			size_t n, void *scr)
{
	struct qz_x40 *x = scr;

	qz_q40_act(x, xq, nb);
	QD_ROWS(qz_q40_rows, x);
}

/* Scratch bytes qz_decode() (m == 1) or qz_gemm_k() need beyond the
 * quantized activation rows. */
static size_t qz_scratch(enum qvl_dtype t, size_t nb, size_t m)
{
	return t == QVL_DT_Q4_0 && m == 1 ? qz_q40_scratch(nb) : 0;
}

/* Rows [0, m) x [0, n) of a Q4_K, Q5_K or Q6_K product; false for other
 * types. */
static QD_T bool qz_gemm_k(enum qvl_dtype t, const uint8_t *w, size_t wrow, const void *x,
			   size_t xrow, size_t nb, float *y, size_t ldy, size_t m, size_t n,
			   void *scr)
{
	(void)scr;
	return qd_gemm_k_tiles(t, w, wrow, x, xrow, nb, y, ldy, m, n);
}

/* y[0..n) = rows of w against the quantized activation row x, if this
 * file has a kernel for t; scr: qz_scratch() bytes, 64-byte aligned. */
static QD_T bool qz_decode(enum qvl_dtype t, const uint8_t *w, size_t wrow, const void *x,
			   size_t nb, float *y, size_t n, void *scr)
{
	if (t == QVL_DT_Q4_0) {
		qz_q40(w, wrow, x, nb, y, n, scr);
		return true;
	}
	return qd_gemm_k_tiles(t, w, wrow, x, nb, nb, y, 1, 1, n);
}

#endif
