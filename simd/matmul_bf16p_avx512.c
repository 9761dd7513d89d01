/* matmul_fast() of bf16 weights held as 16-row panels (QVL_DT_BF16_P16,
 * qrepack.h) on AVX512-BF16: the decode-batch product of `--precision
 * bf16` when the engine repacked its bf16 matrices (QVL_BF16_PANELS).
 *
 * Why panels: the row-layout tile (matmul_bf16dot.c, dp_tile) reads 16
 * activation rows of 4 KiB from L2 for every group of 6 weight rows, and
 * its stream of weights is not hidden under its products. In a panel, pair
 * p of 16 rows is one zmm (lane c = row c's values 2p, 2p + 1), so one
 * vdpbf16ps against a broadcast activation pair advances 16 outputs and no
 * horizontal sum is left. docs/todo-b16p.md has the measurements (2
 * threads, 1.2 GB of weights streamed, CPU time: 0.68-0.75 of the tile's
 * time at gate/up and down shapes; the products alone 0.52-0.58).
 *
 * Tile: far panels (b, b + q, b + 2q: sequential streams) x up to 8
 * activation rows a pass; k in blocks of BP_KB pairs (4 KiB of each
 * panel, in L1 for the passes after the first), every 8-row group of the
 * call over one block before the next block, the accumulators kept between
 * blocks in a stash. Every pass prefetches a line a pair step of one or
 * more of the streams, so each stream runs at one rate through all passes
 * (a prefetch only in the first pass, or none, left it idle in the others:
 * 0.8-1.0 of the tile). Up to 16 rows 3 panels (24 accumulators), one
 * block ahead; above, 2 panels, two blocks ahead (bp_matmul).
 *
 * Where the time goes at m = 16 (2 threads, CPU time, docs/todo-b16k.md):
 * the product loop with the weights in L2 runs at the measured vdpbf16ps
 * peak (~2 a cycle); streamed from DRAM it is 0.75-0.85 of that, with the
 * weights at ~50 GB/s against ~60 for a plain read, so the stream's
 * overlap is what is left. 3 panels against 2: 0.93-0.95 of the CPU at
 * gate/up and down shapes, 0.90 at the logits'.
 *
 * Order: every output is one f32 chain over the pairs in k order from 0
 * (lane c of its accumulator), plus the bias at the end, whatever m is and
 * whatever the blocks and passes: m == 1 (bp_matvec) gives the same bits
 * as any row of a batch (tests/engine_batchinv, tests/test_bf16p). */
#include "config.h"

#ifdef HAVE_AVX512BF16_KERNELS
#include <errno.h>
#include <stdbool.h>

#include "kern_impl.h"
#include "qdot.h"
#include "qrepack.h"
#include "vec_avx512.h"

/* prfchw: bp_ask_y's prefetchw (every AVX512-BF16 CPU has it) */
#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c,prfchw")))

#define BP_KB	    64 /* pairs of a k block */
#define BP_ROWS	    8  /* activation rows of a pass */
#define BP_FAR	    3  /* far panels of a pass (bp_matmul): 24 accumulators */
#define BP_FAR_ROWS 16 /* up to this m */
/* rows of one bp_matmul: their bf16 rows (4-12 KiB each) stay in L2 while
 * the weights stream; more rows stream the weights again per 64 (at 64
 * rows the weights' bytes are 1/32 of the FLOP, far under the products) */
#define BP_MAX_M 64
/* activation rows are 2 kp + BP_XPAD bf16 apart: rows of 4 KiB would put
 * the 8 broadcasts of a pair step in one L1 set (matmul_bf16dot.c DP_XPAD) */
#define BP_XPAD 32
#define BP_STASH (BP_MAX_M * BP_FAR * sizeof(__m512))

/* X rows to bf16 pairs (round to nearest even), row i at Xb + i * xs */
static TBF void bp_x(uint16_t *Xb, size_t xs, const float *X, size_t ldx, size_t m, size_t k)
{
	for (size_t i = 0; i < m; i++)
		for (size_t c = 0; c < k; c += 32) {
			__mmask16 l = v16_mask(k - c), h = v16_mask(k > c + 16 ? k - c - 16 : 0);
			__m512bh v =
			    _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(h, X + i * ldx + c + 16),
						_mm512_maskz_loadu_ps(l, X + i * ldx + c));
			__mmask32 st =
			    k - c >= 32 ? (__mmask32)~0u : (__mmask32)((1u << (k - c)) - 1);
			_mm512_mask_storeu_epi16(Xb + i * xs + c, st, (__m512i)v);
		}
}

