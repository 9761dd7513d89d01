/* Row entry points for the GGUF block types (layouts in quant.h) and the
 * 32-value types Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. Scalar and simple on purpose:
 * this is the reference the SIMD kernels are checked against. The K-quants are
 * in quant_k.c (dequantization) and quant_kq.c (quantization), the
 * non-linear IQ4 types in quant_iq.c. */
#include "quant.h"

#include <string.h>

#include "quant_impl.h"

/* ---- dequantization ---- */

QUANT_HOT static void deq_q8_0(const uint8_t *b, float *y)
{
	float d = quant_ld_f16(b);

	for (int j = 0; j < 32; j++)
		y[j] = (float)(int8_t)b[2 + j] * d;
}

QUANT_HOT static void deq_q4_0(const uint8_t *b, float *y)
{
	float d = quant_ld_f16(b);

	for (int j = 0; j < 16; j++) {
		y[j] = (float)((b[2 + j] & 15) - 8) * d;
		y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
	}
}

QUANT_HOT static void deq_q4_1(const uint8_t *b, float *y)
{
	float d = quant_ld_f16(b), m = quant_ld_f16(b + 2);

	for (int j = 0; j < 16; j++) {
		y[j] = (float)(b[4 + j] & 15) * d + m;
		y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
	}
}

/* The 5-bit values of a Q5_0/Q5_1 block: qh (4 bytes) then 16 nibble bytes. */
QUANT_HOT static void unpack_q5(const uint8_t *qh4, int q[32])
{
	uint32_t qh = (uint32_t)qh4[0] | (uint32_t)qh4[1] << 8 | (uint32_t)qh4[2] << 16 |
		      (uint32_t)qh4[3] << 24;
	const uint8_t *qs = qh4 + 4;

	for (int j = 0; j < 16; j++) {
		q[j] = (qs[j] & 15) | (int)((qh >> j) & 1) << 4;
		q[j + 16] = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
	}
}

QUANT_HOT static void deq_q5_0(const uint8_t *b, float *y)
{
	float d = quant_ld_f16(b);
	int q[32];

	unpack_q5(b + 2, q);
	for (int j = 0; j < 32; j++)
		y[j] = (float)(q[j] - 16) * d;
}

QUANT_HOT static void deq_q5_1(const uint8_t *b, float *y)
{
	float d = quant_ld_f16(b), m = quant_ld_f16(b + 2);
	int q[32];

	unpack_q5(b + 4, q);
	for (int j = 0; j < 32; j++)
		y[j] = (float)q[j] * d + m;
}

/* ---- quantization (llama.cpp's reference: round to nearest) ----
 * Unlike ggml we quantize with the scale as stored (rounded to f16), so the
 * error bound is that of the stored scale. */

static int enc_q8_0(const float *x, uint8_t *b, const float *imp)
{
	float amax = 0;

	(void)imp;
	for (int j = 0; j < 32; j++)
		amax = fmaxf(amax, fabsf(x[j]));
	int rc = quant_st_f16(b, amax / 127.f);
	float d = quant_ld_f16(b), id = d != 0 ? 1.f / d : 0.f;

	for (int j = 0; j < 32; j++)
		b[2 + j] = (uint8_t)(int8_t)quant_round(x[j] * id, -127, 127);
	return rc;
}

/* 32 levels (4 or 5 bits) into 16 nibble bytes qs and, for 5 bits, the
 * little-endian u32 of 5th bits at qh4 (NULL for the 4-bit types). */
static void pack_32(const uint8_t q[32], uint8_t *qs, uint8_t *qh4)
{
	uint32_t qh = 0;

	for (int j = 0; j < 16; j++) {
		qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
		qh |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + 16] >> 4) << (j + 16);
	}
	for (int i = 0; qh4 && i < 4; i++)
		qh4[i] = (uint8_t)(qh >> 8 * i);
}

/* The signed value of largest magnitude (the Q4_0/Q5_0 scale maps it to the
 * most negative level, so the other sign gets one level fewer). */
static float signed_absmax(const float *x)
{
	float amax = 0, max = 0;

	for (int j = 0; j < 32; j++)
		if (fabsf(x[j]) > amax)
			amax = fabsf(x[j]), max = x[j];
	return max;
}

/* Q4_0 (half = 8) and Q5_0 (half = 16): nibbles (and high bits) to b + 2. */
static int enc_sym(const float *x, uint8_t *b, int half)
{
	int rc = quant_st_f16(b, signed_absmax(x) / (float)-half);
	float d = quant_ld_f16(b), id = d != 0 ? 1.f / d : 0.f;
	uint8_t q[32];

	for (int j = 0; j < 32; j++)
		q[j] = (uint8_t)quant_round(x[j] * id + (float)half, 0, 2 * half - 1);
	pack_32(q, b + 2 + (half == 16 ? 4 : 0), half == 16 ? b + 2 : NULL);
	return rc;
}

static int enc_q4_0(const float *x, uint8_t *b, const float *imp)
{
	(void)imp;
	return enc_sym(x, b, 8);
}

static int enc_q5_0(const float *x, uint8_t *b, const float *imp)
{
	(void)imp;
	return enc_sym(x, b, 16);
}

