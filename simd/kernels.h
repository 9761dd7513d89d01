/* Compute kernels. Every kernel has a scalar reference (`_ref`, always built,
 * the definition of correct) and AVX2 and AVX-512 variants chosen once at
 * start-up from CPUID + XGETBV; QVL_SIMD=ref|avx2|avx512 overrides (a level
 * the CPU lacks is an error). Callers go through the table `qvl_kern`.
 *
 * Conventions: f32 activations, row-major. Weights are [out][in] (PyTorch
 * Linear) in bf16, f16 or f32, widened exactly to f32 inside the kernel, so
 * results equal an f32 computation with the same weights up to summation
 * order. Kernels are single-threaded: the caller splits work across the pool
 * (src/pool.h) by rows/columns and passes each thread its slice, or uses
 * qvl_matmul_pool().
 *
 * Environment: QVL_SIMD=ref|avx2|avx512 (level), QVL_GEMM_SMALL_M=N (m up
 * to which W is streamed instead of packed; default 16, benchmarks). The
 * precision of the matrix products is not global: each engine and vision
 * tower picks matmul or matmul_fast from its creation options.
 * Kernels use up to 64 KiB of stack (a packed weight panel). */
#ifndef QVL_KERNELS_H
#define QVL_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../src/model.h" /* enum qvl_dtype */

enum qvl_simd_level {
	QVL_SIMD_REF,
	QVL_SIMD_AVX2,	 /* AVX2 + FMA + F16C */
	QVL_SIMD_AVX512, /* AVX-512 F/BW/VL (+ BF16 where present) */
};

/* How matrix products treat activations (`--precision`):
 * EXACT: f32 activations times exactly widened weights (the golden tests);
 * BF16:  matmul_fast(): bf16 activations for bf16 weights where the CPU has
 *        AVX512-BF16, int8 activation blocks for quantized weights; norms,
 *        softmax, residual and accumulation stay f32. The default. */
enum qvl_precision {
	QVL_PREC_BF16,
	QVL_PREC_EXACT,
};

/* One KV head of a paged cache as attn_paged() reads it: page p's K rows
 * start at base + p * page_bytes + k_off, its V rows at ... + v_off, rows
 * `stride` elements of `type` apart. */
struct qvl_kv_view {
	const uint8_t *base;
	const uint32_t *ids; /* page of rows [i * page_rows, (i + 1) * page_rows) */
	size_t page_bytes, page_rows, k_off, v_off, stride;
	enum qvl_dtype type;
};

struct qvl_kernels {
	enum qvl_simd_level level;
	const char *name;

	/* Y[m][n] = X[m][k] · W[n][k]ᵀ (+ bias[n] if bias != NULL).
	 * W rows are ldw elements apart (ldw >= k), X rows ldx floats, Y rows ldy.
	 * wtype is QVL_DT_F32, QVL_DT_BF16 or QVL_DT_F16 (Q8_0/Q4_0: k % 32 == 0).
	 * m == 1 is the matrix-vector case and must run at memory bandwidth. */
	void (*matmul)(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
		       enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m, size_t n,
		       size_t k);

	/* matmul() at the fast precision (enum qvl_precision QVL_PREC_BF16):
	 * same contract, but activations may be rounded before the products:
	 * to bf16 for bf16 weights where the CPU has AVX512-BF16 (vdpbf16ps),
	 * to int8 blocks for block-quantized weights (integer dot products, as
	 * llama.cpp does), f32 accumulation always. Types it has no fast path
	 * for go to matmul(). simd/matmul_fast.c is the per-type dispatcher. */
	void (*matmul_fast)(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			    enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,
			    size_t n, size_t k);

