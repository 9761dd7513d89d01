/* AVX2 matmul: the same structure as matmul_avx512.c with 8-wide vectors and
 * 16 registers: m == 1 streams four far-apart W rows at a time
 * (qvl_far_row()), 1 < m <= small_m_avx2 (64) streams W against 4 X rows
 * and 3 W rows at a time, larger m
 * packs a panel of NR = 16 W rows × kc to f32 (8x8 in-register transposes)
 * and the block's X rows into 6-row strips, and runs a 6×16 register tile
 * (12 accumulators) over them. bf16 widens with
 * a zero-extend and a shift, f16 with F16C. */
#include "config.h"

#ifdef HAVE_AVX2_KERNELS
#include <stdint.h>

#include "qdot.h"
#include "vec_avx2.h"

#define MR     6
#define NR     16
#define KC_MAX 512
/* Floats ahead in the packed X stream that the tile prefetches: 16 lines,
 * across the end of a strip into the next one (strips are contiguous). A
 * prefetch past the buffer's end does not fault. */
#define XPF 256

/* ---- m == 1 ----------------------------------------------------------- */

static T256 void matvec_4(float *y, const float *x, const uint8_t *w[4], enum qvl_dtype t, size_t k)
{
	__m256 a0[4], a1[4];
	size_t i = 0;

	for (int r = 0; r < 4; r++)
		a0[r] = a1[r] = _mm256_setzero_ps();
	for (; i + 16 <= k; i += 16) {
		__m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++) {
			a0[r] = _mm256_fmadd_ps(v8_load(w[r], t, i, 8), x0, a0[r]);
			a1[r] = _mm256_fmadd_ps(v8_load(w[r], t, i + 8, 8), x1, a1[r]);
		}
	}
	for (; i < k; i += 8) {
		size_t rem = k - i < 8 ? k - i : 8;
		__m256 x0 = _mm256_maskload_ps(x + i, v8_mask(rem));
		for (int r = 0; r < 4; r++)
			a0[r] = _mm256_fmadd_ps(v8_load(w[r], t, i, rem), x0, a0[r]);
	}
	for (int r = 0; r < 4; r++)
		y[r] = v8_hsum(_mm256_add_ps(a0[r], a1[r]));
}

/* One 32-value Q8_0/Q4_0 block as four f32 vectors (exactly d * q). */
static inline T256 void deq_block(const uint8_t *b, enum qvl_dtype t, __m256 out[4])
{
	__m256 d = _mm256_set1_ps(_cvtsh_ss(qvl_load_u16(b))); /* F16C: exact */
	__m256i q[4];

	if (t == QVL_DT_Q8_0) {
		for (int c = 0; c < 4; c++)
			q[c] =
			    _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * c)));
	} else {
		__m256i eight = _mm256_set1_epi32(8), f = _mm256_set1_epi32(15);
		for (int c = 0; c < 2; c++) {
			__m256i v =
			    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * c)));
			q[c] = _mm256_sub_epi32(_mm256_and_si256(v, f), eight);
			q[c + 2] = _mm256_sub_epi32(_mm256_srli_epi32(v, 4), eight);
		}
	}
	for (int c = 0; c < 4; c++)
		out[c] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(q[c]));
}

static T256 void matvec_q(float *y, const float *x, const uint8_t *w, enum qvl_dtype t, size_t k)
{
	size_t bsz = t == QVL_DT_Q8_0 ? 34 : 18;
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();

	for (size_t b = 0; b < k / 32; b++) {
		__m256 v[4];
		deq_block(w + b * bsz, t, v);
		a0 = _mm256_fmadd_ps(v[0], _mm256_loadu_ps(x + 32 * b), a0);
		a1 = _mm256_fmadd_ps(v[1], _mm256_loadu_ps(x + 32 * b + 8), a1);
		a0 = _mm256_fmadd_ps(v[2], _mm256_loadu_ps(x + 32 * b + 16), a0);
		a1 = _mm256_fmadd_ps(v[3], _mm256_loadu_ps(x + 32 * b + 24), a1);
	}
	*y = v8_hsum(_mm256_add_ps(a0, a1));
}

