/* matmul_fast() of the repacked Q4_K layout (QVL_DT_Q4_K_X8, qrepack.h),
 * included by qdot_avx2.c and qdot_avx512.c after qdot_x8.h. The integer
 * sums of the reference (qdot.h) per block and row: isum = Σ_j sc_j Σ n x
 * over the 8 sub-blocks j of 32, msum = Σ_j m_j s_j (s_j the activation
 * sub-block's sum), y += dx (d isum - dmin msum); the lanes are the 8 rows
 * of a group, so the scale conversion and the float multiply-adds of a
 * block are one vector for 8 rows and no horizontal sum is needed.
 *
 * Per block of a group the 96 scale bytes give the 64 scales (SC) and 64
 * mins (MN) as bytes in a few shifts and masks (qk_scmn*); a sub-block's 8
 * scales are widened to the lanes by one lane permute and one vpshufb.
 *  - VNNI (zmm), decode: a 64-byte load is two pieces (lanes 0-7 piece 2t,
 *    8-15 piece 2t + 1) of 8 rows x 4 quants; its low nibbles (sub-block
 *    2q) and high nibbles (2q + 1) go to one vpdpbusd each against the
 *    activation dwords placed by vpermd. After the 4 loads of a sub-block
 *    pair a lane holds 4 pieces: |sum| <= 4 x 4 x 15 x 127 < 2^15, so one
 *    vpdpwssd with the scale in the low 16 bits (high 0) multiplies it by
 *    the scale and accumulates: exact. Mins: two vpdpwssd of the MN pairs
 *    against the activation's sub-block sum pairs. The avx512 table's
 *    decode (qk_zx_rows) adds each row's two lanes as integers and then
 *    takes the AVX2 form's float steps on 8 lanes: the AVX2 level's bits
 *    at 2x its speed in L2.
 *  - VNNI, prefill: panels of two groups (lanes 0-7 the first's rows, 8-15
 *    the second's: one vpdpbusd with 4 broadcast activation bytes feeds 16
 *    rows), 4 activation rows per pass, the scales applied every 4 pieces
 *    as in decode. A last group of 8 takes the decode kernel per row.
 *  - AVX2: one piece per vector, its 4 activation bytes broadcast; the 8
 *    vpmaddubsw products of a sub-block summed in int16 (8 x 2 x 15 x 127
 *    < 2^15) before one vpmaddwd with the scale words; 1 activation row
 *    per pass for decode, 2 for prefill. */
#ifndef QVL_QDOT_X8_Q4K_H
#define QVL_QDOT_X8_Q4K_H

#include "qrepack.h"

#define QK_INL static inline __attribute__((always_inline)) QD_T

/* Per activation block: the sums of sub-blocks 2q, 2q + 1 as one 32-bit
 * pair of int16 (|s| <= 32 x 127). */
struct qk_act {
	int32_t sp[4];
};

QK_INL void qk_act_make(struct qk_act *o, const struct qvl_q8k *x, size_t nblk)
{
	for (size_t i = 0; i < nblk; i++)
		for (int q = 0; q < 4; q++) {
			int s0 = x[i].bsum[4 * q] + x[i].bsum[4 * q + 1];
			int s1 = x[i].bsum[4 * q + 2] + x[i].bsum[4 * q + 3];
			o[i].sp[q] = (int32_t)((uint32_t)(uint16_t)s0 | (uint32_t)s1 << 16);
		}
}

/* vpshufb masks: dword d gets byte 8e + d % 8 of its 128-bit lane (zmm:
 * zero-extended to 32 bits) or, ymm, the same byte in both 16-bit words */
static const uint8_t qk_dsel[2][64] __attribute__((aligned(64))) = {
#define QK_D(e, r) 8 * (e) + (r), 0x80, 0x80, 0x80
#define QK_D8(e)                                                                                   \
	QK_D(e, 0), QK_D(e, 1), QK_D(e, 2), QK_D(e, 3), QK_D(e, 4), QK_D(e, 5), QK_D(e, 6),        \
	    QK_D(e, 7)
    {QK_D8(0), QK_D8(0)}, {QK_D8(1), QK_D8(1)}};
