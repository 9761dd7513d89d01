/* Multimodal prompts: images decoded, preprocessed and encoded by the vision
 * tower, then placed into a qvl_chunk with M-RoPE positions (qwen3-vl.md §5-§7).
 * Owned by the vision module. */
#ifndef QVL_MULTIMODAL_H
#define QVL_MULTIMODAL_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "err.h"

struct qvl_tokenizer;
struct mm_pending;

/* A prompt ready for qvl_seq_forward: owns every array the chunk points to. */
struct qvl_mm_prompt {
	struct qvl_chunk chunk;
	int32_t *ids;
	float *embd, *deepstack;
	int32_t (*pos)[3];
	int n_images;
	int grid[16][3]; /* grid_thw of the first images, for reporting */
	/* [chunk.n_img]: each image row's content key (chunk.img_keys points
	 * here), for prefix reuse (qvl_prefix.img_keys, kvcache.h) */
	uint64_t *img_keys;
	int vcache_hits; /* images whose tower output came from the cache */
	/* the tower passes a build with qvl_mm_opts.defer_encode left to
	 * qvl_mm_encode_step() (NULL: the rows are all there) */
	struct mm_pending *pending;
};

/* Build the prompt for `text` with images at image_paths[0..n_images).
 * raw == false: chat format, images in the user turn before the text.
 * raw == true: text is used as written; each
 * <|vision_start|><|image_pad|><|vision_end|> is filled by the next image
 * (their count must equal n_images). */
int qvl_mm_prompt_build(struct qvl_engine *e, const struct qvl_tokenizer *tok, const char *text,
			bool raw, const char *const *image_paths, int n_images,
			struct qvl_mm_prompt *out, struct qvl_err *err);
void qvl_mm_prompt_free(struct qvl_mm_prompt *p);

/* One image of a prompt, once its grid is known (before any pixel work). */
struct qvl_mm_image_info {
	int index;	  /* 0-based */
	const char *name; /* path or label (may be NULL) */
	int w, h;	  /* decoded size */
	int rw, rh;	  /* resized size */
	int tokens;	  /* merged image tokens */
	bool downscaled;  /* shrunk to fit the per-image token budget */
};

/* Limits, extras and reporting of a build; a zeroed struct (or NULL) adds
 * nothing and limits nothing beyond the preprocessor config. */
struct qvl_mm_opts {
	const char *system;	  /* a system turn first (chat format only), or NULL */
	int64_t max_image_tokens; /* per image; <= 0: preprocessor_config.json's max_pixels */
	size_t max_tokens;	  /* the whole prompt must fit (the context), 0: no limit;
				   * checked from the grids, before any image is resized
				   * or encoded (-ENOSPC) */
	void (*on_image)(void *ctx, const struct qvl_mm_image_info *info);
	qvl_progress_fn progress; /* vision tower: image tokens encoded, total */
	void *ctx;		  /* for on_image and progress */
	/* the images the cache does not hold are decoded and preprocessed,
	 * their tower passes left pending: the prompt's ids, positions and
	 * keys are complete, its image rows only once qvl_mm_encode_step()
	 * said so (issue 18: a scheduler runs them a few blocks per step) */
	bool defer_encode;
};

/* Tower blocks the prompt's pending passes still have to run (0: none). */
int qvl_mm_pending_blocks(const struct qvl_mm_prompt *p);
/* Patches of the image whose pass runs next (its blocks' cost), 0: none. */
size_t qvl_mm_pending_patches(const struct qvl_mm_prompt *p);
/* Run at most `blocks` (at least 1) blocks of the pending passes, in image
 * order; an image whose pass ends has its rows (bit for bit those of a
 * build without defer_encode) offered to the engine's image cache. Returns
 * the blocks left (0: the prompt is complete), or -errno. On the thread
 * that owns the prompt; the engine's tower is borrowed for the call only. */
