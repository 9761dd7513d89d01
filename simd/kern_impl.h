/* Internal to simd/: the per-ISA kernel entry points that simd/dispatch.c
 * puts into the table, and small helpers every implementation shares (row
 * addressing and the exact widening of block-quantized weights). */
#ifndef QVL_KERN_IMPL_H
#define QVL_KERN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* Byte offset of weight row j when rows are ldw elements apart. Block types
 * require ldw to be whole blocks, checked by the caller (model loader); t
 * is a valid dtype (the table is indexed inline: called per row). */
static inline const uint8_t *qvl_wrow(const void *W, enum qvl_dtype t, size_t ldw, size_t j)
{
	const struct qvl_dtype_info *di = &qvl_dtype_table[t];

	return (const uint8_t *)W + j * (ldw / di->blk) * di->blk_bytes;
}

/* The m == 1 products read 4 weight rows per step, one from each quarter
 * of the n rows (q = (n + 3) / 4 rows a quarter): step j reads rows j,
 * j + q, j + 2q, j + 3q. Each quarter is one sequential stream across many
 * rows, so the hardware prefetcher runs ahead in 4 independent streams (as
 * the bandwidth probe reads); 4 adjacent rows start 4 new short streams
 * every step instead (bf16 2b decode 12.1 -> 15.2 tok/s on Zen 5). A row
 * past n maps to row j: computed, never stored. */
static inline size_t qvl_far_row(size_t j, int r, size_t q, size_t n)
{
	size_t row = j + (size_t)r * q;

	return row < n ? row : j;
}

/* How many of the nf far rows of step j (j, j + q, j + 2q, ...) are below
 * n: the ones a step stores (the others map to row j and are dropped).
 * Always at least 1, since j < q <= n. */
static inline int qvl_far_count(size_t j, int nf, size_t q, size_t n)
{
	int nr = 1;

	while (nr < nf && j + (size_t)nr * q < n)
		nr++;
	return nr;
}

/* y[j + r * q] = out[r] (+ bias) for the nr stored far rows of step j. */
static inline void qvl_far_store(float *y, const float *out, int nr, size_t j, size_t q,
				 const float *bias)
{
	for (int r = 0; r < nr; r++)
		y[j + (size_t)r * q] = out[r] + (bias ? bias[j + (size_t)r * q] : 0.0f);
}

static inline uint16_t qvl_load_u16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static inline uint32_t qvl_load_u32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Widen one 32-value block to f32 exactly as llama.cpp defines it. */
static inline void qvl_deq_block(float *dst, const uint8_t *blk, enum qvl_dtype t)
{
	float d = qvl_f16_to_f32(qvl_load_u16(blk));

	if (t == QVL_DT_Q8_0) {
		for (int i = 0; i < 32; i++)
			dst[i] = d * (float)(int8_t)blk[2 + i];
	} else {
		for (int i = 0; i < 16; i++) {
			dst[i] = d * (float)((blk[2 + i] & 15) - 8);
			dst[i + 16] = d * (float)((blk[2 + i] >> 4) - 8);
		}
	}
}

#define QVL_KERN_DECL(isa)                                                                         \
	void qvl_matmul_##isa(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,     \
			      enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,       \
			      size_t n, size_t k);                                                 \
	void qvl_matmul_fast_##isa(float *Y, size_t ldy, const float *X, size_t ldx,               \
				   const void *W, enum qvl_dtype wtype, size_t ldw,                \
				   const float *bias, size_t m, size_t n, size_t k);               \
	void qvl_rmsnorm_##isa(float *y, const float *x, const float *w, size_t n, float eps);     \
	void qvl_add_rmsnorm_##isa(float *y, float *x, const float *r, const float *w, size_t n,   \
				   float eps);                                                     \
	void qvl_layernorm_##isa(float *y, const float *x, const float *w, const float *b,         \
				 size_t n, float eps);                                             \
	void qvl_add_##isa(float *x, const float *y, size_t n);                                    \
	void qvl_silu_mul_##isa(float *out, const float *gate, const float *up, size_t n);         \
	void qvl_gelu_tanh_##isa(float *x, size_t n);                                              \
	void qvl_gelu_erf_##isa(float *x, size_t n);                                               \
	void qvl_softmax_##isa(float *x, size_t n);                                                \
	void qvl_rope_##isa(float *x, const float *cos, const float *sin, size_t half);            \
	void qvl_rmsnorm_rope_##isa(float *x, const float *w, const float *cos, const float *sin,  \
				    size_t half, float eps);                                       \
	void qvl_attn_gqa_##isa(float *out, const float *q, size_t nq, const void *K,              \
				const void *V, enum qvl_dtype kvtype, size_t kv_stride,            \
				size_t nkv, size_t dim, float scale);                              \
	void qvl_attn_head_##isa(float *out, const float *q, const void *K, const void *V,         \
				 enum qvl_dtype kvtype, size_t kv_stride, size_t nkv, size_t dim,  \
				 float scale);                                                     \
	void qvl_to_f32_##isa(float *dst, const void *src, enum qvl_dtype type, size_t n);         \
	void qvl_from_f32_##isa(void *dst, enum qvl_dtype type, const float *src, size_t n);       \
	size_t qvl_argmax_##isa(const float *x, size_t n, float *max);                            \
	void qvl_attn_paged_##isa(float *out, const float *q, size_t nq,                          \
				  const struct qvl_kv_view *kv, size_t nkv, size_t dim,           \
				  float scale);                                                   \
	void qvl_attn_tile_##isa(float *out, size_t ldo, const float *q, size_t ldq, size_t nq,   \
				 size_t rows, const struct qvl_kv_view *kv, size_t nkv0,           \
				 size_t dim, float scale)