static const uint8_t qk_wsel[2][32] __attribute__((aligned(32))) = {
#define QK_W(e, r) 8 * (e) + (r), 0x80, 8 * (e) + (r), 0x80
    {QK_W(0, 0), QK_W(0, 1), QK_W(0, 2), QK_W(0, 3), QK_W(0, 4), QK_W(0, 5), QK_W(0, 6),
     QK_W(0, 7)},
    {QK_W(1, 0), QK_W(1, 1), QK_W(1, 2), QK_W(1, 3), QK_W(1, 4), QK_W(1, 5), QK_W(1, 6),
     QK_W(1, 7)}};
#undef QK_D
#undef QK_D8
#undef QK_W
/* dword indices that broadcast 128-bit lane L (ymm: of a 256-bit half) */
static const uint32_t qk_lane[4][16] __attribute__((aligned(64))) = {
    {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3},
    {4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7},
    {8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11},
    {12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15}};

/* SC and MN of the 8 rows of a block at b, as bytes: ymm halves */
QK_INL void qk_scmn_ymm(const uint8_t *b, __m256i sc[2], __m256i mn[2])
{
	const __m256i f = _mm256_set1_epi8(15), h = _mm256_set1_epi8(0x30);
	__m256i v0 = _mm256_loadu_si256((const __m256i *)(b + 32));
	__m256i v1 = _mm256_loadu_si256((const __m256i *)(b + 64));
	__m256i t = _mm256_loadu_si256((const __m256i *)(b + 96));

	sc[0] =
	    _mm256_or_si256(_mm256_and_si256(v0, f), _mm256_and_si256(_mm256_slli_epi16(t, 4), h));
	sc[1] =
	    _mm256_or_si256(_mm256_and_si256(v1, f), _mm256_and_si256(_mm256_slli_epi16(t, 2), h));
	mn[0] =
	    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v0, 4), f), _mm256_and_si256(t, h));
	mn[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v1, 4), f),
				_mm256_and_si256(_mm256_srli_epi16(t, 2), h));
}

/* sub-block j's 8 scales as 16-bit word pairs (row r: words 2r, 2r + 1) */
QK_INL __m256i qk_scw(const __m256i sc[2], int j)
{
	__m256i l = _mm256_permutevar8x32_epi32(
	    sc[j / 4], _mm256_load_si256((const __m256i *)qk_lane[(j / 2) % 2]));
	return _mm256_shuffle_epi8(l, _mm256_load_si256((const __m256i *)qk_wsel[j % 2]));
}

/* msum of the 8 rows (dwords) for activation block sums sp */
QK_INL __m256i qk_msum_ymm(const __m256i mn[2], const struct qk_act *sp)
{
	__m256i s = _mm256_setzero_si256();

#pragma GCC unroll 4
	for (int q = 0; q < 4; q++) {
		__m128i m = q % 2 ? _mm256_extracti128_si256(mn[q / 2], 1)
				  : _mm256_castsi256_si128(mn[q / 2]);
		s = _mm256_add_epi32(
		    s, _mm256_madd_epi16(_mm256_cvtepu8_epi16(m), _mm256_set1_epi32(sp->sp[q])));
	}
	return s;
}

QK_INL __m256i qk_bcast4(const int8_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* The float steps of a block at b for 8 rows: acc + dx (d isum - dmin msum)
 * (the 512-bit sums with the AVX2 bits take them too: qk_zx_rows) */
QK_INL __m256 qk_fstep(const uint8_t *b, __m256i is, __m256i ms, float dx, __m256 acc)
{
	__m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
	__m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 16)));
	__m256 t =
	    _mm256_fmsub_ps(d, _mm256_cvtepi32_ps(is), _mm256_mul_ps(dm, _mm256_cvtepi32_ps(ms)));

	return _mm256_fmadd_ps(t, _mm256_set1_ps(dx), acc);
}

/* X8_DECODE's kernel at the AVX2 level: G groups of 8 rows (w, gs bytes
 * apart; G <= 4) against one activation row: y[g * ys + r] = the 8 rows'
 * products. Each group's steps are the same whatever G; the G far streams
 * are read in turn 32 bytes at a time. */
