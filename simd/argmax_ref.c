/* Reference argmax (kernels.h): the definition the SIMD variants match. */
#include "config.h"

#include <math.h>

#include "kern_impl.h"

size_t qvl_argmax_ref(const float *x, size_t n, float *max)
{
	float m = -INFINITY;
	size_t b = 0;

	/* strict >: the first of equal values stays; NaN never compares */
	for (size_t i = 0; i < n; i++)
		if (x[i] > m) {
			m = x[i];
			b = i;
		}
	*max = m;
	return b;
}
