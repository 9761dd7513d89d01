/* llama.cpp's Qwen3-VL GGUF files (text model + mmproj) mapped onto the
 * internal model description: Hugging Face names, PyTorch shapes (ne[]
 * reversed), config from the qwen3vl.* and clip.vision.* keys
 * (qwen3-vl.md §2.2-§2.6). Two converter changes are undone here: DeepStack
 * mergers are named by ViT block in GGUF but by list position in HF (§2.4),
 * and the Conv3d patch embedding is split into two temporal halves (§2.5). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_json.h"
#include "gguf.h"
#include "gguf_names.h"
#include "model.h"
#include "util.h"

#define QVL_ARCH "Qwen3VLForConditionalGeneration"

/* One GGUF file being mapped. */
struct gm {
	struct qvl_model *m;
	struct gguf_file *f;
	const char *path;
	int src;
	struct qvl_err *err;
};

/* Split "<base>.weight" / "<base>.bias" (base copied into buf). */
static const char *split_suffix(const char *s, char *buf, size_t cap)
{
	const char *dot = strrchr(s, '.');
	size_t n;

	if (!dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias")))
		return NULL;
	n = (size_t)(dot - s);
	if (n >= cap)
		return NULL;
	memcpy(buf, s, n);
	buf[n] = 0;
	return dot;
}

static int gm_add(struct gm *g, const struct gguf_tensor_info *ti, const char *hf)
{
	struct qvl_tensor t = {
	    .name = hf,
	    .dtype = ti->dtype,
	    .ndim = ti->n_dims,
	    .nelem = ti->nelem,
	    .data = ti->data,
	    .nbytes = ti->nbytes,
	    .source = g->src,
	};

	for (int d = 0; d < ti->n_dims; d++)
		t.shape[d] = (int64_t)ti->ne[ti->n_dims - 1 - d];
	return qvl_model_add_tensor(g->m, &t, g->err);
}

static int gm_unknown(struct gm *g, const char *name, const char *why)
{
	return qvl_errf(g->err, -EBADMSG, "%s: unknown tensor '%s'%s", g->path, name, why);
}

/* ---- opening a file --------------------------------------------------- */

static void gguf_release(struct qvl_model *m)
{
	gguf_close(m->gguf_text);
	gguf_close(m->gguf_mmproj);
	m->gguf_text = m->gguf_mmproj = NULL;
}

/* Map path, record it as a model source (so qvl_model_close unmaps it) and
 * parse it. */
static int gm_open(struct gm *g, struct qvl_model *m, const char *path, struct gguf_file **slot,
		   struct qvl_err *err)
{
	struct qvl_map map;
	int rc;

	memset(g, 0, sizeof(*g));
	g->m = m;
	g->path = path;
	g->err = err;
	rc = qvl_map_file(&map, path, err);
	if (rc)
		return rc;
	g->src = qvl_model_add_source(m, path, map.data, map.size, err);
	if (g->src < 0) {
		qvl_unmap(&map);
		return g->src;
	}
	m->release = gguf_release;
	rc = gguf_parse(slot, map.data, map.size, path, err);
	g->f = *slot;
	return rc;
}

/* A required unsigned integer key that must fit in [lo, hi]. */
static int gm_int(struct gm *g, const char *key, bool required, int def, int lo, int hi, int *out)
{
	int rc = gguf_get_int(g->f, key, out, g->err);

	if (rc == -ENOENT && !required) {
		*out = def;
		return 0;
	}
	if (rc == -ENOENT)
		return qvl_errf(g->err, rc, "%s: missing required key %s", g->path, key);
	if (rc)
		return rc;
	if (*out < lo || *out > hi)
		return qvl_errf(g->err, -EINVAL, "%s: %s: %d out of range [%d, %d]", g->path, key,
				*out, lo, hi);
	return 0;
}

/* A float32 value read back through its shortest decimal form, so that the
 * 1e-6 that config.json spells "1e-06" is the same double whichever file it
 * came from (float32 1e-6 widened exactly is 9.99999997e-07). */
static double f32_shortest(double v)
{
	char buf[32];
	float f = (float)v;

	for (int prec = 6; prec <= 9; prec++) {
		double d;

		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		d = strtod(buf, NULL);
		if ((float)d == f)
			return d;
	}
	return v;
}

static int gm_f64(struct gm *g, const char *key, double *out)
{
	long i = gguf_find_key(g->f, key);
	int rc = gguf_get_f64(g->f, key, out, g->err);

	if (rc == -ENOENT)
		return qvl_errf(g->err, rc, "%s: missing required key %s", g->path, key);
	if (!rc && gguf_kv_type(g->f, (size_t)i) == GGUF_TYPE_FLOAT32)
		*out = f32_shortest(*out);
	return rc;
}

static int gm_expect_str(struct gm *g, const char *key, const char *want)
{
	const char *s;
	size_t len;
	int rc = gguf_get_str(g->f, key, &s, &len, g->err);

	if (rc == -ENOENT)
		return qvl_errf(g->err, rc, "%s: missing required key %s (expected '%s')", g->path,
				key, want);
	if (rc)
		return rc;
	if (len != strlen(want) || memcmp(s, want, len))
		return qvl_errf(g->err, -EINVAL, "%s: %s is '%.*s', qvl reads '%s'", g->path, key,
				len > 64 ? 64 : (int)len, s, want);
	return 0;
}

/* ---- text GGUF -------------------------------------------------------- */

/* Id of a token spelled exactly `text` in tokenizer.ggml.tokens, or def. */
static int token_id(struct gguf_file *f, const char *text, int def)
{
	struct gguf_arr a;
	size_t want = strlen(text);

	if (gguf_get_arr(f, "tokenizer.ggml.tokens", &a, NULL) || a.type != GGUF_TYPE_STRING ||
	    a.n > INT32_MAX)
		return def;
	/* the Qwen special tokens sit at the end of the vocabulary */
	for (uint64_t i = a.n; i-- > 0;) {
		const char *s;
		size_t len;

		if (!gguf_arr_str(&a, i, &s, &len) && len == want && !memcmp(s, text, len))
			return (int)i;
	}
	return def;
}

static int text_config(struct gm *g, struct qvl_config *c)
{
	struct qvl_text_config *t = &c->text;
	const struct gguf_tensor_info *emb = gguf_find_tensor(g->f, "token_embd.weight");
	struct gguf_arr a;
	int64_t sec;
	int rc;

	if ((rc = gm_expect_str(g, "general.architecture", "qwen3vl")))
		return rc;
	snprintf(c->architecture, sizeof(c->architecture), "%s", QVL_ARCH);
	if ((rc = gm_int(g, "qwen3vl.block_count", true, 0, 1, 1024, &t->num_layers)) ||
	    (rc = gm_int(g, "qwen3vl.embedding_length", true, 0, 1, 65536, &t->hidden_size)) ||
	    (rc = gm_int(g, "qwen3vl.feed_forward_length", true, 0, 1, 1 << 20,
			 &t->intermediate_size)) ||
	    (rc = gm_int(g, "qwen3vl.attention.head_count", true, 0, 1, 1024, &t->num_heads)) ||
	    (rc = gm_int(g, "qwen3vl.attention.head_count_kv", false, t->num_heads, 1, 1024,
			 &t->num_kv_heads)) ||
	    (rc = gm_int(g, "qwen3vl.attention.key_length", false, t->hidden_size / t->num_heads, 2,
			 1024, &t->head_dim)) ||
	    (rc = gguf_get_i64(g->f, "qwen3vl.context_length", &t->max_position, g->err)) ||
	    (rc = gm_f64(g, "qwen3vl.attention.layer_norm_rms_epsilon", &t->rms_norm_eps)) ||
	    (rc = gm_f64(g, "qwen3vl.rope.freq_base", &t->rope_theta)) ||
	    (rc = gm_int(g, "tokenizer.ggml.bos_token_id", false, -1, -1, INT32_MAX,
			 &t->bos_token_id)) ||
	    (rc = gm_int(g, "tokenizer.ggml.eos_token_id", false, -1, -1, INT32_MAX,
			 &t->eos_token_id)))
		return rc;
	rc = gguf_get_arr(g->f, "qwen3vl.rope.dimension_sections", &a, g->err);
	if (rc == -ENOENT)
		return qvl_errf(g->err, rc,
				"%s: missing required key qwen3vl.rope.dimension_sections",
				g->path);
	if (rc)
		return rc;
	if (a.n < 3)
		return qvl_errf(g->err, -EINVAL,
				"%s: qwen3vl.rope.dimension_sections has %" PRIu64
				" entries, expected at least 3 (t, h, w)",
				g->path, a.n);
	for (int i = 0; i < 3; i++) {
		if (gguf_arr_i64(&a, (uint64_t)i, &sec) || sec < 0 || sec > 1024)
			return qvl_errf(g->err, -EINVAL,
					"%s: qwen3vl.rope.dimension_sections[%d] is not an integer "
					"in [0, 1024]",
					g->path, i);
		t->mrope_section[i] = (int)sec;
	}
	if (!emb)
		return qvl_errf(g->err, -EBADMSG, "%s: missing tensor token_embd.weight", g->path);
	if (emb->n_dims != 2 || emb->ne[1] > INT32_MAX)
		return qvl_errf(g->err, -EBADMSG, "%s: token_embd.weight: expected 2 dimensions",
				g->path);
	t->vocab_size = (int)emb->ne[1];
	t->tie_word_embeddings = !gguf_find_tensor(g->f, "output.weight");
	c->image_token_id = token_id(g->f, "<|image_pad|>", 151655);
	c->video_token_id = token_id(g->f, "<|video_pad|>", 151656);
	c->vision_start_token_id = token_id(g->f, "<|vision_start|>", 151652);
	c->vision_end_token_id = token_id(g->f, "<|vision_end|>", 151653);
	return 0;
}

static int text_tensors(struct gm *g)
{
	const int L = g->m->config.text.num_layers;
	char hf[256];
	int rc;

	for (size_t i = 0; i < gguf_n_tensors(g->f); i++) {
		const struct gguf_tensor_info *ti = gguf_tensor(g->f, i);
		const char *name = ti->name, *rest, *to;
		int l;

		to = gguf_names_lookup(gguf_text_names, gguf_n_text_names, name, true);
		if (to) {
			snprintf(hf, sizeof(hf), "%s", to);
		} else if (!strncmp(name, "blk.", 4)) {
			rest = gguf_names_index(name + 4, L, &l);
			if (!rest)
				return gm_unknown(
				    g, name,
				    " (layer index not a plain decimal below qwen3vl.block_count)");
			to = gguf_names_lookup(gguf_text_layer_names, gguf_n_text_layer_names, rest,
					       true);
			if (!to)
				return gm_unknown(g, name, "");
			snprintf(hf, sizeof(hf), "model.language_model.layers.%d.%s", l, to);
		} else {
			return gm_unknown(g, name, "");
		}
		if ((rc = gm_add(g, ti, hf)))
			return rc;
	}
	return 0;
}

static bool gm_opt_f64(struct gm *g, const char *key, double *out)
{
	return gguf_find_key(g->f, key) >= 0 && !gm_f64(g, key, out);
}

static void gen_config(struct gm *g, struct qvl_model *m)
{
	struct qvl_gen_config *gc = &m->gen;
	double v;
	int k;

	qvl_gen_config_default(gc, &m->config);
	gm_int(g, "tokenizer.ggml.padding_token_id", false, -1, -1, INT32_MAX, &gc->pad_token_id);
	/* llama.cpp's converter copies generation_config.json's sampling values here */
	if (gm_opt_f64(g, "general.sampling.temp", &v)) {
		gc->present = true;
		gc->temperature = v;
		gc->do_sample = v > 0;
	}
	if (gm_opt_f64(g, "general.sampling.top_p", &v))
		gc->top_p = v;
	if (!gguf_get_int(g->f, "general.sampling.top_k", &k, NULL))
		gc->top_k = k;
	if (gm_opt_f64(g, "general.sampling.penalty_repeat", &v))
		gc->repetition_penalty = v;
	if (!gguf_get_int(g->f, "tokenizer.ggml.eot_token_id", &k, NULL) && gc->n_eos == 1 &&
	    k != gc->eos_token_ids[0])
		gc->eos_token_ids[gc->n_eos++] = k;
}

/* ---- mmproj GGUF ------------------------------------------------------ */

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* DeepStack mergers are named by the ViT block they tap; HF orders them by
 * rank among those blocks (qwen3-vl.md §2.4). */
static int vis_deepstack(struct gm *g, struct qvl_vision_config *v)
{
	for (size_t i = 0; i < gguf_n_tensors(g->f); i++) {
		const char *name = gguf_tensor(g->f, i)->name;
		int L, k;

		if (strncmp(name, "v.deepstack.", 12))
			continue;
		if (!gguf_names_index(name + 12, v->depth, &L))
			return gm_unknown(
			    g, name,
			    " (block index not a plain decimal below clip.vision.block_count)");
		for (k = 0; k < v->n_deepstack && v->deepstack_indexes[k] != L; k++)
			;
		if (k < v->n_deepstack)
			continue;
		if (v->n_deepstack == QVL_MAX_DEEPSTACK)
			return qvl_errf(g->err, -EBADMSG, "%s: more than %d DeepStack mergers",
					g->path, QVL_MAX_DEEPSTACK);
		v->deepstack_indexes[v->n_deepstack++] = L;
	}
	qsort(v->deepstack_indexes, (size_t)v->n_deepstack, sizeof(int), cmp_int);
	return 0;
}

static int vis_config(struct gm *g, struct qvl_model *m)
{
	struct qvl_vision_config *v = &m->config.vision;
	const struct gguf_tensor_info *pe = gguf_find_tensor(g->f, "v.patch_embd.weight");
	const struct gguf_tensor_info *pos = gguf_find_tensor(g->f, "v.position_embd.weight");
	const char *proj;
	size_t len;
	struct gguf_arr a;
	bool has = false;
	int rc;

	if ((rc = gm_expect_str(g, "general.architecture", "clip")))
		return rc;
	/* newer converters write the vision projector type under clip.vision. */
	if (gguf_get_str(g->f, "clip.vision.projector_type", &proj, &len, NULL) == 0)
		rc = gm_expect_str(g, "clip.vision.projector_type", "qwen3vl_merger");
	else
		rc = gm_expect_str(g, "clip.projector_type", "qwen3vl_merger");
	if (rc)
		return rc;
	if (!gguf_get_bool(g->f, "clip.has_vision_encoder", &has, NULL) && !has)
		return qvl_errf(g->err, -EINVAL, "%s: clip.has_vision_encoder is false", g->path);
	v->present = true;
	v->temporal_patch_size = 2; /* the converter refuses anything else (§2.5) */
	v->layer_norm_eps = 1e-6;   /* hard-coded in the modeling code; the GGUF key
				     * is a copy of the text rms_norm_eps */
	if ((rc = gm_int(g, "clip.vision.block_count", true, 0, 1, 1024, &v->depth)) ||
	    (rc = gm_int(g, "clip.vision.embedding_length", true, 0, 1, 65536, &v->hidden_size)) ||
	    (rc = gm_int(g, "clip.vision.feed_forward_length", true, 0, 1, 1 << 20,
			 &v->intermediate_size)) ||
	    (rc = gm_int(g, "clip.vision.attention.head_count", true, 0, 1, 1024, &v->num_heads)) ||
	    (rc = gm_int(g, "clip.vision.patch_size", true, 0, 1, 1024, &v->patch_size)) ||
	    (rc = gm_int(g, "clip.vision.spatial_merge_size", true, 0, 1, 64,
			 &v->spatial_merge_size)) ||
	    (rc = gm_int(g, "clip.vision.projection_dim", true, 0, 1, 65536, &v->out_hidden_size)))
		return rc;
	if (!pe || pe->n_dims != 4 || pe->ne[2] > 64)
		return qvl_errf(g->err, -EBADMSG,
				"%s: v.patch_embd.weight missing or not 4-dimensional", g->path);
	v->in_channels = (int)pe->ne[2];
	if (!pos || pos->n_dims != 2 || pos->ne[1] > 1 << 24)
		return qvl_errf(g->err, -EBADMSG,
				"%s: v.position_embd.weight missing or not 2-dimensional", g->path);
	v->num_position_embeddings = (int)pos->ne[1];
	if ((rc = vis_deepstack(g, v)))
		return rc;

	/* preprocessing: the Qwen3-VL defaults, overridden by what mmproj carries */
	qvl_preproc_config_default(&m->preproc, &m->config);
	m->preproc.present = true;
	for (int i = 0; i < 2; i++) {
		double *dst = i ? m->preproc.image_std : m->preproc.image_mean;

		if (gguf_get_arr(g->f, i ? "clip.vision.image_std" : "clip.vision.image_mean", &a,
				 NULL) ||
		    a.n != 3)
			continue;
		for (uint64_t c = 0; c < 3; c++)
			gguf_arr_f64(&a, c, &dst[c]);
	}
	gguf_get_i64(g->f, "clip.vision.image_min_pixels", &m->preproc.min_pixels, NULL);
	gguf_get_i64(g->f, "clip.vision.image_max_pixels", &m->preproc.max_pixels, NULL);
	return 0;
}

/* The converter's two temporal halves W0, W1 [Dv, C, P, P] back into the
 * Conv3d weight [Dv, C, 2, P, P]: for each (d, c) the P×P plane of W0 then
 * that of W1 (§2.5). Same dtype; the buffer is owned by the model. */
static int vis_patch_embed(struct gm *g)
{
	const struct gguf_tensor_info *w0 = gguf_find_tensor(g->f, "v.patch_embd.weight");
	const struct gguf_tensor_info *w1 = gguf_find_tensor(g->f, "v.patch_embd.weight.1");
	struct qvl_model *m = g->m;
	uint64_t planes, plane, total;
	uint8_t *buf;
	void **owned;
	struct qvl_tensor t;

	if (!w1)
		return qvl_errf(g->err, -EBADMSG,
				"%s: missing tensor v.patch_embd.weight.1 (second temporal half of "
				"the patch embedding)",
				g->path);
	if (w0->n_dims != w1->n_dims || w0->ggml_type != w1->ggml_type ||
	    memcmp(w0->ne, w1->ne, sizeof(w0->ne)))
		return qvl_errf(
		    g->err, -EBADMSG,
		    "%s: v.patch_embd.weight and v.patch_embd.weight.1 differ in type or "
		    "shape",
		    g->path);
	planes = w0->ne[2] * w0->ne[3];
	if (w0->nbytes % planes || __builtin_mul_overflow(w0->nbytes, 2, &total) ||
	    total > SIZE_MAX)
		return qvl_errf(g->err, -EBADMSG, "%s: v.patch_embd.weight: odd layout", g->path);
	plane = w0->nbytes / planes;
	owned = realloc(m->owned, (m->nowned + 1) * sizeof(*owned));
	if (!owned)
		return qvl_errf(g->err, -ENOMEM, "%s: out of memory", g->path);
	m->owned = owned;
	buf = malloc((size_t)total);
	if (!buf)
		return qvl_errf(g->err, -ENOMEM, "%s: out of memory for the patch embedding",
				g->path);
	m->owned[m->nowned++] = buf;
	for (uint64_t i = 0; i < planes; i++) {
		memcpy(buf + (2 * i) * plane, (const uint8_t *)w0->data + i * plane, plane);
		memcpy(buf + (2 * i + 1) * plane, (const uint8_t *)w1->data + i * plane, plane);
	}
	t = (struct qvl_tensor){
	    .name = "model.visual.patch_embed.proj.weight",
	    .dtype = w0->dtype,
	    .ndim = 5,
	    .shape = {(int64_t)w0->ne[3], (int64_t)w0->ne[2], 2, (int64_t)w0->ne[1],
		      (int64_t)w0->ne[0]},
	    .nelem = 2 * w0->nelem,
	    .data = buf,
	    .nbytes = total,
	    .source = g->src,
	};
	return qvl_model_add_tensor(m, &t, g->err);
}

static int vis_tensor_name(struct gm *g, const char *name, char *hf, size_t cap)
{
	const struct qvl_vision_config *v = &g->m->config.vision;
	char base[256];
	const char *suffix, *rest, *to;
	int j, k;

	to = gguf_names_lookup(gguf_vis_names, gguf_n_vis_names, name, true);
	if (to) {
		snprintf(hf, cap, "%s", to);
		return 0;
	}
	suffix = split_suffix(name, base, sizeof(base));
	if (suffix && !strncmp(base, "v.blk.", 6)) {
		rest = gguf_names_index(base + 6, v->depth, &j);
		if (!rest)
			return gm_unknown(
			    g, name,
			    " (block index not a plain decimal below clip.vision.block_count)");
		to = gguf_names_lookup(gguf_vis_block_names, gguf_n_vis_block_names, rest, true);
		if (to) {
			snprintf(hf, cap, "model.visual.blocks.%d.%s%s", j, to, suffix);
			return 0;
		}
	} else if (suffix && !strncmp(base, "v.deepstack.", 12)) {
		rest = gguf_names_index(base + 12, v->depth, &j);
		to = rest ? gguf_names_lookup(gguf_vis_ds_names, gguf_n_vis_ds_names, rest, true)
			  : NULL;
		for (k = 0; to && k < v->n_deepstack && v->deepstack_indexes[k] != j; k++)
			;
		if (to && k < v->n_deepstack) {
			snprintf(hf, cap, "model.visual.deepstack_merger_list.%d.%s%s", k, to,
				 suffix);
			return 0;
		}
	}
	return gm_unknown(g, name, "");
}

static int vis_tensors(struct gm *g)
{
	char hf[300];
	int rc;

	if ((rc = vis_patch_embed(g)))
		return rc;
	for (size_t i = 0; i < gguf_n_tensors(g->f); i++) {
		const struct gguf_tensor_info *ti = gguf_tensor(g->f, i);

		if (!strcmp(ti->name, "v.patch_embd.weight") ||
		    !strcmp(ti->name, "v.patch_embd.weight.1"))
			continue;
		if ((rc = vis_tensor_name(g, ti->name, hf, sizeof(hf))) || (rc = gm_add(g, ti, hf)))
			return rc;
	}
	return 0;
}

/* ---- entry point ------------------------------------------------------ */

int qvl_gguf_open(struct qvl_model *m, const char *text_path, const char *mmproj_path,
		  struct qvl_err *err)
{
	struct gm text, proj;
	int rc, nds = 0;

	m->format = QVL_FMT_GGUF;
	if ((rc = gm_open(&text, m, text_path, &m->gguf_text, err)) ||
	    (rc = text_config(&text, &m->config)))
		return rc;
	if ((rc =
		 gm_int(&text, "qwen3vl.n_deepstack_layers", false, 0, 0, QVL_MAX_DEEPSTACK, &nds)))
		return rc;
	if (mmproj_path) {
		if ((rc = gm_open(&proj, m, mmproj_path, &m->gguf_mmproj, err)) ||
		    (rc = vis_config(&proj, m)))
			return rc;
		if (m->config.vision.out_hidden_size != m->config.text.hidden_size)
			return qvl_errf(err, -EINVAL,
					"%s: clip.vision.projection_dim %d does not match the text "
					"model's embedding_length %d in %s",
					mmproj_path, m->config.vision.out_hidden_size,
					m->config.text.hidden_size, text_path);
		if (m->config.vision.n_deepstack != nds)
			return qvl_errf(err, -EINVAL,
					"%s: %d DeepStack mergers, but %s says "
					"qwen3vl.n_deepstack_layers = %d",
					mmproj_path, m->config.vision.n_deepstack, text_path, nds);
	} else {
		qvl_preproc_config_default(&m->preproc, &m->config);
	}
	if ((rc = qvl_config_validate(&m->config, text_path, err)))
		return rc;
	gen_config(&text, m);
	if ((rc = text_tensors(&text)) || (mmproj_path && (rc = vis_tensors(&proj))) ||
	    (rc = qvl_model_finish(m, err)) || (rc = qvl_model_check_tensors(m, err)))
		return rc;
	return 0;
}
