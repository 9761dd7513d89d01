/* safetensors: the header parser, separate from file handling so that the
 * fuzzer can feed it arbitrary bytes.
 *
 * Layout: u64 little-endian N, N bytes of JSON header, then the data. Each
 * header entry names a tensor with dtype, shape and data_offsets [begin, end)
 * relative to the start of the data. */
#ifndef QVL_SAFETENSORS_H
#define QVL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

/* A header bigger than this is refused as absurd (the 2B model's is 76 kB). */
#define QVL_ST_MAX_HEADER (100u << 20)

struct qvl_st_entry {
	char *name; /* decoded, NUL-terminated, valid UTF-8, owned */
	enum qvl_dtype dtype;
	int ndim;
	int64_t shape[QVL_MAX_DIMS];
	uint64_t nelem;
	uint64_t begin, end; /* relative to data_start */
};

struct qvl_st_header {
	struct qvl_st_entry *entries; /* in header order */
	size_t n;
	uint64_t data_start; /* 8 + N */
	uint64_t data_size;  /* file size - data_start */
};

/* Parse and validate the whole file image buf[0..size): header length,
 * JSON, every entry's dtype, shape and offsets against the data size,
 * overlaps and duplicate names. `what` (the file name) starts every error
 * message. Returns 0 or a negative errno (-EBADMSG for corrupt input). */
int qvl_st_parse(struct qvl_st_header *h, const void *buf, size_t size, const char *what,
		 struct qvl_err *err);
void qvl_st_free(struct qvl_st_header *h);

#endif
