/* GGUF block-quantized types: dequantization to f32 and quantization from f32,
 * bit layouts exactly as ggml defines them (ggml-common.h block structs and
 * ggml-quants.c reference dequantizers; this is our own code written from
 * those definitions). All multi-byte fields are little-endian; "f16" is an
 * IEEE half; element indices are within the block.
 *
 * 32-value blocks:
 * Q8_0   (34 B): f16 d | int8 q[32].                        x = d * q
 * Q4_0   (18 B): f16 d | u8 qs[16]; byte j holds element j in its low nibble
 *                and element j + 16 in its high nibble.      x = d * (nib - 8)
 * Q4_1   (20 B): f16 d | f16 m | u8 qs[16] (nibbles as Q4_0). x = d * nib + m
 * Q5_0   (22 B): f16 d | u32 qh | u8 qs[16]; nibbles as Q4_0, bit j of qh is
 *                the 5th bit of element j (j = 0..31).       x = d * (q5 - 16)
 * Q5_1   (24 B): f16 d | f16 m | u32 qh | u8 qs[16] (as Q5_0). x = d * q5 + m
 * IQ4_NL (18 B): f16 d | u8 qs[16] (nibbles as Q4_0) indexing the non-linear
 *                table K = {-127,-104,-83,-65,-49,-35,-22,-10,1,13,25,38,53,
 *                69,89,113}.                                 x = d * K[nib]
 *
 * 256-value super-blocks (K-quants):
 * Q2_K  (84 B): u8 scales[16] | u8 qs[64] | f16 d | f16 dmin. Sub-block s
 *               (16 values) has scale scales[s] & 15 and min scales[s] >> 4.
 *               Element e: half h = e / 128, r = e % 128, shift = 2 * (r / 32),
 *               byte qs[32 h + r % 32], q = (byte >> shift) & 3, s = e / 16.
 *               x = d * sc * q - dmin * mn
 * Q3_K (110 B): u8 hmask[32] | u8 qs[64] | u8 scales[12] | f16 d. The low two
 *               bits of q as Q2_K; the third bit is bit (e / 32) of
 *               hmask[e % 32]; q3 = low2 - (bit ? 0 : 4) (range -4..3).
 *               16 signed 6-bit scales: low nibble of scales[s] (s < 8) or
 *               scales[s - 8] >> 4 (s >= 8), high two bits are bits
 *               2 * (s / 4) of scales[8 + s % 4]; sc = that - 32.
 *               x = d * sc * q3
 * Q4_K (144 B): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]. Eight
 *               sub-blocks of 32 with a 6-bit scale and a 6-bit min packed in
 *               12 bytes (j < 4: sc = scales[j] & 63, mn = scales[j + 4] & 63;
 *               j >= 4: sc = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4,
 *               mn = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4). Element e:
 *               chunk c = e / 64, byte qs[32 c + e % 32], low nibble when
 *               e % 64 < 32, else high.                  x = d * sc * q - dmin * mn
 * Q5_K (176 B): f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128];
 *               low four bits as Q4_K, 5th bit is bit (e / 32) of qh[e % 32].
 *               x = d * sc * q5 - dmin * mn
 * Q6_K (210 B): u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d. Element e:
 *               half h = e / 128, r = e % 128, quarter g = r / 32, l = r % 32;
 *               low nibble from ql[64 h + l + 32 (g & 1)] (low for g < 2,
 *               high for g >= 2); two high bits (qh[32 h + l] >> 2 g) & 3;
 *               q6 = that - 32, scale scales[e / 16].    x = d * sc * q6
 * IQ4_XS (136 B): f16 d | u16 scales_h | u8 scales_l[4] | u8 qs[128]. Eight
 *               sub-blocks of 32: 6-bit scale ls = nibble (ib % 2) of
 *               scales_l[ib / 2] | ((scales_h >> 2 ib) & 3) << 4; qs[16 ib..]
 *               hold the sub-block as IQ4_NL.           x = d * (ls - 32) * K[nib]
 *
 * The float arithmetic order of each formula above is the one ggml uses
 * ((d * sc) * q, then - (dmin * mn)), so our values are bit-identical to
 * llama.cpp's dequantization. */
#ifndef QVL_QUANT_H
#define QVL_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define QVL_QBLOCK     32
#define QVL_QK_K       256
#define QVL_Q8_0_BYTES 34
#define QVL_Q4_0_BYTES 18

/* n: a multiple of the type's block (qvl_dtype_info(t)->blk); 0 or -EINVAL.
 * The plain types (F32, F16, BF16) are accepted too (block of 1). */
int qvl_dequant_row(enum qvl_dtype t, const void *src, float *dst, size_t n);

/* Quantize n values (a multiple of the block) into n / blk blocks at dst.
 * 0, -EINVAL (bad type or n, a NaN/Inf input: nothing sensible encodes it,
 * or an importance weight outside [0, 2^32]) or -ERANGE (|x| > 2^32, or a
 * block's scale or min does not fit in f16: roughly amax > 8e6 for Q8_0,
 * 5e5 for Q4_0, |min| > 65504 for Q4_1/Q5_1, ~1e8 for the K-quants). Same algorithms as llama.cpp's imatrix-free reference quantizers
 * (plain round-to-nearest for the 32-value types, the iterative scale/min
 * search for the K-quants). */
int qvl_quantize_row(enum qvl_dtype t, const float *src, void *dst, size_t n);
/* As qvl_quantize_row with optional importance weights imp[n] (NULL =
 * uniform), used by the K-quant and IQ4 searches that weigh the error. */
int qvl_quantize_row_imp(enum qvl_dtype t, const float *src, void *dst, size_t n, const float *imp);
/* Types qvl_quantize_row writes. */
int qvl_quant_supported(enum qvl_dtype t);

/* Older entry points (n a multiple of 32), kept for the SIMD widening paths. */
void qvl_dequant_q8_0(float *dst, const void *src, size_t n);
void qvl_dequant_q4_0(float *dst, const void *src, size_t n);

#endif