QK_INL void qk_rows_ymm(const int G, const uint8_t *w, size_t gs, const struct qvl_q8k *x,
			const struct qk_act *sa, size_t nb, float *y, size_t ys)
{
	const __m256i f = _mm256_set1_epi8(15);
	__m256 acc[4];

#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		acc[g] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = w + i * QVL_X8_Q4K_BLK;
		__m256i sc[4][2], mn[4][2], is[4];
#pragma GCC unroll 4
		for (int g = 0; g < G; g++) {
			qk_scmn_ymm(b + g * gs, sc[g], mn[g]);
			is[g] = _mm256_setzero_si256();
		}
#pragma GCC unroll 1
		for (int q = 0; q < 4; q++) {
			__m256i pl[4], ph[4];
#pragma GCC unroll 4
			for (int g = 0; g < G; g++)
				pl[g] = ph[g] = _mm256_setzero_si256();
#pragma GCC unroll 8
			for (int p = 0; p < 8; p++)
#pragma GCC unroll 4
				for (int g = 0; g < G; g++) {
					__m256i v = _mm256_loadu_si256(
					    (const __m256i *)(b + g * gs + 128 + 32 * (8 * q + p)));
					__m256i lo = _mm256_and_si256(v, f),
						hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), f);
					const int8_t *xa = x[i].q + 64 * q + 4 * p;
					pl[g] = _mm256_add_epi16(pl[g],
								 _mm256_maddubs_epi16(lo, qk_bcast4(xa)));
					ph[g] = _mm256_add_epi16(
					    ph[g], _mm256_maddubs_epi16(hi, qk_bcast4(xa + 32)));
				}
#pragma GCC unroll 4
			for (int g = 0; g < G; g++) {
				__m256i wl = qk_scw(sc[g], 2 * q), wh = qk_scw(sc[g], 2 * q + 1);
				is[g] = _mm256_add_epi32(is[g],
							 _mm256_add_epi32(_mm256_madd_epi16(pl[g], wl),
									  _mm256_madd_epi16(ph[g], wh)));
			}
		}
#pragma GCC unroll 4
		for (int g = 0; g < G; g++)
			acc[g] = qk_fstep(b + g * gs, is[g], qk_msum_ymm(mn[g], sa + i), x[i].d,
					  acc[g]);
	}
#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		_mm256_storeu_ps(y + g * ys, acc[g]);
}

/* Decode batches and prefill at the AVX2 level (m > 1): one group of 8 rows
 * against RX <= 3 activation rows a pass, each 32-byte step of the weights
 * unpacked once for the RX rows. It was the decode's kernel 2 rows a pass: its
 * steps unrolled 8 times kept its sums on the stack (4 rows a pass were
 * slower still). Unrolled twice, the 2 RX int16 sums stay in registers:
 * one thread, the group in L2, 16 rows 135-162 -> 184-210 GOP/s, 64 rows
 * 158 -> 216 (docs/todo-qbatch.md). The integer sums are exact in any order
 * and the float steps are qk_fstep in block order: the decode's bits
 * (qk_rows_ymm). */
QK_INL void qk_batch_ymm(const int RX, const uint8_t *w, const struct qvl_q8k *x,
			 const struct qk_act *sa, size_t xrow, size_t nb, float *y, size_t ldy)
{
	const __m256i f = _mm256_set1_epi8(15);
	__m256 acc[3];

#pragma GCC unroll 3
	for (int a = 0; a < RX; a++)
		acc[a] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = w + i * QVL_X8_Q4K_BLK;
		__m256i sc[2], mn[2], is[3];

		qk_scmn_ymm(b, sc, mn);
#pragma GCC unroll 3
		for (int a = 0; a < RX; a++)
			is[a] = _mm256_setzero_si256();
#pragma GCC unroll 1
		for (int q = 0; q < 4; q++) {
			__m256i pl[3], ph[3];
			const uint8_t *bq = b + 128 + 256 * q;
			const int8_t *xq[3];

#pragma GCC unroll 3
			for (int a = 0; a < RX; a++) {
				pl[a] = ph[a] = _mm256_setzero_si256();
				xq[a] = x[a * xrow + i].q + 64 * q;
			}
#pragma GCC unroll 2
			for (int p = 0; p < 8; p++) {
				__m256i v = _mm256_loadu_si256((const __m256i *)(bq + 32 * p));
				__m256i lo = _mm256_and_si256(v, f),
					hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), f);
#pragma GCC unroll 3
				for (int a = 0; a < RX; a++) {
					pl[a] = _mm256_add_epi16(
					    pl[a], _mm256_maddubs_epi16(lo, qk_bcast4(xq[a] + 4 * p)));
					ph[a] = _mm256_add_epi16(
					    ph[a],
					    _mm256_maddubs_epi16(hi, qk_bcast4(xq[a] + 4 * p + 32)));
				}
			}
			__m256i wl = qk_scw(sc, 2 * q), wh = qk_scw(sc, 2 * q + 1);