static T256 void matvec(float *y, const float *x, const void *W, enum qvl_dtype t, size_t ldw,
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
		if (t == QVL_DT_F32 || t == QVL_DT_F16 || t == QVL_DT_BF16)
			matvec_4(out, x, w, t, k);
		else
			for (int r = 0; r < nr; r++)
				matvec_q(&out[r], x, w[r], t, k);
		qvl_far_store(y, out, nr, j, q, bias);
	}
}

/* ---- small m: a few rows of X against streamed W ------------------- */

/* One step of small_tile(): the e (<= 8) values at u of each W row widened
 * once, then one FMA per X row and W row (e == 8: no masks, the main loop) */
static inline __attribute__((always_inline)) T256 void
small_step(const int mx, const int nw, const enum qvl_dtype t, __m256 acc[3][4], const float *X,
	   size_t ldx, const uint8_t *w[3], size_t u, size_t e)
{
	__m256 wv[3];

#pragma GCC unroll 3
	for (int c = 0; c < nw; c++)
		wv[c] = v8_load(w[c], t, u, e);
#pragma GCC unroll 4
	for (int r = 0; r < mx; r++) {
		__m256 xv = v8_loadf(X + r * ldx + u, e);
#pragma GCC unroll 3
		for (int c = 0; c < nw; c++)
			acc[c][r] = _mm256_fmadd_ps(wv[c], xv, acc[c][r]);
	}
}

/* Up to 4 rows of X against up to 3 W rows (nw): 12 accumulators, the nw
 * widened W vectors and one X vector fill the 16 ymm registers. Each 8
 * weights are widened once for every X row and each X vector loaded once
 * for the nw W rows. The 4x2 tile it replaces (8 accumulators) ran at
 * ~0.35-0.5 of the FMA peak with X and W in L1 on a Zen 3: 4 X loads and
 * 2 widenings per 8 FMAs; this one 12 FMAs for 4 X loads and 3 widenings
 * (docs/todo-avx2host.md). Every output is one FMA chain over k in order
 * from zero, then v8_hsum: the same bits as the 4x2 tile. W is prefetched
 * (T1) pfd bytes ahead, once per 64 bytes of each row. */
static inline __attribute__((always_inline)) T256 void
small_tile(const int mx, const int nw, const enum qvl_dtype t, float out[12], const float *X,
	   size_t ldx, const uint8_t *w[3], size_t k, size_t pfd)
{
	const size_t es = t == QVL_DT_F32 ? 4 : 2, line = 64 / es;
	size_t i = 0;
	__m256 acc[3][4];

#pragma GCC unroll 3
	for (int c = 0; c < nw; c++)
#pragma GCC unroll 4
		for (int r = 0; r < mx; r++)
			acc[c][r] = _mm256_setzero_ps();
	for (; i + line <= k; i += line) {
#pragma GCC unroll 3
		for (int c = 0; c < nw; c++)
			_mm_prefetch((const char *)(w[c] + es * i + pfd), _MM_HINT_T1);
#pragma GCC unroll 4
		for (size_t u = i; u < i + line; u += 8)
			small_step(mx, nw, t, acc, X, ldx, w, u, 8);
	}
	for (; i < k; i += 8)
		small_step(mx, nw, t, acc, X, ldx, w, i, k - i < 8 ? k - i : 8);
#pragma GCC unroll 3
	for (int c = 0; c < nw; c++)
#pragma GCC unroll 4
		for (int r = 0; r < mx; r++)
			out[r * 3 + c] = v8_hsum(acc[c][r]);
}

