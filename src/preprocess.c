/* Image preprocessing (see preprocess.h). The resize is a port of Pillow's
 * libImaging/Resample.c for 8-bit images: the same double-precision
 * coefficients, rounded to 22-bit integers, the same accumulator start and
 * clamp, so the output equals PIL's byte for byte. Both passes and the
 * patchify split rows across the pool. */
#include "preprocess.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "model.h"
#include "pool.h"

#define PP_BITS 22 /* Pillow's PRECISION_BITS = 32 - 8 - 2 */

int qvl_pp_params_from_model(struct qvl_pp_params *p, const struct qvl_model *m,
			     struct qvl_err *err)
{
	const struct qvl_preproc_config *c = &m->preproc;
	const struct qvl_vision_config *v = &m->config.vision;

	if (!v->present)
		return qvl_errf(err, -EINVAL, "%s: the model has no vision tower", m->path);
	memset(p, 0, sizeof(*p));
	p->min_pixels = c->min_pixels;
	p->max_pixels = c->max_pixels;
	p->patch = v->patch_size;
	p->temporal = v->temporal_patch_size;
	p->merge = v->spatial_merge_size;
	p->rescale = c->rescale_factor;
	for (int i = 0; i < 3; i++) {
		p->mean[i] = (float)c->image_mean[i];
		p->std[i] = (float)c->image_std[i];
	}
	if (v->in_channels != 3)
		return qvl_errf(err, -EINVAL, "%s: vision in_channels %d, expected 3", m->path,
				v->in_channels);
	return 0;
}

/* The largest resized area smart_resize accepts (its final range check). */
#define PP_MAX_AREA ((int64_t)QVL_IMAGE_MAX_PIXELS_DEFAULT * 4)

int64_t qvl_pp_max_tokens(const struct qvl_pp_params *p)
{
	const int64_t f = (int64_t)p->patch * p->merge;
	return f > 0 ? p->max_pixels / (f * f) : 0;
}

int qvl_pp_set_max_tokens(struct qvl_pp_params *p, int64_t tokens, struct qvl_err *err)
{
	const int64_t f = (int64_t)p->patch * p->merge, hi = f > 0 ? PP_MAX_AREA / (f * f) : 0;

	if (tokens < 1 || tokens > hi)
		return qvl_errf(err, -EINVAL, "image token budget %lld out of range (1..%lld)",
				(long long)tokens, (long long)hi);
	p->max_pixels = tokens * f * f;
	/* a budget below min_pixels is still a ceiling: no upscaling past it */
	if (p->min_pixels > p->max_pixels)
		p->min_pixels = f * f;
	return 0;
}

bool qvl_pp_over_budget(int h, int w, const struct qvl_pp_params *p)
{
	const int f = p->patch * p->merge;

	return f > 0 &&
	       nearbyint((double)h / f) * f * nearbyint((double)w / f) * f > (double)p->max_pixels;
}

int qvl_pp_smart_resize(int h, int w, const struct qvl_pp_params *p, int *rh, int *rw,
			struct qvl_err *err)
{
	const int f = p->patch * p->merge;
	const double dh = h, dw = w;
	double hb, wb;

	/* transformers 4.5x (and shared/tools/hf_preprocess.py) refuse sides
	 * below the factor; 5.x would upscale them. We follow the reference tool. */
	if (h < f || w < f)
		return qvl_errf(err, -EINVAL, "image %dx%d: height and width must be at least %d",
				w, h, f);
	if ((h > w ? dh / dw : dw / dh) > 200)
		return qvl_errf(
		    err, -EINVAL,
		    "image %dx%d: absolute aspect ratio must be smaller than 200, got %g", w, h,
		    h > w ? dh / dw : dw / dh);
	hb = nearbyint(dh / f) * f;
	wb = nearbyint(dw / f) * f;
	if (hb * wb > (double)p->max_pixels) {
		double beta = sqrt(dh * dw / (double)p->max_pixels);
		hb = fmax(f, floor(dh / beta / f) * f);
		wb = fmax(f, floor(dw / beta / f) * f);
	} else if (hb * wb < (double)p->min_pixels) {
		double beta = sqrt((double)p->min_pixels / (dh * dw));
		hb = ceil(dh * beta / f) * f;
		wb = ceil(dw * beta / f) * f;
	}
	if (!(hb >= f && wb >= f && hb <= INT_MAX / 4 && wb <= INT_MAX / 4 &&
	      hb * wb <= (double)PP_MAX_AREA))
		return qvl_errf(err, -EINVAL, "image %dx%d: resized size %.0fx%.0f out of range", w,
				h, wb, hb);
	*rh = (int)hb;
	*rw = (int)wb;
	return 0;
}