#pragma GCC unroll 3
			for (int a = 0; a < RX; a++)
				is[a] = _mm256_add_epi32(is[a],
							 _mm256_add_epi32(_mm256_madd_epi16(pl[a], wl),
									  _mm256_madd_epi16(ph[a], wh)));
		}
#pragma GCC unroll 3
		for (int a = 0; a < RX; a++)
			acc[a] = qk_fstep(b, is[a], qk_msum_ymm(mn, sa + a * xrow + i),
					  x[a * xrow + i].d, acc[a]);
	}
#pragma GCC unroll 3
	for (int a = 0; a < RX; a++)
		_mm256_storeu_ps(y + a * ldy, acc[a]);
}

#if !QD_VNNI
static QD_T void qk_batch_any(int rx, const uint8_t *w, const struct qvl_q8k *x,
			      const struct qk_act *sa, size_t nb, float *y, size_t ldy)
{
	if (rx == 3)
		qk_batch_ymm(3, w, x, sa, nb, nb, y, ldy);
	else if (rx == 2)
		qk_batch_ymm(2, w, x, sa, nb, nb, y, ldy);
	else /* one row left in a chunk: the decode's kernel */
		qk_rows_ymm(1, w, 0, x, sa, nb, y, 0);
}
#endif

#if QD_VNNI
/* SC and MN of a block, 64 bytes each */
QK_INL void qk_scmn_zmm(const uint8_t *b, __m512i *sc, __m512i *mn)
{
	const __m512i f = _mm512_set1_epi8(15), h = _mm512_set1_epi8(0x30);
	/* 16-bit shift counts: the lower 256 bits, then the upper */
	const __m512i cs = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
	const __m512i cm = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
	__m512i v = _mm512_loadu_si512(b + 32);
	__m512i t = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 96)));

	*sc =
	    _mm512_or_si512(_mm512_and_si512(v, f), _mm512_and_si512(_mm512_sllv_epi16(t, cs), h));
	*mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), f),
			      _mm512_and_si512(_mm512_srlv_epi16(t, cm), h));
}

/* row r's integer sum: dwords r + 8 + r */
QK_INL __m256i qk_fold(__m512i v)
{
	return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* sub-block j's 8 scales in dwords r and 8 + r (zero-extended) */
QK_INL __m512i qk_scd(__m512i sc, int j)
{
	__m512i l = _mm512_permutexvar_epi32(_mm512_load_si512(qk_lane[j / 2]), sc);
	return _mm512_shuffle_epi8(l, _mm512_load_si512(qk_dsel[j % 2]));
}

/* vpermd indices: activation dwords of piece 2t (lanes 0-7) and 2t + 1
 * (8-15) of a 64-quant chunk, low nibbles (t) and high (4 + t) */
static const uint32_t qk_perm[8][16] __attribute__((aligned(64))) = {
#define QK_P(a) a, a, a, a, a, a, a, a
    {QK_P(0), QK_P(1)}, {QK_P(2), QK_P(3)},   {QK_P(4), QK_P(5)},   {QK_P(6), QK_P(7)},
    {QK_P(8), QK_P(9)}, {QK_P(10), QK_P(11)}, {QK_P(12), QK_P(13)}, {QK_P(14), QK_P(15)}};
#undef QK_P

/* msum of a block's MN (mn) against activation block sums sa: row r's in
 * dwords r (pairs 0, 1) and 8 + r (pairs 2, 3) */
QK_INL __m512i qk_msum_zmm(__m512i mn, const struct qk_act *sa)
{
	__m512i s = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)sa->sp));
	__m512i s01 = _mm512_permutexvar_epi32(_mm512_load_si512(qk_perm[0]), s);
	__m512i s23 = _mm512_permutexvar_epi32(_mm512_load_si512(qk_perm[1]), s);

	return _mm512_dpwssd_epi32(
	    _mm512_madd_epi16(_mm512_cvtepu8_epi16(_mm512_castsi512_si256(mn)), s01),
	    _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(mn, 1)), s23);
}

/* The integer sums of a block at b of a group against activation block x
 * (sums sa): isum in is, msum in ms, row r's in dwords r (even pieces) and
 * 8 + r (odd pieces) */
