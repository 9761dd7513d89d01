/* What this CPU and OS can run: CPUID feature bits, and XGETBV to check that
 * the OS saves the ymm/zmm/opmask state on context switch (a CPU with AVX-512
 * under an OS that does not enable it in XCR0 faults on the first zmm use).
 * Also the scalar f16 conversions used by every level's reference paths. */
#include "config.h"

#include <pthread.h>

#include <cpuid.h>
#include <stdbool.h>
#include <string.h>

#include "kern_impl.h"
#include "qdot.h"

struct cpu_feats {
	bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512bf16, avx512vnni;
	bool os_ymm, os_zmm;
};

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static void cpu_probe(struct cpu_feats *f)
{
	unsigned a, b, c, d;

	memset(f, 0, sizeof(*f));
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	f->fma = c & (1u << 12);
	f->f16c = c & (1u << 29);
	bool osxsave = c & (1u << 27), avx = c & (1u << 28);
	if (!osxsave || !avx)
		return;
	uint64_t xcr0 = xgetbv0();
	f->os_ymm = (xcr0 & 0x6) == 0x6;		/* XMM | YMM state */
	f->os_zmm = f->os_ymm && (xcr0 & 0xe0) == 0xe0; /* opmask | ZMM_Hi256 | Hi16_ZMM */
	if (__get_cpuid_max(0, NULL) < 7)
		return;
	__cpuid_count(7, 0, a, b, c, d);
	f->avx2 = b & (1u << 5);
	f->avx512f = b & (1u << 16);
	f->avx512bw = b & (1u << 30);
	f->avx512vl = b & (1u << 31);
	f->avx512vnni = c & (1u << 11);
	unsigned max7 = a;
	if (max7 >= 1) {
		__cpuid_count(7, 1, a, b, c, d);
		f->avx512bf16 = a & (1u << 5);
	}
}

enum qvl_simd_level qvl_simd_detect(void)
{
	struct cpu_feats f;

	cpu_probe(&f);
#ifdef HAVE_AVX512_KERNELS
	if (f.os_zmm && f.avx512f && f.avx512bw && f.avx512vl && f.fma && f.f16c && f.avx2)
		return QVL_SIMD_AVX512;
#endif
#ifdef HAVE_AVX2_KERNELS
	if (f.os_ymm && f.avx2 && f.fma && f.f16c)
		return QVL_SIMD_AVX2;
#endif
	return QVL_SIMD_REF;
}

/* Cached: matmul_fast() asks on every call, and CPUID traps to the
 * hypervisor on a VM (microseconds). */
static bool bf16_has;
static void bf16_once(void)
{
#ifdef HAVE_AVX512BF16_KERNELS
	struct cpu_feats f;

	cpu_probe(&f);
	bf16_has = qvl_simd_detect() == QVL_SIMD_AVX512 && f.avx512bf16;
#endif
}

bool qvl_cpu_has_avx512bf16(void)
{
#ifdef HAVE_AVX512BF16_KERNELS
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, bf16_once);
	return bf16_has;
#else
	return false;
#endif
}

/* Cached like bf16_has: the int8 kernels ask on every matmul call. */
static bool vnni_has;
static void vnni_once(void)
{
	struct cpu_feats f;

	cpu_probe(&f);
	vnni_has = qvl_simd_detect() == QVL_SIMD_AVX512 && f.avx512vnni;
}

bool qvl_cpu_has_avx512vnni(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, vnni_once);
	return vnni_has;
}

float qvl_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 0x3ff, u;
	float f;

	if (e == 0) {
		/* zero or subnormal: exact as m * 2^-24 */
		f = (float)m * 0x1p-24f;
		memcpy(&u, &f, 4);
		u |= sign;
	} else if (e == 31) {
		u = sign | 0x7f800000u | (m << 13);
	} else {
		u = sign | ((e + 112) << 23) | (m << 13);
	}
	memcpy(&f, &u, 4);
	return f;
}

uint16_t qvl_f32_to_f16(float f)
{
	uint32_t u, a;

	memcpy(&u, &f, 4);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	a = u & 0x7fffffffu;
	if (a > 0x7f800000u) /* NaN: quiet, keep the top payload bits */
		return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
	if (a >= 0x477ff000u) /* >= 65520 rounds to infinity */
		return sign | 0x7c00;
	if (a < 0x38800000u) {
		/* f16 subnormal range: adding 0.5 puts the 2^-24 unit in the
		 * mantissa's last place, so the FPU rounds to nearest even. */
		float t, v;
		memcpy(&v, &a, 4);
		t = v + 0.5f;
		memcpy(&u, &t, 4);
		return (uint16_t)(sign | (u - 0x3f000000u));
	}
	a += 0xc8000fffu + ((a >> 13) & 1); /* rebias (-112 << 23) and round to even */
	return (uint16_t)(sign | (a >> 13));
}
