/* The kernel table: filled once from what the CPU and OS support
 * (simd/cpu.c), or from $QVL_SIMD, which is an error when it names a level
 * this machine cannot run rather than a silent fallback. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kern_impl.h"
#include "env.h"
#include "pool.h"
#include "vattn_f32.h"

struct qvl_kernels qvl_kern;
struct qvl_gemm_blocking qvl_gemm_blk = {
    .kc = 256,
    .small_m = 16,
    .small_m_avx2 = 64,
    .x_bytes = 4 << 20,
    .qdec_streams = QVL_QDEC_STREAMS,
    .qdec_pf = QVL_QDEC_PF,
    .qdec_pf1 = QVL_QDEC_PF,
    .bf16p_pf = QVL_BF16P_PF,
};

static const char *const level_names[] = {"ref", "avx2", "avx512"};

const char *qvl_simd_name(enum qvl_simd_level level)
{
	return (unsigned)level < 3 ? level_names[level] : "?";
}

#define FILL(k, isa)                                                                               \
	do {                                                                                       \
		(k)->matmul = qvl_matmul_##isa;                                                    \
		(k)->matmul_fast = qvl_matmul_fast_##isa;                                          \
		(k)->rmsnorm = qvl_rmsnorm_##isa;                                                  \
		(k)->add_rmsnorm = qvl_add_rmsnorm_##isa;                                          \
		(k)->layernorm = qvl_layernorm_##isa;                                              \
		(k)->add = qvl_add_##isa;                                                          \
		(k)->silu_mul = qvl_silu_mul_##isa;                                                \
		(k)->gelu_tanh = qvl_gelu_tanh_##isa;                                              \
		(k)->gelu_erf = qvl_gelu_erf_##isa;                                                \
		(k)->softmax = qvl_softmax_##isa;                                                  \
		(k)->rope = qvl_rope_##isa;                                                        \
		(k)->attn_head = qvl_attn_head_##isa;                                              \
		(k)->attn_gqa = qvl_attn_gqa_##isa;                                                \
		(k)->rmsnorm_rope = qvl_rmsnorm_rope_##isa;                                        \
		(k)->to_f32 = qvl_to_f32_##isa;                                                    \
		(k)->from_f32 = qvl_from_f32_##isa;                                                \
		(k)->argmax = qvl_argmax_##isa;                                                    \
		(k)->attn_paged = qvl_attn_paged_##isa;                                            \
		(k)->attn_tile = qvl_attn_tile_##isa;                                              \
	} while (0)

/* the prepared-activation matmul (kernels.h act_bytes): not at ref */
#define FILL_ACT(k, isa)                                                                           \
	do {                                                                                       \
		(k)->act_bytes = qvl_act_bytes_##isa;                                              \
		(k)->act_make = qvl_act_make_##isa;                                                \
		(k)->matmul_act = qvl_matmul_act_##isa;                                            \
		(k)->act_part = qvl_act_part_##isa;                                                \
	} while (0)

/* Panel depth for the packed kernels, from the L1d size: a 32-row panel of
 * kc f32 values is L1d-sized (32 KiB -> kc = 256), refilled from L2 while
 * the 8 X rows it meets stream from L1. On Zen 4 (512x2048x2048 and
 * 512x2048x6144, one thread) kc 64/128/256/384/512 gave 77/89/95/96/77
 * GFLOP/s; the larger kc, the fewer passes over the output tile. */
static void blocking_init(void)
{
	struct qvl_cache_info ci;
	size_t kc;

	qvl_cache_info(&ci);
	kc = ci.l1d / (32 * 4);
	kc = kc < 64 ? 64 : kc > 512 ? 512 : kc & ~(size_t)15;
	qvl_gemm_blk.kc = kc;
	/* half of each core's share of L3 for the X block of the packed kernels */
	qvl_gemm_blk.x_bytes = ci.l3 / 2 / (size_t)(ci.physical_cores > 0 ? ci.physical_cores : 1);
	/* Streaming W (m <= small_m) beats packing it: see the measurement in
	 * matmul_avx512.c. At avx2 up to 64 rows: on a Zen 3, bench_step's
	 * 24 / 32 / 48 / 64 sequences took 0.66-0.92x the time of the packed
	 * GEMM with the 4x3 tile (docs/todo-avx2host.md). QVL_GEMM_SMALL_M
	 * overrides both (benchmarks). */
	uint64_t sm;
	if (qvl_env_uint("QVL_GEMM_SMALL_M", 0, 1u << 20, &sm))
		qvl_gemm_blk.small_m = qvl_gemm_blk.small_m_avx2 = (size_t)sm;
	/* QVL_QDECODE_STREAMS: the repacked decode's far row streams
	 * (qdot_x8_act.h; benchmarks) */
	if (qvl_env_uint("QVL_QDECODE_STREAMS", 1, 4, &sm))
		qvl_gemm_blk.qdec_streams = (int)sm;
	/* QVL_QDECODE_ROWS: the rows of one such call, exactly (benchmarks;
	 * whole 16-row groups, so never 0 = not set) */
	if (qvl_env_uint("QVL_QDECODE_ROWS", 16, 8192, &sm))
		qvl_gemm_blk.qdec_rows = (size_t)sm & ~(size_t)15;
	/* the one-row Q4_0_X8 decode prefetches only where the CPU has
	 * AVX-512 (kern_impl.h QVL_QDEC_PF1_AVX2) */
	if (qvl_simd_detect() < QVL_SIMD_AVX512)
		qvl_gemm_blk.qdec_pf1 = QVL_QDEC_PF1_AVX2;
	/* QVL_QDECODE_PF: the quantized decodes' prefetch distance, 0 none */
	if (qvl_env_uint("QVL_QDECODE_PF", 0, 1 << 20, &sm))
		qvl_gemm_blk.qdec_pf = qvl_gemm_blk.qdec_pf1 = (size_t)sm;
	/* QVL_BF16P_PF: the bf16 panel matvec's prefetch distance, 0 none */
	if (qvl_env_uint("QVL_BF16P_PF", 0, 1 << 20, &sm))
		qvl_gemm_blk.bf16p_pf = (size_t)sm;
}

