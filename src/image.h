/* Image decoding to RGB8: PNG (libspng), JPEG (libjpeg-turbo, with EXIF
 * orientation applied as PIL's ImageOps.exif_transpose does) and raw RGB8
 * buffers (what a client places in shared memory). Every other mode is
 * converted as PIL's convert("RGB") does: alpha dropped, gray and palette
 * expanded. Sizes come from untrusted data: the header dimensions are checked
 * against the limits before anything is allocated. Owned by the vision module. */
#ifndef QVL_IMAGE_H
#define QVL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define QVL_IMAGE_MAX_PIXELS_DEFAULT (64ull << 20)  /* 64 Mpx */
#define QVL_IMAGE_MAX_BYTES_DEFAULT  (256ull << 20) /* encoded input */

struct qvl_image_limits {
	uint64_t max_pixels; /* width * height; 0: the default */
	uint64_t max_bytes;  /* encoded bytes; 0: the default */
};

/* A decoded image: rgb[(y * w + x) * 3 + c], rows packed. */
struct qvl_image {
	int w, h;
	uint8_t *rgb;
};

/* Decode PNG or JPEG from memory (format sniffed from the signature). name
 * (may be NULL) prefixes error messages. lim may be NULL (defaults). */
int qvl_image_decode(struct qvl_image *out, const void *data, size_t size, const char *name,
		     const struct qvl_image_limits *lim, struct qvl_err *err);
/* Read and decode a file. */
int qvl_image_load(struct qvl_image *out, const char *path, const struct qvl_image_limits *lim,
		   struct qvl_err *err);
/* Copy a raw RGB8 buffer: h rows of w*3 bytes, `stride` bytes apart
 * (stride >= w*3); size is the bytes available at data. */
int qvl_image_from_rgb(struct qvl_image *out, const void *data, size_t size, int w, int h,
		       size_t stride, const struct qvl_image_limits *lim, struct qvl_err *err);
void qvl_image_free(struct qvl_image *im);

/* For tests and the decoder: EXIF orientation (1..8) from an APP1 payload
 * ("Exif\0\0" + TIFF), or 1 when absent or malformed. */
int qvl_exif_orientation(const uint8_t *app1, size_t len);
/* Apply orientation o (2..8) as PIL's exif_transpose; replaces im->rgb. */
int qvl_image_orient(struct qvl_image *im, int o);

#endif
