/* AVX-512 matmul: Y[m][n] = X[m][k] · W[n][k]ᵀ with f32 accumulation and
 * weights widened exactly to f32 (see kernels.h).
 *
 * m == 1 (decode) is bound by the weight stream: four W rows are read at a
 * time, each once, with independent accumulators; bf16 is widened with one
 * shift and one mask per 32 values (even/odd lanes), and x is split into its
 * even/odd lanes once per 32 values for the four rows. The four rows are
 * far apart (qvl_far_row()), so the hardware prefetcher streams them.
 *
 * 1 < m <= 16 (batched decode, short chunks) streams W the same way against
 * up to 4 X rows at a time (small_m()).
 *
 * Larger m (prefill, vision) is compute bound: a panel of NR = 32 W rows × kc is
 * widened and transposed once into an f32 buffer on the stack (kc from the
 * L1 size, simd/dispatch.c) and reused by every block of MR = 8 X rows, an
 * 8×32 register tile of 16 accumulators fed by broadcasts of X. */
#include "config.h"

#ifdef HAVE_AVX512_KERNELS
#include "vec_avx512.h"

#define MR     8
#define NR     32
#define KC_MAX 512

/* ---- m == 1 ----------------------------------------------------------- */

/* One 32-value step of matvec_bf16_4 (mk: the valid lanes). */
INL512 void bf16_step(__m512 ae[4], __m512 ao[4], const float *x, const uint8_t *const w[4],
		      size_t i, __mmask32 mk, bool full)
{
	const __m512i idx_e =
	    _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i idx_o =
	    _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
	const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
	__m512 x0 = full ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps((__mmask16)mk, x + i);
	__m512 x1 = full ? _mm512_loadu_ps(x + i + 16)
			 : _mm512_maskz_loadu_ps((__mmask16)(mk >> 16), x + i + 16);
	__m512 xe = _mm512_permutex2var_ps(x0, idx_e, x1);
	__m512 xo = _mm512_permutex2var_ps(x0, idx_o, x1);

#pragma GCC unroll 4
	for (int r = 0; r < 4; r++) {
		__m512i v = full ? _mm512_loadu_si512(w[r] + 2 * i)
				 : _mm512_maskz_loadu_epi16(mk, w[r] + 2 * i);
		ae[r] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, ae[r]);
		ao[r] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)), xo, ao[r]);
	}
}

/* Dot products of x with 4 bf16 rows. x is split into even and odd lanes so
 * that a row's 32 bf16 widen with a shift (even) and an and (odd). Full
 * blocks unmasked (masked loads in the hot loop cost 25% here), then one
 * masked block for the tail. */
static T512 void matvec_bf16_4(float *y, const float *x, const uint8_t *w[4], size_t k)
{
	__m512 ae[4], ao[4];
	size_t i = 0;

	for (int r = 0; r < 4; r++)
		ae[r] = ao[r] = _mm512_setzero_ps();
	for (; i + 32 <= k; i += 32)
		bf16_step(ae, ao, x, w, i, (__mmask32)~0u, true);
	if (i < k)
		bf16_step(ae, ao, x, w, i, (__mmask32)((1u << (k - i)) - 1), false);
	for (int r = 0; r < 4; r++)
		y[r] = _mm512_reduce_add_ps(_mm512_add_ps(ae[r], ao[r]));
}

/* f32 / f16 rows, 16 values at a time, two accumulators per row. */
static T512 void matvec_gen_4(float *y, const float *x, const uint8_t *w[4], int nr,
			      enum qvl_dtype t, size_t k)
{
	__m512 a0[4], a1[4];
	size_t i = 0;

