/* matmul_fast() of the repacked Q6_K layout (QVL_DT_Q6_K_X8, qrepack.h),
 * included by qdot_avx2.c and qdot_avx512.c after the template
 * (qdot_tmpl.h). Same integer sums as the reference (qdot.h), per block:
 * isum = Σ_j sc_j (Σ n x - 32 s_j), y += dw dx isum.
 *
 * The activation rows are quantized to 256-blocks (struct qvl_q8k) and then
 * changed in place, once per call: each unit's 32 bytes reordered as the
 * weights' quant vectors (a, a, b, b, a, a, b, b per 8 bytes: two 16-bit
 * words interleaved) and the 16 sub-block sums replaced by -16 s_j (16 x
 * 2032 < 2^15).
 *
 * One routine serves decode (m == 1: RX = 1) and prefill (RX activation rows
 * per pass over a group's blocks, which stay in L1 between passes), reading
 * the group in address order; at AVX2 the decode reads G groups far apart in
 * turn (X8_DECODE's streams, q6x_rows_ymm). Per unit (32 values of 8 rows,
 * 192 bytes): 3 loads, the three planes' low 6 bits by one AND each, vector
 * 3 from their top bits by 3 shifts, 2 bit selects (vpternlogd; AVX2: ANDs
 * and ORs) and one AND; per activation row, one vpmaddubsw per 8 rows x 8
 * quants against a broadcast 8-byte activation word, two such int16 results
 * added (2 x 2 x 63 x 127 < 2^15), one 16-bit multiply-add with the rows'
 * scale words (sc[a], sc[b]) per two (VNNI: vpdpwssd), and the offset as one
 * more multiply-add of the scale words with (-16 s_a, -16 s_b) in each of a
 * row's two 32-bit lanes (AVX2: once a unit for the 8 rows). Per block: the
 * two lanes of each row added, one int-to-float conversion and one
 * multiply-add for 8 rows. */
#ifndef QVL_QDOT_X8_Q6K_H
#define QVL_QDOT_X8_Q6K_H

#include "qrepack.h"

#define Q6X_INL static inline __attribute__((always_inline)) QD_T

/* The activation blocks x in the kernels' order at o (o may be x). */
Q6X_INL void q6x_act(struct qvl_q8k *o, const struct qvl_q8k *x, size_t nblocks)
{
	for (size_t i = 0; i < nblocks; i++) {
		o[i].d = x[i].d;
		for (int u = 0; u < 8; u++) {
			__m128i a = _mm_loadu_si128((const __m128i *)(x[i].q + 32 * u)),
				b = _mm_loadu_si128((const __m128i *)(x[i].q + 32 * u + 16));
			_mm_storeu_si128((__m128i *)(o[i].q + 32 * u), _mm_unpacklo_epi16(a, b));
			_mm_storeu_si128((__m128i *)(o[i].q + 32 * u + 16),
					 _mm_unpackhi_epi16(a, b));
		}
		for (int j = 0; j < 16; j++)
			o[i].bsum[j] = (int16_t)(-16 * x[i].bsum[j]);
	}
}

Q6X_INL int64_t q6x_ld8(const int8_t *p)
{
	int64_t v;

	memcpy(&v, p, 8);
	return v;
}

Q6X_INL int32_t q6x_ld4(const int16_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return v;
}

#if QD_VNNI
/* RX activation rows (xrow blocks apart) x the group of 8 rows at g */
Q6X_INL void q6x_tile(const int RX, const uint8_t *g, const struct qvl_q8k *x, size_t xrow,
		      size_t nb, float *y, size_t ldy, size_t pf)
{
	const __m512i m6 = _mm512_set1_epi8(63), m2 = _mm512_set1_epi8(3),
		      m4 = _mm512_set1_epi8(15);
	const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
	__m256 acc[4];

#pragma GCC unroll 4
	for (int q = 0; q < RX; q++)
		acc[q] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = g + i * QVL_Q6X_BLK;
		__m512i is[4];

		qvl_qdec_pf(b, QVL_Q6X_BLK, pf);
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++)
			is[q] = _mm512_setzero_si512();
