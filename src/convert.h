/* qvlctl convert: a Qwen3-VL model (Hugging Face directory or GGUF) to the
 * GGUF files llama.cpp loads, text model and mmproj, with the names, shapes,
 * types and metadata keys llama.cpp's own tools write:
 *   convert_hf_to_gguf.py for the float types (f32, bf16, f16), and
 *   convert_hf_to_gguf.py + llama-quantize for the quantized presets.
 * Files: convert.c (plan and streaming), convert_preset.c (the per-tensor
 * type rules), convert_meta.c (metadata from a Hugging Face directory),
 * convert_vocab.c (the tokenizer.ggml.* keys from tokenizer.json). */
#ifndef QVL_CONVERT_H
#define QVL_CONVERT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "gguf_write.h"
#include "model.h"

/* ---- presets (convert_preset.c) ---------------------------------------- */

struct cv_preset {
	const char *name;    /* "q4_k_m", as --type spells it */
	uint32_t ftype;	     /* general.file_type: llama.cpp's llama_ftype */
	enum qvl_dtype base; /* the type of most matrices */
	bool quantized;	     /* per-tensor types chosen as llama-quantize does */
	const char *mmproj;  /* preset of the mmproj written beside it */
};

/* NULL for an unknown name. */
const struct cv_preset *cv_preset_find(const char *name);
/* "f32|bf16|..." for messages and --help. */
const char *cv_preset_names(void);

/* What the type rules look at. */
struct cv_tinfo {
	const char *name; /* GGUF name */
	uint32_t n_dims;
	const uint64_t *ne; /* GGUF order, fastest first */
	int layer;	    /* text layer, -1 outside the layers */
	int n_layers;
	bool tied;	    /* the text model has no output.weight */
	bool from_gguf;	    /* source is a GGUF file (llama-quantize keeps the type of
			     * what it does not quantize) */
	enum qvl_dtype src; /* the source tensor's type */
};

/* Type of a text-model tensor. *note gets a reason when a rule changed it
 * from the preset's base type (NULL otherwise). */
enum qvl_dtype cv_text_type(const struct cv_preset *p, const struct cv_tinfo *t, const char **note);
/* Type of an mmproj tensor (convert_hf_to_gguf.py's MmprojModel rules). */
enum qvl_dtype cv_mmproj_type(const struct cv_preset *p, const struct cv_tinfo *t);

/* One row of n values to dt (f32, f16, bf16 or a block type); -ENOTSUP for
 * a type qvl cannot write yet. */
int cv_from_f32(enum qvl_dtype dt, const float *src, void *dst, size_t n);

/* ---- metadata from a Hugging Face directory (convert_meta.c) ------------ */

/* general.* keys shared by both files: sampling (generation_config.json),
 * name, size_label (from n_params). */
int cv_meta_general(struct gguf_w *w, const char *dir, const char *arch, const char *type,
		    uint64_t n_params, struct qvl_err *err);
/* The qwen3vl.* keys and general.file_type, in the converter's order. */
void cv_meta_text(struct gguf_w *w, const struct qvl_config *c, uint32_t ftype);
/* The clip.* keys of the mmproj. */
void cv_meta_mmproj(struct gguf_w *w, const struct qvl_model *m, uint32_t ftype);
/* The tokenizer.ggml.* and tokenizer.chat_template keys (convert_vocab.c). */
int cv_meta_vocab(struct gguf_w *w, const char *dir, const struct qvl_config *c,
		  struct qvl_err *err);

/* ---- the command's engine (convert.c) ----------------------------------- */

struct cv_opts {
	const char *model;	/* source: HF directory, GGUF directory or .gguf */
	const char *in_mmproj;	/* source mmproj for a .gguf model, or NULL */
	const char *out;	/* text GGUF */
	const char *out_mmproj; /* mmproj GGUF, or NULL */
	const struct cv_preset *preset;
	/* progress (may be NULL): a stage ("text", "mmproj") starts with done 0,
	 * then bytes written so far; stage NULL when the stage ends */
	void (*progress)(void *ctx, const char *stage, double done, double total);
	void *progress_ctx;
};

struct cv_file_result {
	char path[4096];
	uint64_t bytes, n_tensors;
	uint64_t count[QVL_DT_COUNT]; /* tensors per type */
	uint32_t ftype;
};

struct cv_result {
	struct cv_file_result text, mmproj;
	bool has_mmproj;
	int n_fallback; /* tensors whose row length forced another type */
	double seconds;
};

int cv_convert(const struct cv_opts *o, struct cv_result *r, struct qvl_err *err);

#endif
