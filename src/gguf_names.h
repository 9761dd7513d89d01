/* The tensor names of llama.cpp's Qwen3-VL GGUF files against the Hugging
 * Face names (qwen3-vl.md §2.2-§2.5), in one place for both directions: the
 * GGUF reader maps GGUF names onto HF names (src/gguf_model.c), the
 * converter maps HF names onto GGUF names (src/convert_plan.c). */
#ifndef QVL_GGUF_NAMES_H
#define QVL_GGUF_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

struct gguf_name_map {
	const char *gguf, *hf;
};

/* blk.{l}.<gguf> <-> model.language_model.layers.{l}.<hf> */
extern const struct gguf_name_map gguf_text_layer_names[];
extern const size_t gguf_n_text_layer_names;
/* whole names outside the layers */
extern const struct gguf_name_map gguf_text_names[];
extern const size_t gguf_n_text_names;
/* v.blk.{j}.<gguf> <-> model.visual.blocks.{j}.<hf>, both + .weight/.bias */
extern const struct gguf_name_map gguf_vis_block_names[];
extern const size_t gguf_n_vis_block_names;
/* v.deepstack.{L}.<gguf> <-> model.visual.deepstack_merger_list.{k}.<hf> */
extern const struct gguf_name_map gguf_vis_ds_names[];
extern const size_t gguf_n_vis_ds_names;
/* whole vision names (the patch embedding weight is special: two tensors) */
extern const struct gguf_name_map gguf_vis_names[];
extern const size_t gguf_n_vis_names;

/* The other side of `name` in table t (to_hf: name is a GGUF name), or NULL. */
const char *gguf_names_lookup(const struct gguf_name_map *t, size_t n, const char *name,
			      bool to_hf);

/* "{N}." at the start of s: a canonical decimal (no sign, no leading zero)
 * below limit. Returns the rest after the dot, or NULL. */
const char *gguf_names_index(const char *s, int limit, int *out);

/* The GGUF name of HF tensor `hf` of a model with config c: 0 with the name
 * in out, *vision telling which file it belongs to and *layer its text layer
 * (-1 outside the layers); -ENOENT for a name llama.cpp has no place for.
 * model.visual.patch_embed.proj.weight maps to v.patch_embd.weight: the
 * converter writes its second temporal half as v.patch_embd.weight.1. */
int gguf_name_from_hf(const struct qvl_config *c, const char *hf, char *out, size_t cap,
		      bool *vision, int *layer);

#endif