#pragma GCC unroll 2
		for (int u = 0; u < 8; u++) {
			const uint8_t *pl = b + 144 + 192 * u;
			__m512i p0 = _mm512_loadu_si512(pl), p1 = _mm512_loadu_si512(pl + 64),
				p2 = _mm512_loadu_si512(pl + 128), v[4];
			__m512i sc = _mm512_permutexvar_epi32(
			    dup, _mm512_castsi256_si512(_mm256_cvtepi8_epi16(
				     _mm_loadu_si128((const __m128i *)(b + 16 + 16 * u)))));
			/* select: bits where the third operand is set from the first */
			__m512i t = _mm512_ternarylogic_epi32(_mm512_srli_epi16(p0, 6),
							      _mm512_srli_epi16(p1, 4), m2, 0xe4);
			t = _mm512_ternarylogic_epi32(t, _mm512_srli_epi16(p2, 2), m4, 0xe4);
			v[0] = _mm512_and_si512(p0, m6);
			v[1] = _mm512_and_si512(p1, m6);
			v[2] = _mm512_and_si512(p2, m6);
			v[3] = _mm512_and_si512(t, m6);
#pragma GCC unroll 4
			for (int q = 0; q < RX; q++) {
				const struct qvl_q8k *xb = x + q * xrow + i;
				const int8_t *xu = xb->q + 32 * u;
				__m512i s01 = _mm512_add_epi16(
				    _mm512_maddubs_epi16(v[0], _mm512_set1_epi64(q6x_ld8(xu))),
				    _mm512_maddubs_epi16(v[1], _mm512_set1_epi64(q6x_ld8(xu + 8))));
				__m512i s23 = _mm512_add_epi16(
				    _mm512_maddubs_epi16(v[2], _mm512_set1_epi64(q6x_ld8(xu + 16))),
				    _mm512_maddubs_epi16(v[3],
							 _mm512_set1_epi64(q6x_ld8(xu + 24))));
				is[q] = _mm512_dpwssd_epi32(is[q], s01, sc);
				is[q] = _mm512_dpwssd_epi32(is[q], s23, sc);
				is[q] = _mm512_dpwssd_epi32(
				    is[q], sc, _mm512_set1_epi32(q6x_ld4(xb->bsum + 2 * u)));
			}
		}
		__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
#pragma GCC unroll 4
		for (int q = 0; q < RX; q++) {
			/* row r = lanes 2r + 2r + 1 */
			__m512i s = _mm512_add_epi32(is[q], _mm512_shuffle_epi32(is[q], 0xb1));
			__m256 f = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(s));
			acc[q] = _mm256_fmadd_ps(
			    f, _mm256_mul_ps(dw, _mm256_set1_ps(x[q * xrow + i].d)), acc[q]);
		}
	}
#pragma GCC unroll 4
	for (int q = 0; q < RX; q++)
		_mm256_storeu_ps(y + q * ldy, acc[q]);
}
#define Q6X_RX 4
#else
/* AVX2: the 8 rows as two halves of 4 (32 bytes of each plane). One mask
 * (the top 2 bits of each byte) instead of four, and the offset taken for
 * the 8 rows once a unit (dword r: row r) instead of in each half's lanes:
 * it was ALU-bound (3 rows a pass gained nothing); 2 rows of 16, one
 * thread, the groups in L2, 146-150 -> 167-168 GOP/s, one row 105 -> 115
 * (docs/todo-qbatch.md).
 *
 * One block (index i) of G groups (gs bytes apart) against RX activation
 * rows (xrow blocks apart): acc[g * RX + q] += the 8 rows' products. A
 * prefill pass is one group (G 1); the decode is one row against G far
 * streams (X8_DECODE), their loads in turn a unit half (96 bytes) at a
 * time, as the Q4_K decode's (docs/todo-avx2host.md). Each group's sums
 * and float steps are the same whatever G. */
Q6X_INL void q6x_blk_ymm(const int G, const int RX, const uint8_t *b, size_t gs,
			 const struct qvl_q8k *x, size_t xrow, size_t i, __m256 *acc)
{
	const __m256i top = _mm256_set1_epi8((char)0xc0);
	const __m256i dup[2] = {_mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0),
				_mm256_set_epi32(7, 7, 6, 6, 5, 5, 4, 4)};
	__m256i is[4][2][2], off[4][2];