static inline __attribute__((always_inline)) T256 void
small_rows(const int mx, const enum qvl_dtype t, float *Y, size_t ldy, const float *X, size_t ldx,
	   const void *W, size_t ldw, const float *bias, size_t n, size_t k, size_t pfd)
{
	for (size_t j = 0; j < n; j += 3) {
		int nw = n - j >= 3 ? 3 : (int)(n - j);
		const uint8_t *w[3] = {qvl_wrow(W, t, ldw, j), qvl_wrow(W, t, ldw, j + (nw > 1)),
				       qvl_wrow(W, t, ldw, j + 2 * (nw > 2))};
		float out[12];

		if (nw == 3)
			small_tile(mx, 3, t, out, X, ldx, w, k, pfd);
		else if (nw == 2)
			small_tile(mx, 2, t, out, X, ldx, w, k, pfd);
		else
			small_tile(mx, 1, t, out, X, ldx, w, k, pfd);
		for (int r = 0; r < mx; r++)
			for (int c = 0; c < nw; c++)
				Y[(size_t)r * ldy + j + (size_t)c] =
				    out[r * 3 + c] + (bias ? bias[j + (size_t)c] : 0.0f);
	}
}

#define SMALL_ROWS(T)                                                                              \
	static T256 void small_rows_##T(int mx, float *Y, size_t ldy, const float *X, size_t ldx,  \
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

static T256 void small_m(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			 enum qvl_dtype t, size_t ldw, const float *bias, size_t m, size_t n,
			 size_t k)
{
	size_t pfd = (size_t)(qvl_wrow(W, t, ldw, 3) - qvl_wrow(W, t, ldw, 0));

	for (size_t i0 = 0; i0 < m; i0 += 4) {
		int mx = m - i0 >= 4 ? 4 : (int)(m - i0);
		float *y = Y + i0 * ldy;
		const float *x = X + i0 * ldx;
		if (t == QVL_DT_BF16)
			small_rows_QVL_DT_BF16(mx, y, ldy, x, ldx, W, ldw, bias, n, k, pfd);
		else if (t == QVL_DT_F16)
			small_rows_QVL_DT_F16(mx, y, ldy, x, ldx, W, ldw, bias, n, k, pfd);
		else
			small_rows_QVL_DT_F32(mx, y, ldy, x, ldx, W, ldw, bias, n, k, pfd);
	}
}

/* ---- m > 1 ------------------------------------------------------------ */

/* pack_panel() for Q8_0/Q4_0 (k0 and kc are multiples of 32 for them). */
static T256 void pack_panel_q(float *P, const void *W, enum qvl_dtype t, size_t ldw, size_t j0,
			      int nr, size_t k0, size_t kc)
{
	float tmp[32];

	for (int jj = 0; jj < NR; jj++) {
		if (jj >= nr) {
			for (size_t kk = 0; kk < kc; kk++)
				P[kk * NR + jj] = 0.0f;
			continue;
		}
		const uint8_t *w = qvl_wrow(W, t, ldw, j0 + jj);
		if (t == QVL_DT_Q8_0 || t == QVL_DT_Q4_0) {
			size_t bsz = t == QVL_DT_Q8_0 ? 34 : 18;
			for (size_t kk = 0; kk < kc; kk += 32) {
				__m256 v[4];
				deq_block(w + (k0 + kk) / 32 * bsz, t, v);
				for (int c = 0; c < 4; c++)
					_mm256_storeu_ps(tmp + 8 * c, v[c]);
				for (int q = 0; q < 32; q++)
					P[(kk + (size_t)q) * NR + jj] = tmp[q];
			}
			continue;
		}
		size_t kk = 0;
		for (; kk + 8 <= kc; kk += 8) {
			_mm256_storeu_ps(tmp, v8_load(w, t, k0 + kk, 8));
			for (int q = 0; q < 8; q++)
				P[(kk + (size_t)q) * NR + jj] = tmp[q];
		}
		if (kk < kc) {
			_mm256_storeu_ps(tmp, v8_load(w, t, k0 + kk, kc - kk));
			for (size_t q = 0; q < kc - kk; q++)
				P[(kk + q) * NR + jj] = tmp[q];
		}
	}
}

