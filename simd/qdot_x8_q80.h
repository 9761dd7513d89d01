/* matmul_fast() of the repacked Q8_0 layout (QVL_DT_Q8_0_X8, qrepack.h),
 * included by qdot_avx2.c and qdot_avx512.c after qdot_x8.h. Same integer
 * sums as the reference (qdot.h), per block: isum = Σ w x, y += dw dx isum.
 *
 * Decode (m == 1) streams the matrix in address order, one group of 8 rows
 * after the other; per block the 256 quant bytes are 8 chunks of 8 rows x 4
 * quants (4-byte lanes = rows), so the 8 scales, the int-to-float
 * conversion and the multiply-add are one vector for 8 rows and there is
 * no horizontal sum (the file's layout needs one per row and block).
 *  - VNNI (zmm): a 64-byte load is two chunks (lanes 0-7 and 8-15); the
 *    signed weights made unsigned by one XOR with 0x80 (Σ (w + 128) x =
 *    Σ w x + 128 s: the lanes start at -64 s, half in each of a row's two
 *    lanes), the activation dwords placed by 4 vpermd per block (shared by
 *    the group's 8 rows), 4 vpdpbusd per block, one fold at the end.
 *  - AVX2 (ymm): vpmaddubsw takes one unsigned operand and w + 128 would
 *    overflow its int16 pairs, so per chunk |w| against the broadcast
 *    activation bytes given w's sign (vpsignb: 2 x 128 x 127 < 2^15), one
 *    vpmaddwd per chunk (two chunks' pairs would overflow).
 * Prefill (m > 1): the template's 8-row panel (qd_gemm32) made from a
 * group without a transpose: the layout is the panel's (VNNI: w ^ 0x80
 * with the offset 128; AVX2: |w| and w beside it). With VNNI, panels of
 * two groups on 512-bit vectors first (qdot_x8.h's qx_gemm16: one vpdpbusd
 * feeds 16 rows), a last group of 8 on the 256-bit panel. */
#ifndef QVL_QDOT_X8_Q80_H
#define QVL_QDOT_X8_Q80_H

#include "qrepack.h"

#define Q8X_INL static inline __attribute__((always_inline)) QD_T

#if QD_VNNI
/* vpermd indices: the block's activation dwords 2p (lanes 0-7) and 2p + 1
 * (8-15) for the 64-byte piece p of a group block */
static const uint32_t q8x_perm[4][16]
    __attribute__((aligned(64))) = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
				    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
				    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
				    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7}};

/* S groups of 8 rows (gs bytes apart from g) against the activation:
 * group s's outputs at y + s * ys */
Q8X_INL void q8x_rows(const int S, const uint8_t *g, size_t gs, const struct qvl_q8a *xq,
		      size_t nb, float *y, size_t ys)
{
	const __m512i sg = _mm512_set1_epi8((char)0x80);
	__m512i pi[4];
	__m512 acc[4];

#pragma GCC unroll 4
	for (int p = 0; p < 4; p++)
		pi[p] = _mm512_load_si512(q8x_perm[p]);
#pragma GCC unroll 4
	for (int s = 0; s < S; s++)
		acc[s] = _mm512_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		__m512i xv = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)xq[i].q)), xs[4];
		__m512 dx = _mm512_set1_ps(xq[i].d);
#pragma GCC unroll 4
		for (int p = 0; p < 4; p++)
			xs[p] = _mm512_permutexvar_epi32(pi[p], xv);
#pragma GCC unroll 4
		for (int s = 0; s < S; s++) {
			const uint8_t *b = g + s * gs + i * QVL_Q8X_BLK;
			__m512i s0 = _mm512_set1_epi32(-64 * xq[i].s), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
			for (int p = 0; p < 4; p++) {
				__m512i v = _mm512_xor_si512(_mm512_loadu_si512(b + 16 + 64 * p), sg);
				if (p % 2)
					s1 = _mm512_dpbusd_epi32(s1, v, xs[p]);
				else
					s0 = _mm512_dpbusd_epi32(s0, v, xs[p]);
			}
			__m512 dw = _mm512_cvtph_ps(
			    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b)));
			acc[s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
						 _mm512_mul_ps(dw, dx), acc[s]);
		}
	}
