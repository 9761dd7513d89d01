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
int qvl_mm_prompt_build(struct qvl_engine *e, const struct qvl_tokenizer *tok,
			const char *text, bool raw, const char *const *image_paths,
			int n_images, struct qvl_mm_prompt *out, struct qvl_err *err);
void qvl_mm_prompt_free(struct qvl_mm_prompt *p);

#endif
