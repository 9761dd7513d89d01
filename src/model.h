/* The internal model description: one config and one tensor table whatever
 * the source (Hugging Face directory, GGUF text + mmproj, later the qvl pack).
 *
 * Tensor names are always the Hugging Face names
 * ("model.language_model.layers.0.self_attn.q_proj.weight",
 * "model.visual.patch_embed.proj.weight", ...) and shapes are PyTorch order
 * (outermost first; a Linear weight is [out, in]). Readers map their own
 * names onto these (qwen3-vl.md §2). Data is a zero-copy view into an mmapped
 * file where the bytes already have the right layout; a reader that must
 * rebuild a tensor (the GGUF split patch embedding) owns that buffer. */
#ifndef QVL_MODEL_H
#define QVL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum qvl_dtype {
	QVL_DT_F32,
	QVL_DT_F16,
	QVL_DT_BF16,
	/* GGUF block types, bit layouts exactly as ggml defines them
	 * (ggml-common.h); src/quant.h documents each. */
	QVL_DT_Q8_0, /* f16 scale + 32 int8, 34 bytes per 32 values */
	QVL_DT_Q4_0, /* f16 scale + 16 bytes of nibbles, 18 bytes per 32 */
	QVL_DT_Q4_1,
	QVL_DT_Q5_0,
	QVL_DT_Q5_1,
	QVL_DT_Q2_K,
	QVL_DT_Q3_K,
	QVL_DT_Q4_K,
	QVL_DT_Q5_K,
	QVL_DT_Q6_K,
	QVL_DT_IQ4_NL,
	QVL_DT_IQ4_XS,
	QVL_DT_COUNT
};

/* Geometry of a dtype: values per block (1 for the plain types), bytes per
 * block, and the ggml type number GGUF files use for it. */
struct qvl_dtype_info {
	const char *name; /* ggml's spelling: "Q4_K" */
	uint32_t blk;
	uint32_t blk_bytes;
	uint32_t ggml_type;
};

/* NULL for a value outside the enum. */
const struct qvl_dtype_info *qvl_dtype_info(enum qvl_dtype dt);
/* The table behind it, for hot paths that hold a valid dtype (the kernels'
 * per-row addressing, qvl_wrow): indexed inline, no call. */
extern const struct qvl_dtype_info qvl_dtype_table[QVL_DT_COUNT];
/* The dtype of a ggml type number, or -1 when qvl does not read it. */
int qvl_dtype_from_ggml(uint32_t ggml_type);
static inline bool qvl_dtype_is_block(enum qvl_dtype dt)
{
	return dt >= QVL_DT_Q8_0 && dt < QVL_DT_COUNT;
}

const char *qvl_dtype_name(enum qvl_dtype dt);
/* Bytes for n elements of dt (n must be a multiple of the block size for
 * block types); 0 and -EINVAL via *ok=false when it is not, or on overflow. */
uint64_t qvl_dtype_bytes(enum qvl_dtype dt, uint64_t n, bool *ok);

enum qvl_format {
	QVL_FMT_HF,   /* directory with config.json + safetensors */
	QVL_FMT_GGUF, /* text GGUF (+ mmproj GGUF) */
	QVL_FMT_PACK, /* qvl pack (.qvl, src/pack.h) */
};

#define QVL_MAX_DIMS 5
#define QVL_MAX_DEEPSTACK 8

struct qvl_tensor {
	const char *name; /* HF name, owned by the model */
	enum qvl_dtype dtype;
	int ndim;
	int64_t shape[QVL_MAX_DIMS]; /* PyTorch order */
	uint64_t nelem;
	const void *data; /* nbytes of payload, little-endian */
	uint64_t nbytes;
	int source; /* index into qvl_model.sources */
};

