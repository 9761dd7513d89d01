/* The qvl pack (.qvl): one file holding a whole Qwen3-VL model (text and
 * vision) laid out for direct I/O. The format is specified in qvl-pack(5);
 * in short, all little-endian:
 *
 *   [0, 4096)              header: magic, version, section offsets, counts,
 *                          CRC-64 of the metadata, of the table and of itself
 *   [meta_off, +meta_len)  metadata records: the config, the tokenizer
 *   [table_off, +len)      shard table, tensor table, name pool
 *   [data_off, file_bytes) shards, each 4096-aligned: one per text layer,
 *                          the embeddings, the head, the vision patch
 *                          embedding, each vision block, the mergers
 *
 * Every shard carries a CRC-64/XZ (ISA-L crc64_ecma_refl): 64 bits because
 * shards are hundreds of megabytes, where a 32-bit CRC's guarantees (Hamming
 * distance, 2^-32 miss rate) are much weaker, and ISA-L's folding CRC-64
 * runs as fast as its CRC32C.
 *
 * Files: pack_parse.c (header and table, bounds-checked; the fuzz target's
 * subject), pack_meta.c (the config record), pack_write.c (qvlctl pack),
 * pack_model.c (the model reader), cmd_pack.c, cmd_verify.c. */
#ifndef QVL_PACK_H
#define QVL_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

#define PACK_MAGIC	  "QVLPACK" /* 8 bytes with the NUL */
#define PACK_MAJOR	  1	    /* readers refuse another major version */
#define PACK_MINOR	  0	    /* readers accept any minor (qvl-pack(5)) */
#define PACK_HDR_BYTES	  4096u
#define PACK_ALIGN	  4096u /* shards and the file end */
#define PACK_TENSOR_ALIGN 64u	/* tensors inside a shard */
#define PACK_SHARD_ENTRY  40u
#define PACK_TENSOR_ENTRY 80u
#define PACK_MAX_HEAD	  (256u << 20) /* header + metadata + table */
#define PACK_MAX_NAME	  255u

/* header field offsets */
enum {
	PH_MAGIC = 0,
	PH_MAJOR = 8, /* u16 */
	PH_MINOR = 10,
	PH_HDR_BYTES = 12, /* u32 */
	PH_ALIGN = 16,
	PH_FLAGS = 20,
	PH_FILE_BYTES = 24, /* u64 */
	PH_META_OFF = 32,
	PH_META_LEN = 40,
	PH_TABLE_OFF = 48,
	PH_TABLE_LEN = 56,
	PH_DATA_OFF = 64,
	PH_N_SHARDS = 72, /* u32 */
	PH_N_TENSORS = 76,
	PH_META_CRC = 80, /* u64 */
	PH_TABLE_CRC = 88,
	PH_HDR_CRC = PACK_HDR_BYTES - 8,
};

/* metadata record kinds; readers skip kinds they do not know */
enum pack_meta_kind {
	PACK_META_CONFIG = 1,	      /* pack_meta.c's config record */
	PACK_META_TOKENIZER_JSON = 2, /* tokenizer.json, verbatim */
	PACK_META_TOKENIZER_GGUF = 3, /* a GGUF with no tensors: the tokenizer.* keys */
	PACK_META_SOURCE = 4,	      /* UTF-8: what the pack was made from (informational) */
};

struct pack_shard {
	char *name;
	uint64_t off, len, crc;
};

struct pack_tensor {
	char *name;
	enum qvl_dtype dtype;
	int ndim;
	int64_t shape[QVL_MAX_DIMS];
	uint64_t nelem;
	uint32_t shard;
	uint64_t off, nbytes; /* within the shard */
};

struct pack_info {
	uint16_t major, minor;
	uint64_t file_bytes, meta_off, meta_len, table_off, table_len, data_off;
	uint32_t n_shards, n_tensors;
	struct pack_shard *shards; /* in file order */
	struct pack_tensor *tensors;
	/* metadata records (pointers into the buffer given to pack_parse) */
	const uint8_t *config, *tok_json, *tok_gguf, *source;
	uint64_t config_len, tok_json_len, tok_gguf_len, source_len;
};

