/* libFuzzer target: smart_resize + Pillow bicubic + patchify with sizes and
 * parameters taken from the input (bounded so one run stays small), pixels
 * from the rest of it. Checks the invariants the vision tower relies on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qvl_pp_params p = {
	    .rescale = 1.0 / 255, .mean = {0.5f, 0.4f, 0.3f}, .std = {0.5f, 0.25f, 0.2f}};
	struct qvl_image im;
	struct qvl_pixels px;
	struct qvl_err err;
	uint8_t *rs = NULL;

	if (size < 8)
		return 0;
	im.w = 1 + data[0] + (data[1] & 1) * data[1]; /* 1..511, mostly small */
	im.h = 1 + data[2] + (data[3] & 1) * data[3];
	p.patch = 1 + data[4] % 16;
	p.merge = 1 + (data[4] >> 4) % 3;
	p.temporal = 1 + data[5] % 3;
	p.min_pixels = 1 + (int64_t)(data[6] | data[7] << 8); /* up to 2^16 */
	p.max_pixels = p.min_pixels + (int64_t)data[5] * 256;
	data += 8;
	size -= 8;
	im.rgb = malloc((size_t)im.w * im.h * 3);
	if (!im.rgb)
		return 0;
	for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++)
		im.rgb[i] = size ? data[i % size] : (uint8_t)i;
	if (qvl_preprocess(&im, &p, NULL, &px, &rs, &err) == 0) {
		const int f = p.patch * p.merge;
		if (px.rw % f || px.rh % f || px.n != (px.rw / p.patch) * (px.rh / p.patch) ||
		    px.dim != 3 * p.temporal * p.patch * p.patch)
			abort();
		for (size_t i = 0; i < (size_t)px.n * px.dim; i++)
			if (!(px.x[i] >= -10.0f && px.x[i] <= 10.0f))
				abort();
		qvl_pixels_free(&px);
		free(rs);
	}
	free(im.rgb);
	return 0;
}