/* ---- Pillow bicubic ----------------------------------------------------- */

static double pp_bicubic(double x)
{
	const double a = -0.5;
	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
	if (x < 2.0)
		return (((x - 5) * x + 8) * x - 4) * a;
	return 0.0;
}

struct pp_coeffs {
	int ksize;
	int *bounds; /* [out][2]: first tap, tap count */
	int32_t *k;  /* [out][ksize] */
};

/* precompute_coeffs() + normalize_coeffs_8bpc() of Resample.c. */
static int pp_coeffs(struct pp_coeffs *c, int in, int out)
{
	const double support_f = 2.0; /* bicubic */
	double scale, fscale, support;
	double *w;

	fscale = scale = (double)(float)in / out;
	if (fscale < 1.0)
		fscale = 1.0;
	support = support_f * fscale;
	c->ksize = (int)ceil(support) * 2 + 1;
	if ((size_t)out > SIZE_MAX / 2 / sizeof(double) / (size_t)c->ksize)
		return -ENOMEM;
	w = malloc((size_t)c->ksize * sizeof(double));
	c->k = malloc((size_t)out * c->ksize * sizeof(int32_t));
	c->bounds = malloc((size_t)out * 2 * sizeof(int));
	if (!w || !c->k || !c->bounds) {
		free(w);
		free(c->k);
		free(c->bounds);
		return -ENOMEM;
	}
	for (int xx = 0; xx < out; xx++) {
		double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / fscale;
		int xmin = (int)(center - support + 0.5), xmax, x;
		if (xmin < 0)
			xmin = 0;
		xmax = (int)(center + support + 0.5);
		if (xmax > in)
			xmax = in;
		xmax -= xmin;
		for (x = 0; x < xmax; x++) {
			w[x] = pp_bicubic((x + xmin - center + 0.5) * ss);
			ww += w[x];
		}
		for (x = 0; x < xmax; x++)
			if (ww != 0.0)
				w[x] /= ww;
		for (; x < c->ksize; x++)
			w[x] = 0;
		for (x = 0; x < c->ksize; x++)
			c->k[(size_t)xx * c->ksize + x] =
			    w[x] < 0 ? (int32_t)(-0.5 + w[x] * (1 << PP_BITS))
				     : (int32_t)(0.5 + w[x] * (1 << PP_BITS));
		c->bounds[xx * 2] = xmin;
		c->bounds[xx * 2 + 1] = xmax;
	}
	free(w);
	return 0;
}

static void pp_coeffs_free(struct pp_coeffs *c)
{
	free(c->k);
	free(c->bounds);
}

static inline uint8_t pp_clip8(int32_t v)
{
	if (v >= (1 << PP_BITS << 8))
		return 255;
	if (v <= 0)
		return 0;
	return (uint8_t)(v >> PP_BITS);
}

struct pp_resize_job {
	const uint8_t *src;
	uint8_t *dst;
	int sw, dw, rows; /* source width, destination width, rows to produce */
	int y0;		  /* horizontal pass: first source row used */
	const struct pp_coeffs *c;
	int vertical;
};