/* Q4_1 (levels = 15) and Q5_1 (levels = 31): scale and min from the range. */
static int enc_min(const float *x, uint8_t *b, int levels)
{
	float lo = x[0], hi = x[0];

	for (int j = 1; j < 32; j++)
		lo = fminf(lo, x[j]), hi = fmaxf(hi, x[j]);
	int rc = quant_st_f16(b, (hi - lo) / (float)levels);

	rc = rc ? rc : quant_st_f16(b + 2, lo);
	float d = quant_ld_f16(b), m = quant_ld_f16(b + 2), id = d != 0 ? 1.f / d : 0.f;
	uint8_t q[32];

	for (int j = 0; j < 32; j++)
		q[j] = (uint8_t)quant_round((x[j] - m) * id, 0, levels);
	pack_32(q, b + 4 + (levels == 31 ? 4 : 0), levels == 31 ? b + 4 : NULL);
	return rc;
}

static int enc_q4_1(const float *x, uint8_t *b, const float *imp)
{
	(void)imp;
	return enc_min(x, b, 15);
}

static int enc_q5_1(const float *x, uint8_t *b, const float *imp)
{
	(void)imp;
	return enc_min(x, b, 31);
}

/* ---- row entry points ---- */

static const struct {
	quant_deq_fn deq;
	quant_enc_fn enc;
} codecs[QVL_DT_COUNT] = {
    [QVL_DT_Q8_0] = {deq_q8_0, enc_q8_0},
    [QVL_DT_Q4_0] = {deq_q4_0, enc_q4_0},
    [QVL_DT_Q4_1] = {deq_q4_1, enc_q4_1},
    [QVL_DT_Q5_0] = {deq_q5_0, enc_q5_0},
    [QVL_DT_Q5_1] = {deq_q5_1, enc_q5_1},
    [QVL_DT_Q2_K] = {quant_deq_q2_k, quant_enc_q2_k},
    [QVL_DT_Q3_K] = {quant_deq_q3_k, quant_enc_q3_k},
    [QVL_DT_Q4_K] = {quant_deq_q4_k, quant_enc_q4_k},
    [QVL_DT_Q5_K] = {quant_deq_q5_k, quant_enc_q5_k},
    [QVL_DT_Q6_K] = {quant_deq_q6_k, quant_enc_q6_k},
    [QVL_DT_IQ4_NL] = {quant_deq_iq4_nl, quant_enc_iq4_nl},
    [QVL_DT_IQ4_XS] = {quant_deq_iq4_xs, quant_enc_iq4_xs},
};

int qvl_dequant_row(enum qvl_dtype t, const void *src, float *dst, size_t n)
{
	const struct qvl_dtype_info *di = qvl_dtype_info(t);
	const uint8_t *p = src;

	if (!di || n % di->blk)
		return -EINVAL;
	switch (t) {
	case QVL_DT_F32:
		memcpy(dst, src, n * sizeof(float));
		return 0;
	case QVL_DT_F16:
		for (size_t i = 0; i < n; i++)
			dst[i] = quant_ld_f16(p + 2 * i);
		return 0;
	case QVL_DT_BF16:
		for (size_t i = 0; i < n; i++)
			dst[i] = qvl_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
		return 0;
	default:
		break;
	}
	if (!codecs[t].deq)
		return -EINVAL;
	for (size_t i = 0; i < n; i += di->blk, p += di->blk_bytes)
		codecs[t].deq(p, dst + i);
	return 0;
}

int qvl_quant_supported(enum qvl_dtype t)
{
	return (unsigned)t < QVL_DT_COUNT && codecs[t].enc != NULL;
}

int qvl_quantize_row_imp(enum qvl_dtype t, const float *src, void *dst, size_t n, const float *imp)
{
	const struct qvl_dtype_info *di = qvl_dtype_info(t);
	uint8_t *p = dst;

	if (!qvl_quant_supported(t) || n % di->blk)
		return -EINVAL;
	/* |x| beyond 2^32 is past every type's f16 scale range anyway, and
	 * keeps the searches' weighted sums (up to ~x^3) finite in float */
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(src[i]) || (imp && !(imp[i] >= 0 && imp[i] <= 0x1p32f)))
			return -EINVAL;
		if (fabsf(src[i]) > 0x1p32f)
			return -ERANGE;
	}
	for (size_t i = 0; i < n; i += di->blk, p += di->blk_bytes) {
		float chk[QVL_QK_K];
		int rc = codecs[t].enc(src + i, p, imp ? imp + i : NULL);

		if (rc)
			return rc;
		/* a block that does not decode to finite values is a scale
		 * overflow the encoder missed: never hand it out */
		codecs[t].deq(p, chk);
		for (uint32_t j = 0; j < di->blk; j++)
			if (!isfinite(chk[j]))
				return -ERANGE;
	}
	return 0;
}

int qvl_quantize_row(enum qvl_dtype t, const float *src, void *dst, size_t n)
{
	return qvl_quantize_row_imp(t, src, dst, n, NULL);
}

void qvl_dequant_q8_0(float *dst, const void *src, size_t n)
{
	qvl_dequant_row(QVL_DT_Q8_0, src, dst, n);
}

void qvl_dequant_q4_0(float *dst, const void *src, size_t n)
{
	qvl_dequant_row(QVL_DT_Q4_0, src, dst, n);
}