#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
#pragma GCC unroll 2
		for (int q = 0; q < RX; q++)
			is[g][q][0] = is[g][q][1] = off[g][q] = _mm256_setzero_si256();
	for (int u = 0; u < 8; u++) {
		__m256i sc8[4];
#pragma GCC unroll 4
		for (int g = 0; g < G; g++) {
			sc8[g] = _mm256_cvtepi8_epi16(
			    _mm_loadu_si128((const __m128i *)(b + g * gs + 16 + 16 * u)));
			/* the offset of the 8 rows (dword r: row r), once a unit */
#pragma GCC unroll 2
			for (int q = 0; q < RX; q++)
				off[g][q] = _mm256_add_epi32(
				    off[g][q],
				    _mm256_madd_epi16(sc8[g], _mm256_set1_epi32(q6x_ld4(
								  x[q * xrow + i].bsum + 2 * u))));
		}
#pragma GCC unroll 2
		for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
			for (int g = 0; g < G; g++) {
				const uint8_t *pl = b + g * gs + 144 + 192 * u;
				__m256i p0 = _mm256_loadu_si256((const __m256i *)(pl + 32 * h)),
					p1 =
					    _mm256_loadu_si256((const __m256i *)(pl + 64 + 32 * h)),
					p2 = _mm256_loadu_si256(
					    (const __m256i *)(pl + 128 + 32 * h));
				__m256i sc = _mm256_permutevar8x32_epi32(sc8[g], dup[h]), v[4];
				/* each byte's top 2 bits, shifted within its 16-bit
				 * word: nothing crosses into the other byte */
				v[3] = _mm256_or_si256(
				    _mm256_or_si256(
					_mm256_srli_epi16(_mm256_and_si256(p0, top), 6),
					_mm256_srli_epi16(_mm256_and_si256(p1, top), 4)),
				    _mm256_srli_epi16(_mm256_and_si256(p2, top), 2));
				v[0] = _mm256_andnot_si256(top, p0);
				v[1] = _mm256_andnot_si256(top, p1);
				v[2] = _mm256_andnot_si256(top, p2);
#pragma GCC unroll 2
				for (int q = 0; q < RX; q++) {
					const int8_t *xu = x[q * xrow + i].q + 32 * u;
					__m256i s01 = _mm256_add_epi16(
					    _mm256_maddubs_epi16(v[0],
								 _mm256_set1_epi64x(q6x_ld8(xu))),
					    _mm256_maddubs_epi16(
						v[1], _mm256_set1_epi64x(q6x_ld8(xu + 8))));
					__m256i s23 = _mm256_add_epi16(
					    _mm256_maddubs_epi16(
						v[2], _mm256_set1_epi64x(q6x_ld8(xu + 16))),
					    _mm256_maddubs_epi16(
						v[3], _mm256_set1_epi64x(q6x_ld8(xu + 24))));
					is[g][q][h] = _mm256_add_epi32(
					    is[g][q][h],
					    _mm256_add_epi32(_mm256_madd_epi16(s01, sc),
							     _mm256_madd_epi16(s23, sc)));
				}
			}
	}
#pragma GCC unroll 4
	for (int g = 0; g < G; g++) {
		__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + g * gs)));
#pragma GCC unroll 2
		for (int q = 0; q < RX; q++) {
			/* pairs of lanes: rows 0 1 4 5 | 2 3 6 7, then in order */
			__m256i s = _mm256_permute4x64_epi64(
			    _mm256_hadd_epi32(is[g][q][0], is[g][q][1]), 0xd8);
			/* bsum holds -16 s_j: twice it is the -32 s_j of the
			 * offset (the 512-bit form adds it in both lanes of a
			 * row) */
			s = _mm256_add_epi32(s, _mm256_slli_epi32(off[g][q], 1));
			acc[g * RX + q] = _mm256_fmadd_ps(
			    _mm256_cvtepi32_ps(s),
			    _mm256_mul_ps(dw, _mm256_set1_ps(x[q * xrow + i].d)), acc[g * RX + q]);
		}
	}
}

