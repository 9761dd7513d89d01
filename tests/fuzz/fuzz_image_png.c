/* libFuzzer target: the PNG decoder wrapper (libspng behind our header
 * checks) on arbitrary bytes given a PNG signature; whatever decodes is read
 * back in full so that a short buffer shows up under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	struct qvl_image_limits lim = {.max_pixels = 1u << 22};
	struct qvl_image im;
	struct qvl_err err;
	uint8_t *buf = malloc(size + 8);
	unsigned sum = 0;

	if (!buf)
		return 0;
	memcpy(buf, sig, 8);
	if (size)
		memcpy(buf + 8, data, size);
	/* inputs that already carry the signature are used as they are */
	const uint8_t *p = size >= 8 && !memcmp(data, sig, 8) ? data : buf;
	size_t n = p == data ? size : size + 8;
	if (qvl_image_decode(&im, p, n, "fuzz.png", &lim, &err) == 0) {
		for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++)
			sum += im.rgb[i];
		qvl_image_free(&im);
	}
	free(buf);
	return (int)(sum & 0);
}
