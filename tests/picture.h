/* A deterministic w x h RGB test picture for the image tests; seed varies
 * the pattern (rgb NULL when out of memory). Header-only. */
#ifndef QVL_TESTS_PICTURE_H
#define QVL_TESTS_PICTURE_H

#include <stdint.h>
#include <stdlib.h>

#include "image.h"

static inline struct qvl_image picture(int w, int h, int seed)
{
	struct qvl_image im = {.w = w, .h = h, .rgb = malloc((size_t)w * (size_t)h * 3)};

	for (int y = 0; y < h && im.rgb; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++)
				im.rgb[((size_t)y * (size_t)w + (size_t)x) * 3 + (size_t)c] =
				    (uint8_t)(x * (c + 1) + y * seed + c * 40);
	return im;
}

#endif
