/* The Q6_K case of the load-time repacking (QVL_DT_Q6_K_X8, layout in
 * qrepack.h) and of the repacked types' scalar reference: each row
 * gathered back to Q6_K blocks and multiplied by qdot_ref.c's arithmetic,
 * so the ref level gives the same bits for the repacked matrix as for the
 * file's. */
#include "config.h"

#include <string.h>

#include "kern_impl.h"
#include "qdot.h"
#include "qdot_blocks.h"
#include "qrepack.h"

#define Q6K_BYTES 210

/* A plain Q6_K block's 256 6-bit quants in value order <-> its ql, qh
 * (ggml's layout: half h = v / 128; in it, 32-value quarter c: low nibble
 * in ql[64h + 32 (c % 2) + l] at bit 4 (c / 2), top two bits in
 * qh[32h + l] at bit 2c). */
static void plain_dec(const uint8_t *b, uint8_t q[256])
{
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++) {
			int lo0 = b[64 * h + l], lo1 = b[64 * h + 32 + l],
			    hi = b[QB_Q6K_QH + 32 * h + l];
			uint8_t *o = q + 128 * h + l;
			o[0] = (uint8_t)((lo0 & 15) | (hi & 3) << 4);
			o[32] = (uint8_t)((lo1 & 15) | (hi >> 2 & 3) << 4);
			o[64] = (uint8_t)((lo0 >> 4) | (hi >> 4 & 3) << 4);
			o[96] = (uint8_t)((lo1 >> 4) | (hi >> 6) << 4);
		}
}

static void plain_enc(uint8_t *b, const uint8_t q[256])
{
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++) {
			const uint8_t *o = q + 128 * h + l;
			b[64 * h + l] = (uint8_t)((o[0] & 15) | (o[64] & 15) << 4);
			b[64 * h + 32 + l] = (uint8_t)((o[32] & 15) | (o[96] & 15) << 4);
			b[QB_Q6K_QH + 32 * h + l] =
			    (uint8_t)(o[0] >> 4 | (o[32] >> 4) << 2 | (o[64] >> 4) << 4 |
				      (o[96] >> 4) << 6);
		}
}

/* Value (within its unit of 32) of byte e of quant vector v: a, a, b, b,
 * a, a, b, b (qrepack.h) */
static int unit_val(int v, int e)
{
	return 16 * (e / 2 % 2) + 4 * v + 2 * (e / 4) + e % 2;
}

/* Row r's 256 quants (value order) <-> its bytes in the block of 8 rows
 * at g: plane p byte e = vector p's quant | 2 bits of vector 3's << 6. */
static void x8_enc(uint8_t *g, int r, const uint8_t q[256])
{
	for (int u = 0; u < 8; u++) {
		const uint8_t *qu = q + 32 * u;
		uint8_t *pl = g + 144 + 192 * u + 8 * r;
		for (int p = 0; p < 3; p++)
			for (int e = 0; e < 8; e++)
				pl[64 * p + e] =
				    (uint8_t)(qu[unit_val(p, e)] |
					      (qu[unit_val(3, e)] >> (2 * p) & 3) << 6);
	}
}

static void x8_dec(const uint8_t *g, int r, uint8_t q[256])
{
	for (int u = 0; u < 8; u++) {
		uint8_t *qu = q + 32 * u;
		const uint8_t *pl = g + 144 + 192 * u + 8 * r;
		for (int e = 0; e < 8; e++) {
			int v3 = 0;
			for (int p = 0; p < 3; p++) {
				qu[unit_val(p, e)] = pl[64 * p + e] & 63;
				v3 |= (pl[64 * p + e] >> 6) << (2 * p);
			}
			qu[unit_val(3, e)] = (uint8_t)v3;
		}
	}
}

/* One block: row r's plain block b <-> its part of the group block g. */
static void move_block(uint8_t *g, uint8_t *b, int r, bool to_x8)
{
	uint8_t q[256];

	if (to_x8) {
		memcpy(g + 2 * r, b + QB_Q6K_D, 2);
		for (int u = 0; u < 8; u++)
			memcpy(g + 16 + 16 * u + 2 * r, b + QB_Q6K_SC + 2 * u, 2);
		plain_dec(b, q);
		x8_enc(g, r, q);
		return;
	}
	memcpy(b + QB_Q6K_D, g + 2 * r, 2);
	for (int u = 0; u < 8; u++)
		memcpy(b + QB_Q6K_SC + 2 * u, g + 16 + 16 * u + 2 * r, 2);
	x8_dec(g, r, q);
	plain_enc(b, q);
}

void qvl_q6x_convert(uint8_t *x8, uint8_t *plain, size_t n, size_t k, bool to_x8)
{
	size_t nb = k / 256, wrow = nb * Q6K_BYTES;

	for (size_t g = 0; g < n / QVL_X8_ROWS; g++) {
		uint8_t *xg = x8 + g * QVL_X8_ROWS * wrow, *pg = plain + g * QVL_X8_ROWS * wrow;
		for (size_t i = 0; i < nb; i++)
			for (int r = 0; r < QVL_X8_ROWS; r++)
				move_block(xg + i * QVL_Q6X_BLK, pg + r * wrow + i * Q6K_BYTES, r,
					   to_x8);
	}
}

/* Row j (nb blocks) of a Q6_K_X8 matrix with rows wrow bytes apart, as
 * plain Q6_K blocks. */
static void gather_row(uint8_t *dst, const void *W, size_t wrow, size_t nb, size_t j)
{
	const uint8_t *g = (const uint8_t *)W + j / QVL_X8_ROWS * QVL_X8_ROWS * wrow;

	for (size_t i = 0; i < nb; i++)
		move_block((uint8_t *)(uintptr_t)(g + i * QVL_Q6X_BLK), dst + i * Q6K_BYTES,
			   (int)(j % QVL_X8_ROWS), false);
}

void qvl_q6x_matmul_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W, size_t ldw,
			const float *bias, size_t m, size_t n, size_t k)
{
	size_t nb = k / 256, wrow = ldw / 256 * Q6K_BYTES;
	size_t rb = qvl_qdot_act_bytes(QVL_DT_Q6_K, k), xb = (m * rb + 63) & ~(size_t)63;
	uint8_t *xq = qvl_qact_scratch(xb + nb * Q6K_BYTES);
	uint8_t row[Q6K_BYTES];
	float w[256];

	if (!xq) {
		/* no scratch: the exact product, one block at a time */
		for (size_t j = 0; j < n; j++)
			for (size_t i = 0; i < m; i++) {
				float s = bias ? bias[j] : 0.0f;
				for (size_t b = 0; b < nb; b++) {
					gather_row(row, (const uint8_t *)W + b * QVL_Q6X_BLK, wrow,
						   1, j);
					qvl_deq_block(w, row, QVL_DT_Q6_K);
					for (int c = 0; c < 256; c++)
						s += w[c] * X[i * ldx + 256 * b + (size_t)c];
				}
				Y[i * ldy + j] = s;
			}
		return;
	}
	for (size_t i = 0; i < m; i++)
		qvl_qact_row_ref(xq + i * rb, QVL_DT_Q6_K, X + i * ldx, k);
	for (size_t j = 0; j < n; j++) {
		gather_row(xq + xb, W, wrow, nb, j);
		for (size_t i = 0; i < m; i++)
			Y[i * ldy + j] = qvl_qdot_row_ref(QVL_DT_Q6_K, xq + xb, xq + i * rb, k) +
					 (bias ? bias[j] : 0.0f);
	}
}
