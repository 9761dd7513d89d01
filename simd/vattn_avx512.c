/* The vision tower's bf16 attention (see vattn.h). For a tile of up to
 * VATTN_MR queries: S = Q·Kᵀ over every key (8 x 32 register tile, one
 * vdpbf16ps per key-dimension pair: the 16 accumulators of the packed GEMM
 * ukern in matmul_bf16dot.c), then each row's f32 softmax written as bf16
 * key pairs, then O = P·V (8 x 32 tile again, one vdpbf16ps per key pair),
 * scaled by 1 / Σ at the end. K and V are laid out once per block by
 * qvl_vattn_store_row(), so nothing is transposed per query tile; the S
 * rows of a tile (8 x n floats: 96 KiB at n = 3072) stay in L2.
 *
 * The exact tower runs its attention as two f32 GEMMs on the exact matmul,
 * whose weight-panel packing and widening were half of its cost
 * (docs/todo-vision.md). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "vattn.h"

#define KP 32 /* keys per K panel */

size_t qvl_vattn_kp_words(size_t n, size_t hv)
{
	return (n + KP - 1) / KP * KP * (hv / 2);
}

size_t qvl_vattn_vp_words(size_t n, size_t hv)
{
	return (n + 1) / 2 * ((hv + 31) / 32 * 32);
}

size_t qvl_vattn_scratch_floats(size_t n)
{
	size_t np = (n + KP - 1) / KP * KP;
	/* S [MR][np] f32, P's bf16 rows over it */
	return VATTN_MR * np;
}

#ifdef HAVE_AVX512BF16_KERNELS
#include "vec_avx512.h"

#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))

bool qvl_vattn_bf16_available(void)
{
	return qvl_cpu_has_avx512bf16();
}

/* n values of x to bf16 at o (round to nearest even) */
static TBF void to_bf16(uint16_t *o, const float *x, size_t n, float s)
{
	const __m512 sv = _mm512_set1_ps(s);
	for (size_t c = 0; c < n; c += 32) {
		__mmask16 l = v16_mask(n - c), h = v16_mask(n > c + 16 ? n - c - 16 : 0);
		__m512bh v =
		    _mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(h, x + c + 16), sv),
					_mm512_mul_ps(_mm512_maskz_loadu_ps(l, x + c), sv));
		__mmask32 st = n - c >= 32 ? (__mmask32)~0u : (__mmask32)((1u << (n - c)) - 1);
		_mm512_mask_storeu_epi16(o + c, st, (__m512i)v);
	}
}

/* One head's k row r (hv bf16 values at kb) into its Kp panel. */
static TBF void store_k(uint32_t *kph, const uint16_t *kb, size_t r, size_t hv)
{
	const uint32_t *kw = (const uint32_t *)(const void *)kb;
	uint32_t *kd = kph + r / KP * KP * (hv / 2) + r % KP;

	for (size_t p = 0; p < hv / 2; p++)
		kd[p * KP] = kw[p];
}

/* One head's v row r (hv bf16 values at vb) into its Vp blocks. */
static TBF void store_v(uint32_t *vph, const uint16_t *vb, size_t r, size_t n, size_t hv)
{
	const size_t npair = (n + 1) / 2;
	uint32_t *vd = vph + r / 2 * 32;
	/* values d .. d + 16 of block d / 32 (npair rows of 32 words) into the
	 * row's 16-bit halves of 16 words: one masked store (a zero other half
	 * past an odd n) */
	const __mmask32 half = r & 1 ? 0xaaaaaaaau : 0x55555555u;
	const __mmask32 zero = (r & 1) == 0 && r + 1 == n ? 0xaaaaaaaau : 0;

	for (size_t d = 0; d < hv; d += 16) {
		size_t nw = hv - d < 16 ? hv - d : 16;
		__m512i vw = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(v16_mask(nw), vb + d));
		if (r & 1)
			vw = _mm512_slli_epi32(vw, 16);
		__mmask32 wm = nw == 16 ? ~0u : (1u << 2 * nw) - 1; /* nw words */
		_mm512_mask_storeu_epi16(vd + d / 32 * npair * 32 + d % 32, wm & (half | zero), vw);
	}
}

TBF void qvl_vattn_store_row(uint16_t *qb, uint32_t *kp, size_t kps, uint32_t *vp, size_t vps,
			     const float *q, const float *k, const float *v, float qscale, size_t r,
			     size_t n, size_t nh, size_t hv)
{
	_Alignas(64) uint16_t kb[1024], vb[1024];
	const size_t D = nh * hv, cw = 1024 / hv * hv; /* whole heads */

	to_bf16(qb, q, D, qscale);
	for (size_t c = 0; c < D; c += cw) {
		size_t w = D - c < cw ? D - c : cw;
		to_bf16(kb, k + c, w, 1.0f);
		to_bf16(vb, v + c, w, 1.0f);
		for (size_t e = 0; e < w; e += hv) {
			size_t h = (c + e) / hv;
			store_k(kp + h * kps, kb + e, r, hv);
			store_v(vp + h * vps, vb + e, r, n, hv);
		}
	}
}

