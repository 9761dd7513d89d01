/* Scalar reference kernels: the definition of correct that every SIMD
 * variant is tested against (tests/test_kernels.c). Plain C, straightforward
 * loops; sums that decide accuracy (norms, softmax) accumulate in double so
 * the reference is at least as accurate as what it checks. */
#include "config.h"

#include <math.h>

#include "kern_impl.h"
#include "quant.h"

/* One row of W widened to f32, 32 values at a time for block types. */
static float dot_row(const float *x, const uint8_t *w, enum qvl_dtype t, size_t k)
{
	float acc = 0.0f;

	switch (t) {
	case QVL_DT_F32:
		for (size_t i = 0; i < k; i++) {
			float v;
			memcpy(&v, w + 4 * i, 4);
			acc += x[i] * v;
		}
		break;
	case QVL_DT_BF16:
		for (size_t i = 0; i < k; i++)
			acc += x[i] * qvl_bf16_to_f32(qvl_load_u16(w + 2 * i));
		break;
	case QVL_DT_F16:
		for (size_t i = 0; i < k; i++)
			acc += x[i] * qvl_f16_to_f32(qvl_load_u16(w + 2 * i));
		break;
	default: {
		/* block types: widen one block at a time (32 or 256 values) */
		const struct qvl_dtype_info *di = qvl_dtype_info(t);
		float tmp[QVL_QK_K];

		for (size_t b = 0; b < k / di->blk; b++) {
			qvl_dequant_row(t, w + b * di->blk_bytes, tmp, di->blk);
			for (uint32_t i = 0; i < di->blk; i++)
				acc += x[di->blk * b + i] * tmp[i];
		}
		break;
	}
	}
	return acc;
}

void qvl_matmul_ref(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		    enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		    size_t k)
{
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++)
			Y[i * ldy + j] =
			    dot_row(X + i * ldx, qvl_wrow(W, wtype, ldw, j), wtype, k) +
			    (bias ? bias[j] : 0.0f);
}

void qvl_rmsnorm_ref(float *y, const float *x, const float *w, size_t n, float eps)
{
	double ss = 0.0;

	for (size_t i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	float r = (float)(1.0 / sqrt(ss / (double)n + eps));
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] * r * w[i];
}

void qvl_add_rmsnorm_ref(float *y, float *x, const float *r, const float *w, size_t n, float eps)
{
	qvl_add_ref(x, r, n);
	qvl_rmsnorm_ref(y, x, w, n, eps);
}

void qvl_layernorm_ref(float *y, const float *x, const float *w, const float *b, size_t n,
		       float eps)
{
	double s = 0.0, ss = 0.0;

	for (size_t i = 0; i < n; i++)
		s += x[i];
	double mean = s / (double)n;
	for (size_t i = 0; i < n; i++)
		ss += (x[i] - mean) * (x[i] - mean);
	float r = (float)(1.0 / sqrt(ss / (double)n + eps));
	float mf = (float)mean;
	for (size_t i = 0; i < n; i++)
		y[i] = (x[i] - mf) * r * w[i] + b[i];
}

void qvl_add_ref(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] += y[i];
}

void qvl_silu_mul_ref(float *out, const float *gate, const float *up, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void qvl_gelu_tanh_ref(float *x, size_t n)
{
	const float c = 0.7978845608028654f; /* sqrt(2/pi) */

	for (size_t i = 0; i < n; i++) {
		float v = x[i];
		x[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
	}
}

void qvl_gelu_erf_ref(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void qvl_softmax_ref(float *x, size_t n)
{
	float mx = -INFINITY;
	double s = 0.0;

	for (size_t i = 0; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	for (size_t i = 0; i < n; i++) {
		x[i] = expf(x[i] - mx);
		s += x[i];
	}
	float r = (float)(1.0 / s);
	for (size_t i = 0; i < n; i++)
		x[i] *= r;
}

void qvl_rope_ref(float *x, const float *cos, const float *sin, size_t half)
{
	for (size_t i = 0; i < half; i++) {
		float a = x[i], b = x[i + half];
		x[i] = a * cos[i] - b * sin[i];
		x[i + half] = b * cos[i] + a * sin[i];
	}
}

void qvl_rmsnorm_rope_ref(float *x, const float *w, const float *cos, const float *sin, size_t half,
			  float eps)
{
	qvl_rmsnorm_ref(x, x, w, 2 * half, eps);
	qvl_rope_ref(x, cos, sin, half);
}

static float kv_get(const void *base, enum qvl_dtype t, size_t idx)
{
	const uint8_t *b = base;
	float f;

	switch (t) {
	case QVL_DT_BF16:
		return qvl_bf16_to_f32(qvl_load_u16(b + 2 * idx));
	case QVL_DT_F16:
		return qvl_f16_to_f32(qvl_load_u16(b + 2 * idx));
	default:
		memcpy(&f, b + 4 * idx, 4);
		return f;
	}
}

/* Online softmax (Milakov & Gimelshein): keep the running max m and the sum
 * l; when m grows, rescale what was accumulated by exp(m_old - m_new). The
 * output buffer is the accumulator, so no scratch of size dim is needed. */
void qvl_attn_head_ref(float *out, const float *q, const void *K, const void *V,
		       enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim, float scale)
{
	float m = -INFINITY, l = 0.0f;

	for (size_t d = 0; d < dim; d++)
		out[d] = 0.0f;
	for (size_t j = 0; j < nkv; j++) {
		float s = 0.0f;
		for (size_t d = 0; d < dim; d++)
			s += q[d] * kv_get(K, kvtype, j * kv_stride + d);
		s *= scale;
		float mn = s > m ? s : m;
		float corr = expf(m - mn), p = expf(s - mn);
		l = l * corr + p;
		for (size_t d = 0; d < dim; d++)
			out[d] = out[d] * corr + p * kv_get(V, kvtype, j * kv_stride + d);
		m = mn;
	}
	if (l > 0.0f)
		for (size_t d = 0; d < dim; d++)
			out[d] /= l;
}

void qvl_attn_gqa_ref(float *out, const float *q, size_t nq, const void *K, const void *V,
		      enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim, float scale)
{
	for (size_t h = 0; h < nq; h++)
		qvl_attn_head_ref(out + h * dim, q + h * dim, K, V, kvtype, kv_stride, nkv, dim,
				  scale);
}

/* attn_head_ref row by row through the page table: the order of the sums
 * is the contiguous one whatever the page size. */
void qvl_attn_paged_ref(float *out, const float *q, size_t nq, const struct qvl_kv_view *kv,
			size_t nkv, size_t dim, float scale)
{
	for (size_t h = 0; h < nq; h++) {
		const float *qh = q + h * dim;
		float *o = out + h * dim, m = -INFINITY, l = 0.0f;

		for (size_t d = 0; d < dim; d++)
			o[d] = 0.0f;
		for (size_t j = 0; j < nkv; j++) {
			const uint8_t *pg = kv->base + (size_t)kv->ids[j / kv->page_rows] * kv->page_bytes;
			size_t off = (j % kv->page_rows) * kv->stride;
			float s = 0.0f;

			for (size_t d = 0; d < dim; d++)
				s += qh[d] * kv_get(pg + kv->k_off, kv->type, off + d);
			s *= scale;
			float mn = s > m ? s : m;
			float corr = expf(m - mn), p = expf(s - mn);
			l = l * corr + p;
			for (size_t d = 0; d < dim; d++)
				o[d] = o[d] * corr + p * kv_get(pg + kv->v_off, kv->type, off + d);
			m = mn;
		}
		if (l > 0.0f)
			for (size_t d = 0; d < dim; d++)
				o[d] /= l;
	}
}

void qvl_to_f32_ref(float *dst, const void *src, enum qvl_dtype type, size_t n)
{
	if (qvl_dtype_is_block(type)) {
		qvl_dequant_row(type, src, dst, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = kv_get(src, type, i);
}

void qvl_from_f32_ref(void *dst, enum qvl_dtype type, const float *src, size_t n)
{
	uint8_t *d = dst;

	for (size_t i = 0; i < n; i++) {
		uint16_t h;
		switch (type) {
		case QVL_DT_BF16:
			h = qvl_f32_to_bf16(src[i]);
			memcpy(d + 2 * i, &h, 2);
			break;
		case QVL_DT_F16:
			h = qvl_f32_to_f16(src[i]);
			memcpy(d + 2 * i, &h, 2);
			break;
		default:
			memcpy(d + 4 * i, &src[i], 4);
			break;
		}
	}
}

/* Row by row: each row is attn_paged_ref of that row, so the tile is
 * trivially the decode step. */
void qvl_attn_tile_ref(float *out, size_t ldo, const float *q, size_t ldq, size_t nq, size_t rows,
		       const struct qvl_kv_view *kv, size_t nkv0, size_t dim, float scale)
{
	for (size_t r = 0; r < rows; r++)
		qvl_attn_paged_ref(out + r * ldo, q + r * ldq, nq, kv, nkv0 + r, dim, scale);
}
