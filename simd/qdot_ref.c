/* Scalar reference of the int8 dot products (qdot.h): every block decoded to
 * plain integers, the integer sums of qdot.h, then its float combination.
 * The SIMD kernels compute the same integer sums; this file is the
 * definition they are tested against, so it favours clarity. */
#include "config.h"

#include <errno.h>

#include "kern_impl.h"
#include "qdot.h"
#include "qdot_blocks.h"

bool qvl_qdot_has(enum qvl_dtype t)
{
	return qvl_dtype_is_block(t);
}

static float f16at(const uint8_t *p)
{
	return qvl_f16_to_f32(qvl_load_u16(p));
}

/* ---- 32-value blocks: value i = d * (q[i] - off) (+ m) ------------------ */

struct dec32 {
	int q[32];
	int off;
	float d, m;
	bool has_min;
};

static void dec_block32(struct dec32 *o, enum qvl_dtype t, const uint8_t *b)
{
	const uint8_t *qs = b + 2;
	uint32_t qh = 0;

	o->d = f16at(b);
	o->m = 0.0f;
	o->off = 0;
	o->has_min = t == QVL_DT_Q4_1 || t == QVL_DT_Q5_1;
	if (o->has_min) {
		o->m = f16at(b + 2);
		qs += 2;
	}
	if (t == QVL_DT_Q5_0 || t == QVL_DT_Q5_1) {
		memcpy(&qh, qs, 4);
		qs += 4;
	}
	if (t == QVL_DT_Q8_0) {
		for (int i = 0; i < 32; i++)
			o->q[i] = (int8_t)qs[i];
		return;
	}
	for (int i = 0; i < 16; i++) {
		o->q[i] = qs[i] & 15;
		o->q[i + 16] = qs[i] >> 4;
	}
	if (t == QVL_DT_IQ4_NL) {
		for (int i = 0; i < 32; i++)
			o->q[i] = qb_iq4nl_values[o->q[i]];
	} else if (t == QVL_DT_Q5_0 || t == QVL_DT_Q5_1) {
		for (int i = 0; i < 32; i++)
			o->q[i] |= (int)((qh >> i) & 1) << 4;
	}
	o->off = t == QVL_DT_Q4_0 ? 8 : t == QVL_DT_Q5_0 ? 16 : 0;
}

static float dot32(enum qvl_dtype t, const uint8_t *w, const struct qvl_q8a *x, size_t nb)
{
	size_t bb = qvl_dtype_info(t)->blk_bytes;
	float acc = 0.0f;
	struct dec32 o;

	for (size_t i = 0; i < nb; i++, w += bb, x++) {
		int32_t isum = 0;

		dec_block32(&o, t, w);
		for (int j = 0; j < 32; j++)
			isum += o.q[j] * x->q[j];
		isum -= o.off * x->s;
		if (o.has_min)
			acc += x->d * (o.d * (float)isum + o.m * (float)x->s);
		else
			acc += x->d * o.d * (float)isum;
	}
	return acc;
}

/* ---- 256-value blocks: value i = d * sc[j] * q[i] - d * off[j]
 *                                   - dmin * mn[j], j = i / 16 ------------ */

struct deck {
	int q[256];
	int sc[16], off[16], mn[16];
	float d, dmin;
};