	/* matmul_fast() in two halves, for one product taken in many calls
	 * with the same X (the decode's work sharing, src/forward.c): X
	 * prepared once by act_make() into act_bytes() bytes (int8 blocks and
	 * the per-block terms the kernel reads), then matmul_act() on it for
	 * each slice of W: bit for bit matmul_fast() on X, without quantizing
	 * X again per call. act_bytes() is 0 where matmul_fast() has no such
	 * path (then call it); NULL (all three) at the ref level. matmul_act()
	 * also takes X for its fallback (matmul_fast()) when the slice is not
	 * a shape the kernel takes or its scratch cannot be had. */
	size_t (*act_bytes)(enum qvl_dtype wtype, size_t m, size_t k);
	void (*act_make)(void *xa, enum qvl_dtype wtype, const float *X, size_t ldx, size_t m,
			 size_t k);
	void (*matmul_act)(float *Y, size_t ldy, const float *X, size_t ldx, const void *xa,
			   const void *W, enum qvl_dtype wtype, size_t ldw, const float *bias,
			   size_t m, size_t n, size_t k);
	/* act_make() in parts: rows [r0, r1) x columns [c0, c1) of X (m x k,
	 * X its first row) into xa, the bytes act_make() writes for them, so
	 * that the parts make act_make()'s whole. false (nothing written)
	 * for the types whose preparation is not per value (the X8 blocks'
	 * scales); an empty part asks. */
	bool (*act_part)(void *xa, enum qvl_dtype wtype, const float *X, size_t ldx, size_t m,
			 size_t k, size_t r0, size_t r1, size_t c0, size_t c1);

	/* y = x / sqrt(mean(x²) + eps) ⊙ w, over n elements; y may equal x. */
	void (*rmsnorm)(float *y, const float *x, const float *w, size_t n, float eps);
	/* Residual add fused with the next norm: x += r, then y = rmsnorm(x) ⊙ w.
	 * Saves the pass that would re-read x from memory between add() and
	 * rmsnorm() (x and r are read once; y may equal x). */
	void (*add_rmsnorm)(float *y, float *x, const float *r, const float *w, size_t n,
			    float eps);
	/* y = (x - mean) / sqrt(var + eps) ⊙ w + b (LayerNorm, biased variance). */
	void (*layernorm)(float *y, const float *x, const float *w, const float *b, size_t n,
			  float eps);
	/* x += y, over n. */
	void (*add)(float *x, const float *y, size_t n);
	/* out[i] = silu(gate[i]) * up[i]. */
	void (*silu_mul)(float *out, const float *gate, const float *up, size_t n);
	/* x[i] = gelu_tanh(x[i]) (gelu_pytorch_tanh). */
	void (*gelu_tanh)(float *x, size_t n);
	/* x[i] = gelu_erf(x[i]) (nn.GELU() exact). */
	void (*gelu_erf)(float *x, size_t n);
	/* In-place softmax over n (max-subtracted). */
	void (*softmax)(float *x, size_t n);

	/* Rotate-half RoPE on one head of length 2*half: pairs (i, i+half) rotated
	 * by angle with cos[i], sin[i], i < half. */
	void (*rope)(float *x, const float *cos, const float *sin, size_t half);

	/* Per-head q/k norm fused with RoPE: x = rope(rmsnorm(x) ⊙ w) over one
	 * head of 2*half values, in place. The head is normalised and rotated
	 * in one pass while it is in registers (rmsnorm() then rope() read and
	 * write it twice). */
	void (*rmsnorm_rope)(float *x, const float *w, const float *cos, const float *sin,
			     size_t half, float eps);

	/* Attention for one query head over nkv cached positions, blockwise with an
	 * online softmax (no score matrix): out[d] = Σ_j softmax(q·K_j·scale) V_j[d].
	 * K and V rows are `kv_stride` elements apart, stored as kvtype
	 * (QVL_DT_F32, QVL_DT_BF16 or QVL_DT_F16). Causality is the caller's choice
	 * of nkv. */
	void (*attn_head)(float *out, const float *q, const void *K, const void *V,
			  enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			  float scale);

	/* attn_head() for nq query heads that share one KV head (GQA): q and
	 * out hold nq heads, dim floats apart. K and V are read once for the
	 * whole group instead of once per query head. */
	void (*attn_gqa)(float *out, const float *q, size_t nq, const void *K, const void *V,
			 enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,
			 float scale);

	/* Convert n values to f32 / from f32 (round to nearest even) for KV caches. */
	void (*to_f32)(float *dst, const void *src, enum qvl_dtype type, size_t n);
	void (*from_f32)(void *dst, enum qvl_dtype type, const float *src, size_t n);

	/* Index of the largest of x[0..n) (the first one on ties), its value
	 * in *max. NaN never compares larger; when no value exceeds -INFINITY
	 * (n == 0, all -inf or NaN) the result is 0 and *max is -INFINITY.
	 * Greedy decoding over the logits without writing them (forward.c). */
	size_t (*argmax)(const float *x, size_t n, float *max);

