/* The repacked types' matmul_fast() (qrepack.h) in two halves, included by
 * qdot_avx2.c and qdot_avx512.c after the four X8 kernel headers: the
 * activation rows prepared once (x8_act_make: quantized, plus the per-block
 * terms a type's kernel reads), then the product on them (x8_run).
 * matmul_fast() does both per call; the engine's decode calls a matmul once
 * per chunk of weight rows with the same activation (src/forward.c work
 * sharing), so it prepares the activation once (kernels.h act_make) and
 * each chunk takes the prepared bytes (matmul_act): quantizing per 64-row
 * call was 7-14 % of its CPU time (docs/todo-qfar.md). Both halves are the
 * same code either way, so the results are bit for bit the same.
 *
 * Layout of a prepared activation of m rows of k values: the m rows
 * quantized for the type's base (struct qvl_q8a or qvl_q8k rows, each
 * qvl_qdot_act_bytes() long), padded to 64 bytes, then
 *  - Q4_0_X8, one row: struct qx_act[nb] (qdot_x8.h; the prefill reads the
 *    blocks only);
 *  - Q4_K_X8: struct qk_act[m * nb] (the sub-block sum pairs);
 *  - Q6_K_X8: nothing; the blocks themselves are rearranged (q6x_act);
 *  - Q8_0_X8: nothing. */
#ifndef QVL_QDOT_X8_ACT_H
#define QVL_QDOT_X8_ACT_H

/* the file's type of a repacked one: its activation blocks */
static inline enum qvl_dtype x8_base(enum qvl_dtype t)
{
	return t == QVL_DT_Q4_K_X8   ? QVL_DT_Q4_K
	       : t == QVL_DT_Q6_K_X8 ? QVL_DT_Q6_K
	       : t == QVL_DT_Q8_0_X8 ? QVL_DT_Q8_0
				     : QVL_DT_Q4_0;
}

/* the quantized rows' bytes, padded: where the per-block terms start */
static inline size_t x8_rows_bytes(enum qvl_dtype t, size_t m, size_t k)
{
	return (m * qvl_qdot_act_bytes(x8_base(t), k) + 63) & ~(size_t)63;
}

/* a product these kernels take: repacked type, whole groups of 8 rows,
 * whole activation blocks */
static inline bool x8_shape_ok(enum qvl_dtype t, size_t n, size_t k)
{
	return qvl_dtype_is_repacked(t) && n % QVL_X8_ROWS == 0 &&
	       k % qvl_qdot_act_blk(x8_base(t)) == 0;
}

static inline QD_T size_t x8_act_bytes(enum qvl_dtype t, size_t m, size_t k)
{
	size_t nb = k / qvl_qdot_act_blk(x8_base(t)), rows = x8_rows_bytes(t, m, k);

	if (t == QVL_DT_Q4_0_X8 && m == 1)
		return rows + qx_act_bytes(nb);
	if (t == QVL_DT_Q4_K_X8)
		return rows + m * nb * sizeof(struct qk_act);
	return rows;
}

/* the kernel's own scratch beyond the prepared activation: the prefill
 * panels of the 32-value types */
static inline QD_T size_t x8_scr_bytes(enum qvl_dtype t, size_t m, size_t k)
{
	if (m == 1 || (t != QVL_DT_Q4_0_X8 && t != QVL_DT_Q8_0_X8))
		return 0;
	return qx_prefill_bytes(x8_base(t), k / 32);
}

static QD_T void QD_FN(x8_act_make)(uint8_t *xa, enum qvl_dtype t, const float *X, size_t ldx,
				    size_t m, size_t k)
{
	enum qvl_dtype b = x8_base(t);
	size_t rb = qvl_qdot_act_bytes(b, k), nb = k / qvl_qdot_act_blk(b);
	uint8_t *terms = xa + x8_rows_bytes(t, m, k);

	for (size_t i = 0; i < m; i++)
		qvl_qact_row_avx2(xa + i * rb, b, X + i * ldx, k);
	if (t == QVL_DT_Q4_0_X8 && m == 1)
		qx_act_make((struct qx_act *)(void *)terms, (const struct qvl_q8a *)(void *)xa, nb);
	else if (t == QVL_DT_Q4_K_X8)
		qk_act_make((struct qk_act *)(void *)terms, (const struct qvl_q8k *)(void *)xa,
			    m * nb);
	else if (t == QVL_DT_Q6_K_X8)
		q6x_act((struct qvl_q8k *)(void *)xa, (const struct qvl_q8k *)(void *)xa, m * nb);
}

/* Y = the product on the prepared xa (no bias); scr: x8_scr_bytes() */
static QD_T void QD_FN(x8_run)(float *Y, size_t ldy, const uint8_t *xa, const void *W,
			       enum qvl_dtype t, size_t ldw, size_t m, size_t n, size_t k,
			       uint8_t *scr)
{
	size_t xo = x8_rows_bytes(t, m, k);
	int S = qvl_gemm_blk.qdec_streams;

	if (t == QVL_DT_Q4_K_X8)
		qk_run(Y, ldy, xa, xo, W, ldw, m, n, k, S);
	else if (t == QVL_DT_Q6_K_X8)
		q6x_run(Y, ldy, xa, W, ldw, m, n, k, S);
	else if (t == QVL_DT_Q8_0_X8)
		q8x_run(Y, ldy, xa, W, ldw, m, n, k, scr, S);
	else
		qx_run(Y, ldy, xa, xo, W, ldw, m, n, k, scr, S);
}

/* matmul_fast() of a repacked type: -EINVAL (a shape it does not take) or
 * -ENOMEM (no scratch), nothing written, or 0 */
static QD_T int QD_FN(x8_matmul)(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
				 enum qvl_dtype t, size_t ldw, const float *bias, size_t m,
				 size_t n, size_t k)
{
	size_t ab = x8_act_bytes(t, m, k);
	uint8_t *xa;

	if (!x8_shape_ok(t, n, k))
		return -EINVAL;
	if (!(xa = qvl_qact_scratch(ab + x8_scr_bytes(t, m, k))))
		return -ENOMEM;
	QD_FN(x8_act_make)(xa, t, X, ldx, m, k);
	QD_FN(x8_run)(Y, ldy, xa, W, t, ldw, m, n, k, xa + ab);
	qvl_qdot_add_bias(Y, ldy, bias, m, n);
	return 0;
}

/* The same on an activation x8_act_make() prepared for t, m and k. */
static QD_T int QD_FN(x8_matmul_act)(float *Y, size_t ldy, const uint8_t *xa, const void *W,
				     enum qvl_dtype t, size_t ldw, const float *bias, size_t m,
				     size_t n, size_t k)
{
	size_t sb = x8_scr_bytes(t, m, k);
	uint8_t *scr = NULL;

	if (!x8_shape_ok(t, n, k))
		return -EINVAL;
	if (sb && !(scr = qvl_qact_scratch(sb)))
		return -ENOMEM;
	QD_FN(x8_run)(Y, ldy, xa, W, t, ldw, m, n, k, scr);
	qvl_qdot_add_bias(Y, ldy, bias, m, n);
	return 0;
}

#endif