/* Weight types every level's matmul widens in registers itself; the others
 * go through qvl_matmul_deq (simd/matmul_deq.c). */
static inline bool qvl_matmul_widens(enum qvl_dtype t)
{
	return t == QVL_DT_F32 || t == QVL_DT_F16 || t == QVL_DT_BF16 || t == QVL_DT_Q8_0 ||
	       t == QVL_DT_Q4_0;
}

typedef void (*qvl_matmul_fn)(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			      enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,
			      size_t n, size_t k);
/* Y = X W^T + bias for any block type: rows of W dequantized into an f32
 * panel that f32mm (a level's matmul) multiplies. */
void qvl_matmul_deq(qvl_matmul_fn f32mm, float *Y, size_t ldy, const float *X, size_t ldx,
		    const void *W, enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,
		    size_t n, size_t k);

QVL_KERN_DECL(ref);
QVL_KERN_DECL(avx2);
QVL_KERN_DECL(avx512);

/* The prepared-activation matmul (kernels.h act_bytes, act_make,
 * matmul_act; simd/matmul_fast.c QVL_MATMUL_ACT): the SIMD levels only,
 * ref has none. */
#define QVL_KERN_ACT_DECL(isa)                                                                     \
	size_t qvl_act_bytes_##isa(enum qvl_dtype wtype, size_t m, size_t k);                      \
	void qvl_act_make_##isa(void *xa, enum qvl_dtype wtype, const float *X, size_t ldx,        \
				size_t m, size_t k);                                               \
	void qvl_matmul_act_##isa(float *Y, size_t ldy, const float *X, size_t ldx,                \
				  const void *xa, const void *W, enum qvl_dtype wtype, size_t ldw, \
				  const float *bias, size_t m, size_t n, size_t k);                \
	bool qvl_act_part_##isa(void *xa, enum qvl_dtype wtype, const float *X, size_t ldx,        \
				size_t m, size_t k, size_t r0, size_t r1, size_t c0, size_t c1)

QVL_KERN_ACT_DECL(avx2);
QVL_KERN_ACT_DECL(avx512);
/* the avx512 table's matmul_act (simd/matmul_fast.c) */
void qvl_matmul_act_avx512a2(float *Y, size_t ldy, const float *X, size_t ldx, const void *xa,
			     const void *W, enum qvl_dtype wtype, size_t ldw, const float *bias,
			     size_t m, size_t n, size_t k);

/* the bf16 panels' act_make in parts (simd/matmul_bf16p_avx512.c) */
void qvl_bf16p_act_part(void *xa, const float *X, size_t ldx, size_t k, size_t r0, size_t r1,
			size_t c0, size_t c1);

/* AVX512-BF16 opt-in matmul (activations rounded to bf16; not exact). */
void qvl_matmul_bf16dot_avx512(float *Y, size_t ldy, const float *X, size_t ldx, const void *W,
			       enum qvl_dtype wtype, size_t ldw, const float *bias, size_t m,
			       size_t n, size_t k);

/* Default of qvl_gemm_blk.qdec_streams: far-apart row streams of a
 * repacked decode call (qdot_x8_act.h). 4 with 512-row calls (SHARE_CHUNK_Q,
 * src/forward.c): q4_0 decode 35.6 -> 40.8 tok/s, q8_0 at avx2 22.7 -> 25.3
 * (alternated, quiet, tenth session; docs/status.md). The AVX2 Q6_K decode
 * too: the q4_k_m logits 0.86x the time of one stream with its prefetch
 * (twenty-third session, Zen 3; docs/todo-avx2host.md). */