	for (int r = 0; r < 4; r++)
		a0[r] = a1[r] = _mm512_setzero_ps();
	for (; i + 32 <= k; i += 32) {
		__m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
		for (int r = 0; r < nr; r++) {
			a0[r] = _mm512_fmadd_ps(v16_load(w[r], t, i, 0xffff), x0, a0[r]);
			a1[r] = _mm512_fmadd_ps(v16_load(w[r], t, i + 16, 0xffff), x1, a1[r]);
		}
	}
	for (; i < k; i += 16) {
		__mmask16 mk = v16_mask(k - i);
		__m512 x0 = _mm512_maskz_loadu_ps(mk, x + i);
		for (int r = 0; r < nr; r++)
			a0[r] = _mm512_fmadd_ps(v16_load(w[r], t, i, mk), x0, a0[r]);
	}
	for (int r = 0; r < nr; r++)
		y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

/* One 32-value Q8_0/Q4_0 block widened to two f32 vectors (exactly d * q,
 * as qvl_deq_block does). */
static inline T512 void deq_block(const uint8_t *b, enum qvl_dtype t, __m512 *lo, __m512 *hi)
{
	__m512 d = _mm512_set1_ps(_cvtsh_ss(qvl_load_u16(b))); /* F16C: exact */
	__m512i q0, q1;

	if (t == QVL_DT_Q8_0) {
		q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2)));
		q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 18)));
	} else {
		__m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + 2)));
		__m512i eight = _mm512_set1_epi32(8);
		q0 = _mm512_sub_epi32(_mm512_and_si512(v, _mm512_set1_epi32(15)), eight);
		q1 = _mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight);
	}
	*lo = _mm512_mul_ps(d, _mm512_cvtepi32_ps(q0));
	*hi = _mm512_mul_ps(d, _mm512_cvtepi32_ps(q1));
}

static T512 void matvec_q(float *y, const float *x, const uint8_t *w, enum qvl_dtype t, size_t k)
{
	size_t bsz = t == QVL_DT_Q8_0 ? 34 : 18;
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();

	for (size_t b = 0; b < k / 32; b++) {
		__m512 lo, hi;
		deq_block(w + b * bsz, t, &lo, &hi);
		a0 = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x + 32 * b), a0);
		a1 = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 32 * b + 16), a1);
	}
	*y = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static T512 void matvec(float *y, const float *x, const void *W, enum qvl_dtype t, size_t ldw,
			const float *bias, size_t n, size_t k)
{
	/* 4 far-apart rows per step (qvl_far_row()), no software prefetch */
	size_t q = (n + 3) / 4;

	for (size_t j = 0; j < q; j++) {
		const uint8_t *w[4];
		float out[4];
		int nr = qvl_far_count(j, 4, q, n);

		for (int r = 0; r < 4; r++)
			w[r] = qvl_wrow(W, t, ldw, qvl_far_row(j, r, q, n));
		if (t == QVL_DT_BF16)
			matvec_bf16_4(out, x, w, k);
		else if (t == QVL_DT_F32 || t == QVL_DT_F16)
			matvec_gen_4(out, x, w, nr, t, k);
		else
			for (int r = 0; r < nr; r++)
				matvec_q(&out[r], x, w[r], t, k);
		qvl_far_store(y, out, nr, j, q, bias);
	}
}

/* ---- small m: a few rows of X against streamed W ------------------- */

/* Up to 4 rows of X against 4 W rows: each 16 weights are widened once and
 * used for every X row, so W is streamed as in matvec instead of being
 * packed (packing costs more than the math when m is this small). */
static inline __attribute__((always_inline)) T512 void
small_4x4(const int mx, float *Y, size_t ldy, const float *X, size_t ldx, const uint8_t *w[4],
	  enum qvl_dtype t, size_t k, size_t pfd)
{
	size_t es = t == QVL_DT_F32 ? 4 : 2, i = 0;
	__m512 acc[4][4];

#pragma GCC unroll 4
	for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++)
			acc[c][r] = _mm512_setzero_ps();
	for (; i + 16 <= k; i += 16) {
		__m512 xv[4];
#pragma GCC unroll 4
		for (int r = 0; r < mx; r++)
			xv[r] = _mm512_loadu_ps(X + r * ldx + i);
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++) {
			_mm_prefetch((const char *)(w[c] + es * i + pfd), _MM_HINT_T1);
			__m512 wv = v16_load(w[c], t, i, 0xffff);
#pragma GCC unroll 4
			for (int r = 0; r < mx; r++)
				acc[c][r] = _mm512_fmadd_ps(wv, xv[r], acc[c][r]);
		}
	}
	if (i < k) {
		__mmask16 mk = v16_mask(k - i);
		__m512 xv[4];
#pragma GCC unroll 4
		for (int r = 0; r < mx; r++)
			xv[r] = _mm512_maskz_loadu_ps(mk, X + r * ldx + i);
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++) {
			__m512 wv = v16_load(w[c], t, i, mk);
#pragma GCC unroll 4
			for (int r = 0; r < mx; r++)
				acc[c][r] = _mm512_fmadd_ps(wv, xv[r], acc[c][r]);
		}
	}
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
		for (int r = 0; r < mx; r++)
			Y[r * ldy + (size_t)c] = _mm512_reduce_add_ps(acc[c][r]);
}

