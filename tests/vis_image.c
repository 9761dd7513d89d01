/* Image decoding against Pillow (tests/data/vision, written once by
 * make_fixtures.py): PNG modes converted as convert("RGB"), JPEG with every
 * EXIF orientation as ImageOps.exif_transpose, and every bad image a clear
 * error that names the file; raw RGB buffers and the pixel limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "json.h"
#include "preprocess.h"
#include "tap.h"
#include "util.h"

static char dir[4096];

static unsigned char *read_all(const char *name, size_t *len)
{
	char path[8192];
	struct qvl_err err = {{0}};
	char *buf;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (qvl_read_file(path, 1 << 24, &buf, len, &err))
		return NULL;
	return (unsigned char *)buf;
}

static void check_decode(const char *name, int w, int h, const char *note)
{
	char path[8192], rgbname[512];
	struct qvl_err err = {{0}};
	struct qvl_image im;
	size_t len;
	int rc, maxd = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(rgbname, sizeof(rgbname), "%s.rgb", name);
	unsigned char *want = read_all(rgbname, &len);
	rc = qvl_image_load(&im, path, NULL, &err);
	if (rc || !want || im.w != w || im.h != h || len != (size_t)w * h * 3) {
		ok(0, "%s %s: decoded %dx%d, expected %dx%d (%s)", name, note, rc ? 0 : im.w,
		   rc ? 0 : im.h, w, h, rc ? err.msg : "");
	} else {
		for (size_t i = 0; i < len; i++) {
			int d = abs((int)im.rgb[i] - (int)want[i]);
			maxd = d > maxd ? d : maxd;
		}
		/* PNG is lossless and must be exact; JPEG decoders are the same
		 * libjpeg-turbo here, allow a level for another build */
		int tol = strstr(name, ".png") ? 0 : 2;
		ok(maxd <= tol, "%s %s: %dx%d as Pillow, max |d| %d (<= %d)", name, note, w, h,
		   maxd, tol);
	}
	qvl_image_free(&im);
	free(want);
}

static void check_bad(const char *name, const char *why)
{
	char path[8192];
	struct qvl_err err = {{0}};
	struct qvl_image im;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = qvl_image_load(&im, path, NULL, &err);
	ok(rc < 0 && strstr(err.msg, name) && im.rgb == NULL, "%s (%s): error: %s", name, why,
	   err.msg);
	if (!rc)
		qvl_image_free(&im);
}

static void check_pp_error(const char *name, const char *why)
{
	char path[8192];
	struct qvl_err err = {{0}};
	struct qvl_image im;
	struct qvl_pixels px;
	struct qvl_pp_params p = {.min_pixels = 65536,
				  .max_pixels = 16777216,
				  .patch = 16,
				  .temporal = 2,
				  .merge = 2,
				  .rescale = 1.0 / 255,
				  .mean = {0.5f, 0.5f, 0.5f},
				  .std = {0.5f, 0.5f, 0.5f}};
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = qvl_image_load(&im, path, NULL, &err);
	if (rc) {
		ok(0, "%s: decodes: %s", name, err.msg);
		return;
	}
	rc = qvl_preprocess(&im, &p, NULL, &px, NULL, &err);
	ok(rc == -EINVAL, "%s (%s): preprocess error: %s", name, why, err.msg);
	if (!rc)
		qvl_pixels_free(&px);
	qvl_image_free(&im);
}

