/* libFuzzer target: the JPEG decoder wrapper (libjpeg-turbo with our error
 * manager and longjmp, EXIF orientation parsing and transposition) on
 * arbitrary bytes given an SOI marker; decoded pixels are read back in full. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t soi[3] = {0xff, 0xd8, 0xff};
	struct qvl_image_limits lim = {.max_pixels = 1u << 22};
	struct qvl_image im;
	struct qvl_err err;
	uint8_t *buf = malloc(size + 3);
	unsigned sum = 0;

	if (!buf)
		return 0;
	memcpy(buf, soi, 3);
	if (size)
		memcpy(buf + 3, data, size);
	const uint8_t *p = size >= 3 && !memcmp(data, soi, 3) ? data : buf;
	size_t n = p == data ? size : size + 3;
	if (qvl_image_decode(&im, p, n, "fuzz.jpg", &lim, &err) == 0) {
		for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++)
			sum += im.rgb[i];
		qvl_image_free(&im);
	}
	/* the EXIF parser alone, on the raw bytes as an APP1 payload */
	(void)qvl_exif_orientation(data, size);
	free(buf);
	return (int)(sum & 0);
}