static void pp_resize_task(void *arg, int ith, int nth)
{
	const struct pp_resize_job *j = arg;
	const struct pp_coeffs *c = j->c;
	size_t lo, hi;

	qvl_split((size_t)j->rows, 1, ith, nth, &lo, &hi);
	for (size_t yy = lo; yy < hi; yy++) {
		uint8_t *o = j->dst + yy * (size_t)j->dw * 3;
		if (!j->vertical) {
			const uint8_t *in = j->src + (yy + (size_t)j->y0) * (size_t)j->sw * 3;
			for (int xx = 0; xx < j->dw; xx++) {
				const int32_t *k = c->k + (size_t)xx * c->ksize;
				const uint8_t *p = in + (size_t)c->bounds[xx * 2] * 3;
				int32_t s0 = 1 << (PP_BITS - 1), s1 = s0, s2 = s0;
				for (int x = 0; x < c->bounds[xx * 2 + 1]; x++) {
					s0 += p[x * 3] * k[x];
					s1 += p[x * 3 + 1] * k[x];
					s2 += p[x * 3 + 2] * k[x];
				}
				o[xx * 3] = pp_clip8(s0);
				o[xx * 3 + 1] = pp_clip8(s1);
				o[xx * 3 + 2] = pp_clip8(s2);
			}
		} else {
			const int32_t *k = c->k + yy * (size_t)c->ksize;
			const int ymin = c->bounds[yy * 2], ny = c->bounds[yy * 2 + 1];
			const size_t rowlen = (size_t)j->dw * 3;
			for (size_t i = 0; i < rowlen; i++) {
				const uint8_t *p = j->src + (size_t)ymin * rowlen + i;
				int32_t s = 1 << (PP_BITS - 1);
				for (int y = 0; y < ny; y++)
					s += p[(size_t)y * rowlen] * k[y];
				o[i] = pp_clip8(s);
			}
		}
	}
}

static void pp_run(struct qvl_pool *pool, qvl_task_fn fn, void *arg)
{
	if (pool)
		qvl_pool_run(pool, fn, arg);
	else
		fn(arg, 0, 1);
}

int qvl_pp_resize_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh,
			  struct qvl_pool *pool)
{
	struct pp_coeffs ch = {0}, cv = {0};
	uint8_t *tmp = NULL;
	int rc, y0, y1;

	if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
		return -EINVAL;
	if (sw == dw && sh == dh) {
		memcpy(dst, src, (size_t)sw * sh * 3);
		return 0;
	}
	if ((rc = pp_coeffs(&ch, sw, dw)) || (rc = pp_coeffs(&cv, sh, dh)))
		goto out;
	/* Only the source rows the vertical pass reads go through the
	 * horizontal pass (as Pillow does; the result does not depend on it). */
	y0 = cv.bounds[0];
	y1 = cv.bounds[dh * 2 - 2] + cv.bounds[dh * 2 - 1];
	if (sw != dw) {
		struct pp_resize_job hj = {src, NULL, sw, dw, y1 - y0, y0, &ch, 0};
		tmp = malloc((size_t)dw * (size_t)(y1 - y0) * 3);
		if (!tmp) {
			rc = -ENOMEM;
			goto out;
		}
		hj.dst = tmp;
		pp_run(pool, pp_resize_task, &hj);
		for (int i = 0; i < dh; i++)
			cv.bounds[i * 2] -= y0;
		src = tmp;
	}
	if (sh != dh) {
		struct pp_resize_job vj = {src, dst, dw, dw, dh, 0, &cv, 1};
		pp_run(pool, pp_resize_task, &vj);
	} else {
		memcpy(dst, src, (size_t)dw * dh * 3);
	}
	rc = 0;
out:
	free(tmp);
	pp_coeffs_free(&ch);
	pp_coeffs_free(&cv);
	return rc;
}

/* ---- normalise + patchify ----------------------------------------------- */

struct pp_patch_job {
	const uint8_t *rgb;
	int w;
	const struct qvl_pp_params *p;
	struct qvl_pixels *out;
	float lut[3][256];
};