/* In-register 8x8 transpose: r[c] becomes column c. */
static inline __attribute__((always_inline)) T256 void transpose8(__m256 r[8])
{
	__m256 t[8], u[8];

	for (int i = 0; i < 8; i += 2) {
		t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
	}
	for (int i = 0; i < 8; i += 4) {
		u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
		u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
		u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
	}
	for (int c = 0; c < 4; c++) {
		r[c] = _mm256_permute2f128_ps(u[c], u[c + 4], 0x20);
		r[c + 4] = _mm256_permute2f128_ps(u[c], u[c + 4], 0x31);
	}
}

/* P[kk][jj] = W[j0 + jj][k0 + kk] as f32, zero for jj >= nr: 8 rows x 8
 * values widened and transposed in registers at a time (see the AVX-512
 * packer for why). */
static T256 void pack_panel(float *P, const void *W, enum qvl_dtype t, size_t ldw, size_t j0,
			    int nr, size_t k0, size_t kc)
{
	if (t == QVL_DT_Q8_0 || t == QVL_DT_Q4_0) {
		pack_panel_q(P, W, t, ldw, j0, nr, k0, kc);
		return;
	}
	for (int jb = 0; jb < NR; jb += 8) {
		const uint8_t *w[8];
		for (int r = 0; r < 8; r++)
			w[r] = jb + r < nr ? qvl_wrow(W, t, ldw, j0 + (size_t)(jb + r)) : NULL;
		for (size_t kk = 0; kk < kc; kk += 8) {
			size_t e = kc - kk < 8 ? kc - kk : 8;
			__m256 v[8];
			for (int r = 0; r < 8; r++)
				v[r] = w[r] ? v8_load(w[r], t, k0 + kk, e) : _mm256_setzero_ps();
			transpose8(v);
			for (size_t c = 0; c < e; c++)
				_mm256_store_ps(P + (kk + c) * NR + jb, v[c]);
		}
	}
}

/* The 6x16 tile: Y[0..mr) x [0..nr) (+)= X strip · P over kc. X is either
 * packed (xp: value (r, kk) at X[kk * MR + r], one sequential stream) or
 * the caller's rows (X[r * ldx + kk]). Either way each output is summed
 * over kk in order, one FMA per product, so the result does not depend on
 * the layout, kc or the tile position. */
static inline __attribute__((always_inline)) T256 void ukern(const int mr, const int xp, float *Y,
							     size_t ldy, const float *X, size_t ldx,
							     const float *P, size_t kc, int nr,
							     const float *bias, int first)
{
	__m256 c0[MR], c1[MR];
	__m256i m0 = v8_mask((size_t)(nr > 8 ? 8 : nr)),
		m1 = v8_mask((size_t)(nr > 8 ? nr - 8 : 0));

	/* Full tiles use plain loads and stores: vmaskmovps is microcoded on
	 * AMD and slow on Intel before Ice Lake. */
#pragma GCC unroll 6
	for (int r = 0; r < mr; r++) {
		const float *src = first ? bias : Y + r * ldy;
		if (!src) {
			c0[r] = c1[r] = _mm256_setzero_ps();
		} else if (nr == NR) {
			c0[r] = _mm256_loadu_ps(src);
			c1[r] = _mm256_loadu_ps(src + 8);
		} else {
			c0[r] = _mm256_maskload_ps(src, m0);
			c1[r] = _mm256_maskload_ps(src + 8, m1);
		}
	}
	for (size_t kk = 0; kk < kc; kk++) {
		__m256 b0 = _mm256_load_ps(P + kk * NR), b1 = _mm256_load_ps(P + kk * NR + 8);
		if (xp)
			_mm_prefetch((const char *)(X + kk * MR + XPF), _MM_HINT_T0);
#pragma GCC unroll 6
		for (int r = 0; r < mr; r++) {
			__m256 a = _mm256_broadcast_ss(xp ? X + kk * MR + r : X + r * ldx + kk);
			c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
			c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
		}
	}
#pragma GCC unroll 6
	for (int r = 0; r < mr; r++) {
		if (nr == NR) {
			_mm256_storeu_ps(Y + r * ldy, c0[r]);
			_mm256_storeu_ps(Y + r * ldy + 8, c1[r]);
		} else {
			_mm256_maskstore_ps(Y + r * ldy, m0, c0[r]);
			_mm256_maskstore_ps(Y + r * ldy + 8, m1, c1[r]);
		}
	}
}