#define QVL_QDEC_STREAMS 4

/* Default of qvl_gemm_blk.qdec_pf (and of qdec_pf1 on an AVX-512 CPU): the
 * Q4_0_X8 decode's software prefetch distance on each stream, measured on
 * a Zen 5. Its streams ran at 0.75-0.85 of the bandwidth
 * probe, and a load-only twin of its accesses no faster (docs/todo-qload.md):
 * the hardware prefetcher alone keeps too few lines in flight. 2 KiB ahead
 * (T0): +10-11 % q4_0 decode tok/s in the quiet rounds, alternated; 512 and
 * 4096 lost. The K types and Q8_0 gained nothing measurable, except Q6_K
 * read in one stream (its 512-bit decode; at AVX2 with QVL_QDECODE_STREAMS
 * 1): beside 4 streams it lost. */
#define QVL_QDEC_PF 2048

/* Default of qvl_gemm_blk.qdec_pf1, the one-row Q4_0_X8 decode's distance
 * (qx_rows_ymm; the batches' first passes keep qdec_pf): QVL_QDEC_PF where
 * the CPU has AVX-512 (the Zen 5 gain above), none elsewhere. On a Zen 3
 * (AVX2 only) the prefetch cost the q4_0 decode's Q4_0 stage a fifth of
 * its time: gate/up over the logits (Q6_K, no prefetch) 1.74-1.88 with it,
 * 1.33-1.55 without, 6 alternated rounds, lower in all 6; the harness's
 * Q4_0_X8 stream rate over Q8_0_X8's 0.74 against 0.92 (twenty-fourth
 * session, docs/todo-avx2host.md). Batches of 4 and 16 were even or
 * better with it there, so only the one-row decode drops it. */
#define QVL_QDEC_PF1_AVX2 0

/* Default of qvl_gemm_blk.bf16p_pf: the bf16 panel matvec's (bp_matvec)
 * prefetch distance on each of its 4 panel streams, NTA. 1 KiB ahead: +7-13
 * % of its streaming rate on the 2b shapes, 512-row claims, 2 threads (wall
 * and CPU time, 18 samples alternated, docs/todo-b16d.md); 512 bytes gained
 * nothing, 768, 1536 and T0 at 768 less. */
#define QVL_BF16P_PF 1024

/* Blocking parameters for the m > 1 kernels, derived once from the cache
 * sizes (simd/dispatch.c). */

struct qvl_gemm_blocking {
	size_t kc;	/* depth of one packed panel */
	size_t small_m; /* m up to this streams W (no packing) */
	/* the same at the avx2 level: its 4x3 streaming tile beats the
	 * packed GEMM up to 64 rows (matmul_avx2.c) */
	size_t small_m_avx2;
	size_t x_bytes; /* per-thread share of L3 for a block of X rows */
	/* repacked (X8) decode: row streams read at once, far apart (1-4;
	 * qdot_x8_act.h) */
	int qdec_streams;
	/* rows per claim of a decode product (QVL_QDECODE_ROWS, a
	 * multiple of 16); 0: not set, src/forward.c's share_chunk()
	 * picks (kernels.h qvl_qdecode_rows()) */
	size_t qdec_rows;
	/* bytes ahead of each stream the Q4_0_X8, Q8_0_X8, Q4_K_X8 and
	 * Q6_K_X8 small-m passes prefetch (QVL_QDECODE_PF, benchmarks; 0:
	 * none) */
	size_t qdec_pf;
	/* the same for the one-row Q4_0_X8 decode (QVL_QDECODE_PF sets both;
	 * default by host, QVL_QDEC_PF1_AVX2) */
	size_t qdec_pf1;
	/* bytes ahead of each panel stream the bf16 panel matvec
	 * prefetches (QVL_BF16P_PF, benchmarks; 0: none) */
	size_t bf16p_pf;
};
extern struct qvl_gemm_blocking qvl_gemm_blk;

/* The lines of [p, p + len) d bytes ahead into L1 (d: qvl_gemm_blk.qdec_pf,
 * read once per call by the caller), for a decode kernel reading its row
 * streams at p (prefetch never faults, so past a claim or a matrix is
 * harmless). One prefetch per 48 bytes: every line of a stream of len-byte
 * steps is asked for once or twice. */
static inline __attribute__((always_inline)) void qvl_qdec_pf(const uint8_t *p, size_t len,
							       size_t d)
{
	if (!d)
		return;
	for (size_t c = 0; c < len; c += 48)
		__builtin_prefetch(p + d + c, 0, 3);
}

#endif