int qvl_mm_encode_step(struct qvl_engine *e, struct qvl_mm_prompt *p, int blocks,
		       struct qvl_err *err);

/* qvl_mm_prompt_build with options. */
int qvl_mm_prompt_build_opts(struct qvl_engine *e, const struct qvl_tokenizer *tok,
			     const char *text, bool raw, const char *const *image_paths,
			     int n_images, const struct qvl_mm_opts *opts,
			     struct qvl_mm_prompt *out, struct qvl_err *err);

/* An image as a client gives it: an encoded file (PNG, JPEG; w == 0) or
 * packed RGB8 rows (w x h, len == w * h * 3). Its bytes are its identity in
 * the engine's image cache (mm_cache.h): an image seen before is not
 * decoded, preprocessed or encoded again when its rows are still cached. */
struct qvl_mm_src {
	const void *data;
	size_t len;
	int w, h;
	const char *name; /* labels errors; may be NULL */
};

/* qvl_mm_prompt_build_opts with images as sources. */
int qvl_mm_prompt_build_src(struct qvl_engine *e, const struct qvl_tokenizer *tok,
			    const char *text, bool raw, const struct qvl_mm_src *srcs,
			    int n_images, const struct qvl_mm_opts *opts,
			    struct qvl_mm_prompt *out, struct qvl_err *err);

struct qvl_image;

/* As qvl_mm_prompt_build with images already decoded (names, may be NULL,
 * label errors). The images go through the HF preprocessing as files do. */
int qvl_mm_prompt_build_images(struct qvl_engine *e, const struct qvl_tokenizer *tok,
			       const char *text, bool raw, const struct qvl_image *images,
			       const char *const *names, int n_images, struct qvl_mm_prompt *out,
			       struct qvl_err *err);

struct qvl_vision;
struct qvl_pixels;

/* Borrow the engine's vision tower: built on the first call with the
 * engine's precision and weight copy (qvl_engine_copies_weights), then kept
 * until the engine is destroyed; every image path of the engine (prompt
 * images, the daemon's EMBED_IMAGE) uses this one tower. It is lent to one
 * caller at a time (a second waits) until qvl_mm_tower_put(). */
int qvl_mm_tower_get(struct qvl_engine *e, struct qvl_vision **v, struct qvl_err *err);
void qvl_mm_tower_put(struct qvl_engine *e);

/* Encode one preprocessed image into the wide layout of llama.cpp's
 * mtmd_get_output_embd (golden/README.md): out[tok][(1 + K) * Do] with
 * columns main | DeepStack 0 | ... | DeepStack K-1. *out is malloc'd. */
int qvl_mm_encode_wide(struct qvl_vision *v, const struct qvl_pixels *px, float **out,
		       size_t *n_tok, struct qvl_err *err);

/* The engine's image cache (mm_cache.h; rows bounded by the engine option
 * vision_cache_bytes): an image whose bytes were encoded before gets the
 * stored rows instead of a decode, preprocessing and tower pass (the same
 * values, bit for bit). entries: images with rows kept; keys: images
 * known (rows or not). */
struct qvl_mm_cache_stats {
	uint64_t hits, misses, evictions;
	size_t bytes, entries, max_bytes, keys;
	uint64_t towers_built; /* vision towers built: 0 or 1 per engine */
};
void qvl_mm_cache_stats(const struct qvl_engine *e, struct qvl_mm_cache_stats *st);

/* get_rope_index (qwen3-vl.md §6.2) for one sequence: every run of
 * image_token_id is image i (in order) and must hold merged[i][0] *
 * merged[i][1] tokens (merged rows, columns). Fills pos[n][3] and the next
 * text position. -EINVAL when the pad tokens do not match the images. */
int qvl_mm_positions(const int32_t *ids, size_t n, int32_t image_token_id, const int (*merged)[2],
		     int n_images, int32_t (*pos)[3], int32_t *next_pos, struct qvl_err *err);

#endif