int main(void)
{
	struct qvl_err err = {{0}};
	struct json_doc d;
	char *text, path[8192];
	size_t len;

	snprintf(dir, sizeof(dir), "%s/vision", test_env("QVL_TESTDATA", "tests/data"));
	snprintf(path, sizeof(path), "%s/fixtures.json", dir);
	if (qvl_read_file(path, 1 << 20, &text, &len, &err) ||
	    json_parse(&d, text, len, path, &err)) {
		printf("1..0 # SKIP %s\n", err.msg);
		return 0;
	}
	const char *sect[] = {"decode", "bad", "preprocess_errors"};
	for (int s = 0; s < 3; s++) {
		uint32_t a = json_get(&d, 0, sect[s]);
		for (uint32_t i = 0; a != JSON_NONE && i < d.tok[a].count; i++) {
			uint32_t o = json_at(&d, a, i);
			char name[256] = "", note[256] = "";
			int64_t w = 0, h = 0;
			json_str(&d, json_get(&d, o, "file"), name, sizeof(name));
			if (s == 0) {
				json_int64(&d, json_get(&d, o, "w"), &w);
				json_int64(&d, json_get(&d, o, "h"), &h);
				json_str(&d, json_get(&d, o, "note"), note, sizeof(note));
				check_decode(name, (int)w, (int)h, note);
			} else {
				json_str(&d, json_get(&d, o, "why"), note, sizeof(note));
				if (s == 1)
					check_bad(name, note);
				else
					check_pp_error(name, note);
			}
		}
	}
	json_free(&d);
	free(text);

	/* the pixel limit is checked on the header, before decoding */
	{
		struct qvl_image_limits lim = {.max_pixels = 100};
		struct qvl_image im;
		snprintf(path, sizeof(path), "%s/rgb.png", dir);
		int rc = qvl_image_load(&im, path, &lim, &err);
		ok(rc == -EFBIG && strstr(err.msg, "limit"), "max_pixels 100: %s", err.msg);
		lim.max_pixels = 0;
		lim.max_bytes = 100;
		rc = qvl_image_load(&im, path, &lim, &err);
		ok(rc == -EFBIG, "max_bytes 100: %s", err.msg);
	}
	/* raw RGB: stride honoured, short buffers and bad sizes refused */
	{
		uint8_t buf[4 * 10];
		struct qvl_image im;
		for (int i = 0; i < (int)sizeof(buf); i++)
			buf[i] = (uint8_t)i;
		int rc = qvl_image_from_rgb(&im, buf, sizeof(buf), 3, 4, 10, NULL, &err);
		ok(rc == 0 && im.w == 3 && im.h == 4 && im.rgb[9] == 10 && im.rgb[35] == 38,
		   "raw 3x4 stride 10");
		qvl_image_free(&im);
		ok(qvl_image_from_rgb(&im, buf, 39, 3, 4, 10, NULL, &err) == 0,
		   "raw: last row needs only w*3 bytes");
		qvl_image_free(&im);
		ok(qvl_image_from_rgb(&im, buf, 40, 3, 4, 11, NULL, &err) == -EINVAL,
		   "raw: buffer too short: %s", err.msg);
		ok(qvl_image_from_rgb(&im, buf, sizeof(buf), 4, 4, 10, NULL, &err) == -EINVAL,
		   "raw: stride below width*3: %s", err.msg);
		ok(qvl_image_from_rgb(&im, buf, sizeof(buf), 0, 4, 10, NULL, &err) == -EINVAL,
		   "raw: zero width: %s", err.msg);
		ok(qvl_image_from_rgb(&im, buf, sizeof(buf), 1 << 30, 1 << 30, (size_t)3 << 30,
				      NULL, &err) == -EFBIG,
		   "raw: 2^60 pixels: %s", err.msg);
	}
	/* EXIF parser on hostile blocks */
	{
		static const uint8_t trunc[] = {'E', 'x', 'i', 'f',  0,	   0,	 'I',
						'I', 42,  0,   0xff, 0xff, 0xff, 0x7f};
		static const uint8_t many[] = {'E', 'x', 'i', 'f', 0, 0, 'I',  'I',
					       42,  0,	 8,   0,   0, 0, 0xff, 0xff};
		is_int(qvl_exif_orientation(trunc, sizeof(trunc)), 1,
		       "EXIF: IFD offset past the end");
		is_int(qvl_exif_orientation(many, sizeof(many)), 1,
		       "EXIF: 65535 entries in a 16-byte block");
		is_int(qvl_exif_orientation(NULL, 0), 1, "EXIF: none");
	}
	return done_testing();
}
