/* GGUF parser internals shared by gguf.c (parsing) and gguf_get.c (typed
 * access to values); nothing else includes this. */
#ifndef QVL_GGUF_IMPL_H
#define QVL_GGUF_IMPL_H

#include "gguf.h"
#include "util.h"

struct gguf_kv {
	char *key; /* NUL-terminated copy */
	enum gguf_type type;
	const uint8_t *val;  /* the value (for arrays: the element type field) */
	struct gguf_arr arr; /* arrays only; arr.off is resolved after parsing */
	uint64_t arr_pool;   /* index of its offset table in pool, or UINT64_MAX */
};

struct gguf_file {
	char *what;
	struct qvl_map map; /* gguf_open only */
	const uint8_t *buf;
	size_t size;
	uint32_t version;
	uint64_t alignment;
	uint64_t data_off;
	struct gguf_kv *kv;
	size_t nkv;
	struct gguf_tensor_info *t;
	size_t nt;
	/* Offset tables of every array whose elements have variable size. An
	 * array of n strings owns n entries (offset of element i from the array
	 * data); an array of n arrays owns 2n: the offsets, then for each
	 * element the pool index of its own table (UINT64_MAX if it needs none). */
	uint64_t *pool;
	uint64_t npool, cappool;
};

/* Fixed element sizes; 0 for variable-size types (string, array). */
extern const uint8_t gguf_type_size[GGUF_TYPE_COUNT];

/* Little-endian load of n bytes (p has been bounds-checked). */
static inline uint64_t gguf_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif
