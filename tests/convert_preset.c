/* The per-tensor type rules of qvlctl convert (src/convert_preset.c) on the
 * tensors of the 2B shape (28 layers, rows of 2048 and 6144), against what
 * llama.cpp's own `llama-quantize --dry-run` chose for qvlctl's bf16 file of
 * that shape (recorded here: every one of the 310 tensors agreed for q4_k_m,
 * q5_k_m, q6_k, q4_0 and q8_0); then the fallbacks for rows that do not fill
 * a block, an untied output matrix, the float types, GGUF sources and the
 * mmproj rules. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "convert.h"
#include "tap.h"

#define L 28

static const char *const layer_names[] = {
    "attn_norm.weight",	  "attn_q.weight",	"attn_k.weight",      "attn_v.weight",
    "attn_output.weight", "attn_q_norm.weight", "attn_k_norm.weight", "ffn_norm.weight",
    "ffn_gate.weight",	  "ffn_up.weight",	"ffn_down.weight",
};

/* 2B ne (GGUF order) of a layer tensor */
static void layer_ne(const char *n, uint64_t *ne, uint32_t *nd)
{
	*nd = 2;
	ne[1] = 2048;
	ne[0] = 2048;
	if (strstr(n, "_norm")) {
		*nd = 1;
		ne[0] = strstr(n, "q_norm") || strstr(n, "k_norm") ? 128 : 2048;
		ne[1] = 1;
	} else if (strstr(n, "attn_k.") || strstr(n, "attn_v.")) {
		ne[1] = 1024;
	} else if (strstr(n, "ffn_down")) {
		ne[0] = 6144;
	} else if (strstr(n, "ffn_gate") || strstr(n, "ffn_up")) {
		ne[1] = 6144;
	}
}

struct counts {
	int n[QVL_DT_COUNT];
	unsigned q6_layers_v, q6_layers_down; /* bit l: layer l's attn_v / ffn_down is Q6_K */
};

static enum qvl_dtype type_of(const char *preset, const char *name, uint32_t nd, const uint64_t *ne,
			      int layer, bool tied, bool gguf)
{
	struct cv_tinfo t = {.name = name,
			     .n_dims = nd,
			     .ne = ne,
			     .layer = layer,
			     .n_layers = L,
			     .tied = tied,
			     .from_gguf = gguf,
			     .src = nd == 1 ? QVL_DT_F32 : QVL_DT_BF16};
	const char *note;

	return cv_text_type(cv_preset_find(preset), &t, &note);
}

static struct counts count_2b(const char *preset)
{
	struct counts c;
	uint64_t ne[4] = {2048, 151936, 1, 1}, one[4] = {2048, 1, 1, 1};

	memset(&c, 0, sizeof(c));

	c.n[type_of(preset, "token_embd.weight", 2, ne, -1, true, false)]++;
	c.n[type_of(preset, "output_norm.weight", 1, one, -1, true, false)]++;
	for (int l = 0; l < L; l++)
		for (size_t i = 0; i < sizeof(layer_names) / sizeof(layer_names[0]); i++) {
			char name[64];
			uint32_t nd;
			enum qvl_dtype dt;

			snprintf(name, sizeof(name), "blk.%d.%s", l, layer_names[i]);
			layer_ne(name, ne, &nd);
			dt = type_of(preset, name, nd, ne, l, true, false);
			c.n[dt]++;
			if (dt == QVL_DT_Q6_K && strstr(name, "attn_v"))
				c.q6_layers_v |= 1u << l;
			if (dt == QVL_DT_Q6_K && strstr(name, "ffn_down"))
				c.q6_layers_down |= 1u << l;
		}
	return c;
}

static enum qvl_dtype mm_type(const char *preset, const char *name, uint32_t nd)
{
	uint64_t ne[4] = {1024, 4096, 1, 1};
	struct cv_tinfo t = {.name = name, .n_dims = nd, .ne = ne, .layer = -1};

	return cv_mmproj_type(cv_preset_find(preset), &t);
}