TBF void qvl_vattn_store_head(uint16_t *qb, uint32_t *kph, uint32_t *vph, const float *x,
			      float qscale, size_t r, size_t n, size_t hv)
{
	_Alignas(64) uint16_t b[1024];

	if (qb) {
		to_bf16(qb, x, hv, qscale);
		return;
	}
	to_bf16(b, x, hv, 1.0f);
	if (kph)
		store_k(kph, b, r, hv);
	else
		store_v(vph, b, r, n, hv);
}

/* c[r] = Σ_p A[r][p] · B[p][0..32) for mr rows, in pair order: A's words
 * are bf16 pairs (lda words a row), B's rows of 32 words hold the matching
 * pairs of 32 columns (c0: the first 16, c1: the rest). Both tiles below:
 * S = Q·Kᵀ (B a K panel), O = P·V (B a V block). */
static inline __attribute__((always_inline)) TBF void dot_tile(const int mr, __m512 *c0, __m512 *c1,
							       const uint32_t *A, size_t lda,
							       const uint32_t *B, size_t np)
{
#pragma GCC unroll 8
	for (int r = 0; r < mr; r++)
		c0[r] = c1[r] = _mm512_setzero_ps();
	for (size_t p = 0; p < np; p++) {
		__m512bh b0 = (__m512bh)_mm512_loadu_si512(B + p * 32);
		__m512bh b1 = (__m512bh)_mm512_loadu_si512(B + p * 32 + 16);
#pragma GCC unroll 8
		for (int r = 0; r < mr; r++) {
			__m512bh a = (__m512bh)_mm512_set1_epi32((int)A[r * lda + p]);
			c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
			c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
		}
	}
}

/* S's 32 columns of a K panel (hp pairs) for mr query rows (Q's words lda
 * apart), stored lds apart, and the running row maxima mx[r] over the
 * panel's real keys (v0 / v1: the zero keys past n must not count). */
static inline __attribute__((always_inline)) TBF void tile_s(const int mr, float *S, size_t lds,
							     const uint32_t *A, size_t lda,
							     const uint32_t *B, size_t hp,
							     __mmask16 v0, __mmask16 v1, float *mx)
{
	__m512 c0[VATTN_MR], c1[VATTN_MR];
	dot_tile(mr, c0, c1, A, lda, B, hp);
#pragma GCC unroll 8
	for (int r = 0; r < mr; r++) {
		_mm512_storeu_ps(S + r * lds, c0[r]);
		_mm512_storeu_ps(S + r * lds + 16, c1[r]);
		__m512 m = _mm512_mask_max_ps(_mm512_set1_ps(-INFINITY), v0, c0[r], c0[r]);
		m = _mm512_mask_max_ps(m, v1, m, c1[r]);
		float t = _mm512_reduce_max_ps(m);
		mx[r] = t > mx[r] ? t : mx[r];
	}
}

/* O[r][0..32) = (P[r] · the V block's np pair rows) · rs[r] for mr rows (P's
 * words lda apart; the block one contiguous stream), stored to O (ldo,
 * columns m0 / m1). */
static inline __attribute__((always_inline)) TBF void
tile_o(const int mr, float *O, size_t ldo, const uint32_t *A, size_t lda, const uint32_t *B,
       size_t np, __mmask16 m0, __mmask16 m1, const float *rs)
{
	__m512 c0[VATTN_MR], c1[VATTN_MR];
	dot_tile(mr, c0, c1, A, lda, B, np);
#pragma GCC unroll 8
	for (int r = 0; r < mr; r++) {
		__m512 s = _mm512_set1_ps(rs[r]);
		_mm512_mask_storeu_ps(O + r * ldo, m0, _mm512_mul_ps(c0[r], s));
		_mm512_mask_storeu_ps(O + r * ldo + 16, m1, _mm512_mul_ps(c1[r], s));
	}
}

/* The row's softmax numerators exp(s - mx) as bf16 at o (zero past n, up
 * to np); o may be s itself (each 32-value step reads its floats before it
 * writes their 64 bytes, at or below them). Returns 1 / Σ of the rounded
 * numerators' f32 values. */