static T256 void ukern_any(int mr, int xp, float *Y, size_t ldy, const float *X, size_t ldx,
			   const float *P, size_t kc, int nr, const float *bias, int first)
{
	switch (mr * 2 + !!xp) {
#define C(R)                                                                                       \
	case 2 * R:                                                                                \
		ukern(R, 0, Y, ldy, X, ldx, P, kc, nr, bias, first);                               \
		break;                                                                             \
	case 2 * R + 1:                                                                            \
		ukern(R, 1, Y, ldy, X, ldx, P, kc, nr, bias, first);                               \
		break;
		C(6) C(5) C(4) C(3) C(2) C(1)
#undef C
	}
}

/* Xp = rows [0, m) x columns [0, kc) of X in MR-row strips, value (r, kk)
 * of strip s at Xp[s * MR * kc + kk * MR + r] (rows past m are left
 * unwritten: the tile reads only its mr rows). 8 columns of 8 rows are
 * transposed in registers and stored as 8 overlapping vectors, each
 * position's MR values followed by 2 that the next store overwrites, so
 * Xp needs 8 floats of slack past the last strip. */
static T256 void pack_x(float *Xp, const float *X, size_t ldx, size_t m, size_t kc)
{
	for (size_t i0 = 0; i0 < m; i0 += MR) {
		size_t mr = m - i0 < MR ? m - i0 : MR;
		float *d = Xp + i0 * kc;

		for (size_t kk = 0; kk < kc; kk += 8) {
			size_t e = kc - kk < 8 ? kc - kk : 8;
			__m256 v[8];
			for (size_t r = 0; r < 8; r++)
				v[r] = r < mr ? v8_loadf(X + (i0 + r) * ldx + kk, e)
					      : _mm256_setzero_ps();
			transpose8(v);
			for (size_t c = 0; c < e; c++)
				_mm256_storeu_ps(d + (kk + c) * MR, v[c]);
		}
	}
}

/* The Y rows of the tile at y (mr rows, nr columns): each tile loads its
 * 6 x 16 outputs once per kc chunk, and Y (m x the thread's columns) is far
 * larger than L2, so without this every tile began with 12 misses to L3 or
 * memory: 5.5 % of the GEMM's cycles at pp512 (perf, AVX2), the loads of Y
 * being the hottest instructions outside the FMA loop. One tile ahead is
 * ~2300 cycles of FMAs, far more than a miss. */
static inline __attribute__((always_inline)) void prefetch_y(const float *y, size_t ldy, size_t mr,
							     int nr)
{
	for (size_t r = 0; r < mr; r++) {
		_mm_prefetch((const char *)(y + r * ldy), _MM_HINT_T0);
		_mm_prefetch((const char *)(y + r * ldy + nr - 1), _MM_HINT_T0);
	}
}

/* Strip s of nstrips under the current panel: prefetch (to L2) the rows of
 * the next panel [j0, j0 + nr) x [k0, k0 + kc) that fall to it, one whole
 * row segment per strip. Each row's segment is only kc values (768 bytes in
 * bf16) before the panel jumps to the next rows, too short for the hardware
 * stream prefetcher: the widening loads of pack_panel() were ~3.5 % of the
 * GEMM's cycles at pp512, waiting for memory. */
