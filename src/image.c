/* Image decoding (see image.h). The decoders' own limits are set as well as
 * ours, but ours come first: header dimensions are checked against
 * max_pixels before the decoders allocate anything. */
#include "image.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <spng.h>

#include "util.h"

#define JPEG_MAX_SCANS 1000 /* progressive scans; more is a CPU-time bomb */

static const char *img_name(const char *name)
{
	return name ? name : "image";
}

static void img_limits(const struct qvl_image_limits *lim, uint64_t *max_px, uint64_t *max_bytes)
{
	*max_px = lim && lim->max_pixels ? lim->max_pixels : QVL_IMAGE_MAX_PIXELS_DEFAULT;
	*max_bytes = lim && lim->max_bytes ? lim->max_bytes : QVL_IMAGE_MAX_BYTES_DEFAULT;
}

/* Dimensions a header claims, before any allocation. */
static int img_check_dims(uint64_t w, uint64_t h, uint64_t max_px, const char *name,
			  struct qvl_err *err)
{
	if (w == 0 || h == 0)
		return qvl_errf(err, -EBADMSG, "%s: bogus dimensions %llux%llu", name,
				(unsigned long long)w, (unsigned long long)h);
	if (w > INT_MAX / 4 || h > INT_MAX / 4 || w * h > max_px)
		return qvl_errf(err, -EFBIG,
				"%s: %llux%llu is %llu pixels, more than the limit of %llu", name,
				(unsigned long long)w, (unsigned long long)h,
				(unsigned long long)(w * h), (unsigned long long)max_px);
	return 0;
}

static int img_alloc(struct qvl_image *out, int w, int h, const char *name, struct qvl_err *err)
{
	size_t n;
	if (__builtin_mul_overflow((size_t)w, (size_t)h, &n) || __builtin_mul_overflow(n, 3, &n))
		return qvl_errf(err, -EFBIG, "%s: %dx%d overflows", name, w, h);
	out->rgb = malloc(n ? n : 1);
	if (!out->rgb)
		return qvl_errf(err, -ENOMEM, "%s: cannot allocate %zu bytes", name, n);
	out->w = w;
	out->h = h;
	return 0;
}

void qvl_image_free(struct qvl_image *im)
{
	if (!im)
		return;
	free(im->rgb);
	im->rgb = NULL;
	im->w = im->h = 0;
}

/* ---- PNG ---------------------------------------------------------------- */

static int img_png(struct qvl_image *out, const void *data, size_t size, const char *name,
		   uint64_t max_px, struct qvl_err *err)
{
	spng_ctx *ctx = spng_ctx_new(0);
	struct spng_ihdr ihdr;
	size_t len;
	int rc, e;

	if (!ctx)
		return qvl_errf(err, -ENOMEM, "%s: cannot create a PNG decoder", name);
	/* A bad CRC anywhere is a corrupt file, as PIL treats it. */
	spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR);
	spng_set_chunk_limits(ctx, size, size);
	spng_set_image_limits(ctx, INT_MAX / 4, INT_MAX / 4);
	e = spng_set_png_buffer(ctx, data, size);
	if (!e)
		e = spng_get_ihdr(ctx, &ihdr);
	if (e) {
		rc = qvl_errf(err, -EBADMSG, "%s: PNG header: %s", name, spng_strerror(e));
		goto out;
	}
	rc = img_check_dims(ihdr.width, ihdr.height, max_px, name, err);
	if (rc)
		goto out;
	e = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &len);
	if (e || len != (size_t)ihdr.width * ihdr.height * 3) {
		rc = qvl_errf(err, -EBADMSG, "%s: PNG: %s", name,
			      e ? spng_strerror(e) : "unexpected decoded size");
		goto out;
	}
	rc = img_alloc(out, (int)ihdr.width, (int)ihdr.height, name, err);
	if (rc)
		goto out;
	/* RGB8 output: alpha and tRNS dropped, gray/palette expanded, 16-bit
	 * samples reduced to their high byte: what convert("RGB") gives. */
	e = spng_decode_image(ctx, out->rgb, len, SPNG_FMT_RGB8, 0);
	/* Read on to IEND: the last IDAT's CRC is only checked there. */
	if (!e)
		e = spng_decode_chunks(ctx);
	if (e) {
		qvl_image_free(out);
		rc = qvl_errf(err, -EBADMSG, "%s: PNG data: %s", name, spng_strerror(e));
	}
out:
	spng_ctx_free(ctx);
	return rc;
}

/* ---- JPEG --------------------------------------------------------------- */

struct img_jerr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
};

static void img_jpeg_error_exit(j_common_ptr c)
{
	struct img_jerr *je = (struct img_jerr *)c->err;
	c->err->format_message(c, je->msg);
	longjmp(je->jb, 1);
}

