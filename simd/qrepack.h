/* Weight layouts repacked once at engine load for the int8 kernels
 * (simd/qdot*.c), and the matmul_fast() of those layouts. A repacked
 * matrix is a kernel-internal weight type beyond enum qvl_dtype's GGUF
 * types: only matmul_fast() of every level reads it (the engine keeps the
 * file's bytes for anything else: embeddings, the exact precision).
 *
 * QVL_DT_Q4_0_X8: Q4_0 rows in groups of 8, the same bytes per row
 * (k / 32 x 18). Group g (8 x wrow bytes, wrow = ldw / 32 x 18, at
 * 8 g wrow) holds, per block i at 144 i: the 8 rows' f16 scales (16 bytes,
 * row order), then 4 chunks of 32 bytes; chunk c is, for r = 0..7, bytes
 * 4c .. 4c + 3 of row r's 16 nibble bytes. A 32-byte chunk's low nibbles
 * are quants 4c .. 4c + 3 of the 8 rows (one per 4-byte lane), its high
 * nibbles quants 16 + 4c .. 16 + 4c + 3: one AND (or shift + AND) gives
 * 8 rows x 4 quants against 4 broadcast activation bytes, one scale
 * conversion and one float multiply-add serve 8 rows. A call's W starts at
 * a group and its n is a multiple of 8 (the engine repacks only matrices
 * whose row splits are multiples of 8; docs/todo-qdot.md).
 *
 * QVL_DT_Q8_0_X8: Q8_0 rows in groups of 8, the same bytes per row
 * (k / 32 x 34), laid out as Q4_0_X8 with 8 chunks of int8 instead of 4
 * of nibbles: per block i of a group at 272 i, the 8 rows' f16 scales (16
 * bytes), then chunk c (0..7) = bytes 4c .. 4c + 3 of each row's 32
 * quants (32 bytes, 4-byte lanes = rows). A chunk is 8 rows x 4 quants
 * against 4 broadcast activation bytes with no unpacking; it is also the
 * template's prefill panel step c. simd/qdot_x8_q80.h has the kernels.
 *
 * QVL_DT_Q4_K_X8: Q4_K rows in groups of 8, the same bytes per row
 * (k / 256 x 144). Group g (8 x wrow bytes at 8 g wrow) holds, per block i
 * of 256 values at 1152 i: the 8 rows' f16 d (16 bytes, row order), their
 * f16 dmin (16), the 6-bit scales and mins decoded (96 bytes, below), then
 * 32 pieces of 32 bytes: piece p is, for r = 0..7, bytes 4p .. 4p + 3 of
 * row r's 128 nibble bytes, so its low nibbles are quants 64 (p / 8) +
 * 4 (p % 8) + 0..3 of sub-block 2 (p / 8), its high nibbles the same + 32
 * of sub-block 2 (p / 8) + 1, in 4-byte lanes = rows (as Q4_0_X8).
 * Scales: SC[8 j + r] is row r's sub-block j scale, MN[16 (j / 2) + 2 r +
 * j % 2] its min (pairs of sub-blocks per row: one 16-bit pair per 32-bit
 * lane against the activation's pair of sub-block sums); byte 32 + i holds
 * SC[i] & 15 (low nibble) and MN[i] & 15 (high), byte 96 + b holds the top
 * two bits of SC[b] (bits 0-1), SC[b + 32] (2-3), MN[b] (4-5), MN[b + 32]
 * (6-7): a few shifts and masks per 8 rows give both arrays as bytes (the
 * file's 12-byte encoding needs a shuffle per row). simd/qdot_x8_q4k.h
 * has the kernels.
 *
 * QVL_DT_Q6_K_X8: Q6_K rows in groups of 8, the same bytes per row
 * (k / 256 x 210). Group g at 8 g wrow holds, per block i at 1680 i:
 *  - 16 bytes: the 8 rows' f16 d (row order);
 *  - 128 bytes: per unit u = 0..7 (values 32u .. 32u + 31 of the block,
 *    sub-blocks a = 2u and b = 2u + 1) 16 bytes: row r's int8 scales
 *    sc[a], sc[b] at 2r;
 *  - 8 units of 192 bytes (at 144 + 192 u): 3 planes of 64 bytes, row r's
 *    8 bytes at 8r. Quant vector v (0..3) of a row's unit is 8 bytes,
 *    byte e = the 6-bit quant of value 32u + 16 (e / 2 % 2) + 4v +
 *    2 (e / 4) + e % 2: a, a, b, b, a, a, b, b, so that vpmaddubsw's
 *    16-bit pairs alternate between the two sub-blocks and one 16-bit
 *    multiply-add with the words (sc[a], sc[b]) applies both scales. Plane
 *    p (0..2) holds vector p in the low 6 bits of each byte and, in bits
 *    6-7, bits 2p, 2p + 1 of the same byte of vector 3.
 * A 64-byte plane is 8 rows x 8 quants against one broadcast 8-byte
 * activation word (the activation's bytes reordered the same way once per
 * call): the rows are the lanes, no horizontal sum; 3 loads and 9 bitwise
 * operations unpack 32 quants of 8 rows. */