static TBF float softmax_row(uint16_t *o, const float *s, size_t n, size_t np, float mx)
{
	__m512 sum = _mm512_setzero_ps();
	const __m512 m = _mm512_set1_ps(mx);
	for (size_t i = 0; i < np; i += 32) {
		__mmask16 l = v16_mask(n > i ? n - i : 0),
			  h = v16_mask(n > i + 16 ? n - i - 16 : 0);
		__m512 e0 =
		    _mm512_maskz_mov_ps(l, v16_exp(_mm512_sub_ps(_mm512_loadu_ps(s + i), m)));
		__m512 e1 =
		    _mm512_maskz_mov_ps(h, v16_exp(_mm512_sub_ps(_mm512_loadu_ps(s + i + 16), m)));
		__m512bh b = _mm512_cvtne2ps_pbh(e1, e0);
		_mm512_storeu_si512(o + i, (__m512i)b);
		/* Σ over what P·V really multiplies: the rounded values */
		__m512i w = (__m512i)b;
		sum = _mm512_add_ps(sum, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
		sum = _mm512_add_ps(sum, _mm512_castsi512_ps(_mm512_and_si512(
					     w, _mm512_set1_epi32((int)0xffff0000u))));
	}
	return 1.0f / _mm512_reduce_add_ps(sum);
}

/* A tile of mr <= VATTN_MR queries: S against every key with the row
 * maxima taken as the tiles store it (no pass of its own), each row's
 * softmax in place (P's bf16 over S's floats: 32 KiB less of L2 at 3072
 * keys), then O by 32-value blocks of V, each one contiguous stream (the
 * tiles waited on their V rows, 256 bytes apart, from L2: 1.12-1.25x less
 * CPU at 3072 keys, docs/todo-vattn3.md). */
static inline __attribute__((always_inline)) TBF void
vattn_tile(const int mr, float *out, size_t ldo, const uint32_t *q, size_t ldq, const uint32_t *kp,
	   const uint32_t *vp, size_t n, size_t hv, float *S)
{
	const size_t hp = hv / 2, np = (n + KP - 1) / KP * KP, npair = (n + 1) / 2;
	float mx[VATTN_MR], rs[VATTN_MR];
	const uint32_t *pw = (const uint32_t *)(const void *)S; /* P rows np words apart */

	for (int r = 0; r < mr; r++)
		mx[r] = -INFINITY;
	for (size_t b = 0; b < np; b += KP)
		tile_s(mr, S + b, np, q, ldq, kp + b * hp, hp, v16_mask(n - b),
		       v16_mask(n > b + 16 ? n - b - 16 : 0), mx);
	for (int r = 0; r < mr; r++)
		rs[r] = softmax_row((uint16_t *)(void *)(S + r * np), S + r * np, n, np, mx[r]);
	for (size_t d = 0; d < hv; d += 32)
		tile_o(mr, out + d, ldo, pw, np, vp + d * npair, npair, v16_mask(hv - d),
		       v16_mask(hv > d + 16 ? hv - d - 16 : 0), rs);
}

/* vattn_tile() compiled for each mr (the tiles' accumulators in registers):
 * one switch per tile of queries, for both of its products. */
static TBF void vattn_tile_any(int mr, float *out, size_t ldo, const uint32_t *q, size_t ldq,
			       const uint32_t *kp, const uint32_t *vp, size_t n, size_t hv,
			       float *S)
{
	switch (mr) {
#define C(R)                                                                                       \
	case R:                                                                                    \
		vattn_tile(R, out, ldo, q, ldq, kp, vp, n, hv, S);                                 \
		break;
		C(8) C(7) C(6) C(5) C(4) C(3) C(2) C(1)
#undef C
	}
}

TBF void qvl_vattn_bf16(float *out, size_t ldo, const uint16_t *q, size_t ldq, size_t nq,
			const uint32_t *kp, const uint32_t *vp, size_t n, size_t hv, float *scratch)
{
	const uint32_t *q32 = (const uint32_t *)(const void *)q;
	for (size_t i = 0; i < nq; i += VATTN_MR) {
		int mr = nq - i >= VATTN_MR ? VATTN_MR : (int)(nq - i);
		vattn_tile_any(mr, out + i * ldo, ldo, q32 + i * ldq / 2, ldq / 2, kp, vp, n, hv,
			       scratch);
	}
}

#else /* no AVX512-BF16 kernels in this build: never called (not available) */

bool qvl_vattn_bf16_available(void)
{
	return false;
}

void qvl_vattn_store_head(uint16_t *qb, uint32_t *kph, uint32_t *vph, const float *x,
			  float qscale, size_t r, size_t n, size_t hv)
{
	(void)qb, (void)kph, (void)vph, (void)x, (void)qscale, (void)r, (void)n, (void)hv;
}

void qvl_vattn_store_row(uint16_t *qb, uint32_t *kp, size_t kps, uint32_t *vp, size_t vps,
			 const float *q, const float *k, const float *v, float qscale, size_t r,
			 size_t n, size_t nh, size_t hv)
{
	(void)qb, (void)kp, (void)kps, (void)vp, (void)vps, (void)q, (void)k, (void)v;
	(void)qscale, (void)r, (void)n, (void)nh, (void)hv;
}

void qvl_vattn_bf16(float *out, size_t ldo, const uint16_t *q, size_t ldq, size_t nq,
		    const uint32_t *kp, const uint32_t *vp, size_t n, size_t hv, float *scratch)
{
	(void)out, (void)ldo, (void)q, (void)ldq, (void)nq, (void)kp, (void)vp, (void)n;
	(void)hv, (void)scratch;
}
#endif
