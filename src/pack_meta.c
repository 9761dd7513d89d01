/* The pack's config record (the model's config, generation config and
 * preprocessor config as fixed little-endian fields, qvl-pack(5)) and the
 * assignment of tensors to shards. Reading the record checks it with the
 * same cross-field rules the Hugging Face and GGUF readers apply. */
#include "pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_json.h"

#define CFG_ARCH 64

struct cur {
	uint8_t *w;	  /* writing, or NULL */
	const uint8_t *r; /* reading */
	size_t pos, len;
	bool short_read;
};

static void c_u(struct cur *c, uint64_t *v, int n)
{
	if (c->w) {
		pack_put(c->w + c->pos, *v, n);
	} else if (c->pos + (size_t)n > c->len) {
		c->short_read = true;
		*v = 0;
		return;
	} else {
		*v = pack_get(c->r + c->pos, n);
	}
	c->pos += (size_t)n;
}

static void c_i32(struct cur *c, int *v)
{
	uint64_t u = (uint32_t)*v;

	c_u(c, &u, 4);
	*v = (int)(int32_t)(uint32_t)u;
}

static void c_i64(struct cur *c, int64_t *v)
{
	uint64_t u = (uint64_t)*v;

	c_u(c, &u, 8);
	*v = (int64_t)u;
}

static void c_f64(struct cur *c, double *v)
{
	uint64_t u;

	memcpy(&u, v, 8);
	c_u(c, &u, 8);
	memcpy(v, &u, 8);
}

static void c_bool(struct cur *c, bool *v)
{
	uint64_t u = *v;

	c_u(c, &u, 1);
	*v = u != 0;
}

static void c_ints(struct cur *c, int *v, int n)
{
	for (int i = 0; i < n; i++)
		c_i32(c, &v[i]);
}

/* One walk for both directions, so the layout cannot drift between them. */
static void cfg_walk(struct cur *c, struct qvl_config *cf, struct qvl_gen_config *g,
		     struct qvl_preproc_config *pp)
{
	struct qvl_text_config *t = &cf->text;
	struct qvl_vision_config *v = &cf->vision;

	for (int i = 0; i < CFG_ARCH; i++) {
		uint64_t ch = (uint8_t)cf->architecture[i];

		c_u(c, &ch, 1);
		cf->architecture[i] = (char)ch;
	}
	c_ints(c, &t->hidden_size, 1);
	c_i32(c, &t->num_layers);
	c_i32(c, &t->num_heads);
	c_i32(c, &t->num_kv_heads);
	c_i32(c, &t->head_dim);
	c_i32(c, &t->intermediate_size);
	c_i32(c, &t->vocab_size);
	c_i64(c, &t->max_position);
	c_f64(c, &t->rms_norm_eps);
	c_f64(c, &t->rope_theta);
	c_ints(c, t->mrope_section, 3);
	c_bool(c, &t->tie_word_embeddings);
	c_i32(c, &t->bos_token_id);
	c_i32(c, &t->eos_token_id);

	c_bool(c, &v->present);
	c_i32(c, &v->depth);
	c_i32(c, &v->hidden_size);
	c_i32(c, &v->intermediate_size);
	c_i32(c, &v->num_heads);
	c_i32(c, &v->patch_size);
	c_i32(c, &v->temporal_patch_size);
	c_i32(c, &v->spatial_merge_size);
	c_i32(c, &v->in_channels);
	c_i32(c, &v->out_hidden_size);
	c_i32(c, &v->num_position_embeddings);
	c_i32(c, &v->n_deepstack);
	c_ints(c, v->deepstack_indexes, QVL_MAX_DEEPSTACK);
	c_f64(c, &v->layer_norm_eps);

	c_i32(c, &cf->image_token_id);
	c_i32(c, &cf->video_token_id);
	c_i32(c, &cf->vision_start_token_id);
	c_i32(c, &cf->vision_end_token_id);

	c_bool(c, &g->present);
	c_i32(c, &g->bos_token_id);
	c_i32(c, &g->pad_token_id);
	c_i32(c, &g->n_eos);
	c_ints(c, g->eos_token_ids, 8);
	c_bool(c, &g->do_sample);
	c_f64(c, &g->temperature);
	c_f64(c, &g->top_p);
	c_f64(c, &g->repetition_penalty);
	c_i32(c, &g->top_k);

	c_bool(c, &pp->present);
	c_i64(c, &pp->min_pixels);
	c_i64(c, &pp->max_pixels);
	c_i32(c, &pp->patch_size);
	c_i32(c, &pp->temporal_patch_size);
	c_i32(c, &pp->merge_size);
	for (int i = 0; i < 3; i++)
		c_f64(c, &pp->image_mean[i]);
	for (int i = 0; i < 3; i++)
		c_f64(c, &pp->image_std[i]);
	c_f64(c, &pp->rescale_factor);
}