int main(void)
{
	/* the use_more_bits layers of 28: 0-2, 24-27, and 5, 8, ..., 23 */
	const unsigned more = 0x7u | 0xfu << 24 | 1u << 5 | 1u << 8 | 1u << 11 | 1u << 14 |
			      1u << 17 | 1u << 20 | 1u << 23;
	struct counts c;
	uint64_t ne64[4] = {64, 64, 1, 1}, ne48[4] = {48, 64, 1, 1}, emb[4] = {2048, 151936, 1, 1};

	plan(22);
	c = count_2b("q4_k_m");
	ok(c.n[QVL_DT_F32] == 113 && c.n[QVL_DT_Q4_K] == 168 && c.n[QVL_DT_Q6_K] == 29,
	   "q4_k_m on 2B: 113 F32, 168 Q4_K, 29 Q6_K (llama-quantize: the same)");
	ok(c.q6_layers_v == more && c.q6_layers_down == more,
	   "q4_k_m: attn_v and ffn_down of the 14 use_more_bits layers are Q6_K");
	c = count_2b("q5_k_m");
	ok(c.n[QVL_DT_F32] == 113 && c.n[QVL_DT_Q5_K] == 168 && c.n[QVL_DT_Q6_K] == 29,
	   "q5_k_m on 2B: 113 F32, 168 Q5_K, 29 Q6_K (llama-quantize: the same)");
	ok(c.q6_layers_v == more && c.q6_layers_down == more, "q5_k_m: the same layers");
	c = count_2b("q6_k");
	ok(c.n[QVL_DT_F32] == 113 && c.n[QVL_DT_Q6_K] == 197, "q6_k on 2B: 113 F32, 197 Q6_K");
	c = count_2b("q4_0");
	ok(c.n[QVL_DT_F32] == 113 && c.n[QVL_DT_Q4_0] == 196 && c.n[QVL_DT_Q6_K] == 1,
	   "q4_0 on 2B: 113 F32, 196 Q4_0, the tied embedding Q6_K");
	c = count_2b("q8_0");
	ok(c.n[QVL_DT_F32] == 113 && c.n[QVL_DT_Q8_0] == 197, "q8_0 on 2B: 113 F32, 197 Q8_0");
	c = count_2b("bf16");
	ok(c.n[QVL_DT_F32] == 113 && c.n[QVL_DT_BF16] == 197, "bf16: matrices BF16, norms F32");
	c = count_2b("f16");
	ok(c.n[QVL_DT_F32] == 113 && c.n[QVL_DT_F16] == 197, "f16: matrices F16, norms F32");

	/* untied output (the 8B layout) */
	ok(type_of("q4_k_m", "output.weight", 2, emb, -1, false, false) == QVL_DT_Q6_K &&
	       type_of("q4_k_m", "token_embd.weight", 2, emb, -1, false, false) == QVL_DT_Q4_K,
	   "untied: output.weight Q6_K, token_embd.weight the base Q4_K");
	ok(type_of("q8_0", "output.weight", 2, emb, -1, false, false) == QVL_DT_Q8_0,
	   "q8_0: the output matrix stays Q8_0");
	/* rows that do not fill a block */
	ok(type_of("q4_k_m", "blk.1.attn_q.weight", 2, ne64, 1, true, false) == QVL_DT_Q5_0,
	   "rows of 64: Q4_K falls back to Q5_0");
	ok(type_of("q5_k_m", "blk.1.attn_q.weight", 2, ne64, 1, true, false) == QVL_DT_Q5_1,
	   "rows of 64: Q5_K falls back to Q5_1");
	ok(type_of("q6_k", "blk.1.attn_q.weight", 2, ne64, 1, true, false) == QVL_DT_Q8_0,
	   "rows of 64: Q6_K falls back to Q8_0");
	ok(type_of("q4_k_m", "token_embd.weight", 2, ne64, -1, true, false) == QVL_DT_Q8_0,
	   "tied embedding with rows of 64 in q4_k_m: Q8_0");
	ok(type_of("q4_0", "blk.1.attn_q.weight", 2, ne48, 1, true, false) == QVL_DT_F16,
	   "rows of 48 fit no block type: F16");
	/* what is not quantized */
	ok(type_of("q4_k_m", "blk.0.attn_norm.weight", 1, emb, 0, true, true) == QVL_DT_F32 &&
	       type_of("bf16", "blk.0.attn_norm.weight", 1, emb, 0, true, false) == QVL_DT_F32,
	   "norms: F32");
	{
		struct cv_tinfo t = {.name = "blk.0.attn_q.weight",
				     .n_dims = 2,
				     .ne = emb,
				     .layer = 0,
				     .n_layers = L,
				     .from_gguf = true,
				     .src = QVL_DT_F16};
		struct cv_tinfo n = t;
		const char *note;

		n.name = "blk.0.ffn_norm.weight";
		n.n_dims = 1;
		n.src = QVL_DT_BF16;
		ok(cv_text_type(cv_preset_find("q8_0"), &t, &note) == QVL_DT_Q8_0 &&
		       cv_text_type(cv_preset_find("q8_0"), &n, &note) == QVL_DT_BF16,
		   "GGUF source: a norm keeps its type, as llama-quantize leaves it");
	}
	/* mmproj */
	ok(mm_type("q4_k_m", "v.blk.0.attn_qkv.weight", 2) == QVL_DT_F16 &&
	       mm_type("q4_k_m", "v.blk.0.attn_qkv.bias", 1) == QVL_DT_F32,
	   "mmproj of a quantized preset: matrices F16, biases F32");
	ok(mm_type("f16", "v.patch_embd.weight", 4) == QVL_DT_F16 &&
	       mm_type("f16", "v.patch_embd.weight.1", 4) == QVL_DT_F16 &&
	       mm_type("bf16", "v.patch_embd.weight.1", 4) == QVL_DT_F32,
	   "patch embedding halves: F16 in an f16 mmproj, F32 otherwise");
	ok(mm_type("bf16", "v.position_embd.weight", 2) == QVL_DT_F32 &&
	       mm_type("bf16", "v.deepstack.5.norm.weight", 1) == QVL_DT_F32 &&
	       mm_type("bf16", "mm.0.weight", 2) == QVL_DT_BF16,
	   "bf16 mmproj: position embedding and norms F32, merger BF16");
	ok(mm_type("f32", "mm.2.weight", 2) == QVL_DT_F32, "f32 mmproj: all F32");
	return done_testing();
}
