/* AVX512-BF16 matmul (matmul_fast() for bf16 weights: `--precision bf16`):
 * vdpbf16ps multiplies bf16 pairs and accumulates in f32, twice the FLOP per
 * instruction of an f32 FMA. The activations are rounded to bf16 first, so
 * the result is NOT the exact-weights f32 computation the golden tests
 * check (relative error ~2^-9 per product); `--precision exact` keeps it
 * out (docs/precision.md has what it costs). Only bf16 weights take this
 * path (decode batches of up to DP_MAX_M rows through matmul_dp(), more rows
 * through the packed GEMM of gemm_bf16_avx512.c); everything else goes to
 * the exact AVX-512 kernel. bf16 weights the engine holds as 16-row panels
 * (QVL_BF16_PANELS) take matmul_bf16p_avx512.c instead.
 *
 * Layout: X is converted to bf16 once per call (a row's consecutive pairs
 * are the 32-bit words vdpbf16ps wants). */
#include "config.h"

#ifdef HAVE_AVX512BF16_KERNELS
#include "gemm_bf16.h"
#include "qdot.h"
#include "vec_avx512.h"

#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))

/* X rows to bf16 (round to nearest even), padded with zeros to 2 * kp,
 * row i at Xb + i * xs (xs >= 2 * kp). */
static TBF void x_to_bf16(uint16_t *Xb, size_t xs, size_t kp, const float *X, size_t ldx, size_t m,
			  size_t k)
{
	for (size_t i = 0; i < m; i++) {
		const float *x = X + i * ldx;
		uint16_t *o = Xb + i * xs;
		for (size_t c = 0; c < 2 * kp; c += 32) {
			__mmask16 l = v16_mask(k > c ? k - c : 0);
			__mmask16 h = v16_mask(k > c + 16 ? k - c - 16 : 0);
			__m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(h, x + c + 16),
							 _mm512_maskz_loadu_ps(l, x + c));
			__mmask32 st = 2 * kp - c >= 32 ? (__mmask32)~0u
							: (__mmask32)((1u << (2 * kp - c)) - 1);
			_mm512_mask_storeu_epi16(o + c, st, (__m512i)v);
		}
	}
}

/* Decode and small decode batches (m <= DP_MAX_M): x rounded to bf16 once,
 * then one vdpbf16ps per 32 weights of each of DP_W rows, straight from the
 * weight rows (no packing), dotted with up to DP_ROWS activation rows per
 * pass. The exact matvec widens every weight pair with a shift and an and
 * and does two FMAs; this does one instruction, which matters when the two
 * vCPUs share a core and the weight stream is waiting on issue slots. The
 * packed GEMM (gemm_bf16_avx512.c) pays a transpose of every panel per call, which
 * only many activation rows amortize: for a batch of 16 decodes it cost
 * more than the products, and up to 64 rows this tile is faster.
 *
 * Tile: DP_W = 6 weight rows x DP_ROWS = 4 activation rows, 24 accumulators;
 * the 4 activation vectors of a 32-wide chunk stay in registers while the 6
 * weight vectors stream through one more (29 of the 32 zmm). Per chunk 10
 * loads feed 24 products. The previous 4 x 6 tile (6 activation vectors
 * live, 31 registers) left GCC too few: it reloaded 4 of the 6 activation
 * vectors for every weight row (22 loads per 24 products) and ran 1.2-1.5x
 * slower (docs/todo-bf16mm.md).
 *
 * Every output is the same sum in the same order whatever m is (one
 * accumulator per weight row and activation row, the k chunks in order,
 * then the masked tail and one reduction), so a sequence's logits do not
 * depend on the other sequences of its decode batch (batch invariance up
 * to DP_MAX_M rows; matvec_dp() computes the same sums for m == 1).
 * The DP_W weight rows of a tile are far apart, one from each sixth of the
 * call's rows (as qvl_far_row() for m == 1): six long sequential streams
 * that the hardware prefetcher runs ahead on while the later passes (4
 * activation rows each) reuse the tile from L1; no software prefetch.
 * Against adjacent rows with a prefetch of the next tile: bf16 2b decode
 * batches of 4 and 16 1.10x and 1.07x (bench_step, quiet). Blocking k so
 * the activation rows stay in L1 measured slower. */
