/* Manual check (not in make check): the Q4_K and Q4_K_X8 products of every
 * level on the engine's shapes of the 2b model (k 2048 and 6144, n up to
 * 6144, m 1, 7, 20): the largest difference and how many outputs are
 * identical. docs/todo-q4k.md.
 * Build from a build directory:
 *   cc -O2 -I../src -I../simd -I. ../tests/manual/repack_q4k_check.c \
 *      libqvlengine.a -luring -lhwloc -lnuma -lisal -lutf8proc -lspng -ljpeg \
 *      -lm -lpthread -o repack_q4k_check */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kern_impl.h"
#include "qrepack.h"
#include "quant.h"
int main(void)
{
	static const size_t sh[][3] = {{20, 2048, 2048}, {20, 6144, 2048}, {20, 2048, 6144},
				       {1, 6144, 2048},	 {1, 2048, 6144},  {7, 1024, 2048}};
	for (int lvl = 0; lvl <= 2; lvl++) {
		struct qvl_kernels kt;
		if (qvl_kernels_get(&kt, (enum qvl_simd_level)lvl))
			continue;
		for (int s = 0; s < 6; s++) {
			size_t m = sh[s][0], n = sh[s][1], k = sh[s][2], rb = k / 256 * 144;
			uint8_t *w = malloc(n * rb), *r = malloc(n * rb);
			float *x = malloc(m * k * 4), *y0 = malloc(m * n * 4),
			      *y1 = malloc(m * n * 4), *f = malloc(k * 4);
			srand(s + 1);
			for (size_t i = 0; i < m * k; i++)
				x[i] = (rand() / (float)RAND_MAX - 0.5f) * (i % 13 == 0 ? 8 : 1);
			for (size_t j = 0; j < n; j++) {
				for (size_t i = 0; i < k; i++)
					f[i] = rand() / (float)RAND_MAX - 0.5f;
				qvl_quantize_row(QVL_DT_Q4_K, f, w + j * rb, k);
			}
			qvl_repack(r, QVL_DT_Q4_K_X8, w, QVL_DT_Q4_K, n, k);
			kt.matmul_fast(y0, n, x, k, w, QVL_DT_Q4_K, k, NULL, m, n, k);
			kt.matmul_fast(y1, n, x, k, r, QVL_DT_Q4_K_X8, k, NULL, m, n, k);
			double md = 0, ym = 0;
			size_t same = 0;
			for (size_t i = 0; i < m * n; i++) {
				md = fmax(md, fabs(y0[i] - y1[i]));
				ym = fmax(ym, fabs(y0[i]));
				same += y0[i] == y1[i];
			}
			printf("%s m %zu n %zu k %zu: max diff %.3g of %.3g, identical %zu/%zu\n",
			       kt.name, m, n, k, md, ym, same, m * n);
			free(w);
			free(r);
			free(x);
			free(y0);
			free(y1);
			free(f);
		}
	}
	return 0;
}
