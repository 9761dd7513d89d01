/* Manual measurement (not in make check): the Q4_K matvec and prefill rates,
 * file layout vs Q4_K_X8 (simd/qrepack.h) alternating, one thread, CPU time,
 * 9 samples each, median [2nd-8th]: decode in cache (512 rows x 40), decode
 * streamed (16 matrices of 6144 x 2048, 113 MB), prefill m 64 on 512 rows.
 * Argument: the SIMD level (1 avx2, 2 avx512). docs/todo-q4k.md.
 * Build from a build directory:
 *   cc -O2 -I../src -I../simd -I. ../tests/manual/repack_q4k_rate.c \
 *      libqvlengine.a -luring -lhwloc -lnuma -lisal -lutf8proc -lspng -ljpeg \
 *      -lm -lpthread -o repack_q4k_rate */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kern_impl.h"
#include "qrepack.h"
#include "quant.h"

static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
int main(int argc, char **argv)
{
	struct qvl_kernels kt;
	int lvl = argc > 1 ? atoi(argv[1]) : QVL_SIMD_AVX512;
	const size_t k = 2048, nc = 512, ns = 6144, nm = 16, rb = k / 256 * 144;
	if (qvl_kernels_get(&kt, (enum qvl_simd_level)lvl))
		return 1;
	uint8_t *wf = malloc(nm * ns * rb), *wx = malloc(nm * ns * rb);
	float *x = malloc(64 * k * 4), *y = malloc(64 * ns * 4), *f = malloc(k * 4);
	srand(1);
	for (size_t i = 0; i < 64 * k; i++)
		x[i] = rand() / (float)RAND_MAX - 0.5f;
	for (size_t j = 0; j < 256; j++) {
		for (size_t i = 0; i < k; i++)
			f[i] = rand() / (float)RAND_MAX - 0.5f;
		qvl_quantize_row(QVL_DT_Q4_K, f, wf + j * rb, k);
	}
	for (size_t j = 256; j < nm * ns; j++)
		memcpy(wf + j * rb, wf + (j % 256) * rb, rb);
	for (size_t c = 0; c < nm; c++)
		qvl_repack(wx + c * ns * rb, QVL_DT_Q4_K_X8, wf + c * ns * rb, QVL_DT_Q4_K, ns, k);
	const char *nm_[2] = {"Q4_K", "Q4_K_X8"};
	enum qvl_dtype ty[2] = {QVL_DT_Q4_K, QVL_DT_Q4_K_X8};
	uint8_t *ws[2] = {wf, wx};
	double r[3][2][9];
	for (int s = 0; s < 9; s++)
		for (int v = 0; v < 2; v++) {
			double t0 = cpu();
			for (int it = 0; it < 40; it++)
				kt.matmul_fast(y, nc, x, k, ws[v], ty[v], k, NULL, 1, nc, k);
			r[0][v][s] = 40.0 * nc * rb / (cpu() - t0) / 1e9;
			t0 = cpu();
			for (size_t c = 0; c < nm; c++)
				kt.matmul_fast(y, ns, x, k, ws[v] + c * ns * rb, ty[v], k, NULL, 1,
					       ns, k);
			r[1][v][s] = (double)nm * ns * rb / (cpu() - t0) / 1e9;
			t0 = cpu();
			kt.matmul_fast(y, nc, x, k, ws[v], ty[v], k, NULL, 64, nc, k);
			r[2][v][s] = 2.0 * 64 * nc * k / (cpu() - t0) / 1e9;
		}
	const char *fig[3] = {"decode cache GB/s", "decode stream GB/s", "prefill m64 GOP/s"};
	for (int q = 0; q < 3; q++)
		for (int v = 0; v < 2; v++) {
			qsort(r[q][v], 9, sizeof(double), cmpd);
			printf("%s %-8s %-20s median %6.1f  [%5.1f-%5.1f]\n", kt.name, nm_[v],
			       fig[q], r[q][v][4], r[q][v][1], r[q][v][7]);
		}
	return 0;
}
