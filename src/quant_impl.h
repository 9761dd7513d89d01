/* Internal to the quant module (src/quant*.c): one block's dequantizer and
 * quantizer per type, and the small helpers they share. */
#ifndef QVL_QUANT_IMPL_H
#define QVL_QUANT_IMPL_H

#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "kernels.h"
#include "quant.h"

/* The dequantizers are the inner loop of the exact matmul for the types the
 * SIMD levels do not widen themselves (simd/matmul_deq.c); GCC vectorizes
 * their byte-to-float loops only at -O3 (3-5x faster, measured). */
#if defined(__GNUC__) && !defined(__clang__)
#define QUANT_HOT __attribute__((optimize("O3")))
#else
#define QUANT_HOT
#endif

/* One block of values from b into y. */
typedef void (*quant_deq_fn)(const uint8_t *b, float *y);
/* One block of x into b; imp is NULL or the block's importance weights.
 * 0 or -ERANGE (a scale beyond f16). Inputs are finite (checked by the caller). */
typedef int (*quant_enc_fn)(const float *x, uint8_t *b, const float *imp);

static inline float quant_ld_f16(const uint8_t *p)
{
	return qvl_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* Store v as f16 at p; -ERANGE when it rounds to infinity. */
static inline int quant_st_f16(uint8_t *p, float v)
{
	uint16_t h = qvl_f32_to_f16(v);

	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
	return (h & 0x7c00) == 0x7c00 ? -ERANGE : 0;
}

/* Round to nearest (ties to even, as llama.cpp's nearest_int) and clamp to
 * [lo, hi]; clamping first keeps the float-to-int conversion defined. */
static inline int quant_round(float v, int lo, int hi)
{
	if (!(v >= (float)lo)) /* also NaN */
		return lo;
	if (v > (float)hi)
		return hi;
	return (int)lrintf(v);
}

/* The IQ4_NL/IQ4_XS non-linear 4-bit grid. */
extern const int8_t quant_iq4_grid[16];

void quant_deq_q2_k(const uint8_t *b, float *y);
void quant_deq_q3_k(const uint8_t *b, float *y);
void quant_deq_q4_k(const uint8_t *b, float *y);
void quant_deq_q5_k(const uint8_t *b, float *y);
void quant_deq_q6_k(const uint8_t *b, float *y);
void quant_deq_iq4_nl(const uint8_t *b, float *y);
void quant_deq_iq4_xs(const uint8_t *b, float *y);

int quant_enc_q2_k(const float *x, uint8_t *b, const float *imp);
int quant_enc_q3_k(const float *x, uint8_t *b, const float *imp);
int quant_enc_q4_k(const float *x, uint8_t *b, const float *imp);
int quant_enc_q5_k(const float *x, uint8_t *b, const float *imp);
int quant_enc_q6_k(const float *x, uint8_t *b, const float *imp);
int quant_enc_iq4_nl(const float *x, uint8_t *b, const float *imp);
int quant_enc_iq4_xs(const float *x, uint8_t *b, const float *imp);

#endif