/* small_4x4 for Q8_0/Q4_0: one 32-value block of each W row dequantized
 * once (deq_block) for every X row. */
static inline __attribute__((always_inline)) T512 void small_4x4_q(const int mx, float *Y,
								   size_t ldy, const float *X,
								   size_t ldx, const uint8_t *w[4],
								   enum qvl_dtype t, size_t k)
{
	size_t bsz = t == QVL_DT_Q8_0 ? 34 : 18;
	__m512 acc[4][4];

#pragma GCC unroll 4
	for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++)
			acc[c][r] = _mm512_setzero_ps();
	for (size_t b = 0; b < k / 32; b++) {
		__m512 x0[4], x1[4];
#pragma GCC unroll 4
		for (int r = 0; r < mx; r++) {
			x0[r] = _mm512_loadu_ps(X + r * ldx + 32 * b);
			x1[r] = _mm512_loadu_ps(X + r * ldx + 32 * b + 16);
		}
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++) {
			__m512 lo, hi;
			deq_block(w[c] + b * bsz, t, &lo, &hi);
#pragma GCC unroll 4
			for (int r = 0; r < mx; r++)
				acc[c][r] = _mm512_fmadd_ps(hi, x1[r],
							    _mm512_fmadd_ps(lo, x0[r], acc[c][r]));
		}
	}
#pragma GCC unroll 4
	for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
		for (int r = 0; r < mx; r++)
			Y[r * ldy + (size_t)c] = _mm512_reduce_add_ps(acc[c][r]);
}

/* One block of up to 4 X rows x all n, for a compile-time dtype and row
 * count (so the accumulators stay in registers). */
static inline __attribute__((always_inline)) T512 void
small_rows(const int mx, const enum qvl_dtype t, float *Y, size_t ldy, const float *X, size_t ldx,
	   const void *W, size_t ldw, const float *bias, size_t n, size_t k, size_t pfd)
{
	for (size_t j = 0; j < n; j += 4) {
		int nr = n - j >= 4 ? 4 : (int)(n - j);
		const uint8_t *w[4];
		float out[4 * 4];

		for (int c = 0; c < 4; c++)
			w[c] = qvl_wrow(W, t, ldw, j + (size_t)(c < nr ? c : 0));
		if (t == QVL_DT_Q8_0 || t == QVL_DT_Q4_0)
			small_4x4_q(mx, out, 4, X, ldx, w, t, k);
		else
			small_4x4(mx, out, 4, X, ldx, w, t, k, pfd);
		for (int r = 0; r < mx; r++)
			for (int c = 0; c < nr; c++)
				Y[(size_t)r * ldy + j + (size_t)c] =
				    out[r * 4 + c] + (bias ? bias[j + (size_t)c] : 0.0f);
	}
}

#define SMALL_ROWS(T)                                                                              \
	static T512 void small_rows_##T(int mx, float *Y, size_t ldy, const float *X, size_t ldx,  \
					const void *W, size_t ldw, const float *bias, size_t n,    \
					size_t k, size_t pfd)                                      \
	{                                                                                          \
		switch (mx) {                                                                      \
		case 4:                                                                            \
			small_rows(4, T, Y, ldy, X, ldx, W, ldw, bias, n, k, pfd);                 \
			break;                                                                     \
		case 3:                                                                            \
			small_rows(3, T, Y, ldy, X, ldx, W, ldw, bias, n, k, pfd);                 \
			break;                                                                     \
		case 2:                                                                            \
			small_rows(2, T, Y, ldy, X, ldx, W, ldw, bias, n, k, pfd);                 \
			break;                                                                     \
		default:                                                                           \
			small_rows(1, T, Y, ldy, X, ldx, W, ldw, bias, n, k, pfd);                 \
			break;                                                                     \
		}                                                                                  \
	}
SMALL_ROWS(QVL_DT_BF16)
SMALL_ROWS(QVL_DT_F16)
SMALL_ROWS(QVL_DT_F32)
SMALL_ROWS(QVL_DT_Q8_0)
SMALL_ROWS(QVL_DT_Q4_0)