/* A truncated file is only a warning to libjpeg (it pads with gray); PIL
 * refuses it, and so do we. Other warnings stay silent. */
static void img_jpeg_emit(j_common_ptr c, int level)
{
	if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF)
		img_jpeg_error_exit(c);
}

static void img_jpeg_progress(j_common_ptr c)
{
	j_decompress_ptr d = (j_decompress_ptr)c;
	if (c->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
		struct img_jerr *je = (struct img_jerr *)c->err;
		snprintf(je->msg, sizeof(je->msg), "more than %d scans", JPEG_MAX_SCANS);
		longjmp(je->jb, 1);
	}
}

static uint32_t img_rd(const uint8_t *p, int n, bool be)
{
	uint32_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint32_t)p[be ? i : n - 1 - i] << (8 * (n - 1 - i));
	return v;
}

int qvl_exif_orientation(const uint8_t *p, size_t len)
{
	static const uint8_t sig[6] = {'E', 'x', 'i', 'f', 0, 0};
	const uint8_t *t;
	size_t tl, ifd, cnt;
	bool be;

	if (!p || len < 6 + 8 || memcmp(p, sig, 6))
		return 1;
	t = p + 6;
	tl = len - 6;
	if (t[0] == 'I' && t[1] == 'I')
		be = false;
	else if (t[0] == 'M' && t[1] == 'M')
		be = true;
	else
		return 1;
	if (img_rd(t + 2, 2, be) != 42)
		return 1;
	ifd = img_rd(t + 4, 4, be);
	if (ifd > tl || tl - ifd < 2)
		return 1;
	cnt = img_rd(t + ifd, 2, be);
	for (size_t i = 0; i < cnt; i++) {
		size_t off = ifd + 2 + i * 12;
		if (off > tl || tl - off < 12)
			return 1;
		if (img_rd(t + off, 2, be) != 0x0112)
			continue;
		/* SHORT, count 1: the value sits left-aligned in the 4-byte field */
		if (img_rd(t + off + 2, 2, be) != 3 || img_rd(t + off + 4, 4, be) != 1)
			return 1;
		uint32_t o = img_rd(t + off + 8, 2, be);
		return o >= 1 && o <= 8 ? (int)o : 1;
	}
	return 1;
}

int qvl_image_orient(struct qvl_image *im, int o)
{
	if (o < 2 || o > 8)
		return 0;
	const int W = im->w, H = im->h;
	const bool swap = o >= 5;
	const int dw = swap ? H : W, dh = swap ? W : H;
	uint8_t *dst = malloc((size_t)W * H * 3);
	if (!dst)
		return -ENOMEM;
	for (int y = 0; y < dh; y++) {
		for (int x = 0; x < dw; x++) {
			int sx, sy;
			switch (o) {
			case 2:
				sx = W - 1 - x, sy = y;
				break; /* FLIP_LEFT_RIGHT */
			case 3:
				sx = W - 1 - x, sy = H - 1 - y;
				break; /* ROTATE_180 */
			case 4:
				sx = x, sy = H - 1 - y;
				break; /* FLIP_TOP_BOTTOM */
			case 5:
				sx = y, sy = x;
				break; /* TRANSPOSE */
			case 6:
				sx = y, sy = H - 1 - x;
				break; /* ROTATE_270 */
			case 7:
				sx = W - 1 - y, sy = H - 1 - x;
				break; /* TRANSVERSE */
			default:
				sx = W - 1 - y, sy = x;
				break; /* 8: ROTATE_90 */
			}
			memcpy(dst + ((size_t)y * dw + x) * 3, im->rgb + ((size_t)sy * W + sx) * 3,
			       3);
		}
	}
	free(im->rgb);
	im->rgb = dst;
	im->w = dw;
	im->h = dh;
	return 0;
}

/* The setjmp frame lives here; everything a longjmp must see modified is
 * reached through `out` (not a local), so no volatile is needed. */