static inline TBF __mmask16 bp_cols(size_t n, size_t b)
{
	return v16_mask(n - 16 * b);
}

/* y[0..15] (masked to the call's rows) = a + bias */
static inline TBF void bp_store(float *y, __m512 a, __mmask16 mk, const float *bias)
{
	if (bias)
		a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(mk, bias));
	_mm512_mask_storeu_ps(y, mk, a);
}

/* m == 1: 4 far panels a step (4 streams), one accumulator each. The
 * hardware prefetcher alone left the streams at 0.8-0.95 of the probe
 * (docs/todo-qload.md): with pf, each stream's line pf words ahead is
 * asked for (NTA: read once), a line a pair step. A stream's panels are
 * adjacent (panel j + 1 follows j), so ahead of a panel's end is its next
 * panel; past the call's last, the next claim's first lines or another
 * stream's (a prefetch never faults). */
static inline __attribute__((always_inline)) TBF void
bp_matvec_k(float *y, const uint32_t *x, const uint32_t *P, const float *bias, size_t n, size_t kp,
	    bool on, size_t pf)
{
	size_t nb = (n + 15) / 16, q = (nb + 3) / 4;

	for (size_t j = 0; j < q; j++) {
		const uint32_t *w[4];
		__m512 a[4];

		for (int r = 0; r < 4; r++) {
			w[r] = P + qvl_far_row(j, r, q, nb) * kp * 16;
			a[r] = _mm512_setzero_ps();
		}
		for (size_t p = 0; p < kp; p++) {
			__m512bh xv = (__m512bh)_mm512_set1_epi32((int)x[p]);
#pragma GCC unroll 4
			for (int r = 0; r < 4; r++) {
				if (on)
					_mm_prefetch((const char *)(w[r] + p * 16 + pf), _MM_HINT_NTA);
				a[r] = _mm512_dpbf16_ps(
				    a[r], (__m512bh)_mm512_loadu_si512(w[r] + p * 16), xv);
			}
		}
		for (int r = 0, nr = qvl_far_count(j, 4, q, nb); r < nr; r++) {
			size_t b = j + (size_t)r * q;
			bp_store(y + 16 * b, a[r], bp_cols(n, b), bias ? bias + 16 * b : NULL);
		}
	}
}

/* the prefetch distance: qvl_gemm_blk.bf16p_pf bytes (0: none) */
static TBF void bp_matvec(float *y, const uint32_t *x, const uint32_t *P, const float *bias,
			  size_t n, size_t kp)
{
	size_t pf = qvl_gemm_blk.bf16p_pf / sizeof(*P);

	if (pf)
		bp_matvec_k(y, x, P, bias, n, kp, true, pf);
	else
		bp_matvec_k(y, x, P, bias, n, kp, false, 0);
}

/* One pass: pairs [p0, p1) of the nf panels w[] against nx activation
 * rows (x, rows xs32 words apart), the accumulators from / to st (zero
 * when p0 == 0), one prefetch a pair step from each of the npf pf[] (a
 * line apart). */
static inline __attribute__((always_inline)) TBF void
bp_pass(const int nx, const int nf, const int npf, __m512 (*st)[BP_FAR], const uint32_t *x,
	size_t xs32, const uint32_t *const *w, size_t p0, size_t p1, const char *const *pf)
{
	__m512 a[BP_ROWS][BP_FAR];

#pragma GCC unroll 8
	for (int i = 0; i < nx; i++)
#pragma GCC unroll 3
		for (int r = 0; r < nf; r++)
			a[i][r] = p0 ? st[i][r] : _mm512_setzero_ps();
	for (size_t p = p0; p < p1; p++) {
		__m512bh v[BP_FAR];

#pragma GCC unroll 3
		for (int r = 0; r < nf; r++)
			v[r] = (__m512bh)_mm512_loadu_si512(w[r] + p * 16);
		/* non-temporal: the block is read from L1 by this call's
		 * passes and never again; 0.96-0.98 of T0's CPU streamed at m =
		 * 4-512 (docs/todo-b16s.md), T1 or a second T1 prefetch further
		 * ahead 1.02-1.04 */
#pragma GCC unroll 3
		for (int f = 0; f < npf; f++)
			_mm_prefetch(pf[f] + (p - p0) * 64, _MM_HINT_NTA);
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++) {
			__m512bh xv = (__m512bh)_mm512_set1_epi32((int)x[(size_t)i * xs32 + p]);
#pragma GCC unroll 3
			for (int r = 0; r < nf; r++)
				a[i][r] = _mm512_dpbf16_ps(a[i][r], v[r], xv);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < nx; i++)
#pragma GCC unroll 3
		for (int r = 0; r < nf; r++)
			st[i][r] = a[i][r];
}

