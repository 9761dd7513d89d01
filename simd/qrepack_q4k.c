/* The Q4_K case of the load-time repacking (QVL_DT_Q4_K_X8, layout in
 * qrepack.h): a block of 8 rows to and from the file's Q4_K blocks, and
 * the scalar reference of its matmul_fast(), which gathers each row back
 * to Q4_K and runs qdot_ref.c's arithmetic (the ref level gives the same
 * bits on a repacked matrix as on the file's). */
#include "config.h"

#include <errno.h>

#include "kern_impl.h"
#include "qdot.h"
#include "qdot_blocks.h"
#include "qrepack.h"
#include "quant.h"

#define Q4K_BYTES 144

/* Byte offsets of row r's sub-block j scale and min in the SC and MN
 * arrays (qrepack.h). */
static int sc_at(int r, int j)
{
	return 8 * j + r;
}

static int mn_at(int r, int j)
{
	return 16 * (j / 2) + 2 * r + j % 2;
}

/* Six-bit value v stored at index i of the SC (mn 0) or MN (mn 1) array
 * of block x: low four bits in the nibble bytes, top two in the H2 bytes. */
static void put6(uint8_t *x, int i, bool mn, unsigned v)
{
	int sh = 2 * (i / 32) + (mn ? 4 : 0);

	x[32 + i] = (uint8_t)(x[32 + i] | (v & 15) << (mn ? 4 : 0));
	x[96 + i % 32] = (uint8_t)(x[96 + i % 32] | (v >> 4) << sh);
}

static unsigned get6(const uint8_t *x, int i, bool mn)
{
	int sh = 2 * (i / 32) + (mn ? 4 : 0);

	return (unsigned)(x[32 + i] >> (mn ? 4 : 0) & 15) | (unsigned)(x[96 + i % 32] >> sh & 3)
								<< 4;
}

/* The file's 12 scale bytes from the 8 scales and 8 mins (the inverse of
 * qb_k4_scales: every bit of the 12 bytes is one of the 96 value bits). */
static void k4_pack(uint8_t *s, const uint8_t sc[8], const uint8_t mn[8])
{
	for (int j = 0; j < 4; j++) {
		s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
		s[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
		s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
	}
}

/* Row r of a block of 8 rows (1152 bytes at x) from the plain 144 bytes at
 * p; the caller zeroes x first (the scale bits are OR-ed in). */
static void to_x8(uint8_t *x, const uint8_t *p, int r)
{
	uint8_t sc[8], mn[8];

	memcpy(x + 2 * r, p, 2);
	memcpy(x + 16 + 2 * r, p + 2, 2);
	qb_k4_scales(p + QB_K4_SC, sc, mn);
	for (int j = 0; j < 8; j++) {
		put6(x, sc_at(r, j), false, sc[j]);
		put6(x, mn_at(r, j), true, mn[j]);
	}
	for (int c = 0; c < 32; c++)
		memcpy(x + 128 + 32 * c + 4 * r, p + QB_Q4K_QS + 4 * c, 4);
}

void qvl_q4k_x8_row(uint8_t *p, const uint8_t *x, int r)
{
	uint8_t sc[8], mn[8];

	memcpy(p, x + 2 * r, 2);
	memcpy(p + 2, x + 16 + 2 * r, 2);
	for (int j = 0; j < 8; j++) {
		sc[j] = (uint8_t)get6(x, sc_at(r, j), false);
		mn[j] = (uint8_t)get6(x, mn_at(r, j), true);
	}
	k4_pack(p + QB_K4_SC, sc, mn);
	for (int c = 0; c < 32; c++)
		memcpy(p + QB_Q4K_QS + 4 * c, x + 128 + 32 * c + 4 * r, 4);
}

int qvl_q4k_x8_convert(uint8_t *x8, uint8_t *plain, size_t n, size_t k, bool to)
{
	size_t nb = k / QVL_QK_BLK, wrow = nb * Q4K_BYTES;

	if (n % QVL_X8_ROWS || k % QVL_QK_BLK || !k)
		return -EINVAL;
	for (size_t g = 0; g < n / QVL_X8_ROWS; g++) {
		uint8_t *xg = x8 + g * QVL_X8_ROWS * wrow, *pg = plain + g * QVL_X8_ROWS * wrow;
		for (size_t i = 0; i < nb; i++) {
			uint8_t *x = xg + i * QVL_X8_Q4K_BLK;
			if (to)
				memset(x, 0, 128);
			for (int r = 0; r < QVL_X8_ROWS; r++) {
				if (to)
					to_x8(x, pg + r * wrow + i * Q4K_BYTES, r);
				else
					qvl_q4k_x8_row(pg + r * wrow + i * Q4K_BYTES, x, r);
			}
		}
	}
	return 0;
}

/* Block b of row j of a Q4_K_X8 matrix (row stride wrow) as a Q4_K block. */
static void gather_blk(uint8_t *dst, const void *W, size_t wrow, size_t j, size_t b)
{
	const uint8_t *g = (const uint8_t *)W + j / QVL_X8_ROWS * QVL_X8_ROWS * wrow;

	qvl_q4k_x8_row(dst, g + b * QVL_X8_Q4K_BLK, (int)(j % QVL_X8_ROWS));
}

void qvl_qmatmul_q4k_x8_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			    size_t ldw, const float *bias, size_t m, size_t n, size_t k)
{
	size_t nb = k / QVL_QK_BLK, wrow = ldw / QVL_QK_BLK * Q4K_BYTES;
	size_t rb = qvl_qdot_act_bytes(QVL_DT_Q4_K, k), xb = (m * rb + 63) & ~(size_t)63;
	uint8_t *xq = qvl_qact_scratch(xb + nb * Q4K_BYTES);
	uint8_t blk[Q4K_BYTES];

	if (!xq) {
		/* no scratch: the exact product, one block at a time */
		for (size_t j = 0; j < n; j++)
			for (size_t i = 0; i < m; i++) {
				float s = bias ? bias[j] : 0.0f, w[QVL_QK_BLK];
				for (size_t b = 0; b < nb; b++) {
					gather_blk(blk, W, wrow, j, b);
					if (qvl_dequant_row(QVL_DT_Q4_K, blk, w, QVL_QK_BLK))
						memset(w, 0, sizeof(w));
					for (int c = 0; c < QVL_QK_BLK; c++)
						s += w[c] * X[i * ldx + QVL_QK_BLK * b + (size_t)c];
				}
				Y[i * ldy + j] = s;
			}
		return;
	}
	for (size_t i = 0; i < m; i++)
		qvl_qact_row_ref(xq + i * rb, QVL_DT_Q4_K, X + i * ldx, k);
	for (size_t j = 0; j < n; j++) {
		for (size_t b = 0; b < nb; b++)
			gather_blk(xq + xb + b * Q4K_BYTES, W, wrow, j, b);
		for (size_t i = 0; i < m; i++)
			Y[i * ldy + j] = qvl_qdot_row_ref(QVL_DT_Q4_K, xq + xb, xq + i * rb, k) +
					 (bias ? bias[j] : 0.0f);
	}
}
