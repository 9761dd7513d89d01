/* The bf16 GEMM for many activation rows (simd/gemm_bf16_avx512.c): called
 * by qvl_matmul_bf16dot_avx512() for m > 64, and with its weights packed
 * once by the vision tower (src/vision.c), whose products all have many
 * rows. */
#ifndef QVL_GEMM_BF16_H
#define QVL_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

/* Y[m][n] (ldy) = bf16(X[m][k]) (ldx) · W[n][k]ᵀ (bf16, ldw) + bias (NULL:
 * none), f32 accumulation. 0, or -ENOMEM when the thread's scratch for the
 * packed X cannot grow (Y untouched: the caller falls back). */
int qvl_gemm_bf16_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const uint16_t *W,
			 size_t ldw, const float *bias, size_t m, size_t n, size_t k);

/* More rows than this go to the GEMM in qvl_matmul_bf16dot_avx512()
 * (matmul_bf16dot.c's DP_MAX_M); the packed GEMM gives the same bits as
 * that call only above it. */
#define GEMM_BF16_MIN_M 65

/* W[n][k] (bf16, ldw) as the GEMM's panels: 32 rows (zero past n) x every
 * k pair, pair p of the panel's columns 32 words, at Wp (64-byte aligned,
 * qvl_gemm_bf16_packed_words(n, k) words). */
size_t qvl_gemm_bf16_packed_words(size_t n, size_t k);
void qvl_gemm_bf16_pack(uint32_t *Wp, const uint16_t *W, size_t ldw, size_t n, size_t k);

/* qvl_gemm_bf16_avx512() on W packed by qvl_gemm_bf16_pack(): the same
 * bits (columns from a multiple of 32: Wp + c / 32 * that panel size).
 * -ENOTSUP without AVX512-BF16 kernels in the build. */
int qvl_gemm_bf16_packed_avx512(float *Y, size_t ldy, const float *X, size_t ldx,
				const uint32_t *Wp, const float *bias, size_t m, size_t n,
				size_t k);

/* X[m][k] (ldx) packed for qvl_gemm_bf16_packed_xw_avx512() over m rows:
 * qvl_gemm_bf16_x_words(m, k) words at Xp, in row order (rows a.. of a
 * call of m rows start at Xp + a * ((k + 1) / 2) only at the GEMM's row
 * panel boundaries, hence one layout per m). Part `part` of nparts: the
 * row panels split so that nparts threads pack one X together, each
 * writing only its own words. */
static inline size_t qvl_gemm_bf16_x_words(size_t m, size_t k)
{
	return m * ((k + 1) / 2);
}
void qvl_gemm_bf16_pack_x(uint32_t *Xp, const float *X, size_t ldx, size_t m, size_t k, int part,
			  int nparts);

/* Where qvl_gemm_bf16_packed_xw_avx512() puts its output: the rows y (ldy
 * apart), act (NULL: none) applied to every row's n values of each tile
 * as the tile is stored, in place; and, when xo is not NULL, the same
 * values (after act) packed as qvl_gemm_bf16_pack_x() would pack rows of
 * kn values for a next product over the same m rows, these n columns
 * being columns xc.. (xc even) of those rows: each thread of a column
 * split writes its own words of one packed X. y NULL (only with xo): the
 * rows are not written, only packed (fc1's 4 x wider output, which fc2
 * reads packed: 12.8 MB of stores less per 448x448 block). */
struct qvl_gemm_bf16_out {
	float *y;
	size_t ldy;
	void (*act)(float *y, size_t n);
	uint32_t *xo;
	size_t kn, xc;
	/* y NULL, n a multiple of 64: each row panel's tiles handed to pair as
	 * they finish, two at a time (the vision tower's heads of 64 values:
	 * its RoPE and attention layouts, with no pass over the rows): rows
	 * row.. (row + the panel's first row of the call), columns col.. (xc +
	 * a multiple of 64), lo the first 32 of mr rows, hi the next 32, both
	 * rows 32 floats apart, after act */
	void (*pair)(void *ctx, const float *lo, const float *hi, size_t row, int mr, size_t col);
	void *ctx;
	size_t row;
};

/* qvl_gemm_bf16_packed_avx512() on X packed by qvl_gemm_bf16_pack_x() for
 * these m rows, the output to *o: the same bits as the call on X followed
 * by act over the rows (and pack_x of them). -ENOMEM (the thread's
 * scratch), -ENOTSUP without the kernels, -EINVAL (pair with y or n not a
 * multiple of 64): nothing written then. */
int qvl_gemm_bf16_packed_xw_avx512(const struct qvl_gemm_bf16_out *o, const uint32_t *Xp,
				   const uint32_t *Wp, const float *bias, size_t m, size_t n,
				   size_t k);

/* The same with X (ldx) packed per call, as by qvl_gemm_bf16_packed_avx512()
 * (the vision tower's qkv heads above the size where it packs X once). */
int qvl_gemm_bf16_packed_out_avx512(const struct qvl_gemm_bf16_out *o, const float *X, size_t ldx,
				    const uint32_t *Wp, const float *bias, size_t m, size_t n,
				    size_t k);

#endif