size_t qvl_qdecode_rows(void)
{
	return qvl_gemm_blk.qdec_rows;
}

/* The level whose prepared-activation kernels (kernels.h act_bytes,
 * act_make, matmul_act) serve `level`: its own, except at avx512, which
 * takes the AVX2 ones (the decode's products, m <= 16, every decode step
 * and batch). On Zen 5 the 256-bit form streams faster: q4_0 39.6 -> 42.0
 * and q8_0 19.7 -> 21.7 tok/s, q4_k_m even (tenth session, alternated;
 * docs/todo-qisa.md); its sums are the AVX2 level's bits, not the 512-bit
 * matmul_fast's. Q6_K_X8 and the Q4_K_X8 decode run on 512-bit vectors
 * with those bits, decode batches (m > 1) on this level's own VNNI
 * products (matmul_fast.c qvl_matmul_act_avx512a2, qdot_avx512.c).
 * QVL_QDECODE_AVX512 (set) keeps the 512-bit form, its own bits, for all. */
static enum qvl_simd_level act_level(enum qvl_simd_level level)
{
#ifdef HAVE_AVX2_KERNELS
	if (level == QVL_SIMD_AVX512 && !getenv("QVL_QDECODE_AVX512"))
		return QVL_SIMD_AVX2;
#endif
	return level;
}

static void fill_act(struct qvl_kernels *k, enum qvl_simd_level level)
{
	switch (act_level(level)) {
#ifdef HAVE_AVX2_KERNELS
	case QVL_SIMD_AVX2:
		FILL_ACT(k, avx2);
#ifdef HAVE_AVX512_KERNELS
		/* the same bits, two types on 512-bit vectors (matmul_fast.c) */
		if (level == QVL_SIMD_AVX512)
			k->matmul_act = qvl_matmul_act_avx512a2;
#endif
		break;
#endif
#ifdef HAVE_AVX512_KERNELS
	case QVL_SIMD_AVX512:
		FILL_ACT(k, avx512);
		break;
#endif
	default: /* ref: the kernels quantize X themselves */
		break;
	}
}

int qvl_kernels_get(struct qvl_kernels *k, enum qvl_simd_level level)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, blocking_init);
	if (level > qvl_simd_detect())
		return -ENOTSUP;
	memset(k, 0, sizeof(*k));
	k->level = level;
	k->name = qvl_simd_name(level);
	switch (level) {
	case QVL_SIMD_REF:
		FILL(k, ref);
		break;
#ifdef HAVE_AVX2_KERNELS
	case QVL_SIMD_AVX2:
		FILL(k, avx2);
		/* only this level: at avx512 its bits (the AVX2 GEMM's FMA
		 * order) were never compared with that level's tower */
		k->vattn_f32 = qvl_vattn_f32_avx2;
		break;
#endif
#ifdef HAVE_AVX512_KERNELS
	case QVL_SIMD_AVX512:
		FILL(k, avx512);
		break;
#endif
	default:
		return -ENOTSUP;
	}
	fill_act(k, level);
	return 0;
}

int qvl_kernels_init(struct qvl_err *err)
{
	enum qvl_simd_level best = qvl_simd_detect(), want = best;
	const char *env = getenv("QVL_SIMD");
	struct qvl_kernels k;
	int i;

	if (env && *env) {
		for (i = 0; i < 3; i++)
			if (!strcmp(env, level_names[i]))
				break;
		if (i == 3)
			return qvl_errf(err, -EINVAL,
					"QVL_SIMD='%s': unknown level (use ref, avx2 or avx512)",
					env);
		want = (enum qvl_simd_level)i;
		if (want > best)
			return qvl_errf(err, -EINVAL,
					"QVL_SIMD='%s': this CPU/OS (or compiler) supports at most "
					"'%s'",
					env, qvl_simd_name(best));
	}
	if (qvl_kernels_get(&k, want) < 0)
		return qvl_errf(err, -EINVAL, "kernels for level '%s' not built",
				qvl_simd_name(want));
	qvl_kern = k;
	return 0;
}

static const char *const prec_names[] = {"bf16", "exact"};

const char *qvl_precision_name(enum qvl_precision p)
{
	return (unsigned)p < 2 ? prec_names[p] : "?";
}

int qvl_precision_parse(const char *s, enum qvl_precision *out)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(s, prec_names[i])) {
			*out = (enum qvl_precision)i;
			return 0;
		}
	return -EINVAL;
}

bool qvl_kernels_bf16dot(const struct qvl_kernels *k)
{
	/* false without AVX512BF16 kernels built: see qvl_cpu_has_avx512bf16() */
	return k->level == QVL_SIMD_AVX512 && qvl_cpu_has_avx512bf16();
}
