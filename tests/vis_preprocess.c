/* HF preprocessing against the reference: smart_resize on the examples of
 * qwen3-vl.md §3.2, the Pillow BICUBIC resize byte for byte (fixtures from
 * Pillow, and the golden hf_preprocess resized.rgb of the four test images),
 * pixel_values exactly (stored, or their sha256 in index.json), and the
 * patch order of the §3.7 walk-through. Also the pool split equals the
 * single-threaded result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "json.h"
#include "pool.h"
#include "preprocess.h"
#include "sha256.h"
#include "tap.h"
#include "util.h"

static const struct qvl_pp_params P0 = {.min_pixels = 65536,
					.max_pixels = 16777216,
					.patch = 16,
					.temporal = 2,
					.merge = 2,
					.rescale = 1.0 / 255,
					.mean = {0.5f, 0.5f, 0.5f},
					.std = {0.5f, 0.5f, 0.5f}};

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[8192];
	struct qvl_err err = {{0}};
	char *buf;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (qvl_read_file(path, 1 << 25, &buf, len, &err))
		return NULL;
	return buf;
}

static void smart(int w, int h, int ew, int eh)
{
	struct qvl_err err = {{0}};
	int rw = 0, rh = 0;
	int rc = qvl_pp_smart_resize(h, w, &P0, &rh, &rw, &err);
	ok(rc == 0 && rw == ew && rh == eh, "smart_resize %dx%d -> %dx%d (got %dx%d)", w, h, ew, eh,
	   rw, rh);
}

static void resize_fixtures(const char *vdir, struct qvl_pool *pool)
{
	struct qvl_err err = {{0}};
	struct json_doc d;
	size_t len;
	char *text = slurp(vdir, "fixtures.json", &len);

	if (!text || json_parse(&d, text, len, "fixtures.json", &err)) {
		ok(0, "fixtures.json: %s", err.msg);
		free(text);
		return;
	}
	uint32_t a = json_get(&d, 0, "resize");
	for (uint32_t i = 0; a != JSON_NONE && i < d.tok[a].count; i++) {
		uint32_t o = json_at(&d, a, i);
		char name[128], f[256];
		int64_t sw, sh, dw, dh;
		size_t ls, lp;
		json_str(&d, json_get(&d, o, "name"), name, sizeof(name));
		json_int64(&d, json_get(&d, o, "sw"), &sw);
		json_int64(&d, json_get(&d, o, "sh"), &sh);
		json_int64(&d, json_get(&d, o, "dw"), &dw);
		json_int64(&d, json_get(&d, o, "dh"), &dh);
		snprintf(f, sizeof(f), "%s.src.rgb", name);
		char *src = slurp(vdir, f, &ls);
		snprintf(f, sizeof(f), "%s.pil.rgb", name);
		char *pil = slurp(vdir, f, &lp);
		uint8_t *dst = malloc((size_t)(dw * dh * 3));
		int rc = -1;
		if (src && pil && dst && ls == (size_t)(sw * sh * 3) && lp == (size_t)(dw * dh * 3))
			rc = qvl_pp_resize_bicubic((uint8_t *)src, (int)sw, (int)sh, dst, (int)dw,
						   (int)dh, pool);
		ok(rc == 0 && !memcmp(dst, pil, lp), "Pillow BICUBIC %s: equal byte for byte",
		   name);
		free(src);
		free(pil);
		free(dst);
	}
	json_free(&d);
	free(text);
}

/* The four golden images: PNG -> resized.rgb (exact) -> pixel_values
 * (exact, or sha256). */