struct qvl_text_config {
	int hidden_size;	  /* H */
	int num_layers;		  /* L */
	int num_heads;		  /* nh */
	int num_kv_heads;	  /* nkv */
	int head_dim;		  /* hd */
	int intermediate_size;	  /* I */
	int vocab_size;		  /* V (embedding rows) */
	int64_t max_position;	  /* max_position_embeddings */
	double rms_norm_eps;
	double rope_theta;
	int mrope_section[3]; /* t, h, w; sums to head_dim / 2 */
	bool tie_word_embeddings;
	int bos_token_id, eos_token_id; /* informational */
};

struct qvl_vision_config {
	bool present; /* false for --no-vision models or a GGUF without mmproj */
	int depth;
	int hidden_size;
	int intermediate_size;
	int num_heads;
	int patch_size;
	int temporal_patch_size;
	int spatial_merge_size;
	int in_channels;
	int out_hidden_size;
	int num_position_embeddings;
	int n_deepstack;
	int deepstack_indexes[QVL_MAX_DEEPSTACK]; /* ViT block of DeepStack merger k */
	double layer_norm_eps;			   /* 1e-6 */
};

struct qvl_config {
	char architecture[64]; /* "Qwen3VLForConditionalGeneration" */
	struct qvl_text_config text;
	struct qvl_vision_config vision;
	int image_token_id, video_token_id;
	int vision_start_token_id, vision_end_token_id;
};

/* generation_config.json (defaults when absent: greedy-free HF defaults). */
struct qvl_gen_config {
	bool present;
	int bos_token_id, pad_token_id;
	int n_eos;
	int eos_token_ids[8];
	bool do_sample;
	double temperature, top_p, repetition_penalty;
	int top_k;
};

/* preprocessor_config.json */
struct qvl_preproc_config {
	bool present;
	int64_t min_pixels, max_pixels; /* size.shortest_edge / size.longest_edge */
	int patch_size, temporal_patch_size, merge_size;
	double image_mean[3], image_std[3];
	double rescale_factor; /* 1/255 */
};

struct qvl_source {
	char *path;
	void *map; /* mmap of the whole file (NULL if not mapped) */
	size_t size;
	/* map is memory of the process's own (a pack's arena, huge pages
	 * advised), not the file's page cache mapped: the engine copies only
	 * weights that are file pages (engine.c, mat_own) */
	bool anon;
};

struct gguf_file; /* src/gguf.h */

struct qvl_model {
	enum qvl_format format;
	char *path; /* what the user named */
	struct qvl_config config;
	struct qvl_gen_config gen;
	struct qvl_preproc_config preproc;

	struct qvl_tensor *tensors; /* sorted by name (strcmp) */
	size_t ntensors;

	struct qvl_source *sources;
	size_t nsources;

	/* Where the tokenizer comes from: tokenizer.json for HF (NULL if the
	 * directory has none), the text GGUF's tokenizer.ggml.* metadata for GGUF. */
	char *tokenizer_json_path;
	/* A tokenizer.json held in memory (a pack embeds it), owned by the model;
	 * NULL otherwise. */
	const char *tokenizer_json;
	size_t tokenizer_json_len;
	struct gguf_file *gguf_text;   /* GGUF, or a pack made from one (tokenizer keys only) */
	struct gguf_file *gguf_mmproj; /* NULL without vision */

	void **owned; /* buffers a reader built (e.g. recombined patch embedding) */
	size_t nowned;

	/* Reader-specific cleanup (e.g. closing gguf_text / gguf_mmproj), called
	 * first by qvl_model_close(); NULL if the reader needs none. Sources are
	 * unmapped and owned buffers freed by qvl_model_close() itself. */
	void (*release)(struct qvl_model *m);

	/* Shards read after open (a pack opened by qvl_pack_open_late: the
	 * vision tower's), or NULL when everything was read at open. */
	struct qvl_late *late;
};

/* A model with parts read after open (src/pack_late.c). Start reading them
 * now (nothing to do without such parts; idempotent). */
int qvl_model_load_late(struct qvl_model *m, struct qvl_err *err);
/* Before anything reads the vision tower's weights: 0 at once when they were
 * read at open, else waits for the late read (starting it if nobody did) and
 * returns its result: 0, or the error naming the shard (-EBADMSG, -EIO). */