/* Measured on Zen 4 (6144x2048 bf16, one thread, streaming vs packing):
 * m = 2: 42 vs 8 GFLOP/s, m = 4: 54 vs 15, m = 8: 70 vs 26, m = 16: 74 vs
 * 40, m = 32: 64 vs 55, m = 64: 76 vs 76. Each group of 4 rows re-reads W,
 * so the default switch (qvl_gemm_blk.small_m = 16) stays well below the
 * crossover in case W comes from DRAM. */
static T512 void small_m(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			 enum qvl_dtype t, size_t ldw, const float *bias, size_t m, size_t n,
			 size_t k)
{
	size_t pfd = (size_t)(qvl_wrow(W, t, ldw, 4) - qvl_wrow(W, t, ldw, 0));

	for (size_t i0 = 0; i0 < m; i0 += 4) {
		int mx = m - i0 >= 4 ? 4 : (int)(m - i0);
		float *y = Y + i0 * ldy;
		const float *x = X + i0 * ldx;
		if (t == QVL_DT_BF16)
			small_rows_QVL_DT_BF16(mx, y, ldy, x, ldx, W, ldw, bias, n, k, pfd);
		else if (t == QVL_DT_F16)
			small_rows_QVL_DT_F16(mx, y, ldy, x, ldx, W, ldw, bias, n, k, pfd);
		else if (t == QVL_DT_Q8_0)
			small_rows_QVL_DT_Q8_0(mx, y, ldy, x, ldx, W, ldw, bias, n, k, pfd);
		else if (t == QVL_DT_Q4_0)
			small_rows_QVL_DT_Q4_0(mx, y, ldy, x, ldx, W, ldw, bias, n, k, pfd);
		else
			small_rows_QVL_DT_F32(mx, y, ldy, x, ldx, W, ldw, bias, n, k, pfd);
	}
}

/* ---- m > 1 ------------------------------------------------------------ */

/* pack_panel() for Q8_0/Q4_0 (k0 and kc are multiples of 32 for them). */
static T512 void pack_panel_q(float *P, const void *W, enum qvl_dtype t, size_t ldw, size_t j0,
			      int nr, size_t k0, size_t kc)
{
	size_t bsz = t == QVL_DT_Q8_0 ? 34 : 18;

	/* 16 rows x one 32-value block at a time: dequantized into two
	 * vectors per row, then two 16x16 transposes */
	for (int jb = 0; jb < NR; jb += 16) {
		const uint8_t *w[16];
		for (int r = 0; r < 16; r++)
			w[r] = jb + r < nr ? qvl_wrow(W, t, ldw, j0 + (size_t)(jb + r)) : NULL;
		for (size_t kk = 0; kk < kc; kk += 32) {
			__m512 lo[16], hi[16];
			for (int r = 0; r < 16; r++) {
				if (w[r])
					deq_block(w[r] + (k0 + kk) / 32 * bsz, t, &lo[r], &hi[r]);
				else
					lo[r] = hi[r] = _mm512_setzero_ps();
			}
			v16_transpose(lo);
			v16_transpose(hi);
			for (size_t c = 0; c < 16; c++) {
				_mm512_store_ps(P + (kk + c) * NR + jb, lo[c]);
				_mm512_store_ps(P + (kk + 16 + c) * NR + jb, hi[c]);
			}
		}
	}
}

/* P[kk][jj] = W[j0 + jj][k0 + kk] as f32, zero for jj >= nr: 16 rows x 16
 * values widened and transposed in registers at a time (the scalar
 * transpose it replaces cost ~3 cycles per weight, which dominated for
 * m < 64 and was 8% at m = 512). */
static T512 void pack_panel(float *P, const void *W, enum qvl_dtype t, size_t ldw, size_t j0,
			    int nr, size_t k0, size_t kc)
{
	if (t == QVL_DT_Q8_0 || t == QVL_DT_Q4_0) {
		pack_panel_q(P, W, t, ldw, j0, nr, k0, kc);
		return;
	}
	for (int jb = 0; jb < NR; jb += 16) {
		const uint8_t *w[16];
		for (int r = 0; r < 16; r++)
			w[r] = jb + r < nr ? qvl_wrow(W, t, ldw, j0 + (size_t)(jb + r)) : NULL;
		for (size_t kk = 0; kk < kc; kk += 16) {
			__mmask16 mk = v16_mask(kc - kk);
			__m512 v[16];
			for (int r = 0; r < 16; r++)
				v[r] = w[r] ? v16_load(w[r], t, k0 + kk, mk) : _mm512_setzero_ps();
			v16_transpose(v);
			size_t e = kc - kk < 16 ? kc - kk : 16;
			for (size_t c = 0; c < e; c++)
				_mm512_store_ps(P + (kk + c) * NR + jb, v[c]);
		}
	}
}

