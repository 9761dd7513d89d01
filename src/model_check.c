/* Does the tensor table match the config? Every tensor the config implies
 * must exist with its shape (qwen3-vl.md §2.1) and nothing else may be there,
 * so the engine can look tensors up without checking each one again. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "quant.h"

struct mc {
	const struct qvl_model *m;
	bool *seen;
	size_t nexpected;
	struct qvl_err *err;
	int rc;
};

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
	size_t n = 0;

	n += (size_t)snprintf(buf, cap, "[");
	for (int d = 0; d < ndim && n < cap; d++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, d ? "," : "", shape[d]);
	if (n < cap)
		snprintf(buf + n, cap - n, "]");
}

static const char *src_path(const struct qvl_model *m, const struct qvl_tensor *t)
{
	return (size_t)t->source < m->nsources ? m->sources[t->source].path : m->path;
}

/* Expect tensor (printf name) with the given shape (ndim values follow the name's args
 * as an int64_t array). Optional tensors may be absent. */
__attribute__((format(printf, 5, 6))) static void expect(struct mc *c, bool optional, int ndim,
							 const int64_t *shape, const char *fmt, ...)
{
	char name[256], want[96], got[96];
	const struct qvl_tensor *t;
	va_list ap;

	if (c->rc)
		return;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	t = qvl_model_find(c->m, name);
	if (!t) {
		if (!optional)
			c->rc = qvl_errf(c->err, -ENOENT,
					 "%s: missing tensor '%s' (the config implies it)",
					 c->m->path, name);
		return;
	}
	c->nexpected++;
	c->seen[t - c->m->tensors] = true;
	if (t->ndim != ndim || memcmp(t->shape, shape, (size_t)ndim * sizeof(*shape))) {
		shape_str(want, sizeof(want), ndim, shape);
		shape_str(got, sizeof(got), t->ndim, t->shape);
		c->rc = qvl_errf(c->err, -EBADMSG,
				 "%s: tensor '%s': shape %s, but the config implies %s",
				 src_path(c->m, t), name, got, want);
		return;
	}
	/* block types quantize along rows: the row length must be whole blocks
	 * (32 values, or 256 for the K-quants and IQ4_XS) */
	const struct qvl_dtype_info *di = qvl_dtype_info(t->dtype);

	if (!di)
		c->rc = qvl_errf(c->err, -EBADMSG, "%s: tensor '%s': unsupported dtype %d",
				 src_path(c->m, t), name, (int)t->dtype);
	else if (di->blk > 1 && (ndim == 0 || shape[ndim - 1] % di->blk))
		c->rc = qvl_errf(c->err, -EBADMSG,
				 "%s: tensor '%s': %s rows of %" PRId64 " are not whole %" PRIu32
				 "-blocks",
				 src_path(c->m, t), name, di->name, ndim ? shape[ndim - 1] : 0,
				 di->blk);
}

#define S(...)		     ((const int64_t[]){__VA_ARGS__})
#define N(...)		     (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define E(c, opt, dims, ...) expect(c, opt, N dims, S dims, __VA_ARGS__)

static void expect_text(struct mc *c, const struct qvl_text_config *t)
{
	const int64_t H = t->hidden_size, V = t->vocab_size, I = t->intermediate_size;
	const int64_t Q = (int64_t)t->num_heads * t->head_dim;
	const int64_t KV = (int64_t)t->num_kv_heads * t->head_dim, hd = t->head_dim;
	const char *p = "model.language_model.";

	E(c, false, (V, H), "%sembed_tokens.weight", p);
	E(c, false, (H), "%snorm.weight", p);
	/* untied models need lm_head; tied ones may still carry a copy */
	E(c, t->tie_word_embeddings, (V, H), "lm_head.weight");
	for (int l = 0; l < t->num_layers && !c->rc; l++) {
		E(c, false, (H), "%slayers.%d.input_layernorm.weight", p, l);
		E(c, false, (H), "%slayers.%d.post_attention_layernorm.weight", p, l);
		E(c, false, (Q, H), "%slayers.%d.self_attn.q_proj.weight", p, l);
		E(c, false, (KV, H), "%slayers.%d.self_attn.k_proj.weight", p, l);
		E(c, false, (KV, H), "%slayers.%d.self_attn.v_proj.weight", p, l);
		E(c, false, (H, Q), "%slayers.%d.self_attn.o_proj.weight", p, l);
		E(c, false, (hd), "%slayers.%d.self_attn.q_norm.weight", p, l);
		E(c, false, (hd), "%slayers.%d.self_attn.k_norm.weight", p, l);
		E(c, false, (I, H), "%slayers.%d.mlp.gate_proj.weight", p, l);
		E(c, false, (I, H), "%slayers.%d.mlp.up_proj.weight", p, l);
		E(c, false, (H, I), "%slayers.%d.mlp.down_proj.weight", p, l);
	}
}