#ifndef QVL_QREPACK_H
#define QVL_QREPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define QVL_DT_Q4_0_X8 ((enum qvl_dtype)(QVL_DT_COUNT + 1))
#define QVL_X8_ROWS    8
#define QVL_X8_BLK     144 /* bytes of one block of 8 rows */
#define QVL_DT_Q4_K_X8 ((enum qvl_dtype)(QVL_DT_COUNT + 2))
#define QVL_X8_Q4K_BLK 1152 /* bytes of one Q4_K block of 8 rows */
#define QVL_DT_Q6_K_X8 ((enum qvl_dtype)(QVL_DT_COUNT + 3))
#define QVL_Q6X_BLK    1680 /* bytes of one Q6_K block of 8 rows */
#define QVL_DT_Q8_0_X8 ((enum qvl_dtype)(QVL_DT_COUNT + 4))
#define QVL_Q8X_BLK    272 /* bytes of one Q8_0 block of 8 rows */
/* QVL_DT_BF16_P16: bf16 rows (k even) in panels of 16 rows, the same bytes
 * per row (2k): panel b at row 16 b holds, for pair p = 0 .. k/2 - 1, 16
 * 32-bit words at 64 p: word c is row 16 b + c's values 2p (low half) and
 * 2p + 1 (high), the operand vdpbf16ps multiplies with a broadcast
 * activation pair (simd/matmul_bf16p_avx512.c). Only the AVX512-BF16
 * table's matmul_fast takes it (`--precision bf16`; by default,
 * QVL_BF16_PANELS=0 keeps the rows): the exact path keeps the rows. */
#define QVL_DT_BF16_P16 ((enum qvl_dtype)(QVL_DT_COUNT + 5))
#define QVL_P16_ROWS	16

/* The repacked type matmul_fast() of table k reads for weight type t with
 * rows of k values, n rows: t itself when there is none (or k is not
 * matmul_fast of a built-in level, or n is not a multiple of 8). */
enum qvl_dtype qvl_repack_type(const struct qvl_kernels *kt, enum qvl_dtype t, size_t n, size_t k);

/* dst (n rows of k values, same bytes as src) = src (type t, rows k values
 * apart) in the layout of rt = qvl_repack_type(t, ...); 0 or -EINVAL. */
int qvl_repack(void *dst, enum qvl_dtype rt, const void *src, enum qvl_dtype t, size_t n, size_t k);
/* The inverse (tests): row j of the repacked matrix back to type t. */
int qvl_unrepack(void *dst, enum qvl_dtype t, const void *src, enum qvl_dtype rt, size_t n,
		 size_t k);

/* matmul_fast() for a repacked weight type (same arguments). The SIMD
 * levels return -ENOMEM when they cannot get their scratch (the caller
 * then runs the ref one, which has a path without scratch). */
void qvl_qmatmul_x8_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
			size_t k);
/* A SIMD level's qvl_qmatmul_x8, then the same in two halves
 * (qdot_x8_act.h; kernels.h act_bytes, act_make, matmul_act): the bytes of
 * m activation rows of k values prepared for repacked type rt (0: rt is
 * not one, or k not whole activation blocks), their making, and the
 * product on them (as qvl_qmatmul_x8_*: -EINVAL for rows not whole groups,
 * -ENOMEM without scratch; nothing written then). */