size_t pack_config_size(void)
{
	struct qvl_config cf = {0};
	struct qvl_gen_config g = {0};
	struct qvl_preproc_config pp = {0};
	struct cur c = {.r = NULL, .len = SIZE_MAX};
	static uint8_t sink[1024];

	c.w = sink;
	cfg_walk(&c, &cf, &g, &pp);
	return c.pos;
}

void pack_config_write(uint8_t *out, const struct qvl_model *m)
{
	struct qvl_config cf = m->config;
	struct qvl_gen_config g = m->gen;
	struct qvl_preproc_config pp = m->preproc;
	struct cur c = {.w = out};

	cfg_walk(&c, &cf, &g, &pp);
}

int pack_config_read(struct qvl_model *m, const uint8_t *p, uint64_t len, const char *what,
		     struct qvl_err *err)
{
	struct cur c = {.r = p, .len = len};
	char ctx[300];

	memset(&m->config, 0, sizeof(m->config));
	cfg_walk(&c, &m->config, &m->gen, &m->preproc);
	if (c.short_read)
		return qvl_errf(err, -EBADMSG, "%s: config record: %llu bytes, expected %zu", what,
				(unsigned long long)len, pack_config_size());
	if (memchr(m->config.architecture, 0, CFG_ARCH) == NULL ||
	    strcmp(m->config.architecture, "Qwen3VLForConditionalGeneration"))
		return qvl_errf(err, -EBADMSG,
				"%s: config record: architecture is not "
				"Qwen3VLForConditionalGeneration",
				what);
	snprintf(ctx, sizeof(ctx), "%s: config record", what);
	if (m->gen.n_eos < 0 || m->gen.n_eos > 8 || m->gen.top_k < 0)
		return qvl_errf(err, -EBADMSG, "%s: n_eos %d or top_k %d out of range", ctx,
				m->gen.n_eos, m->gen.top_k);
	for (int i = 0; i < m->gen.n_eos; i++)
		if (m->gen.eos_token_ids[i] < 0 ||
		    m->gen.eos_token_ids[i] >= m->config.text.vocab_size)
			return qvl_errf(err, -EBADMSG, "%s: eos token %d out of range", ctx,
					m->gen.eos_token_ids[i]);
	if (m->preproc.patch_size < 1 || m->preproc.patch_size > 64 || m->preproc.merge_size < 1 ||
	    m->preproc.merge_size > 16 || m->preproc.temporal_patch_size < 1 ||
	    m->preproc.temporal_patch_size > 16 || m->preproc.min_pixels < 1 ||
	    m->preproc.max_pixels < m->preproc.min_pixels)
		return qvl_errf(err, -EBADMSG, "%s: preprocessor values out of range", ctx);
	return qvl_config_validate(&m->config, ctx, err);
}

/* ---- shards ---------------------------------------------------------------- */

static bool prefix_index(const char *s, const char *prefix, long *idx)
{
	size_t n = strlen(prefix);
	char *end;

	if (strncmp(s, prefix, n))
		return false;
	*idx = strtol(s + n, &end, 10);
	return end != s + n && *end == '.' && *idx >= 0 && *idx < 100000;
}

void pack_shard_of(const char *t, char *name, size_t cap, uint64_t *rank)
{
	long i;

	if (prefix_index(t, "model.language_model.layers.", &i)) {
		snprintf(name, cap, "text.layer.%ld", i);
		*rank = 1000000 + (uint64_t)i;
	} else if (!strncmp(t, "model.language_model.", 21) && strstr(t, "embed_tokens")) {
		snprintf(name, cap, "text.embed");
		*rank = 0;
	} else if (!strncmp(t, "model.language_model.", 21) || !strncmp(t, "lm_head.", 8)) {
		snprintf(name, cap, "text.head");
		*rank = 2000000;
	} else if (prefix_index(t, "model.visual.blocks.", &i)) {
		snprintf(name, cap, "vision.block.%ld", i);
		*rank = 4000000 + (uint64_t)i;
	} else if (!strncmp(t, "model.visual.merger.", 20) ||
		   !strncmp(t, "model.visual.deepstack_merger_list.", 35)) {
		snprintf(name, cap, "vision.merger");
		*rank = 5000000;
	} else if (!strncmp(t, "model.visual.", 13)) {
		snprintf(name, cap, "vision.embed");
		*rank = 3000000;
	} else {
		snprintf(name, cap, "other");
		*rank = 6000000;
	}
}