static void expect_merger(struct mc *c, const char *pre, int64_t norm, int64_t M, int64_t O)
{
	E(c, false, (norm), "%snorm.weight", pre);
	E(c, false, (norm), "%snorm.bias", pre);
	E(c, false, (M, M), "%slinear_fc1.weight", pre);
	E(c, false, (M), "%slinear_fc1.bias", pre);
	E(c, false, (O, M), "%slinear_fc2.weight", pre);
	E(c, false, (O), "%slinear_fc2.bias", pre);
}

static void expect_vision(struct mc *c, const struct qvl_vision_config *v)
{
	const int64_t D = v->hidden_size, I = v->intermediate_size, O = v->out_hidden_size;
	const int64_t M = D * v->spatial_merge_size * v->spatial_merge_size;
	const char *p = "model.visual.";
	char pre[64];

	E(c, false, (D, v->in_channels, v->temporal_patch_size, v->patch_size, v->patch_size),
	  "%spatch_embed.proj.weight", p);
	E(c, false, (D), "%spatch_embed.proj.bias", p);
	E(c, false, (v->num_position_embeddings, D), "%spos_embed.weight", p);
	for (int j = 0; j < v->depth && !c->rc; j++) {
		E(c, false, (D), "%sblocks.%d.norm1.weight", p, j);
		E(c, false, (D), "%sblocks.%d.norm1.bias", p, j);
		E(c, false, (D), "%sblocks.%d.norm2.weight", p, j);
		E(c, false, (D), "%sblocks.%d.norm2.bias", p, j);
		E(c, false, (3 * D, D), "%sblocks.%d.attn.qkv.weight", p, j);
		E(c, false, (3 * D), "%sblocks.%d.attn.qkv.bias", p, j);
		E(c, false, (D, D), "%sblocks.%d.attn.proj.weight", p, j);
		E(c, false, (D), "%sblocks.%d.attn.proj.bias", p, j);
		E(c, false, (I, D), "%sblocks.%d.mlp.linear_fc1.weight", p, j);
		E(c, false, (I), "%sblocks.%d.mlp.linear_fc1.bias", p, j);
		E(c, false, (D, I), "%sblocks.%d.mlp.linear_fc2.weight", p, j);
		E(c, false, (D), "%sblocks.%d.mlp.linear_fc2.bias", p, j);
	}
	/* the final merger normalizes before the 2x2 merge, DeepStack ones after */
	expect_merger(c, "model.visual.merger.", D, M, O);
	for (int k = 0; k < v->n_deepstack; k++) {
		snprintf(pre, sizeof(pre), "model.visual.deepstack_merger_list.%d.", k);
		expect_merger(c, pre, M, M, O);
	}
}

size_t qvl_model_expected_tensors(const struct qvl_config *c)
{
	size_t n = 2 + 11 * (size_t)c->text.num_layers + !c->text.tie_word_embeddings;

	if (c->vision.present)
		n += 3 + 12 * (size_t)c->vision.depth + 6 * (1 + (size_t)c->vision.n_deepstack);
	return n;
}

int qvl_model_check_tensors(const struct qvl_model *m, struct qvl_err *err)
{
	struct mc c = {.m = m, .err = err};

	c.seen = calloc(m->ntensors ? m->ntensors : 1, sizeof(*c.seen));
	if (!c.seen)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", m->path);
	expect_text(&c, &m->config.text);
	if (m->config.vision.present)
		expect_vision(&c, &m->config.vision);
	for (size_t i = 0; i < m->ntensors && !c.rc; i++) {
		size_t extra = m->ntensors - c.nexpected;

		if (c.seen[i])
			continue;
		c.rc = qvl_errf(err, -EBADMSG,
				"%s: unexpected tensor '%s'%s (%zu tensor%s the config does not "
				"imply)",
				src_path(m, &m->tensors[i]), m->tensors[i].name,
				!m->config.vision.present &&
					!strncmp(m->tensors[i].name, "model.visual.", 13)
				    ? " in a model without vision_config"
				    : "",
				extra, extra == 1 ? "" : "s");
	}
	free(c.seen);
	return c.rc;
}