/* Y[0..mr)[0..32) (masked by m0/m1) = (first ? bias : Y) + X[0..mr) · P. */
static inline __attribute__((always_inline)) T512 void
ukern(const int mr, float *Y, size_t ldy, const float *X, size_t ldx, const float *P, size_t kc,
      __mmask16 m0, __mmask16 m1, const float *bias, int first)
{
	__m512 c0[MR], c1[MR];

#pragma GCC unroll 8
	for (int r = 0; r < mr; r++) {
		if (first) {
			c0[r] = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
			c1[r] = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
		} else {
			c0[r] = _mm512_maskz_loadu_ps(m0, Y + r * ldy);
			c1[r] = _mm512_maskz_loadu_ps(m1, Y + r * ldy + 16);
		}
	}
	for (size_t kk = 0; kk < kc; kk++) {
		__m512 b0 = _mm512_load_ps(P + kk * NR), b1 = _mm512_load_ps(P + kk * NR + 16);
#pragma GCC unroll 8
		for (int r = 0; r < mr; r++) {
			__m512 a = _mm512_set1_ps(X[r * ldx + kk]);
			c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
			c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < mr; r++) {
		_mm512_mask_storeu_ps(Y + r * ldy, m0, c0[r]);
		_mm512_mask_storeu_ps(Y + r * ldy + 16, m1, c1[r]);
	}
}

static T512 void ukern_any(int mr, float *Y, size_t ldy, const float *X, size_t ldx, const float *P,
			   size_t kc, __mmask16 m0, __mmask16 m1, const float *bias, int first)
{
	switch (mr) {
#define C(R)                                                                                       \
	case R:                                                                                    \
		ukern(R, Y, ldy, X, ldx, P, kc, m0, m1, bias, first);                              \
		break;
		C(8) C(7) C(6) C(5) C(4) C(3) C(2) C(1)
#undef C
	}
}

static T512 void gemm(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		      enum qvl_dtype t, size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	_Alignas(64) float P[KC_MAX * NR];
	size_t kcb = qvl_gemm_blk.kc;

	if (kcb > KC_MAX)
		kcb = KC_MAX;
	if (t == QVL_DT_Q8_0 || t == QVL_DT_Q4_0)
		kcb &= ~(size_t)31;
	/* Rows of X per block: the block (mc x k floats) stays in this thread's
	 * share of L3 while every W panel passes over it; W is repacked once
	 * per block, which costs ~1% at mc >= 64. */
	size_t mc = qvl_gemm_blk.x_bytes / (k * 4);
	mc = mc < 8 * MR ? 8 * MR : mc - mc % MR;
	for (size_t ib = 0; ib < m; ib += mc) {
		size_t ie = m - ib < mc ? m : ib + mc;
		for (size_t j0 = 0; j0 < n; j0 += NR) {
			int nr = n - j0 >= NR ? NR : (int)(n - j0);
			__mmask16 m0 = v16_mask((size_t)nr),
				  m1 = v16_mask(nr > 16 ? (size_t)nr - 16 : 0);
			const float *bj = bias ? bias + j0 : NULL;

			for (size_t k0 = 0; k0 < k; k0 += kcb) {
				size_t kc = k - k0 < kcb ? k - k0 : kcb;
				pack_panel(P, W, t, ldw, j0, nr, k0, kc);
				for (size_t i0 = ib; i0 < ie; i0 += MR) {
					int mr = ie - i0 >= MR ? MR : (int)(ie - i0);
					ukern_any(mr, Y + i0 * ldy + j0, ldy, X + i0 * ldx + k0,
						  ldx, P, kc, m0, m1, bj, k0 == 0);
				}
			}
		}
	}
}

T512 void qvl_matmul_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			    enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			    size_t k)
{
	if (!m || !n)
		return;
	if (!qvl_matmul_widens(wtype)) {
		qvl_matmul_deq(qvl_matmul_avx512, Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
		return;
	}
	if (k == 0) {
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++)
				Y[i * ldy + j] = bias ? bias[j] : 0.0f;
		return;
	}
	if (m == 1) {
		matvec(Y, X, W, wtype, ldw, bias, n, k);
		return;
	}
	if (m <= qvl_gemm_blk.small_m) {
		small_m(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
		return;
	}
	gemm(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}
#endif