static inline __attribute__((always_inline)) void prefetch_panel(const void *W, enum qvl_dtype t,
								 size_t ldw, size_t j0, int nr,
								 size_t k0, size_t kc, size_t s,
								 size_t nstrips)
{
	const struct qvl_dtype_info *di = &qvl_dtype_table[t];
	size_t off = k0 / di->blk * di->blk_bytes,
	       len = (kc + di->blk - 1) / di->blk * di->blk_bytes;

	for (size_t r = s; r < (size_t)nr; r += nstrips) {
		const char *w = (const char *)qvl_wrow(W, t, ldw, j0 + r) + off;

		for (size_t b = 0; b < len; b += 64)
			_mm_prefetch(w + b, _MM_HINT_T1);
		_mm_prefetch(w + len - 1, _MM_HINT_T1);
	}
}

static T256 void gemm(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
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
	if (mc > m)
		mc = m;
	/* The block's kc columns of X packed into MR-row strips (the thread's
	 * scratch, qact.c): the tile then reads one sequential stream instead
	 * of MR rows ldx apart, which cost 0-10% (X rows 8 or 24 KiB apart share
	 * L1 sets with the panel; most when other processes share the caches). Without the memory,
	 * X is read in place. */
	size_t xfl, xbytes;
	float *Xp = NULL;
	if (!__builtin_mul_overflow((mc + MR - 1) / MR * MR, kcb, &xfl) &&
	    !__builtin_mul_overflow(xfl + 8, sizeof(float), &xbytes))
		Xp = qvl_qact_scratch(xbytes);
	for (size_t ib = 0; ib < m; ib += mc) {
		size_t ie = m - ib < mc ? m : ib + mc;
		for (size_t k0 = 0; k0 < k; k0 += kcb) {
			size_t kc = k - k0 < kcb ? k - k0 : kcb;

			if (Xp)
				pack_x(Xp, X + ib * ldx + k0, ldx, ie - ib, kc);
			for (size_t j0 = 0; j0 < n; j0 += NR) {
				int nr = n - j0 >= NR ? NR : (int)(n - j0);
				const float *bj = bias ? bias + j0 : NULL;

				size_t jn = j0 + NR, nstrips = (ie - ib + MR - 1) / MR;
				int nrn = n > jn ? (n - jn >= NR ? NR : (int)(n - jn)) : 0;

				pack_panel(P, W, t, ldw, j0, nr, k0, kc);
				for (size_t i0 = ib; i0 < ie; i0 += MR) {
					int mr = ie - i0 >= MR ? MR : (int)(ie - i0);
					const float *x =
					    Xp ? Xp + (i0 - ib) * kc : X + i0 * ldx + k0;

					if ((i0 - ib) / MR < (size_t)nrn)
						prefetch_panel(W, t, ldw, jn, nrn, k0, kc,
							       (i0 - ib) / MR, nstrips);

					if (i0 + MR < ie)
						prefetch_y(Y + (i0 + MR) * ldy + j0, ldy,
							   ie - i0 - MR < MR ? ie - i0 - MR : MR,
							   nr);
					ukern_any(mr, Xp != NULL, Y + i0 * ldy + j0, ldy, x, ldx, P,
						  kc, nr, bj, k0 == 0);
				}
			}
		}
	}
}

T256 void qvl_matmul_avx2(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			  enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			  size_t k)
{
	if (!m || !n)
		return;
	if (!qvl_matmul_widens(wtype)) {
		qvl_matmul_deq(qvl_matmul_avx2, Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
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
	if (m <= qvl_gemm_blk.small_m_avx2 && wtype != QVL_DT_Q8_0 && wtype != QVL_DT_Q4_0) {
		small_m(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
		return;
	}
	gemm(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
}
#endif