static void pp_patch_task(void *arg, int ith, int nth)
{
	const struct pp_patch_job *j = arg;
	const int P = j->p->patch, T = j->p->temporal, M = j->p->merge;
	const int gw = j->out->grid[2], dim = j->out->dim;
	size_t lo, hi;

	qvl_split((size_t)j->out->n, 1, ith, nth, &lo, &hi);
	for (size_t r = lo; r < hi; r++) {
		/* §3.5 inverse: mw, mh inside the window, bw, bh the window */
		const int mw = (int)(r % M), mh = (int)(r / M % M);
		const int bw = (int)(r / (M * M) % (gw / M)), bh = (int)(r / (M * M * (gw / M)));
		const int prow = bh * M + mh, pcol = bw * M + mw;
		float *x = j->out->x + r * (size_t)dim;
		for (int c = 0; c < 3; c++) {
			float *xc = x + (size_t)c * T * P * P;
			for (int py = 0; py < P; py++) {
				const uint8_t *s =
				    j->rgb +
				    ((size_t)(prow * P + py) * j->w + (size_t)pcol * P) * 3 + c;
				float *d = xc + (size_t)py * P;
				for (int px = 0; px < P; px++)
					d[px] = j->lut[c][s[px * 3]];
			}
			/* still image: every frame is the same */
			for (int t = 1; t < T; t++)
				memcpy(xc + (size_t)t * P * P, xc, (size_t)P * P * sizeof(float));
		}
	}
}

int qvl_pp_patchify(const uint8_t *rgb, int w, int h, const struct qvl_pp_params *p,
		    struct qvl_pool *pool, struct qvl_pixels *out, struct qvl_err *err)
{
	const int f = p->patch * p->merge;
	struct pp_patch_job *j;
	size_t sz;

	memset(out, 0, sizeof(*out));
	if (w <= 0 || h <= 0 || w % f || h % f)
		return qvl_errf(err, -EINVAL, "patchify: %dx%d is not a multiple of %d", w, h, f);
	out->grid[0] = 1;
	out->grid[1] = h / p->patch;
	out->grid[2] = w / p->patch;
	out->n = out->grid[1] * out->grid[2];
	out->dim = 3 * p->temporal * p->patch * p->patch;
	out->rw = w;
	out->rh = h;
	if (__builtin_mul_overflow((size_t)out->n, (size_t)out->dim * sizeof(float), &sz))
		return qvl_errf(err, -EFBIG, "patchify: %dx%d too large", w, h);
	out->x = malloc(sz);
	j = malloc(sizeof(*j));
	if (!out->x || !j) {
		free(j);
		qvl_pixels_free(out);
		return qvl_errf(err, -ENOMEM, "patchify: cannot allocate %zu bytes", sz);
	}
	j->rgb = rgb;
	j->w = w;
	j->p = p;
	j->out = out;
	/* HF: float32(float64(u8) * rescale), then (x - mean) / std in float32 */
	for (int c = 0; c < 3; c++)
		for (int u = 0; u < 256; u++) {
			float v = (float)((double)u * p->rescale);
			j->lut[c][u] = (v - p->mean[c]) / p->std[c];
		}
	pp_run(pool, pp_patch_task, j);
	free(j);
	return 0;
}

int qvl_preprocess(const struct qvl_image *im, const struct qvl_pp_params *p, struct qvl_pool *pool,
		   struct qvl_pixels *out, uint8_t **resized, struct qvl_err *err)
{
	uint8_t *rs;
	int rh, rw, rc;

	memset(out, 0, sizeof(*out));
	if (resized)
		*resized = NULL;
	rc = qvl_pp_smart_resize(im->h, im->w, p, &rh, &rw, err);
	if (rc)
		return rc;
	rs = malloc((size_t)rw * rh * 3);
	if (!rs)
		return qvl_errf(err, -ENOMEM, "resize to %dx%d: out of memory", rw, rh);
	rc = qvl_pp_resize_bicubic(im->rgb, im->w, im->h, rs, rw, rh, pool);
	if (rc) {
		free(rs);
		return qvl_errf(err, rc, "resize %dx%d to %dx%d: out of memory", im->w, im->h, rw,
				rh);
	}
	rc = qvl_pp_patchify(rs, rw, rh, p, pool, out, err);
	if (rc || !resized)
		free(rs);
	else
		*resized = rs;
	return rc;
}

void qvl_pixels_free(struct qvl_pixels *px)
{
	if (!px)
		return;
	free(px->x);
	px->x = NULL;
	px->n = 0;
}