#define QVL_QX8_DECL(isa)                                                                          \
	int qvl_qmatmul_x8_##isa(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,  \
				 enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,    \
				 size_t n, size_t k);                                              \
	size_t qvl_qact_x8_bytes_##isa(enum qvl_dtype rt, size_t m, size_t k);                     \
	void qvl_qact_x8_make_##isa(void *xa, enum qvl_dtype rt, const float *X, size_t ldx,       \
				    size_t m, size_t k);                                           \
	int qvl_qmatmul_x8_act_##isa(float *Y, size_t ldy, const void *xa, const void *W,          \
				     enum qvl_dtype rt, size_t ldw, const float *bias, size_t m,   \
				     size_t n, size_t k)

QVL_QX8_DECL(avx2);
QVL_QX8_DECL(avx512);
/* qdot_avx512.c: the products of the AVX2 level's prepared activation
 * that run on 512-bit vectors (decode batches, Q6_K_X8, the Q4_K_X8
 * decode), else -EINVAL */
int qvl_qmatmul_x8_act_on512_avx512(float *Y, size_t ldy, const void *xa, const void *W,
				     enum qvl_dtype rt, size_t ldw, const float *bias, size_t m,
				     size_t n, size_t k);

/* The Q4_K case (qrepack_q4k.c): convert n rows of k values either way
 * (to: plain -> x8), 0 or -EINVAL; row r of one block of 8 rows back to
 * its 144 file bytes; the ref matmul_fast of Q4_K_X8. */
int qvl_q4k_x8_convert(uint8_t *x8, uint8_t *plain, size_t n, size_t k, bool to);
void qvl_q4k_x8_row(uint8_t *p, const uint8_t *x, int r);
void qvl_qmatmul_q4k_x8_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			    size_t ldw, const float *bias, size_t m, size_t n, size_t k);

/* The Q6_K case of qvl_repack / qvl_unrepack / qvl_qmatmul_x8_ref
 * (qrepack_q6k.c; arguments checked by the callers) */
void qvl_q6x_convert(uint8_t *x8, uint8_t *plain, size_t n, size_t k, bool to_x8);
void qvl_q6x_matmul_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W, size_t ldw,
			const float *bias, size_t m, size_t n, size_t k);

/* The bf16 panels (qrepack_bf16p.c): convert n rows of k values either way
 * (to: rows -> panels; n a multiple of 16, k even), and the scalar
 * reference of their product: each output one f32 chain over the pairs
 * in k order (the order of the AVX512-BF16 kernel, whose instruction may
 * round inside a pair differently), activations rounded to bf16. */
void qvl_bf16p_convert(uint16_t *p16, uint16_t *rows, size_t n, size_t k, bool to);
void qvl_matmul_bf16p_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			  size_t ldw, const float *bias, size_t m, size_t n, size_t k);
/* The AVX512-BF16 kernel (matmul_bf16p_avx512.c): -EINVAL unless k is even
 * and ldw == k, -ENOMEM without scratch (nothing written then). */
int qvl_matmul_bf16p_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			    size_t ldw, const float *bias, size_t m, size_t n, size_t k);
/* Its activation prepared once (kernels.h act_make): the m rows of X
 * rounded to bf16 in act_bytes bytes, then the kernel on them for any
 * columns of W: bit for bit qvl_matmul_bf16p_avx512 on X. */
size_t qvl_bf16p_act_bytes(size_t m, size_t k);
void qvl_bf16p_act_make(void *xa, const float *X, size_t ldx, size_t m, size_t k);
int qvl_matmul_bf16p_act_avx512(float *Y, size_t ldy, const void *xa, const void *W,
				size_t ldw, const float *bias, size_t m, size_t n, size_t k);
/* Rows of one repacked group of type rt (the engine splits its repacking
 * by groups) */
static inline size_t qvl_repack_rows(enum qvl_dtype rt)
{
	return rt == QVL_DT_BF16_P16 ? QVL_P16_ROWS : QVL_X8_ROWS;
}

/* The quantized X8 layouts (not the bf16 panels: those have their own
 * kernels, and no prepared activation) */
static inline bool qvl_dtype_is_repacked(enum qvl_dtype t)
{
	return t == QVL_DT_Q4_0_X8 || t == QVL_DT_Q4_K_X8 || t == QVL_DT_Q6_K_X8 ||
	       t == QVL_DT_Q8_0_X8;
}

#endif