QK_INL void qk_sums_zmm(const uint8_t *b, const struct qvl_q8k *x, const struct qk_act *sa,
			const __m512i pi[8], __m512i *is, __m512i *ms)
{
	const __m512i f = _mm512_set1_epi8(15);
	__m512i sc, mn;

	qk_scmn_zmm(b, &sc, &mn);
	*is = _mm512_setzero_si512();
#pragma GCC unroll 4
	for (int q = 0; q < 4; q++) {
		__m512i xv = _mm512_loadu_si512(x->q + 64 * q);
		__m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
#pragma GCC unroll 4
		for (int t = 0; t < 4; t++) {
			__m512i v = _mm512_loadu_si512(b + 128 + 256 * q + 64 * t);
			dl = _mm512_dpbusd_epi32(dl, _mm512_and_si512(v, f),
						 _mm512_permutexvar_epi32(pi[t], xv));
			dh = _mm512_dpbusd_epi32(dh, _mm512_and_si512(_mm512_srli_epi16(v, 4), f),
						 _mm512_permutexvar_epi32(pi[4 + t], xv));
		}
		*is = _mm512_dpwssd_epi32(*is, dl, qk_scd(sc, 2 * q));
		*is = _mm512_dpwssd_epi32(*is, dh, qk_scd(sc, 2 * q + 1));
	}
	*ms = qk_msum_zmm(mn, sa);
}

QK_INL void qk_perm_load(__m512i pi[8])
{
#pragma GCC unroll 8
	for (int c = 0; c < 8; c++)
		pi[c] = _mm512_load_si512(qk_perm[c]);
}

/* One group of 8 rows against one activation row (decode). ZX: the AVX2
 * level's bits, each row's two lanes added as integers (exact) and then
 * qk_rows_ymm's float steps (qk_fstep) on 8 lanes (qk_zx_rows' one-stream
 * form: its quarters unrolled, 10-15 % faster in L2). */
QK_INL void qk_rows_zmm(const int ZX, const uint8_t *g, const struct qvl_q8k *x,
			const struct qk_act *sa, size_t nb, float *y)
{
	__m512i pi[8];
	__m512 acc = _mm512_setzero_ps();
	__m256 acc8 = _mm256_setzero_ps();

	qk_perm_load(pi);
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = g + i * QVL_X8_Q4K_BLK;
		__m512i is, ms;
		qk_sums_zmm(b, x + i, sa + i, pi, &is, &ms);
		if (ZX) {
			acc8 = qk_fstep(b, qk_fold(is), qk_fold(ms), x[i].d, acc8);
			continue;
		}
		__m512 d = _mm512_cvtph_ps(
		    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b)));
		__m512 dm = _mm512_cvtph_ps(
		    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b + 16))));
		__m512 t = _mm512_fmsub_ps(d, _mm512_cvtepi32_ps(is),
					   _mm512_mul_ps(dm, _mm512_cvtepi32_ps(ms)));
		acc = _mm512_fmadd_ps(t, _mm512_set1_ps(x[i].d), acc);
	}
	if (ZX)
		_mm256_storeu_ps(y, acc8);
	else
		_mm256_storeu_ps(y, _mm256_add_ps(_mm512_castps512_ps256(acc),
						  _mm256_castpd_ps(_mm512_extractf64x4_pd(
						      _mm512_castps_pd(acc), 1))));
}

/* G groups of 8 rows (gs bytes apart; outputs at y + g * ys) against one
 * activation row (decode) with the AVX2 level's bits (ZX): per group
 * qk_sums_zmm's exact sums, each row's two lanes added as integers, then
 * qk_rows_ymm's float steps (qk_fstep) on 8 lanes. The G far streams (the
 * X8_DECODE parts) are read a line at a time in turn: the 4 groups' block
 * headers, then line t of quarter q of each group. A load-only twin of
 * this order streamed at the bf16 panels' rate, X8_DECODE's usual order (a
 * whole 1152-byte block a stream a step) no faster than one stream
 * (docs/todo-qload.md, tw4A against tw4); this kernel on the 2b shapes:
 * 0.74-0.86 of the probe against one stream's 0.66-0.78, CPU time 1.08-1.17x
 * (docs/todo-qk4s.md). */