#pragma GCC unroll 4
	for (int s = 0; s < S; s++)
		_mm256_storeu_ps(y + s * ys,
				 _mm256_add_ps(_mm512_castps512_ps256(acc[s]),
					       _mm256_castpd_ps(_mm512_extractf64x4_pd(
						   _mm512_castps_pd(acc[s]), 1))));
}
#else
Q8X_INL void q8x_rows(const int S, const uint8_t *g, size_t gs, const struct qvl_q8a *xq,
		      size_t nb, float *y, size_t ys)
{
	const __m256i one = _mm256_set1_epi16(1);
	__m256 acc[4];

#pragma GCC unroll 4
	for (int s = 0; s < S; s++)
		acc[s] = _mm256_setzero_ps();
	for (size_t i = 0; i < nb; i++) {
		__m256 dx = _mm256_set1_ps(xq[i].d);
#pragma GCC unroll 4
		for (int s = 0; s < S; s++) {
			const uint8_t *b = g + s * gs + i * QVL_Q8X_BLK;
			__m256i t[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 8
			for (int c = 0; c < 8; c++) {
				__m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
				__m256i p = _mm256_maddubs_epi16(
				    _mm256_abs_epi8(v), _mm256_sign_epi8(qx_bcast4(xq[i].q + 4 * c), v));
				t[c % 2] = _mm256_add_epi32(t[c % 2], _mm256_madd_epi16(p, one));
			}
			__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
			acc[s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(t[0], t[1])),
						 _mm256_mul_ps(dw, dx), acc[s]);
		}
	}
#pragma GCC unroll 4
	for (int s = 0; s < S; s++)
		_mm256_storeu_ps(y + s * ys, acc[s]);
}
#endif

/* The template's 8-row panel (struct qd_panel) of one group: chunk c is
 * step c as it is (VNNI: made unsigned; AVX2: |w|, w kept for the signs). */
Q8X_INL void q8x_panel(struct qd_panel *p, const uint8_t *g, size_t nb)
{
	p->off = QD_VNNI ? 128 : 0;
	for (size_t i = 0; i < nb; i++) {
		const uint8_t *b = g + i * QVL_Q8X_BLK;
#pragma GCC unroll 8
		for (int c = 0; c < 8; c++) {
			__m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
			uint8_t *q = p->q + i * 256 + 32 * c;
#if QD_VNNI
			_mm256_storeu_si256((__m256i *)q,
					    _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
#else
			_mm256_storeu_si256((__m256i *)q, _mm256_abs_epi8(v));
			_mm256_storeu_si256((__m256i *)(p->sg + i * 256 + 32 * c), v);
#endif
		}
		_mm256_storeu_ps(p->d + i * 8,
				 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b)));
	}
}

#if QX_ZMM
/* Prefill on 512-bit vectors: a panel of two groups (16 rows) in
 * qx_gemm16's layout (per block 8 steps of 64 bytes, lanes 0-7 the first
 * group's rows, 8-15 the second's, made unsigned; 16 f32 scales) */
Q8X_INL void q8x_panel16(uint8_t *q, float *d, const uint8_t *g0, const uint8_t *g1, size_t nb)
{
	qx_store16(1, q, d, g0, g1, nb);
}
#endif

/* Q8_0_X8 on the prepared activation (qdot_x8_act.h: the rows quantized);
 * scr: the panels of qx_prefill. */
Q8X_INL void q8x_run(float *Y, size_t ldy, const uint8_t *xa, const uint8_t *w, size_t ldw,
		     size_t m, size_t n, size_t k, uint8_t *scr, int S)
{
	size_t nb = k / 32, wrow = ldw / 32 * 34;
	const struct qvl_q8a *x = (const struct qvl_q8a *)(const void *)xa;

	if (m == 1) {
		X8_DECODE(q8x_rows, S, w, wrow, n, Y, x, nb);
	} else {
		qx_prefill(QVL_DT_Q8_0, 128, q8x_panel, QX_PAN16(q8x_panel16), w, wrow, xa,
			   qvl_qdot_act_bytes(QVL_DT_Q8_0, k), nb, Y, ldy, m, n, scr);
	}
}

#endif
