/* Random weights of every type for the matmul tests (test_kernels,
 * test_gemm_avx2): Q8_0/Q4_0 with random f16 scales and bytes, the other
 * block types quantized from random rows, floats uniform in [-1, 1); and
 * the blocks with exact scales the repacking tests (repack_check.h) need.
 * Include after rng.h. */
#ifndef QVL_TESTS_MAKE_W_H
#define QVL_TESTS_MAKE_W_H

#include <stdbool.h>
#include <string.h>

#include "kern_impl.h"
#include "quant.h"
#include "rng.h"

/* Random weights of type t: n rows, ldw elements apart. */
static inline void *make_w(enum qvl_dtype t, size_t n, size_t ldw)
{
	size_t bytes = (size_t)(qvl_wrow(NULL, t, ldw, n) - (const uint8_t *)NULL);
	uint8_t *w = xmalloc(bytes);

	if (t == QVL_DT_Q8_0 || t == QVL_DT_Q4_0) {
		size_t bsz = t == QVL_DT_Q8_0 ? 34 : 18;
		for (size_t b = 0; b < bytes / bsz; b++) {
			uint16_t d = qvl_f32_to_f16(frand(0.05f));
			memcpy(w + b * bsz, &d, 2);
			for (size_t i = 2; i < bsz; i++)
				w[b * bsz + i] = (uint8_t)rnd();
		}
		return w;
	}
	if (qvl_dtype_is_block(t)) { /* the other block types: real blocks of random rows */
		float *row = xmalloc(ldw * 4);

		for (size_t j = 0; j < n; j++) {
			for (size_t i = 0; i < ldw; i++)
				row[i] = frand(0.5f);
			if (qvl_quantize_row(t, row, (uint8_t *)qvl_wrow(w, t, ldw, j), ldw))
				exit(99);
		}
		free(row);
		return w;
	}
	for (size_t i = 0; i < n * ldw; i++) {
		float v = frand(1.0f);
		uint16_t h = t == QVL_DT_BF16 ? qvl_f32_to_bf16(v) : qvl_f32_to_f16(v);
		if (t == QVL_DT_F32)
			memcpy(w + 4 * i, &v, 4);
		else
			memcpy(w + 2 * i, &h, 2);
	}
	return w;
}

/* n rows of ldw values of block type t (blocks of blk values, bb bytes).
 * pow2: random bytes, each block's nd f16 scales (at the offsets d_off)
 * 0.5 or 1, so that every float operation of a product with activations
 * of scale 1 stays exact; else quantized by quant.c from random rows with
 * a spike every 17 values. */
static inline uint8_t *make_w_blocks(enum qvl_dtype t, size_t blk, size_t bb, const size_t *d_off,
				     int nd, size_t n, size_t ldw, bool pow2)
{
	size_t nblk = n * (ldw / blk);
	uint8_t *w = xmalloc(nblk * bb);
	float *f = xmalloc(ldw * sizeof(float));

	for (size_t i = 0; i < nblk * bb; i++)
		w[i] = (uint8_t)rnd();
	for (size_t b = 0; pow2 && b < nblk; b++)
		for (int h = 0; h < nd; h++) {
			uint16_t v = rnd() & 1 ? 0x3800 : 0x3c00;
			memcpy(w + b * bb + d_off[h], &v, 2);
		}
	for (size_t j = 0; !pow2 && j < n; j++) {
		for (size_t i = 0; i < ldw; i++)
			f[i] = frand(0.05f) + (i % 17 == 0 ? frand(0.3f) : 0.0f);
		if (qvl_quantize_row(t, f, w + j * (ldw / blk) * bb, ldw))
			exit(98);
	}
	free(f);
	return w;
}

#endif