int qvl_model_vision_wait(const struct qvl_model *m, struct qvl_err *err);
/* Whether qvl_model_vision_wait() would return at once (the read has ended,
 * well or not, or there was none). */
bool qvl_model_vision_ready(const struct qvl_model *m);
/* Whether p points into a file a reader mapped (GGUF, safetensors: page
 * cache in 4 KiB pages) rather than memory the process owns (a pack's
 * arena, in huge pages): what is worth copying into qvl_huge_alloc()
 * memory at load. */
bool qvl_model_file_page(const struct qvl_model *m, const void *p);
/* After such a copy: drop the whole pages of [p, p + bytes) from the
 * mapping (a hint; the page cache stays, a later touch faults them back). */
void qvl_model_drop_pages(const void *p, size_t bytes);
struct qvl_late_status {
	bool started, pending; /* the read was started; it has not finished */
	int rc;		       /* its error once finished, else 0 */
	uint32_t shards;
	uint64_t bytes;
	double seconds;			   /* start to end, once finished */
	double read_seconds, fill_seconds; /* the reader's figures (nv_stats) */
	char msg[512];			   /* the error's message (struct qvl_err's) */
};
/* 1 and *s filled when m has late parts, else 0. */
int qvl_model_late_status(const struct qvl_model *m, struct qvl_late_status *s);

/* Open MODEL: a Hugging Face directory, a GGUF directory (text GGUF and
 * optional mmproj-*.gguf), or a text .gguf file (mmproj may name its mmproj).
 * Validates everything; on failure returns a negative errno with err set. */
int qvl_model_open(struct qvl_model **out, const char *path, const char *mmproj,
		   struct qvl_err *err);
/* MODEL for what describes it alone (config, tokenizer, tensor names and
 * shapes): a .qvl pack from its head, no shard read and every tensor's data
 * NULL (qvl_pack_describe); anything else as qvl_model_open, whose readers
 * map their files without reading them. For qvlctl info and the tokenizer
 * commands, never for compute. */
int qvl_model_describe(struct qvl_model **out, const char *path, const char *mmproj,
		       struct qvl_err *err);
void qvl_model_close(struct qvl_model *m);

/* Binary search by HF name; NULL if absent. */
const struct qvl_tensor *qvl_model_find(const struct qvl_model *m, const char *name);
/* printf-style name, e.g. qvl_model_findf(m, "model.language_model.layers.%d.mlp.up_proj.weight", l) */
const struct qvl_tensor *qvl_model_findf(const struct qvl_model *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Convert elements [first, first + n) of t to f32 (any dtype; block types need
 * first and n multiples of the type's block, 32 or 256). */
int qvl_tensor_to_f32(const struct qvl_tensor *t, uint64_t first, uint64_t n, float *out);

const char *qvl_format_name(enum qvl_format f);

/* Internal, for readers: add a tensor / sort and check for duplicates. */
int qvl_model_add_tensor(struct qvl_model *m, const struct qvl_tensor *t, struct qvl_err *err);
int qvl_model_finish(struct qvl_model *m, struct qvl_err *err);
/* Record a mapped file (map/size as from mmap, or NULL/0); returns its index
 * for qvl_tensor.source or a negative errno. qvl_model_close() unmaps it. */
int qvl_model_add_source(struct qvl_model *m, const char *path, void *map, size_t size,
			 struct qvl_err *err);
/* Tensor count and total elements the config implies (for `qvlctl info`). */
size_t qvl_model_expected_tensors(const struct qvl_config *c);
/* Check every tensor the config implies exists with the right shape
 * (and nothing unexpected). Used by every reader after qvl_model_finish(). */
int qvl_model_check_tensors(const struct qvl_model *m, struct qvl_err *err);

/* Readers (src/hfdir.c, src/gguf_model.c); qvl_model_open dispatches. */
int qvl_hf_open(struct qvl_model *m, const char *dir, struct qvl_err *err);
int qvl_gguf_open(struct qvl_model *m, const char *text_path, const char *mmproj_path,
		  struct qvl_err *err);

#endif