QK_INL void qk_zx_rows(const int G, const uint8_t *w, size_t gs, const struct qvl_q8k *x,
		       const struct qk_act *sa, size_t nb, float *y, size_t ys)
{
	const __m512i f = _mm512_set1_epi8(15);
	__m256 acc[4];

	if (G == 1) {
		qk_rows_zmm(1, w, x, sa, nb, y);
		return;
	}
#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		acc[g] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = w + i * QVL_X8_Q4K_BLK;
		__m512i sc[4], mn[4], is[4];
#pragma GCC unroll 4
		for (int g = 0; g < G; g++) {
			qk_scmn_zmm(b + g * gs, &sc[g], &mn[g]);
			is[g] = _mm512_setzero_si512();
		}
#pragma GCC unroll 1
		for (int q = 0; q < 4; q++) {
			__m512i xv = _mm512_loadu_si512(x[i].q + 64 * q), dl[4], dh[4];
#pragma GCC unroll 4
			for (int g = 0; g < G; g++)
				dl[g] = dh[g] = _mm512_setzero_si512();
#pragma GCC unroll 4
			for (int t = 0; t < 4; t++) {
				__m512i xl = _mm512_permutexvar_epi32(
					    _mm512_load_si512(qk_perm[t]), xv),
					xh = _mm512_permutexvar_epi32(
					    _mm512_load_si512(qk_perm[4 + t]), xv);
#pragma GCC unroll 4
				for (int g = 0; g < G; g++) {
					__m512i v = _mm512_loadu_si512(b + g * gs + 128 +
								       256 * q + 64 * t);
					dl[g] = _mm512_dpbusd_epi32(dl[g], _mm512_and_si512(v, f),
								    xl);
					dh[g] = _mm512_dpbusd_epi32(
					    dh[g], _mm512_and_si512(_mm512_srli_epi16(v, 4), f), xh);
				}
			}
#pragma GCC unroll 4
			for (int g = 0; g < G; g++) {
				is[g] = _mm512_dpwssd_epi32(is[g], dl[g], qk_scd(sc[g], 2 * q));
				is[g] = _mm512_dpwssd_epi32(is[g], dh[g], qk_scd(sc[g], 2 * q + 1));
			}
		}
#pragma GCC unroll 4
		for (int g = 0; g < G; g++)
			acc[g] = qk_fstep(b + g * gs, qk_fold(is[g]),
					  qk_fold(qk_msum_zmm(mn[g], sa + i)), x[i].d, acc[g]);
	}
#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		_mm256_storeu_ps(y + g * ys, acc[g]);
}

/* dword indices: 128-bit lane L of the first source (lanes 0-7 of the
 * result) and of the second (8-15), for vpermt2d */
static const uint32_t qk_lane2[4][16] __attribute__((aligned(64))) = {
    {0, 1, 2, 3, 0, 1, 2, 3, 16, 17, 18, 19, 16, 17, 18, 19},
    {4, 5, 6, 7, 4, 5, 6, 7, 20, 21, 22, 23, 20, 21, 22, 23},
    {8, 9, 10, 11, 8, 9, 10, 11, 24, 25, 26, 27, 24, 25, 26, 27},
    {12, 13, 14, 15, 12, 13, 14, 15, 28, 29, 30, 31, 28, 29, 30, 31}};
/* the same lanes once each in the lower 256 bits (the mins' pairs) */
static const uint32_t qk_pair[4][16]
    __attribute__((aligned(64))) = {{0, 1, 2, 3, 16, 17, 18, 19},
				    {4, 5, 6, 7, 20, 21, 22, 23},
				    {8, 9, 10, 11, 24, 25, 26, 27},
				    {12, 13, 14, 15, 28, 29, 30, 31}};

/* Two groups (g0: lanes 0-7, g1: 8-15) against RX activation rows; pf:
 * the prefetch distance (qk_pf), 0 none */