/* RX activation rows (xrow blocks apart) x the group of 8 rows at g. pf
 * (qk_pf: a decode's first pass) prefetches each block pf bytes ahead: on
 * an AVX2-only Zen 3 one stream ran at 0.45 of the kernel's rate in
 * cache, and the q4_k_m logits (Q6_K) took ~10 % less time with 2 KiB
 * (docs/todo-avx2host.md). */
Q6X_INL void q6x_tile(const int RX, const uint8_t *g, const struct qvl_q8k *x, size_t xrow,
		      size_t nb, float *y, size_t ldy, size_t pf)
{
	__m256 acc[2];

#pragma GCC unroll 2
	for (int q = 0; q < RX; q++)
		acc[q] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = g + i * QVL_Q6X_BLK;

		qvl_qdec_pf(b, QVL_Q6X_BLK, pf);
		q6x_blk_ymm(1, RX, b, 0, x, xrow, i, acc);
	}
#pragma GCC unroll 2
	for (int q = 0; q < RX; q++)
		_mm256_storeu_ps(y + q * ldy, acc[q]);
}

/* X8_DECODE's kernel: G groups (gs bytes apart; outputs ys apart) against
 * one activation row. Without a prefetch: beside the G streams it lost
 * (q4_k_m logits over gate/up 0.79 against 0.65 without, 4 streams). */
Q6X_INL void q6x_rows_ymm(const int G, const uint8_t *w, size_t gs, const struct qvl_q8k *x,
			  size_t nb, float *y, size_t ys)
{
	__m256 acc[4];

#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		acc[g] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++)
		q6x_blk_ymm(G, 1, w + i * QVL_Q6X_BLK, gs, x, 0, i, acc);
#pragma GCC unroll 4
	for (int g = 0; g < G; g++)
		_mm256_storeu_ps(y + g * ys, acc[g]);
}
#define Q6X_RX 2
#endif

/* Q6_K_X8 on the prepared activation (qdot_x8_act.h: the rows quantized
 * and rearranged by q6x_act) */
Q6X_INL void q6x_run(float *Y, size_t ldy, const uint8_t *xa, const uint8_t *w, size_t ldw,
		     size_t m, size_t n, size_t k, int S)
{
	size_t nb = k / 256, wrow = ldw / 256 * 210;
	const struct qvl_q8k *xq = (const struct qvl_q8k *)(const void *)xa;

#if !QD_VNNI
	/* decode, S far streams: the q4_k_m logits (Q6_K) over its gate/up
	 * (Q4_K) 0.59 against 0.69 with one stream and its prefetch, medians
	 * of 8 alternated rounds on a Zen 3 (docs/todo-avx2host.md) */
	if (m == 1 && S > 1) {
		X8_DECODE(q6x_rows_ymm, S, w, wrow, n, Y, xq, nb);
		return;
	}
#else
	(void)S;
#endif
	/* activation rows per chunk: the chunk's rows stay in L2 while the
	 * groups pass over them */
	size_t mc = (256 << 10) / qvl_qdot_act_bytes(QVL_DT_Q6_K, k);

	mc = mc < Q6X_RX ? Q6X_RX : mc;
	for (size_t i0 = 0; i0 < m; i0 += mc) {
		size_t i1 = i0 + mc < m ? i0 + mc : m;
		for (size_t j = 0; j < n; j += QVL_X8_ROWS) {
			const uint8_t *g = w + j * wrow;
			size_t i = i0;
			for (; i + Q6X_RX <= i1; i += Q6X_RX)
				q6x_tile(Q6X_RX, g, xq + i * nb, nb, nb, Y + i * ldy + j, ldy,
					 qk_pf(m, i - i0));
			/* the rows left over in one pass: a decode batch of 2 or
			 * 3 reads the group once, not once a row */
			if (Q6X_RX == 4 && i1 - i == 3)
				q6x_tile(3, g, xq + i * nb, nb, nb, Y + i * ldy + j, ldy,
					 qk_pf(m, i - i0));
			else if (Q6X_RX == 4 && i1 - i == 2)
				q6x_tile(2, g, xq + i * nb, nb, nb, Y + i * ldy + j, ldy,
					 qk_pf(m, i - i0));
			else if (i < i1)
				q6x_tile(1, g, xq + i * nb, nb, nb, Y + i * ldy + j, ldy,
					 qk_pf(m, i - i0));
		}
	}
}

#endif
