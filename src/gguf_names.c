/* Tensor name tables of llama.cpp's Qwen3-VL GGUF files (see gguf_names.h). */
#include "gguf_names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

const struct gguf_name_map gguf_text_layer_names[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
const size_t gguf_n_text_layer_names = ARRAY_LEN(gguf_text_layer_names);

const struct gguf_name_map gguf_text_names[] = {
    {"token_embd.weight", "model.language_model.embed_tokens.weight"},
    {"output_norm.weight", "model.language_model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
const size_t gguf_n_text_names = ARRAY_LEN(gguf_text_names);

const struct gguf_name_map gguf_vis_block_names[] = {
    {"ln1", "norm1"},
    {"ln2", "norm2"},
    {"attn_qkv", "attn.qkv"},
    {"attn_out", "attn.proj"},
    {"ffn_up", "mlp.linear_fc1"},
    {"ffn_down", "mlp.linear_fc2"},
};
const size_t gguf_n_vis_block_names = ARRAY_LEN(gguf_vis_block_names);

const struct gguf_name_map gguf_vis_ds_names[] = {
    {"norm", "norm"},
    {"fc1", "linear_fc1"},
    {"fc2", "linear_fc2"},
};
const size_t gguf_n_vis_ds_names = ARRAY_LEN(gguf_vis_ds_names);

const struct gguf_name_map gguf_vis_names[] = {
    {"v.patch_embd.weight", "model.visual.patch_embed.proj.weight"},
    {"v.patch_embd.bias", "model.visual.patch_embed.proj.bias"},
    {"v.position_embd.weight", "model.visual.pos_embed.weight"},
    {"v.post_ln.weight", "model.visual.merger.norm.weight"},
    {"v.post_ln.bias", "model.visual.merger.norm.bias"},
    {"mm.0.weight", "model.visual.merger.linear_fc1.weight"},
    {"mm.0.bias", "model.visual.merger.linear_fc1.bias"},
    {"mm.2.weight", "model.visual.merger.linear_fc2.weight"},
    {"mm.2.bias", "model.visual.merger.linear_fc2.bias"},
};
const size_t gguf_n_vis_names = ARRAY_LEN(gguf_vis_names);

const char *gguf_names_lookup(const struct gguf_name_map *t, size_t n, const char *name, bool to_hf)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(to_hf ? t[i].gguf : t[i].hf, name))
			return to_hf ? t[i].hf : t[i].gguf;
	return NULL;
}

const char *gguf_names_index(const char *s, int limit, int *out)
{
	long v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9' || (*p == '0' && p[1] != '.'))
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v >= limit)
			return NULL;
	}
	if (*p != '.')
		return NULL;
	*out = (int)v;
	return p + 1;
}

/* "<base>.weight" / "<base>.bias": the base length and the suffix. */
static const char *split_suffix(const char *s, size_t *base_len)
{
	const char *dot = strrchr(s, '.');

	if (!dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias")))
		return NULL;
	*base_len = (size_t)(dot - s);
	return dot;
}

static int vis_name(const struct qvl_vision_config *v, const char *hf, char *out, size_t cap)
{
	char base[128];
	const char *suffix, *rest, *to;
	size_t n;
	int j;

	if ((to = gguf_names_lookup(gguf_vis_names, gguf_n_vis_names, hf, false))) {
		snprintf(out, cap, "%s", to);
		return 0;
	}
	suffix = split_suffix(hf, &n);
	if (!suffix || n >= sizeof(base))
		return -ENOENT;
	memcpy(base, hf, n);
	base[n] = 0;
	if (!strncmp(base, "model.visual.blocks.", 20)) {
		rest = gguf_names_index(base + 20, v->depth, &j);
		to = rest ? gguf_names_lookup(gguf_vis_block_names, gguf_n_vis_block_names, rest,
					      false)
			  : NULL;
		if (!to)
			return -ENOENT;
		snprintf(out, cap, "v.blk.%d.%s%s", j, to, suffix);
		return 0;
	}
	if (!strncmp(base, "model.visual.deepstack_merger_list.", 35)) {
		rest = gguf_names_index(base + 35, v->n_deepstack, &j);
		to = rest ? gguf_names_lookup(gguf_vis_ds_names, gguf_n_vis_ds_names, rest, false)
			  : NULL;
		if (!to)
			return -ENOENT;
		/* GGUF names DeepStack mergers by the ViT block they tap (§2.4) */
		snprintf(out, cap, "v.deepstack.%d.%s%s", v->deepstack_indexes[j], to, suffix);
		return 0;
	}
	return -ENOENT;
}

int gguf_name_from_hf(const struct qvl_config *c, const char *hf, char *out, size_t cap,
		      bool *vision, int *layer)
{
	const char *rest, *to;
	int l;

	*layer = -1;
	*vision = !strncmp(hf, "model.visual.", 13);
	if (*vision)
		return c->vision.present ? vis_name(&c->vision, hf, out, cap) : -ENOENT;
	if ((to = gguf_names_lookup(gguf_text_names, gguf_n_text_names, hf, false))) {
		snprintf(out, cap, "%s", to);
		return 0;
	}
	if (strncmp(hf, "model.language_model.layers.", 28))
		return -ENOENT;
	rest = gguf_names_index(hf + 28, c->text.num_layers, &l);
	to = rest ? gguf_names_lookup(gguf_text_layer_names, gguf_n_text_layer_names, rest, false)
		  : NULL;
	if (!to)
		return -ENOENT;
	snprintf(out, cap, "blk.%d.%s", l, to);
	*layer = l;
	return 0;
}