static int img_jpeg(struct qvl_image *out, const void *data, size_t size, const char *name,
		    uint64_t max_px, struct qvl_err *err)
{
	struct jpeg_decompress_struct d;
	struct jpeg_progress_mgr prog = {.progress_monitor = img_jpeg_progress};
	struct img_jerr je;
	volatile int orient = 1;
	int rc;

	memset(&d, 0, sizeof(d));
	d.err = jpeg_std_error(&je.pub);
	je.pub.error_exit = img_jpeg_error_exit;
	je.pub.emit_message = img_jpeg_emit;
	je.msg[0] = 0;
	out->rgb = NULL;
	if (setjmp(je.jb)) {
		jpeg_destroy_decompress(&d);
		qvl_image_free(out);
		return qvl_errf(err, -EBADMSG, "%s: JPEG: %s", name, je.msg);
	}
	jpeg_create_decompress(&d);
	d.progress = &prog;
	jpeg_mem_src(&d, data, (unsigned long)size);
	jpeg_save_markers(&d, JPEG_APP0 + 1, 0xffff);
	jpeg_read_header(&d, TRUE);
	rc = img_check_dims(d.image_width, d.image_height, max_px, name, err);
	if (rc)
		goto fail;
	if (d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK) {
		rc = qvl_errf(err, -ENOTSUP, "%s: CMYK JPEG is not supported", name);
		goto fail;
	}
	for (jpeg_saved_marker_ptr mk = d.marker_list; mk; mk = mk->next)
		if (mk->marker == JPEG_APP0 + 1 && orient == 1)
			orient = qvl_exif_orientation(mk->data, mk->data_length);
	d.out_color_space = JCS_RGB;
	jpeg_start_decompress(&d);
	if (d.output_components != 3 || d.output_width != d.image_width ||
	    d.output_height != d.image_height) {
		rc = qvl_errf(err, -EBADMSG, "%s: JPEG: unexpected output %ux%u x%d", name,
			      d.output_width, d.output_height, d.output_components);
		goto fail;
	}
	rc = img_alloc(out, (int)d.output_width, (int)d.output_height, name, err);
	if (rc)
		goto fail;
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = out->rgb + (size_t)d.output_scanline * out->w * 3;
		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	rc = qvl_image_orient(out, orient);
	if (rc) {
		qvl_image_free(out);
		return qvl_errf(err, rc, "%s: EXIF orientation %d: out of memory", name, orient);
	}
	return 0;
fail:
	jpeg_destroy_decompress(&d);
	qvl_image_free(out);
	return rc;
}

/* ---- entry points ------------------------------------------------------- */

int qvl_image_decode(struct qvl_image *out, const void *data, size_t size, const char *name,
		     const struct qvl_image_limits *lim, struct qvl_err *err)
{
	static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	const uint8_t *p = data;
	uint64_t max_px, max_bytes;

	memset(out, 0, sizeof(*out));
	name = img_name(name);
	img_limits(lim, &max_px, &max_bytes);
	if (size == 0)
		return qvl_errf(err, -EBADMSG, "%s: empty file", name);
	if (size > max_bytes)
		return qvl_errf(err, -EFBIG, "%s: %zu bytes, more than the limit of %llu", name,
				size, (unsigned long long)max_bytes);
	if (size >= 8 && !memcmp(p, png_sig, 8))
		return img_png(out, data, size, name, max_px, err);
	if (size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		return img_jpeg(out, data, size, name, max_px, err);
	return qvl_errf(err, -EBADMSG, "%s: not a PNG or JPEG image", name);
}

int qvl_image_load(struct qvl_image *out, const char *path, const struct qvl_image_limits *lim,
		   struct qvl_err *err)
{
	struct qvl_map map;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = qvl_map_file(&map, path, err);
	if (rc)
		return rc;
	rc = qvl_image_decode(out, map.data, map.size, path, lim, err);
	qvl_unmap(&map);
	return rc;
}

int qvl_image_from_rgb(struct qvl_image *out, const void *data, size_t size, int w, int h,
		       size_t stride, const struct qvl_image_limits *lim, struct qvl_err *err)
{
	uint64_t max_px, max_bytes;
	size_t need;
	int rc;

	memset(out, 0, sizeof(*out));
	img_limits(lim, &max_px, &max_bytes);
	if (w <= 0 || h <= 0)
		return qvl_errf(err, -EINVAL, "raw RGB: bogus dimensions %dx%d", w, h);
	rc = img_check_dims((uint64_t)w, (uint64_t)h, max_px, "raw RGB", err);
	if (rc)
		return rc;
	if (stride < (size_t)w * 3)
		return qvl_errf(err, -EINVAL, "raw RGB: stride %zu below width %d x 3", stride, w);
	if (__builtin_mul_overflow(stride, (size_t)(h - 1), &need) ||
	    __builtin_add_overflow(need, (size_t)w * 3, &need) || need > size)
		return qvl_errf(err, -EINVAL,
				"raw RGB: %dx%d with stride %zu needs more than %zu bytes", w, h,
				stride, size);
	rc = img_alloc(out, w, h, "raw RGB", err);
	if (rc)
		return rc;
	for (int y = 0; y < h; y++)
		memcpy(out->rgb + (size_t)y * w * 3, (const uint8_t *)data + (size_t)y * stride,
		       (size_t)w * 3);
	return 0;
}