QK_INL void qk_gemm16(const int RX, const uint8_t *g0, const uint8_t *g1, const struct qvl_q8k *x,
		      const struct qk_act *sa, size_t xrow, size_t nb, float *y, size_t ldy,
		      size_t pf)
{
	const __m512i f = _mm512_set1_epi8(15);
	__m512 acc[4];

#pragma GCC unroll 4
	for (int a = 0; a < RX; a++)
		acc[a] = _mm512_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b0 = g0 + i * QVL_X8_Q4K_BLK, *b1 = g1 + i * QVL_X8_Q4K_BLK;
		__m512i sc0, mn0, sc1, mn1, is[4];
		qvl_qdec_pf(b0, QVL_X8_Q4K_BLK, pf);
		qvl_qdec_pf(b1, QVL_X8_Q4K_BLK, pf);
		qk_scmn_zmm(b0, &sc0, &mn0);
		qk_scmn_zmm(b1, &sc1, &mn1);
#pragma GCC unroll 4
		for (int a = 0; a < RX; a++)
			is[a] = _mm512_setzero_si512();
#pragma GCC unroll 1
		for (int q = 0; q < 4; q++) {
			__m512i sel = _mm512_load_si512(qk_lane2[q]);
			__m512i l = _mm512_permutex2var_epi32(sc0, sel, sc1);
			__m512i wl = _mm512_shuffle_epi8(l, _mm512_load_si512(qk_dsel[0]));
			__m512i wh = _mm512_shuffle_epi8(l, _mm512_load_si512(qk_dsel[1]));
#pragma GCC unroll 2
			for (int hf = 0; hf < 2; hf++) {
				__m512i dl[4], dh[4];
#pragma GCC unroll 4
				for (int a = 0; a < RX; a++)
					dl[a] = dh[a] = _mm512_setzero_si512();
#pragma GCC unroll 4
				for (int p = 4 * hf; p < 4 * hf + 4; p++) {
					size_t o = 128 + 32 * (8 * (size_t)q + (size_t)p);
					__m512i v = _mm512_inserti64x4(
					    _mm512_castsi256_si512(
						_mm256_loadu_si256((const __m256i *)(b0 + o))),
					    _mm256_loadu_si256((const __m256i *)(b1 + o)), 1);
					__m512i lo = _mm512_and_si512(v, f),
						hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), f);
#pragma GCC unroll 4
					for (int a = 0; a < RX; a++) {
						const int8_t *xa =
						    x[a * xrow + i].q + 64 * q + 4 * p;
						int32_t u, w;
						memcpy(&u, xa, 4);
						memcpy(&w, xa + 32, 4);
						dl[a] = _mm512_dpbusd_epi32(dl[a], lo,
									    _mm512_set1_epi32(u));
						dh[a] = _mm512_dpbusd_epi32(dh[a], hi,
									    _mm512_set1_epi32(w));
					}
				}
#pragma GCC unroll 4
				for (int a = 0; a < RX; a++)
					is[a] = _mm512_dpwssd_epi32(
					    _mm512_dpwssd_epi32(is[a], dl[a], wl), dh[a], wh);
			}
		}
		__m512 d = _mm512_cvtph_ps(_mm256_inserti128_si256(
		    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)b0)),
		    _mm_loadu_si128((const __m128i *)b1), 1));
		__m512 dm = _mm512_cvtph_ps(_mm256_inserti128_si256(
		    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + 16))),
		    _mm_loadu_si128((const __m128i *)(b1 + 16)), 1));
		__m512i mw[4];
#pragma GCC unroll 4
		for (int q = 0; q < 4; q++)
			mw[q] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(
			    _mm512_permutex2var_epi32(mn0, _mm512_load_si512(qk_pair[q]), mn1)));
#pragma GCC unroll 4
		for (int a = 0; a < RX; a++) {
			const struct qk_act *s = sa + a * xrow + i;
			__m512i ms = _mm512_setzero_si512();
#pragma GCC unroll 4
			for (int q = 0; q < 4; q++)
				ms = _mm512_dpwssd_epi32(ms, mw[q], _mm512_set1_epi32(s->sp[q]));
			__m512 t = _mm512_fmsub_ps(d, _mm512_cvtepi32_ps(is[a]),
						   _mm512_mul_ps(dm, _mm512_cvtepi32_ps(ms)));
			acc[a] = _mm512_fmadd_ps(t, _mm512_set1_ps(x[a * xrow + i].d), acc[a]);
		}
	}
#pragma GCC unroll 4
	for (int a = 0; a < RX; a++)
		_mm512_storeu_ps(y + a * ldy, acc[a]);
}

/* qk_gemm16 on the last 1-3 rows in one pass (a decode batch of 2 or 3
 * read the groups once, not once a row) */