static TBF void bp_pass_any(int nx, int nf, int npf, __m512 (*st)[BP_FAR], const uint32_t *x,
			    size_t xs32, const uint32_t *const *w, size_t p0, size_t p1,
			    const char *const *pf)
{
	switch ((nx * 4 + nf) * 4 + npf) {
#define C(N, NF, F)                                                                                \
	case (N * 4 + NF) * 4 + F:                                                                 \
		bp_pass(N, NF, F, st, x, xs32, w, p0, p1, pf);                                     \
		break;
#define C5(N) C(N, 3, 1) C(N, 3, 2) C(N, 3, 3) C(N, 2, 1) C(N, 2, 2) C(N, 1, 1)
		C5(8) C5(7) C5(6) C5(5) C5(4) C5(3) C5(2) C5(1)
#undef C5
#undef C
	}
}

/* The last block's pass asks for its rows' output lines (for writing)
 * before its products: the stores after the block go to Y rows ldy apart,
 * lines not in cache (gate/up at 512 rows: 25 MB of Y). pp512, bf16
 * GGUF, perf: bp_run (the stores) 5.2 -> 3.5 % of the samples. */
static inline __attribute__((always_inline)) TBF void
bp_ask_y(float *y, size_t ldy, int nx, int nfb, size_t b, size_t q)
{
	for (int i = 0; i < nx; i++)
		for (int r = 0; r < nfb; r++)
			__builtin_prefetch(y + i * ldy + 16 * (b + r * q), 1, 3);
}

/* m >= 2: far panels (b, b + q, ..), k blocks, 8-row passes (top comment).
 * Up to 16 rows (the decode's batches) 3 far panels, prefetched one block
 * ahead; more rows (64 a call: prefill) 2, two blocks ahead: 3 panels'
 * stash of 64 rows and blocks crowd L1 there (m = 512: 1.02-1.05 of 2). */
static TBF void bp_matmul(float *Y, size_t ldy, const uint32_t *x, size_t xs32,
			  __m512 (*st)[BP_FAR], const uint32_t *P, const float *bias, size_t m,
			  size_t n, size_t kp)
{
	int nf = m <= BP_FAR_ROWS ? BP_FAR : 2;
	size_t nb = (n + 15) / 16, q = (nb + nf - 1) / nf, ahead = BP_KB * (nf == BP_FAR ? 1 : 2);
	size_t passes = (m + BP_ROWS - 1) / BP_ROWS, pm = passes < (size_t)nf ? passes : (size_t)nf;

	for (size_t b = 0; b < q; b++) {
		const uint32_t *w[BP_FAR];
		/* the far panels below nb only: when nb is not a multiple of
		 * nf (a decode claim of 256 columns: 16 panels in 6 steps) the
		 * last steps take 2 or 1, instead of panel b again (2 of 18
		 * panel products there were repeats) */
		int nfb = qvl_far_count(b, nf, q, nb);
		size_t pmb = pm < (size_t)nfb ? pm : (size_t)nfb;

		for (int r = 0; r < nfb; r++)
			w[r] = P + (b + r * q) * kp * 16;
		for (size_t p0 = 0; p0 < kp; p0 += BP_KB) {
			size_t p1 = p0 + BP_KB < kp ? p0 + BP_KB : kp;

			for (size_t h = 0, j = 0; h < m; h += BP_ROWS, j++) {
				int nx = m - h >= BP_ROWS ? BP_ROWS : (int)(m - h), npf = 0;
				const char *pf[BP_FAR];

				/* every pass asks for the streams r = j (mod
				 * min(passes, panels)): all of them a block, each
				 * at one rate; past a panel's end: the next
				 * panel's start (a prefetch never faults) */
				for (int r = 0; r < nfb; r++)
					if ((size_t)r % pmb == j % pmb)
						pf[npf++] = (const char *)(w[r] + (p0 + ahead) * 16);
				if (p1 == kp)
					bp_ask_y(Y + h * ldy, ldy, nx, nfb, b, q);
				bp_pass_any(nx, nfb, npf, st + h, x + h * xs32, xs32, w, p0, p1, pf);
			}
		}
		for (size_t i = 0; i < m; i++)
			for (int r = 0; r < nfb; r++)
				bp_store(Y + i * ldy + 16 * (b + r * q), st[i][r], bp_cols(n, b + r * q),
					 bias ? bias + 16 * (b + r * q) : NULL);
	}
}

