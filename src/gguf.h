/* GGUF (llama.cpp's model file format, versions 2 and 3): a validating parser
 * over a byte buffer, separate from any model mapping so that the fuzzer can
 * feed it arbitrary bytes and the tokenizer can read tokenizer.ggml.* from it.
 *
 * Layout (all little-endian): "GGUF", u32 version, u64 tensor count, u64 kv
 * count; kv pairs (string key, u32 value type, value); tensor infos (string
 * name, u32 n_dims, u64 ne[n_dims] fastest-first, u32 ggml type, u64 offset
 * relative to the data section); padding to general.alignment (default 32);
 * the data section. A string is u64 length + bytes (no NUL).
 *
 * Everything returned points into the parsed buffer or into the gguf_file and
 * lives until gguf_close(). Strings taken from the buffer are NOT
 * NUL-terminated: use the returned length. Keys and tensor names have been
 * checked to be valid UTF-8; string values have not (they are bytes). */
#ifndef QVL_GGUF_H
#define QVL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

enum gguf_type {
	GGUF_TYPE_UINT8 = 0,
	GGUF_TYPE_INT8 = 1,
	GGUF_TYPE_UINT16 = 2,
	GGUF_TYPE_INT16 = 3,
	GGUF_TYPE_UINT32 = 4,
	GGUF_TYPE_INT32 = 5,
	GGUF_TYPE_FLOAT32 = 6,
	GGUF_TYPE_BOOL = 7,
	GGUF_TYPE_STRING = 8,
	GGUF_TYPE_ARRAY = 9,
	GGUF_TYPE_UINT64 = 10,
	GGUF_TYPE_INT64 = 11,
	GGUF_TYPE_FLOAT64 = 12,
	GGUF_TYPE_COUNT
};

/* ggml tensor type numbers qvl reads (others are refused by name and number). */
enum gguf_ggml_type {
	GGUF_GGML_F32 = 0,
	GGUF_GGML_F16 = 1,
	GGUF_GGML_Q4_0 = 2,
	GGUF_GGML_Q8_0 = 8,
	GGUF_GGML_BF16 = 30,
};

#define GGUF_MAX_DIMS	       4
#define GGUF_DEFAULT_ALIGNMENT 32
/* Sanity bounds: counts above these are refused before anything is allocated
 * (they are also bounded by what the remaining bytes could possibly hold). */
#define GGUF_MAX_TENSORS     (1u << 20)
#define GGUF_MAX_KV	     (1u << 20)
#define GGUF_MAX_ARRAY_DEPTH 4

struct gguf_file; /* opaque */

struct gguf_tensor_info {
	const char *name;	    /* NUL-terminated copy, owned by the gguf_file, valid UTF-8 */
	int n_dims;		    /* 1..4 */
	uint64_t ne[GGUF_MAX_DIMS]; /* fastest-first; unused dims are 1 */
	uint64_t nelem;
	uint32_t ggml_type;   /* raw type number from the file */
	enum qvl_dtype dtype; /* its qvl equivalent */
	uint64_t offset;      /* relative to the data section */
	uint64_t nbytes;
	const void *data; /* into the buffer: data section + offset */
};

/* A view of an array value. Elements are read one at a time, never copied as
 * a whole (the Qwen vocabulary is an array of 151936 strings). */
struct gguf_arr {
	const struct gguf_file *f;
	enum gguf_type type; /* element type; GGUF_TYPE_ARRAY for nested arrays */
	uint64_t n;
	const uint8_t *data; /* first element */
	const uint64_t *off; /* STRING/ARRAY elements: offset of element i from data */
};

/* Parse and validate buf[0..size) (borrowed: it must outlive the result).
 * `what` (usually the file name) starts every error message. Returns 0 or a
 * negative errno (-EBADMSG for corrupt input, -ENOTSUP for an unsupported
 * tensor type or version, -ENOMEM). */
int gguf_parse(struct gguf_file **out, const void *buf, size_t size, const char *what,
	       struct qvl_err *err);
/* mmap path read-only and parse it; the map is owned by the result. */
int gguf_open(struct gguf_file **out, const char *path, struct qvl_err *err);
void gguf_close(struct gguf_file *f);

const char *gguf_what(const struct gguf_file *f); /* name used in messages */
uint32_t gguf_version(const struct gguf_file *f);
uint64_t gguf_alignment(const struct gguf_file *f);
uint64_t gguf_data_offset(const struct gguf_file *f); /* start of the data section */
const char *gguf_type_name(enum gguf_type t);	      /* "uint32", ...; "?" if unknown */
const char *gguf_ggml_type_name(uint32_t ggml_type);  /* "F32", "Q4_K", ...; "?" */

/* Metadata by index (0 <= i < gguf_n_kv) or by key. */
size_t gguf_n_kv(const struct gguf_file *f);
const char *gguf_kv_key(const struct gguf_file *f, size_t i); /* NUL-terminated */
enum gguf_type gguf_kv_type(const struct gguf_file *f, size_t i);
/* Index of key, or -1 when absent. */
long gguf_find_key(const struct gguf_file *f, const char *key);

/* Typed getters by key. Return 0, -ENOENT when the key is absent, -EINVAL
 * when its type does not fit (err names the file, key, type and value).
 * Integer getters accept any integer type (and bool) whose value is in range;
 * gguf_get_f64 accepts float32/float64 and integers; gguf_get_str returns a
 * pointer into the buffer, not NUL-terminated. err may be NULL. */
int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out, struct qvl_err *err);
int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out, struct qvl_err *err);
int gguf_get_int(const struct gguf_file *f, const char *key, int *out, struct qvl_err *err);
int gguf_get_f64(const struct gguf_file *f, const char *key, double *out, struct qvl_err *err);
int gguf_get_bool(const struct gguf_file *f, const char *key, bool *out, struct qvl_err *err);
int gguf_get_str(const struct gguf_file *f, const char *key, const char **s, size_t *len,
		 struct qvl_err *err);
/* Copy a string value into buf (cap bytes, NUL-terminated); -ENAMETOOLONG if
 * it does not fit, -EINVAL if it contains a NUL byte. */
int gguf_get_strz(const struct gguf_file *f, const char *key, char *buf, size_t cap,
		  struct qvl_err *err);
int gguf_get_arr(const struct gguf_file *f, const char *key, struct gguf_arr *a,
		 struct qvl_err *err);
/* The same for the value of kv i (scalars through gguf_kv_i64/f64 etc. are
 * not needed: use the key). */
int gguf_kv_arr(const struct gguf_file *f, size_t i, struct gguf_arr *a);

/* Element i of an array (i < a->n). 0, or -EINVAL when the element type does
 * not fit / i out of range. gguf_arr_i64 accepts integers and bool,
 * gguf_arr_f64 also floats; gguf_arr_sub returns a nested array. */
int gguf_arr_str(const struct gguf_arr *a, uint64_t i, const char **s, size_t *len);
int gguf_arr_i64(const struct gguf_arr *a, uint64_t i, int64_t *out);
int gguf_arr_f64(const struct gguf_arr *a, uint64_t i, double *out);
int gguf_arr_sub(const struct gguf_arr *a, uint64_t i, struct gguf_arr *sub);

/* Tensor infos, in file order. */
size_t gguf_n_tensors(const struct gguf_file *f);
const struct gguf_tensor_info *gguf_tensor(const struct gguf_file *f, size_t i);
const struct gguf_tensor_info *gguf_find_tensor(const struct gguf_file *f, const char *name);

#endif