static QD_T void qk_gemm16_any(int rx, const uint8_t *g0, const uint8_t *g1,
			       const struct qvl_q8k *x, const struct qk_act *sa, size_t nb,
			       float *y, size_t ldy, size_t pf)
{
	if (rx == 3)
		qk_gemm16(3, g0, g1, x, sa, nb, nb, y, ldy, pf);
	else if (rx == 2)
		qk_gemm16(2, g0, g1, x, sa, nb, nb, y, ldy, pf);
	else
		qk_gemm16(1, g0, g1, x, sa, nb, nb, y, ldy, pf);
}
#endif

/* The prefetch distance of a pass over groups at row i of its chunk: the
 * one-row decode's (QVL_QDECODE_PF) for the first pass of a decode batch,
 * which streams the groups from memory; none for the passes after it
 * (the groups are in L1 / L2) nor for a prefill, whose dozens of passes
 * over each group are compute-bound (q4_k_m pp512 lost 7 % with it). */
static inline size_t qk_pf(size_t m, size_t i)
{
	return m <= QX_SMALL_M && i == 0 ? qvl_gemm_blk.qdec_pf : 0;
}

/* Q4_K_X8 on the prepared activation (qdot_x8_act.h: the rows quantized,
 * their struct qk_act at xo) */
QK_INL void qk_run(float *Y, size_t ldy, const uint8_t *xa, size_t xo, const uint8_t *w,
		   size_t ldw, size_t m, size_t n, size_t k, int S)
{
	size_t nb = k / QVL_QK_BLK, wrow = ldw / QVL_QK_BLK * 144;
	size_t rb = qvl_qdot_act_bytes(QVL_DT_Q4_K, k);
	const struct qvl_q8k *x = (const struct qvl_q8k *)(const void *)xa;
	const struct qk_act *sa = (const struct qk_act *)(const void *)(xa + xo);
	/* activation rows per pass over a panel: their blocks stay in L2 */
	size_t mc = (256 << 10) / rb;

#if !QD_VNNI
	if (m == 1) { /* decode: S far streams */
		X8_DECODE(qk_rows_ymm, S, w, wrow, n, Y, x, sa, nb);
		return;
	}
#endif
	(void)S;
	mc = mc < 4 ? 4 : mc;
	for (size_t i0 = 0; i0 < m; i0 += mc) {
		size_t i1 = i0 + mc < m ? i0 + mc : m, j = 0;
#if QD_VNNI
		for (; m > 1 && j + 2 * QVL_X8_ROWS <= n; j += 2 * QVL_X8_ROWS) {
			const uint8_t *g0 = w + j * wrow, *g1 = g0 + QVL_X8_ROWS * wrow;
			size_t i = i0;
			for (; i + 4 <= i1; i += 4)
				qk_gemm16(4, g0, g1, x + i * nb, sa + i * nb, nb, nb,
					  Y + i * ldy + j, ldy, qk_pf(m, i - i0));
			if (i < i1)
				qk_gemm16_any((int)(i1 - i), g0, g1, x + i * nb, sa + i * nb, nb,
					      Y + i * ldy + j, ldy, qk_pf(m, i - i0));
		}
		for (; j < n; j += QVL_X8_ROWS)
			for (size_t i = i0; i < i1; i++)
				qk_rows_zmm(0, w + j * wrow, x + i * nb, sa + i * nb, nb,
					    Y + i * ldy + j);
#else
		for (; j < n; j += QVL_X8_ROWS) {
			for (size_t i = i0, r; i < i1; i += r) {
				/* 3 rows a pass; 2 + 2 rather than 3 + 1 */
				r = i1 - i == 4 ? 2 : i1 - i < 3 ? i1 - i : 3;
				qk_batch_any((int)r, w + j * wrow, x + i * nb, sa + i * nb, nb,
					     Y + i * ldy + j, ldy);
			}
		}
#endif
	}
}

#if QD_VNNI
/* The decode (m 1) with the AVX2 level's bits on 512-bit sums, in S far
 * streams (X8_DECODE) */
QK_INL void qk_run_zx(float *Y, const uint8_t *xa, size_t xo, const uint8_t *w, size_t ldw,
		      size_t n, size_t k, int S)
{
	size_t nb = k / QVL_QK_BLK, wrow = ldw / QVL_QK_BLK * 144;
	const struct qvl_q8k *x = (const struct qvl_q8k *)(const void *)xa;
	const struct qk_act *sa = (const struct qk_act *)(const void *)(xa + xo);

	X8_DECODE(qk_zx_rows, S, w, wrow, n, Y, x, sa, nb);
}
#endif

#endif
