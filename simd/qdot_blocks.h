/* Scale fields of the GGUF K-quant blocks that the scalar reference and the
 * SIMD kernels both decode (layouts as ggml-common.h defines them; qdot.h
 * gives the arithmetic). Byte offsets of each block's fields are the
 * QB_* constants. Internal to simd/. */
#ifndef QVL_QDOT_BLOCKS_H
#define QVL_QDOT_BLOCKS_H

#include <stdint.h>
#include <string.h>

/* Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales and mins,
 * 128 bytes of nibbles (byte l of 32-byte group g: low nibble value 64g+l,
 * high nibble 64g+32+l). Q5_K (176): the same plus 32 bytes qh after the
 * scales (bit j of qh[l]: the fifth bit of value 32j+l), nibbles last. */
#define QB_K4_SC  4
#define QB_Q4K_QS 16
#define QB_Q5K_QH 16
#define QB_Q5K_QS 48
/* Q6_K (210): 128 bytes ql, 64 bytes qh, 16 int8 scales, f16 d. */
#define QB_Q6K_QH 128
#define QB_Q6K_SC 192
#define QB_Q6K_D  208
/* Q3_K (110): 32 bytes hmask, 64 bytes qs, 12 bytes scales, f16 d. */
#define QB_Q3K_QS 32
#define QB_Q3K_SC 96
#define QB_Q3K_D  108
/* Q2_K (84): 16 bytes scales (low nibble scale, high min), 64 bytes qs,
 * f16 d, f16 dmin. */
#define QB_Q2K_QS 16
#define QB_Q2K_D  80
/* IQ4_XS (136): f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes nibbles. */
#define QB_IQ4XS_QS 8

/* The eight 6-bit scales (sc[0..7]) and mins (mn[0..7]) of a Q4_K/Q5_K
 * block from its 12 scale bytes: sub-blocks 0-3 keep theirs in the low six
 * bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 have the low four bits in
 * bytes 8-11 (scale low nibble, min high nibble) and the top two in the
 * spare top bits of bytes 0-3 (scales) and 4-7 (mins). */
static inline void qb_k4_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8])
{
	for (int j = 0; j < 4; j++) {
		sc[j] = s[j] & 63;
		mn[j] = s[j + 4] & 63;
		sc[j + 4] = (uint8_t)((s[j + 8] & 15) | (s[j] >> 6) << 4);
		mn[j + 4] = (uint8_t)((s[j + 8] >> 4) | (s[j + 4] >> 6) << 4);
	}
}

/* The sixteen 6-bit Q3_K scales minus 32: scale j has its low four bits in
 * byte j (j < 8, low nibble) or byte j - 8 (high nibble), its top two in
 * byte 8 + j % 4 at bit 2 * (j / 4). */
static inline void qb_q3k_scales(const uint8_t *s, int8_t sc[16])
{
	for (int j = 0; j < 16; j++) {
		int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
		int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
		sc[j] = (int8_t)((lo | hi << 4) - 32);
	}
}

/* IQ4_XS sub-block j (of 32 values) scale minus 32. */
static inline int qb_iq4xs_scale(const uint8_t *b, int j)
{
	uint16_t h;

	memcpy(&h, b + 2, 2);
	return (((b[4 + j / 2] >> 4 * (j % 2)) & 15) | ((h >> 2 * j) & 3) << 4) - 32;
}

/* The sixteen IQ4_NL / IQ4_XS values (ggml's kvalues_iq4nl). */
static const int8_t qb_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
					   1,	 13,   25,  38,	 53,  69,  89,	113};

#endif
