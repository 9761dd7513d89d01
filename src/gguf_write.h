/* Writing GGUF files (version 3, the layout src/gguf.h describes): metadata
 * and tensor infos are collected first, so that every tensor's offset is
 * known before a byte of data is written; then the header goes out in one
 * piece and the tensors are streamed in order, each padded to the alignment.
 * Nothing here holds tensor data: the caller writes it, tensor by tensor.
 *
 * Key/value semantics follow ggml's gguf_set_val_*: setting a key that
 * exists removes the old entry and appends the new one at the end (this is
 * why llama-quantize's files end with general.quantization_version and
 * general.file_type). Errors are sticky: the first failure (-ENOMEM, a bad
 * value) is remembered with its message and returned by gguf_w_write_header,
 * so metadata can be built without checking every call. */
#ifndef QVL_GGUF_WRITE_H
#define QVL_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"

struct gguf_w_kv {
	char *key;
	uint8_t *val; /* serialized: u32 type, then the value */
	size_t len;
};

struct gguf_w_tensor {
	char *name;
	uint32_t n_dims;
	uint64_t ne[GGUF_MAX_DIMS];
	uint32_t ggml_type;
	uint64_t nbytes, offset; /* offset relative to the data section */
};

struct gguf_w {
	struct gguf_w_kv *kv;
	size_t nkv, capkv;
	struct gguf_w_tensor *t;
	size_t nt, capt;
	uint64_t data_size; /* data section so far, padded */
	int rc;		    /* first error, sticky */
	struct qvl_err err; /* its message */
};

void gguf_w_init(struct gguf_w *w);
void gguf_w_free(struct gguf_w *w);

/* Scalars. */
void gguf_w_u32(struct gguf_w *w, const char *key, uint32_t v);
void gguf_w_i32(struct gguf_w *w, const char *key, int32_t v);
void gguf_w_f32(struct gguf_w *w, const char *key, float v);
void gguf_w_bool(struct gguf_w *w, const char *key, bool v);
void gguf_w_str(struct gguf_w *w, const char *key, const char *s, size_t len);
/* Any scalar given as its little-endian bytes (n = the type's size). */
void gguf_w_scalar(struct gguf_w *w, const char *key, enum gguf_type t, const void *le);
/* Arrays: fixed-size elements given as little-endian bytes (n elements of
 * the type's size), or strings. */
void gguf_w_arr(struct gguf_w *w, const char *key, enum gguf_type et, const void *le, uint64_t n);
void gguf_w_arr_str(struct gguf_w *w, const char *key, const char *const *s, const size_t *len,
		    uint64_t n);
/* Copy key i of a parsed file, value and type unchanged. */
void gguf_w_copy_kv(struct gguf_w *w, const struct gguf_file *f, size_t i);
bool gguf_w_has(const struct gguf_w *w, const char *key);
void gguf_w_remove(struct gguf_w *w, const char *key);

/* Declare the next tensor (ne fastest-first, as GGUF stores it); its bytes
 * follow from the type's geometry. Returns its index, or -1 (sticky error). */
long gguf_w_tensor(struct gguf_w *w, const char *name, uint32_t n_dims, const uint64_t *ne,
		   enum qvl_dtype dt);

/* Header, metadata, tensor infos and the padding before the data section. */
int gguf_w_write_header(struct gguf_w *w, int fd, const char *path, struct qvl_err *err);
/* The bytes that end tensor i: zero padding up to the alignment. */
int gguf_w_write_pad(const struct gguf_w *w, int fd, size_t i, const char *path,
		     struct qvl_err *err);
/* write(2) all of buf, retrying short writes and EINTR. */
int gguf_w_write_all(int fd, const void *buf, size_t len, const char *path, struct qvl_err *err);

#endif