static inline uint64_t pack_get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline void pack_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Parse and check the header, metadata and tables in buf[0, size) (at
 * least the first PACK_HDR_BYTES; the whole head, [0, data_off), for
 * pack_parse). Every offset, length and count is bounds-checked, every CRC
 * but the shards' is compared. err names the field. */
int pack_parse_header(struct pack_info *p, const uint8_t *buf, size_t size, const char *what,
		      struct qvl_err *err);
int pack_parse(struct pack_info *p, const uint8_t *buf, size_t size, const char *what,
	       struct qvl_err *err);
void pack_free(struct pack_info *p);

/* Open path and read its head into *head (malloc'd; the metadata pointers of
 * p point into it); *fsize is the file's real size. */
int pack_read_head(const char *path, struct pack_info *p, uint8_t **head, uint64_t *fsize,
		   struct qvl_err *err);

/* The config record (pack_meta.c). pack_config_size() bytes. */
size_t pack_config_size(void);
void pack_config_write(uint8_t *out, const struct qvl_model *m);
int pack_config_read(struct qvl_model *m, const uint8_t *p, uint64_t len, const char *what,
		     struct qvl_err *err);

/* The shard a tensor of a Qwen3-VL model belongs in ("text.layer.12",
 * "vision.block.3", ...), and its rank for file order. */
void pack_shard_of(const char *tensor, char *name, size_t cap, uint64_t *rank);

/* qvlctl pack (pack_write.c). */
struct pack_opts {
	const char *model, *mmproj, *out;
	int type; /* enum qvl_dtype for the weight matrices, or -1: keep the source's */
	void (*progress)(void *ctx, double done, double total);
	void *progress_ctx;
};

struct pack_result {
	uint64_t bytes, payload;
	uint32_t n_shards, n_tensors;
	double seconds;
};

int pack_write(const struct pack_opts *o, struct pack_result *r, struct qvl_err *err);

/* The model reader: every shard read through the io_uring reader (nvme/)
 * and its CRC checked before any tensor is handed out. */
int qvl_pack_open(struct qvl_model *m, const char *path, struct qvl_err *err);
/* The same model from the head alone (header, config, tokenizer, tensor
 * table): names, types and shapes, no shard read and every tensor's data
 * NULL. For describing a pack (qvlctl info), never for compute. */
int qvl_pack_describe(struct qvl_model **out, const char *path, struct qvl_err *err);

/* The reader's list of p's shards (s has n_shards entries), read into arena
 * (the data section's image: shard at arena + off - data_off), or staged and
 * dropped when arena is NULL. */
struct nv_shard;
void pack_nv_shards(const struct pack_info *p, uint8_t *arena, struct nv_shard *s);
/* qvl_pack_open reading only the shards i with want[i] (n_want: the count
 * the caller saw in the head); the others' tensors point at unread (zero)
 * memory until something puts their bytes elsewhere (offload/). late: the
 * wanted vision shards are read later, as qvl_pack_open_late does. */
int qvl_pack_open_some(struct qvl_model *m, const char *path, const bool *want, uint32_t n_want,
		       bool late, struct qvl_err *err);
/* qvl_pack_open without the vision tower's shards: they are read later into
 * their place (qvl_model_load_late), and qvl_model_vision_wait() waits for
 * them (src/pack_late.c). A pack without vision opens as qvl_pack_open. */
int qvl_pack_open_late(struct qvl_model *m, const char *path, struct qvl_err *err);

/* pack_late.c: a shard of the vision tower ("vision.*"); the late read of
 * the shards i with later[i] into arena (not started: qvl_model_load_late);
 * its end (cancels and joins the read). */
bool pack_shard_is_vision(const char *name);
struct qvl_late;
int pack_late_create(struct qvl_late **out, const char *path, const struct pack_info *p,
		     uint8_t *arena, const bool *later, struct qvl_err *err);
void pack_late_destroy(struct qvl_late *l);

#endif
