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

/* A prompt ready for qvl_seq_forward: owns every array the chunk points to. */
struct qvl_mm_prompt {
	struct qvl_chunk chunk;
	int32_t *ids;
	float *embd, *deepstack;
	int32_t (*pos)[3];
	int n_images;
	int grid[16][3]; /* grid_thw of the first images, for reporting */
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

struct qvl_image;

/* As qvl_mm_prompt_build with images already decoded (names, may be NULL,
 * label errors). The images go through the HF preprocessing as files do. */
int qvl_mm_prompt_build_images(struct qvl_engine *e, const struct qvl_tokenizer *tok,
			       const char *text, bool raw, const struct qvl_image *images,
			       const char *const *names, int n_images, struct qvl_mm_prompt *out,
			       struct qvl_err *err);

struct qvl_vision;
struct qvl_pixels;

/* Encode one preprocessed image into the wide layout of llama.cpp's
 * mtmd_get_output_embd (golden/README.md): out[tok][(1 + K) * Do] with
 * columns main | DeepStack 0 | ... | DeepStack K-1. *out is malloc'd. */
int qvl_mm_encode_wide(struct qvl_vision *v, const struct qvl_pixels *px, float **out,
		       size_t *n_tok, struct qvl_err *err);

/* get_rope_index (qwen3-vl.md §6.2) for one sequence: every run of
 * image_token_id is image i (in order) and must hold merged[i][0] *
 * merged[i][1] tokens (merged rows, columns). Fills pos[n][3] and the next
 * text position. -EINVAL when the pad tokens do not match the images. */
int qvl_mm_positions(const int32_t *ids, size_t n, int32_t image_token_id, const int (*merged)[2],
		     int n_images, int32_t (*pos)[3], int32_t *next_pos, struct qvl_err *err);

#endif