#define DP_W	 6
#define DP_ROWS	 4
#define DP_MAX_M 64
_Static_assert(GEMM_BF16_MIN_M == DP_MAX_M + 1, "gemm_bf16.h: the GEMM's row threshold");
/* Activation rows of the streamed tiles are 2 * kp + DP_XPAD bf16 apart: k
 * is usually a multiple of 2048 (rows of 4 KiB, the L1 way size), and the 4
 * rows of a tile, read at the same offset, would otherwise share one L1 set
 * with each other and with the weight rows (the same stride): 1.0-1.16x. */
#define DP_XPAD 32

static inline __attribute__((always_inline)) TBF void
dp_tile(const int nx, float *Y, size_t ldy, const uint16_t *xb, size_t ldxb,
	const uint16_t *const w[DP_W], int nr, size_t cs, size_t kf, __mmask32 mt,
	const float *bias)
{
	__m512 a[DP_W][DP_ROWS];

#pragma GCC unroll 6
	for (int r = 0; r < DP_W; r++)
#pragma GCC unroll 4
		for (int i = 0; i < nx; i++)
			a[r][i] = _mm512_setzero_ps();
	for (size_t c = 0; c < kf; c += 32) {
		__m512bh xv[DP_ROWS];
#pragma GCC unroll 4
		for (int i = 0; i < nx; i++)
			xv[i] = (__m512bh)_mm512_loadu_si512(xb + (size_t)i * ldxb + c);
#pragma GCC unroll 6
		for (int r = 0; r < DP_W; r++) {
			__m512bh wv = (__m512bh)_mm512_loadu_si512(w[r] + c);
#pragma GCC unroll 4
			for (int i = 0; i < nx; i++)
				a[r][i] = _mm512_dpbf16_ps(a[r][i], wv, xv[i]);
		}
	}
	if (mt) {
#pragma GCC unroll 4
		for (int i = 0; i < nx; i++) {
			__m512bh xt =
			    (__m512bh)_mm512_maskz_loadu_epi16(mt, xb + (size_t)i * ldxb + kf);
#pragma GCC unroll 6
			for (int r = 0; r < DP_W; r++)
				a[r][i] = _mm512_dpbf16_ps(
				    a[r][i], (__m512bh)_mm512_maskz_loadu_epi16(mt, w[r] + kf), xt);
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < nx; i++)
		for (int r = 0; r < nr; r++)
			Y[(size_t)i * ldy + (size_t)r * cs] =
			    _mm512_reduce_add_ps(a[r][i]) + (bias ? bias[(size_t)r * cs] : 0.0f);
}

static TBF void dp_tile_any(int nx, float *Y, size_t ldy, const uint16_t *xb, size_t ldxb,
			    const uint16_t *const w[DP_W], int nr, size_t cs, size_t kf,
			    __mmask32 mt, const float *bias)
{
	switch (nx) {
#define C(N)                                                                                       \
	case N:                                                                                    \
		dp_tile(N, Y, ldy, xb, ldxb, w, nr, cs, kf, mt, bias);                             \
		break;
		C(4) C(3) C(2) C(1)
#undef C
	}
}

static TBF void matmul_dp(float *Y, size_t ldy, const uint16_t *xb, size_t ldxb, const uint16_t *W,
			  size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	/* DP_W far-apart rows per tile, one from each sixth of the slice (as
	 * qvl_far_row() does for m == 1) */
	size_t kf = k & ~(size_t)31, q = (n + DP_W - 1) / DP_W;
	__mmask32 mt = k > kf ? (__mmask32)((1u << (k - kf)) - 1) : 0;

	for (size_t j = 0; j < q; j++) {
		const uint16_t *w[DP_W];
		int nr = qvl_far_count(j, DP_W, q, n);

		for (int r = 0; r < DP_W; r++)
			w[r] = W + qvl_far_row(j, r, q, n) * ldw;
		for (size_t i0 = 0; i0 < m; i0 += DP_ROWS) {
			int nx = m - i0 >= DP_ROWS ? DP_ROWS : (int)(m - i0);
			dp_tile_any(nx, Y + i0 * ldy + j, ldy, xb + i0 * ldxb, ldxb, w, nr, q, kf,
				    mt, bias ? bias + j : NULL);
		}
	}
}

/* m == 1: matmul_dp()'s sums for one activation row, in the same order
 * (bit for bit, tests/engine_batchinv), written apart because the
 * interleaving of one x load per chunk with the 4 weight rows' loads and
 * products is ~10% faster than dp_tile(1, ...) when single-threaded.
 * The 4 rows are far apart (qvl_far_row()), with no software prefetch: the
 * hardware prefetcher follows each stream, and prefetches slowed it. */
static TBF void matvec_dp(float *y, const uint16_t *xb, const uint16_t *W, size_t ldw,
			  const float *bias, size_t n, size_t k)
{
	size_t kf = k & ~(size_t)31, q = (n + 3) / 4;
	__mmask32 mt = k > kf ? (__mmask32)((1u << (k - kf)) - 1) : 0;
	__m512bh xt = (__m512bh)_mm512_maskz_loadu_epi16(mt, xb + kf);

	for (size_t j = 0; j < q; j++) {
		const uint16_t *w[4];
		__m512 a[4];
		float out[4];

		for (int r = 0; r < 4; r++) {
			w[r] = W + qvl_far_row(j, r, q, n) * ldw;
			a[r] = _mm512_setzero_ps();
		}
		for (size_t i = 0; i < kf; i += 32) {
			__m512bh xv = (__m512bh)_mm512_loadu_si512(xb + i);
#pragma GCC unroll 4
			for (int r = 0; r < 4; r++)
				a[r] = _mm512_dpbf16_ps(a[r],
							(__m512bh)_mm512_loadu_si512(w[r] + i), xv);
		}
		if (mt)
			for (int r = 0; r < 4; r++)
				a[r] = _mm512_dpbf16_ps(
				    a[r], (__m512bh)_mm512_maskz_loadu_epi16(mt, w[r] + kf), xt);
		for (int r = 0; r < 4; r++)
			out[r] = _mm512_reduce_add_ps(a[r]);
		qvl_far_store(y, out, qvl_far_count(j, 4, q, n), j, q, bias);
	}
}

TBF void qvl_matmul_bf16dot_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
				   enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,
				   size_t n, size_t k)
{
	size_t kp = (k + 1) / 2, xs = 2 * kp + DP_XPAD;
	uint16_t *Xb;

	if (wtype == QVL_DT_BF16 && k > 0 && m > DP_MAX_M &&
	    qvl_gemm_bf16_avx512(Y, ldy, X, ldx, W, ldw, bias, m, n, k) == 0)
		return;
	/* the thread's scratch (qact.c), grown once: no allocation per call */
	if (wtype != QVL_DT_BF16 || k == 0 || m > DP_MAX_M ||
	    !(Xb = qvl_qact_scratch(m * xs * 2))) {
		qvl_matmul_avx512(Y, ldy, X, ldx, W, wtype, ldw, bias, m, n, k);
		return;
	}
	x_to_bf16(Xb, xs, kp, X, ldx, m, k);
	if (m == 1) {
		matvec_dp(Y, Xb, W, ldw, bias, n, k);
		return;
	}
	matmul_dp(Y, ldy, Xb, xs, W, ldw, bias, m, n, k);
}
#endif