static void dec_blockk(struct deck *o, enum qvl_dtype t, const uint8_t *b)
{
	memset(o->off, 0, sizeof(o->off));
	memset(o->mn, 0, sizeof(o->mn));
	o->dmin = 0.0f;
	switch (t) {
	case QVL_DT_Q4_K:
	case QVL_DT_Q5_K: {
		const uint8_t *qs = b + (t == QVL_DT_Q4_K ? QB_Q4K_QS : QB_Q5K_QS);
		uint8_t sc[8], mn[8];

		o->d = f16at(b);
		o->dmin = f16at(b + 2);
		qb_k4_scales(b + QB_K4_SC, sc, mn);
		for (int c = 0; c < 8; c++) {
			for (int l = 0; l < 32; l++) {
				int n = qs[32 * (c / 2) + l] >> (4 * (c % 2)) & 15;
				if (t == QVL_DT_Q5_K)
					n |= (b[QB_Q5K_QH + l] >> c & 1) << 4;
				o->q[32 * c + l] = n;
			}
			o->sc[2 * c] = o->sc[2 * c + 1] = sc[c];
			o->mn[2 * c] = o->mn[2 * c + 1] = mn[c];
		}
		break;
	}
	case QVL_DT_Q6_K:
		o->d = f16at(b + QB_Q6K_D);
		for (int h = 0; h < 2; h++)
			for (int c = 0; c < 4; c++)
				for (int l = 0; l < 32; l++) {
					int lo = b[64 * h + 32 * (c % 2) + l] >> (4 * (c / 2)) & 15;
					int hi = b[QB_Q6K_QH + 32 * h + l] >> (2 * c) & 3;
					o->q[128 * h + 32 * c + l] = lo | hi << 4;
				}
		for (int j = 0; j < 16; j++) {
			o->sc[j] = (int8_t)b[QB_Q6K_SC + j];
			o->off[j] = 32 * o->sc[j];
		}
		break;
	case QVL_DT_Q3_K: {
		int8_t sc[16];

		o->d = f16at(b + QB_Q3K_D);
		qb_q3k_scales(b + QB_Q3K_SC, sc);
		for (int h = 0; h < 2; h++)
			for (int c = 0; c < 4; c++)
				for (int l = 0; l < 32; l++) {
					int lo = b[QB_Q3K_QS + 32 * h + l] >> (2 * c) & 3;
					int hi = b[l] >> (4 * h + c) & 1;
					o->q[128 * h + 32 * c + l] = lo | hi << 2;
				}
		for (int j = 0; j < 16; j++) {
			o->sc[j] = sc[j];
			o->off[j] = 4 * sc[j];
		}
		break;
	}
	case QVL_DT_Q2_K:
		o->d = f16at(b + QB_Q2K_D);
		o->dmin = f16at(b + QB_Q2K_D + 2);
		for (int h = 0; h < 2; h++)
			for (int c = 0; c < 4; c++)
				for (int l = 0; l < 32; l++)
					o->q[128 * h + 32 * c + l] =
					    b[QB_Q2K_QS + 32 * h + l] >> (2 * c) & 3;
		for (int j = 0; j < 16; j++) {
			o->sc[j] = b[j] & 15;
			o->mn[j] = b[j] >> 4;
		}
		break;
	default: /* IQ4_XS */
		o->d = f16at(b);
		for (int c = 0; c < 8; c++) {
			const uint8_t *qs = b + QB_IQ4XS_QS + 16 * c;
			for (int l = 0; l < 16; l++) {
				o->q[32 * c + l] = qb_iq4nl_values[qs[l] & 15];
				o->q[32 * c + 16 + l] = qb_iq4nl_values[qs[l] >> 4];
			}
			o->sc[2 * c] = o->sc[2 * c + 1] = qb_iq4xs_scale(b, c);
		}
		break;
	}
}

static float dotk(enum qvl_dtype t, const uint8_t *w, const struct qvl_q8k *x, size_t nb)
{
	size_t bb = qvl_dtype_info(t)->blk_bytes;
	float acc = 0.0f;
	struct deck o;

	for (size_t i = 0; i < nb; i++, w += bb, x++) {
		int32_t isum = 0, msum = 0;

		dec_blockk(&o, t, w);
		for (int j = 0; j < 16; j++) {
			int32_t s = 0;
			for (int l = 0; l < 16; l++)
				s += o.q[16 * j + l] * x->q[16 * j + l];
			isum += o.sc[j] * s - o.off[j] * x->bsum[j];
			msum += o.mn[j] * x->bsum[j];
		}
		acc += x->d * (o.d * (float)isum - o.dmin * (float)msum);
	}
	return acc;
}

float qvl_qdot_row_ref(enum qvl_dtype t, const uint8_t *w, const void *xq, size_t k)
{
	if (qvl_qdot_act_blk(t) == QVL_QK_BLK)
		return dotk(t, w, xq, k / QVL_QK_BLK);
	return dot32(t, w, xq, k / QVL_QA_BLK);
}

int qvl_qmatmul_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		    enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		    size_t k)
{
	size_t rb = qvl_qdot_act_bytes(wtype, k);
	uint8_t *xq = qvl_qact_scratch(m * rb);

	if (!xq)
		return -ENOMEM;
	for (size_t i = 0; i < m; i++)
		qvl_qact_row_ref(xq + i * rb, wtype, X + i * ldx, k);
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++)
			Y[i * ldy + j] =
			    qvl_qdot_row_ref(wtype, qvl_wrow(W, wtype, ldw, j), xq + i * rb, k) +
			    (bias ? bias[j] : 0.0f);
	return 0;
}