/* the rows in bf16 (xs apart) times the panels; stash: BP_STASH bytes */
static TBF void bp_run(float *Y, size_t ldy, const uint16_t *Xb, size_t xs, __m512 (*stash)[BP_FAR],
		       const void *W, const float *bias, size_t m, size_t n, size_t k)
{
	if (m == 1)
		bp_matvec(Y, (const uint32_t *)Xb, W, bias, n, k / 2);
	else
		for (size_t i = 0; i < m; i += BP_MAX_M)
			bp_matmul(Y + i * ldy, ldy, (const uint32_t *)(Xb + i * xs), xs / 2, stash,
				  W, bias, m - i < BP_MAX_M ? m - i : BP_MAX_M, n, k / 2);
}

TBF int qvl_matmul_bf16p_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
				size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	size_t xs = k + BP_XPAD, xb = qvl_bf16p_act_bytes(m, k);
	uint16_t *Xb;

	if (k % 2 || ldw != k)
		return -EINVAL;
	if (!m || !n)
		return 0;
	/* the thread's scratch (qact.c): the rows in bf16, then the stash */
	if (!(Xb = qvl_qact_scratch(xb + BP_STASH)))
		return -ENOMEM;
	bp_x(Xb, xs, X, ldx, m, k);
	bp_run(Y, ldy, Xb, xs, (__m512(*)[BP_FAR])((uint8_t *)Xb + xb), W, bias, m, n, k);
	return 0;
}

/* Prepared once per product (matmul_fast.c's act path): the calls on the
 * columns of one product (the decode's claims of 192 columns, 2 threads)
 * each rounded the same rows again, 6-11 % of the kernel's CPU at m = 16
 * (docs/todo-b16k.md). */
size_t qvl_bf16p_act_bytes(size_t m, size_t k)
{
	return (m * (k + BP_XPAD) * 2 + 63) & ~(size_t)63;
}

TBF void qvl_bf16p_act_make(void *xa, const float *X, size_t ldx, size_t m, size_t k)
{
	bp_x(xa, k + BP_XPAD, X, ldx, m, k);
}

/* Rows [r0, r1) x columns [c0, c1) of X (m x k) into xa as act_make lays
 * them out: each value is rounded alone, so the stage that writes X can
 * prepare each part it wrote, on its thread, instead of the caller making
 * the whole before the product's dispatch (forward.c). */
TBF void qvl_bf16p_act_part(void *xa, const float *X, size_t ldx, size_t k, size_t r0, size_t r1,
			    size_t c0, size_t c1)
{
	size_t xs = k + BP_XPAD;

	bp_x((uint16_t *)xa + r0 * xs + c0, xs, X + r0 * ldx + c0, ldx, r1 - r0, c1 - c0);
}

TBF int qvl_matmul_bf16p_act_avx512(float *Y, size_t ldy, const void *xa, const void *W,
				    size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	void *stash;

	if (k % 2 || ldw != k)
		return -EINVAL;
	if (!m || !n)
		return 0;
	if (!(stash = qvl_qact_scratch(BP_STASH)))
		return -ENOMEM;
	bp_run(Y, ldy, xa, k + BP_XPAD, stash, W, bias, m, n, k);
	return 0;
}
#endif
