/* The deterministic test model (docs testmodel.md): every byte of
 * model.safetensors follows from a shape name and a 64-bit seed.
 *
 * The library part has no dependency on the engine: shapes and the sorted
 * tensor list (§2-§3), the counter-based PRNG and value rules (§4-§5), the
 * safetensors header (§6), the JSON side files (§8) and the streaming writer.
 * Elements are independent (x[i] is a pure function of key and i), so the
 * writer fills any byte range of the data section from any thread. */
#ifndef QVL_MKMODEL_H
#define QVL_MKMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* §4 constants */
#define QVL_MK_GOLDEN	  0x9E3779B97F4A7C15ULL
#define QVL_MK_FNV_OFFSET 0xCBF29CE484222325ULL
#define QVL_MK_FNV_PRIME  0x100000001B3ULL

#define QVL_MK_MAX_DIMS 5
#define QVL_MK_NAME_MAX 80 /* longest name is 59 bytes */

struct qvl_mk_tensor {
	char name[QVL_MK_NAME_MAX];
	int ndim;
	uint64_t shape[QVL_MK_MAX_DIMS];
	uint64_t numel;
	uint64_t offset; /* byte offset from the start of the data section */
	uint64_t key;	 /* mix64(seed ^ fnv1a64(name)) */
	int exp;	 /* scale 2^-exp (negative for the final norm's 16) */
	bool has_center; /* v = 2^center + f * 2^-exp */
	int center;
};

/* §2: the dimensions of a shape (vision fields prefixed v_). */
struct qvl_mk_shape {
	const char *name;
	int vocab, hidden, inter, layers, heads, kv_heads, head_dim, max_pos, mrope[3];
	int v_depth, v_hidden, v_inter, v_heads, v_out, v_pos, v_deepstack[4], v_ndeepstack;
};

/* "tiny" or "2b"; NULL for anything else. */
const struct qvl_mk_shape *qvl_mk_find_shape(const char *name);

/* Everything model.safetensors is made of, computed before a byte is written. */
struct qvl_mk_plan {
	const struct qvl_mk_shape *shape;
	uint64_t seed;
	bool vision;
	struct qvl_mk_tensor *t; /* sorted by name bytes (§3) */
	size_t n;
	char *header;	     /* 8-byte length + JSON + padding spaces */
	size_t header_bytes; /* 8 + N */
	uint64_t data_bytes;
	uint64_t params;
};

/* §4: the PRNG, one element at a time (the reference the fast paths are
 * tested against). */
uint64_t qvl_mk_fnv1a64(const void *data, size_t len);
uint64_t qvl_mk_mix64(uint64_t z);
uint64_t qvl_mk_tensor_key(uint64_t seed, const char *name);
/* x[i], r[i] and the final bf16 bits of element i. */
uint64_t qvl_mk_x(uint64_t key, uint64_t i);
int32_t qvl_mk_r(uint64_t key, uint64_t i);
uint16_t qvl_mk_f32_to_bf16(float v); /* §5.2, finite v only */
uint16_t qvl_mk_element(const struct qvl_mk_tensor *t, uint64_t i);

/* Value rule of §5.3 for a tensor name and shape: sets exp/has_center/center. */
void qvl_mk_classify(struct qvl_mk_tensor *t);

/* Fill out[0..count) with elements start..start+count-1 of t (bf16 bits).
 * Uses AVX-512 when the CPU has it; bit-identical to qvl_mk_element(). */
void qvl_mk_fill(const struct qvl_mk_tensor *t, uint64_t start, size_t count, uint16_t *out);
/* The portable loop, exposed so tests can compare both paths. */
void qvl_mk_fill_scalar(const struct qvl_mk_tensor *t, uint64_t start, size_t count, uint16_t *out);
/* Fill bytes [off, off + len) of the data section (off and len even). */
void qvl_mk_fill_range(const struct qvl_mk_plan *p, uint64_t off, size_t len, void *out);

/* Seed per §1: decimal or 0x/0X hex, 0 .. 2^64-1, nothing else (no sign, no
 * '_', no spaces). Leading zeros are decimal: "012" is twelve, never octal. */
int qvl_mk_parse_seed(const char *s, uint64_t *out);

/* Build the plan for shape "tiny" or "2b". -EINVAL names an unknown shape. */
int qvl_mk_plan_init(struct qvl_mk_plan *p, const char *shape, uint64_t seed, bool vision,
		     struct qvl_err *err);
void qvl_mk_plan_free(struct qvl_mk_plan *p);

/* §8: the JSON side files as malloc'd NUL-terminated text. */
char *qvl_mk_config_json(const struct qvl_mk_plan *p);
char *qvl_mk_generation_config_json(void);
char *qvl_mk_preprocessor_config_json(void);

struct qvl_mk_opts {
	const char *shape;
	uint64_t seed;
	bool vision;
	const char *tokenizer_dir;
	const char *out_dir;
	int threads;	    /* <= 0: one per online CPU */
	size_t chunk_bytes; /* 0: default (512 KiB) */
	/* model.safetensors bytes written so far, of total, on the calling
	 * thread between chunks (NULL: no report) */
	void (*progress)(void *ctx, double done, double total);
	void *progress_ctx;
};

struct qvl_mk_result {
	size_t tensors;
	uint64_t params;
	uint64_t file_bytes;
	size_t header_bytes;
	int threads;
	double seconds;	      /* whole command */
	double model_seconds; /* model.safetensors only */
};

/* The tokenizer directory mkmodel uses: opt (--tokenizer-dir) if set, else
 * $QVL_TOKENIZER_DIR, else the installed copy in $(pkgdatadir) when it holds
 * a tokenizer.json, else configure's --with-tokenizer-dir (possibly "").
 * _defaults() describes the last two for --help. */
const char *qvl_mk_tokenizer_dir(const char *opt);
const char *qvl_mk_tokenizer_dir_defaults(void);

/* Write the whole model directory: side files, tokenizer copies, and
 * model.safetensors streamed in chunks through a temporary name that is
 * renamed only once complete. */
int qvl_mk_write(const struct qvl_mk_opts *o, struct qvl_mk_result *res, struct qvl_err *err);

#endif