	/* attn_gqa() over a paged KV cache (src/kvpool.h): row j of the head
	 * is row j % page_rows of page ids[j / page_rows]. Bit-identical to
	 * attn_gqa() on the same rows stored contiguously when page_rows is a
	 * multiple of 64 (the blocks of the online softmax). */
	void (*attn_paged)(float *out, const float *q, size_t nq, const struct qvl_kv_view *kv,
			   size_t nkv, size_t dim, float scale);

	/* attn_paged() for `rows` consecutive positions of one sequence (causal
	 * prefill): row r's nq query heads are at q + r * ldq, its output at
	 * out + r * ldo, and it sees the first nkv0 + r rows of kv. Each row's
	 * result is bit for bit attn_paged() of that row alone (the decode
	 * step), whatever the number of rows: the tile only shares the widening
	 * of each K/V block among its rows and heads. */
	void (*attn_tile)(float *out, size_t ldo, const float *q, size_t ldq, size_t nq,
			  size_t rows, const struct qvl_kv_view *kv, size_t nkv0, size_t dim,
			  float scale);

	/* The vision tower's exact attention on its own register tile
	 * (simd/vattn_f32.h: K and V in its panel layouts, softmax the level's
	 * softmax()); NULL at the levels that have none, where the tower
	 * multiplies with matmul() (src/vision.c). */
	void (*vattn_f32)(float *out, size_t ldo, const float *q, size_t ldq, size_t nq,
			  const float *kp, const float *v, size_t n, size_t hv, float scale,
			  void (*softmax)(float *x, size_t n), float *scratch);
};

/* The active table, valid after qvl_kernels_init(). */
extern struct qvl_kernels qvl_kern;

/* Fill qvl_kern from CPUID/XGETBV and $QVL_SIMD. Idempotent. Returns 0 or
 * -EINVAL (with err) when QVL_SIMD names an unknown level or one the CPU or
 * OS does not support. */
int qvl_kernels_init(struct qvl_err *err);
/* Fill *k with a specific level (tests compare levels). -ENOTSUP if absent. */
int qvl_kernels_get(struct qvl_kernels *k, enum qvl_simd_level level);
/* QVL_QDECODE_ROWS (benchmarks): the weight rows each call of a decode
 * product (up to 16 rows; src/forward.c share_chunk) takes, a multiple of
 * 16; 0 when not set (forward.c's own policy). Read once with the other
 * blocking knobs (simd/dispatch.c), valid after qvl_kernels_get(). */
size_t qvl_qdecode_rows(void);
/* Highest level this CPU and OS support. */
enum qvl_simd_level qvl_simd_detect(void);
const char *qvl_simd_name(enum qvl_simd_level level);
/* AVX512-BF16 usable (vdpbf16ps). */
bool qvl_cpu_has_avx512bf16(void);
/* Whether k's matmul_fast multiplies bf16 weights with vdpbf16ps (the avx512
 * level on a CPU with AVX512-BF16); elsewhere it is matmul for them. */
bool qvl_kernels_bf16dot(const struct qvl_kernels *k);

/* "bf16" | "exact" (the --precision values) <-> enum; -EINVAL otherwise. */
const char *qvl_precision_name(enum qvl_precision p);
int qvl_precision_parse(const char *s, enum qvl_precision *out);

/* Y = X · Wᵀ (+ bias) on all threads of pool (src/pool.h), with qvl_kern's
 * matmul: split by output columns (whole W panels per thread, so every W row
 * is read by one thread only) or, when n is too small to share, by rows of X.
 * Call from the pool's owner thread. */
struct qvl_pool;
void qvl_matmul_pool(struct qvl_pool *pool, float *Y, size_t ldy, const float *X, size_t ldx,
		     const void *W, enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,
		     size_t n, size_t k);

/* bf16 <-> f32 helpers (exact widening; rounding narrowing). */
static inline float qvl_bf16_to_f32(uint16_t h)
{
	union {
		uint32_t u;
		float f;
	} v = {.u = (uint32_t)h << 16};
	return v.f;
}
static inline uint16_t qvl_f32_to_bf16(float f)
{
	union {
		uint32_t u;
		float f;
	} v = {.f = f};
	if ((v.u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a quiet NaN */
		return (uint16_t)((v.u >> 16) | 0x40);
	return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
float qvl_f16_to_f32(uint16_t h);
uint16_t qvl_f32_to_f16(float f);

#endif
