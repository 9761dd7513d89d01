/* The per-tensor type rules of qvlctl convert, written from llama.cpp's
 * (convert_hf_to_gguf.py's ModelBase.prepare_tensors and
 * MmprojModel.tensor_force_quant; src/llama-quant.cpp's
 * tensor_allows_quantization, llama_tensor_get_type_impl and
 * tensor_type_fallback), for the tensors a Qwen3-VL model has. The rules
 * followed are listed in qvlctl(8), convert. */
#include <math.h>
#include <string.h>

#include "convert.h"
#include "quant.h"

static const struct cv_preset presets[] = {
    {"f32", 0, QVL_DT_F32, false, "f32"},     {"bf16", 32, QVL_DT_BF16, false, "bf16"},
    {"f16", 1, QVL_DT_F16, false, "f16"},     {"q8_0", 7, QVL_DT_Q8_0, true, "f16"},
    {"q4_0", 2, QVL_DT_Q4_0, true, "f16"},    {"q4_k_m", 15, QVL_DT_Q4_K, true, "f16"},
    {"q5_k_m", 17, QVL_DT_Q5_K, true, "f16"}, {"q6_k", 18, QVL_DT_Q6_K, true, "f16"},
};

const struct cv_preset *cv_preset_find(const char *name)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (!strcmp(presets[i].name, name))
			return &presets[i];
	return NULL;
}

const char *cv_preset_names(void)
{
	return "f32|bf16|f16|q8_0|q4_0|q4_k_m|q5_k_m|q6_k";
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* llama-quantize's tensor_allows_quantization, for the names Qwen3-VL has. */
static bool allows_quantization(const struct cv_tinfo *t)
{
	return t->n_dims >= 2 && ends_with(t->name, "weight") && !strstr(t->name, "_norm.weight") &&
	       !strstr(t->name, ".position_embd") && !strstr(t->name, ".patch_embd");
}

/* The layers that get more bits in Q4_K_M / Q5_K_M: the first and last
 * eighth, and every third layer between them. */
static bool use_more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static uint32_t blk(enum qvl_dtype dt)
{
	const struct qvl_dtype_info *di = qvl_dtype_info(dt);

	return di ? di->blk : 1;
}

enum qvl_dtype cv_text_type(const struct cv_preset *p, const struct cv_tinfo *t, const char **note)
{
	enum qvl_dtype dt = p->base;
	bool km = !strcmp(p->name, "q4_k_m") || !strcmp(p->name, "q5_k_m");

	*note = NULL;
	if (!allows_quantization(t)) {
		/* the converter writes 1-D tensors and norms as F32; llama-quantize
		 * leaves what it does not quantize as it found it */
		return t->from_gguf ? t->src : QVL_DT_F32;
	}
	if (!p->quantized)
		return dt;
	if (!strcmp(t->name, "output.weight") ||
	    (t->tied && !strcmp(t->name, "token_embd.weight"))) {
		/* the output matrix (or the embedding that doubles as it) */
		if (t->ne[0] % blk(dt)) {
			*note = "output rows not a multiple of the block: Q8_0";
			return QVL_DT_Q8_0;
		}
		if (dt != QVL_DT_Q8_0) {
			*note = "output matrix: Q6_K";
			dt = QVL_DT_Q6_K;
		}
	} else if (strstr(t->name, "attn_v.weight") || strstr(t->name, "attn_qkv.weight")) {
		if (km && use_more_bits(t->layer, t->n_layers)) {
			*note = "attn_v in a use_more_bits layer: Q6_K";
			dt = QVL_DT_Q6_K;
		}
	} else if (strstr(t->name, "ffn_down")) {
		if (km && use_more_bits(t->layer, t->n_layers)) {
			*note = "ffn_down in a use_more_bits layer: Q6_K";
			dt = QVL_DT_Q6_K;
		}
	}
	if (t->ne[0] % blk(dt) == 0)
		return dt;
	/* tensor_type_fallback: a row that does not fill whole blocks */
	switch (dt) {
	case QVL_DT_Q4_K:
		dt = QVL_DT_Q5_0;
		break;
	case QVL_DT_Q5_K:
		dt = QVL_DT_Q5_1;
		break;
	case QVL_DT_Q6_K:
		dt = QVL_DT_Q8_0;
		break;
	default:
		dt = QVL_DT_F16;
		break;
	}
	if (t->ne[0] % blk(dt))
		dt = QVL_DT_F16;
	*note = "row length not a multiple of the block size: fallback type";
	return dt;
}

enum qvl_dtype cv_mmproj_type(const struct cv_preset *p, const struct cv_tinfo *t)
{
	const struct cv_preset *pm = cv_preset_find(p->mmproj);
	enum qvl_dtype base = pm ? pm->base : QVL_DT_F16;

	/* MmprojModel.tensor_force_quant: the patch embedding (both temporal
	 * halves) is F16 in an f16 file and F32 otherwise */
	if (strstr(t->name, ".patch_embd.weight"))
		return base == QVL_DT_F16 ? QVL_DT_F16 : QVL_DT_F32;
	if (t->n_dims <= 1 || ends_with(t->name, "_norm.weight") ||
	    !strcmp(t->name, "v.position_embd.weight") || !ends_with(t->name, ".weight"))
		return QVL_DT_F32;
	return base;
}

/* ---- conversion of one row --------------------------------------------- */

/* round to nearest even; NaN keeps its sign and top payload bits (numpy's
 * astype(float16), which the converter uses) */
static uint16_t f32_to_f16(float f)
{
	uint32_t x, ax, sign;

	memcpy(&x, &f, 4);
	sign = (x >> 16) & 0x8000;
	ax = x & 0x7fffffff;
	if (ax > 0x7f800000) {
		uint32_t h = 0x7c00 | ((ax & 0x7fffff) >> 13);

		return (uint16_t)(sign | (h == 0x7c00 ? h + 1 : h));
	}
	if (ax >= 0x477ff000) /* 65520 and above round to infinity */
		return (uint16_t)(sign | 0x7c00);
	if (ax < 0x38800000) { /* below 2^-14: a subnormal half, v * 2^24 is exact */
		float v;

		memcpy(&v, &ax, 4);
		return (uint16_t)(sign | (uint32_t)nearbyintf(v * 0x1p24f));
	}
	ax += 0xfff + ((ax >> 13) & 1);
	return (uint16_t)(sign | ((ax - 0x38000000) >> 13));
}

/* gguf-py's bf16: NaN made quiet, then round to nearest even */
static uint16_t f32_to_bf16(float f)
{
	uint32_t x;

	memcpy(&x, &f, 4);
	if ((x & 0x7fffffff) > 0x7f800000)
		x = (x & 0xffff0000) | 0x00400000;
	return (uint16_t)(((uint64_t)x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

int cv_from_f32(enum qvl_dtype dt, const float *src, void *dst, size_t n)
{
	uint16_t *h = dst;

	switch (dt) {
	case QVL_DT_F32:
		memcpy(dst, src, n * sizeof(float));
		return 0;
	case QVL_DT_F16:
		for (size_t i = 0; i < n; i++)
			h[i] = f32_to_f16(src[i]);
		return 0;
	case QVL_DT_BF16:
		for (size_t i = 0; i < n; i++)
			h[i] = f32_to_bf16(src[i]);
		return 0;
	default:
		return qvl_quantize_row(dt, src, dst, n);
	}
}