static void golden(const char *shared, const char *tdata, struct qvl_pool *pool)
{
	char gdir[4096], vdir[4096];
	struct qvl_err err = {{0}};
	struct json_doc d;
	size_t len;
	char *text;

	snprintf(gdir, sizeof(gdir), "%s/golden/hf_preprocess", shared);
	snprintf(vdir, sizeof(vdir), "%s/golden/vision", tdata);
	text = slurp(gdir, "index.json", &len);
	if (!text) {
		skip(1, "no %s/index.json", gdir);
		return;
	}
	if (json_parse(&d, text, len, "index.json", &err)) {
		ok(0, "index.json: %s", err.msg);
		free(text);
		return;
	}
	uint32_t imgs = json_get(&d, 0, "images"), kv = imgs + 1;
	for (uint32_t i = 0; i < d.tok[imgs].count; i++, kv = d.tok[kv + 1].end) {
		uint32_t o = kv + 1;
		char name[64], png[128], f[256], sha[80] = "", path[8192];
		int64_t rw, rh;
		struct qvl_image im;
		struct qvl_pixels px;
		uint8_t *rs = NULL;
		size_t lr, lp;

		json_str(&d, kv, name, sizeof(name));
		json_str(&d, json_get(&d, o, "image"), png, sizeof(png));
		json_int64(&d, json_get(&d, o, "resized_width"), &rw);
		json_int64(&d, json_get(&d, o, "resized_height"), &rh);
		json_str(&d, json_get(&d, o, "pixel_values_sha256"), sha, sizeof(sha));
		snprintf(path, sizeof(path), "%s/%s", vdir, png);
		if (qvl_image_load(&im, path, NULL, &err) ||
		    qvl_preprocess(&im, &P0, pool, &px, &rs, &err)) {
			ok(0, "%s: %s", name, err.msg);
			continue;
		}
		ok(px.rw == rw && px.rh == rh, "%s: resized to %lldx%lld", name, (long long)rw,
		   (long long)rh);
		snprintf(f, sizeof(f), "%s.resized.rgb", name);
		char *want = slurp(gdir, f, &lr);
		ok(want && lr == (size_t)(rw * rh * 3) && !memcmp(want, rs, lr),
		   "%s: resized.rgb equal byte for byte", name);
		free(want);
		snprintf(f, sizeof(f), "%s.pixel_values.f32", name);
		char *pv = slurp(gdir, f, &lp);
		size_t nb = (size_t)px.n * px.dim * sizeof(float);
		if (pv) {
			ok(lp == nb && !memcmp(pv, px.x, nb), "%s: pixel_values equal bit for bit",
			   name);
			free(pv);
		}
		struct sha256 s;
		char hex[65];
		sha256_init(&s);
		sha256_update(&s, px.x, nb);
		sha256_hex(&s, hex);
		ok(!strcmp(hex, sha), "%s: pixel_values sha256 %s", name, sha);
		/* the same image already resized passes through unchanged */
		struct qvl_image again = {.w = px.rw, .h = px.rh, .rgb = rs};
		struct qvl_pixels px2;
		if (!qvl_preprocess(&again, &P0, NULL, &px2, NULL, &err)) {
			ok(px2.n == px.n && !memcmp(px2.x, px.x, nb),
			   "%s: resized input (hfpre) passes smart_resize unchanged", name);
			qvl_pixels_free(&px2);
		} else {
			ok(0, "%s: hfpre: %s", name, err.msg);
		}
		free(rs);
		qvl_pixels_free(&px);
		qvl_image_free(&im);
	}
	json_free(&d);
	free(text);
}

int main(void)
{
	const char *shared = test_env("QVL_SHARED", "../shared");
	const char *tdata = test_env("QVL_TESTDATA", "tests/data");
	struct qvl_err err = {{0}};
	struct qvl_pool *pool = NULL;
	char vdir[4096];
	int rw, rh;

	snprintf(vdir, sizeof(vdir), "%s/vision", tdata);
	if (qvl_pool_create(&pool, 2, NULL, &err))
		diag("no pool: %s", err.msg);
	/* §3.2 examples (W x H) */
	smart(640, 480, 640, 480);
	smart(1920, 1080, 1920, 1088);
	smart(336, 336, 320, 320);
	smart(64, 64, 256, 256);
	smart(6000, 4000, 4992, 3328);
	smart(6400, 32, 6400, 32);
	ok(qvl_pp_smart_resize(32, 6432, &P0, &rh, &rw, &err) == -EINVAL &&
	       strstr(err.msg, "aspect"),
	   "aspect 201: %s", err.msg);
	ok(qvl_pp_smart_resize(1, 100000, &P0, &rh, &rw, &err) == -EINVAL, "100000x1: %s", err.msg);
	ok(qvl_pp_smart_resize(1, 1, &P0, &rh, &rw, &err) == -EINVAL, "1x1: %s", err.msg);

	resize_fixtures(vdir, pool);
	golden(shared, tdata, pool);

	/* §3.7: 64x64 resized image, grid 4x4: row 5 = patch (0,3); column 551
	 * holds F[0][1][2][55], column 807 the duplicated frame */
	{
		uint8_t *img = calloc(64 * 64 * 3, 1);
		struct qvl_pixels px;
		img[(2 * 64 + 55) * 3 + 1] = 200;
		int rc = qvl_pp_patchify(img, 64, 64, &P0, pool, &px, &err);
		float want = ((float)(200.0 / 255) - 0.5f) / 0.5f;
		ok(rc == 0 && px.n == 16 && px.dim == 1536 && px.x[5 * 1536 + 551] == want &&
		       px.x[5 * 1536 + 807] == want && px.x[5 * 1536 + 550] == -1.0f,
		   "patch order: X[5][551] = X[5][807] = F[0][1][2][55]");
		int nz = 0;
		for (int i = 0; rc == 0 && i < 16 * 1536; i++)
			nz += px.x[i] != -1.0f;
		is_int(nz, 2, "patch order: only those two entries hold the pixel");
		qvl_pixels_free(&px);
		free(img);
	}
	if (pool)
		qvl_pool_destroy(pool);
	return done_testing();
}
