/* The Hugging Face reader on the tiny test model (testmodel.md): config
 * values, tensor table, spot values from the test vectors of §5.5, a
 * --no-vision copy, a transformers-5.x style config, and a sharded copy
 * (3 shards + model.safetensors.index.json) written here. */
#define _GNU_SOURCE
#include <math.h>

#include "config_json.h"
#include "hf_util.h"
#include "tap.h"

static struct qvl_model *open_ok(const char *path, const char *what)
{
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	int rc = qvl_model_open(&m, path, NULL, &err);

	if (!ok(rc == 0 && m, "%s opens", what))
		diag("rc %d: %s", rc, err.msg);
	return rc ? NULL : m;
}

static void check_config(const struct qvl_model *m)
{
	const struct qvl_text_config *t = &m->config.text;
	const struct qvl_vision_config *v = &m->config.vision;

	ok(m->format == QVL_FMT_HF && !strcmp(qvl_format_name(m->format), "hf"), "format hf");
	ok(!strcmp(m->config.architecture, "Qwen3VLForConditionalGeneration"), "architecture");
	is_int(t->hidden_size, 64, "text hidden_size");
	is_int(t->num_layers, 4, "text layers");
	is_int(t->num_heads, 4, "text heads");
	is_int(t->num_kv_heads, 2, "text kv heads");
	is_int(t->head_dim, 32, "text head_dim");
	is_int(t->intermediate_size, 192, "text intermediate");
	is_int(t->vocab_size, 151936, "vocab");
	is_int(t->max_position, 8192, "max positions");
	ok(t->rms_norm_eps == 1e-6, "rms_norm_eps 1e-6");
	ok(t->rope_theta == 5000000.0, "rope_theta 5e6");
	ok(t->mrope_section[0] == 6 && t->mrope_section[1] == 5 && t->mrope_section[2] == 5,
	   "mrope_section [6,5,5]");
	ok(t->tie_word_embeddings, "tied embeddings");
	is_int(t->bos_token_id, 151643, "text bos");
	is_int(t->eos_token_id, 151645, "text eos");
	is_int(m->config.image_token_id, 151655, "image token");
	is_int(m->config.video_token_id, 151656, "video token");
	is_int(m->config.vision_start_token_id, 151652, "vision start");
	is_int(m->config.vision_end_token_id, 151653, "vision end");
	ok(v->present, "vision present");
	is_int(v->depth, 4, "vision depth");
	is_int(v->hidden_size, 32, "vision hidden");
	is_int(v->intermediate_size, 64, "vision intermediate");
	is_int(v->num_heads, 2, "vision heads");
	is_int(v->patch_size, 16, "patch");
	is_int(v->temporal_patch_size, 2, "temporal patch");
	is_int(v->spatial_merge_size, 2, "merge");
	is_int(v->in_channels, 3, "in channels");
	is_int(v->out_hidden_size, 64, "out hidden");
	is_int(v->num_position_embeddings, 256, "position embeddings");
	ok(v->n_deepstack == 2 && v->deepstack_indexes[0] == 1 && v->deepstack_indexes[1] == 2,
	   "deepstack [1,2]");
	ok(v->layer_norm_eps == 1e-6, "vision eps");
	/* generation_config.json and preprocessor_config.json, testmodel.md §8 */
	ok(m->gen.present, "generation config read");
	ok(m->gen.n_eos == 2 && m->gen.eos_token_ids[0] == 151645 &&
	       m->gen.eos_token_ids[1] == 151643,
	   "eos [151645, 151643]");
	ok(m->gen.bos_token_id == 151643 && m->gen.pad_token_id == 151643, "gen bos/pad");
	ok(m->gen.do_sample && m->gen.temperature == 0.7 && m->gen.top_p == 0.8 &&
	       m->gen.top_k == 20 && m->gen.repetition_penalty == 1.0,
	   "sampling defaults");
	ok(m->preproc.present, "preprocessor config read");
	ok(m->preproc.min_pixels == 65536 && m->preproc.max_pixels == 16777216, "pixel budget");
	ok(m->preproc.patch_size == 16 && m->preproc.temporal_patch_size == 2 &&
	       m->preproc.merge_size == 2,
	   "preproc patch/temporal/merge");
	ok(m->preproc.image_mean[2] == 0.5 && m->preproc.image_std[0] == 0.5, "mean/std 0.5");
	ok(fabs(m->preproc.rescale_factor - 1.0 / 255) < 1e-12, "rescale 1/255");
	ok(m->tokenizer_json_path && strstr(m->tokenizer_json_path, "tokenizer.json"),
	   "tokenizer.json found");
}

static void check_values(const struct qvl_model *m)
{
	const struct qvl_tensor *e, *t;
	float f[3];
	uint64_t params = 0;
	bool sorted = true;

	is_int(m->ntensors, 115, "115 tensors");
	is_int(qvl_model_expected_tensors(&m->config), 115, "expected count from config");
	for (size_t i = 0; i < m->ntensors; i++) {
		params += m->tensors[i].nelem;
		if (i && strcmp(m->tensors[i - 1].name, m->tensors[i].name) >= 0)
			sorted = false;
	}
	is_int(params, 10136928, "10,136,928 parameters (testmodel.md §2)");
	ok(sorted, "table sorted by name");
	ok(!strcmp(m->tensors[0].name, "model.language_model.embed_tokens.weight") &&
	       !strcmp(m->tensors[m->ntensors - 1].name, "model.visual.pos_embed.weight"),
	   "first and last names");
	e = qvl_model_find(m, "model.language_model.embed_tokens.weight");
	ok(e && e->dtype == QVL_DT_BF16 && e->ndim == 2 && e->shape[0] == 151936 &&
	       e->shape[1] == 64 && e->nbytes == 151936 * 64 * 2,
	   "embed_tokens BF16 [151936,64]");
	if (e) {
		/* testmodel.md §5.5 */
		ok(tu_u16(e, 0) == 0xba04 && tu_u16(e, 1) == 0xbc14 && tu_u16(e, 2) == 0x3cb8,
		   "embed_tokens[0..2] bits ba04 bc14 3cb8");
		ok(qvl_tensor_to_f32(e, 0, 3, f) == 0 && f[0] == -0.0005035400390625f &&
		       f[1] == -0.009033203125f && f[2] == 0.0224609375f,
		   "embed_tokens[0..2] as f32");
		ok(qvl_tensor_to_f32(e, e->nelem - 2, 3, f) == -ERANGE, "to_f32 past end refused");
		/* the view points into the mapping, no copy */
		ok((const uint8_t *)e->data >= (const uint8_t *)m->sources[e->source].map &&
		       (const uint8_t *)e->data + e->nbytes <=
			   (const uint8_t *)m->sources[e->source].map + m->sources[e->source].size,
		   "zero-copy view inside the mapping");
	}
	t = qvl_model_findf(m, "model.language_model.layers.%d.input_layernorm.weight", 0);
	ok(t && tu_u16(t, 0) == 0x3f7f && tu_u16(t, 1) == 0x3f53, "layers.0.input_layernorm");
	ok(t && qvl_tensor_to_f32(t, 1, 1, f) == 0 && f[0] == 0.82421875f, "  [1] = 0.82421875");
	t = qvl_model_find(m, "model.language_model.norm.weight");
	ok(t && qvl_tensor_to_f32(t, 0, 2, f) == 0 && f[0] == 74.0f && f[1] == 57.75f,
	   "norm.weight [74, 57.75]");
	t = qvl_model_find(m, "model.visual.blocks.0.attn.qkv.bias");
	ok(t && tu_u16(t, 0) == 0x3dc4 && t->shape[0] == 96, "visual qkv.bias[0] 0x3dc4, [96]");
	t = qvl_model_find(m, "model.visual.patch_embed.proj.weight");
	ok(t && t->ndim == 5 && t->shape[0] == 32 && t->shape[1] == 3 && t->shape[2] == 2 &&
	       t->shape[3] == 16 && t->shape[4] == 16,
	   "patch_embed [32,3,2,16,16]");
	ok(qvl_model_find(m, "model.visual.deepstack_merger_list.1.linear_fc2.bias") != NULL,
	   "deepstack merger 1 present");
	ok(!qvl_model_find(m, "lm_head.weight") && !qvl_model_find(m, "model.language_model") &&
	       !qvl_model_find(m, "zzz"),
	   "absent names not found");
}

static const struct qvl_tensor **text_tensors(const struct qvl_model *m, size_t *n)
{
	const struct qvl_tensor **v = calloc(m->ntensors, sizeof(*v));

	*n = 0;
	for (size_t i = 0; v && i < m->ntensors; i++)
		if (strncmp(m->tensors[i].name, "model.visual.", 13))
			v[(*n)++] = &m->tensors[i];
	return v;
}

static int copy_fixture(const char *dir, const char *fixture, const char *name)
{
	const char *td = getenv("QVL_TESTDATA");
	struct qvl_err err;
	char path[4096], *text;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/hf/%s", td ? td : "tests/data", fixture);
	if (qvl_read_file(path, 1 << 20, &text, &len, &err))
		return -1;
	rc = tu_write(dir, name, text, len);
	free(text);
	return rc;
}

/* --no-vision: the text tensors of the full model are byte-identical
 * (testmodel.md §1), so a text-only copy is the --no-vision model. */
static void check_novision(const struct qvl_model *full)
{
	char *dir = tu_tmpdir("novision"), *p;
	const struct qvl_tensor **tt;
	struct qvl_model *m;
	struct stat st;
	uint64_t params = 0;
	size_t n;

	tt = text_tensors(full, &n);
	is_int(n, 46, "46 text tensors");
	ok(dir && tu_write_st(dir, "model.safetensors", tt, n) == 0 &&
	       copy_fixture(dir, "tiny-novision-config.json", "config.json") == 0,
	   "no-vision copy written");
	/* our writer follows the official layout: sizes from testmodel.md §6 */
	p = qvl_path_join(dir, "model.safetensors");
	ok(p && stat(p, &st) == 0 && st.st_size == 19946656, "no-vision file is 19,946,656 bytes");
	free(p);
	m = open_ok(dir, "no-vision model");
	if (m) {
		for (size_t i = 0; i < m->ntensors; i++)
			params += m->tensors[i].nelem;
		ok(!m->config.vision.present, "no vision config");
		is_int(m->ntensors, 46, "46 tensors");
		is_int(params, 9970496, "9,970,496 parameters");
		ok(!m->gen.present && m->gen.n_eos == 1 && m->gen.eos_token_ids[0] == 151645,
		   "no generation_config: eos from text_config");
		ok(!m->preproc.present, "no preprocessor config");
		qvl_model_close(m);
	}
	/* transformers 5.x keeps rope settings in rope_parameters */
	ok(copy_fixture(dir, "tiny-v5-novision-config.json", "config.json") == 0,
	   "5.x config written");
	m = open_ok(dir, "model with a transformers 5.x config");
	if (m) {
		ok(m->config.text.rope_theta == 5000000.0 && m->config.text.mrope_section[0] == 6 &&
		       m->config.text.mrope_section[2] == 5,
		   "rope_parameters read");
		qvl_model_close(m);
	}
	free(tt);
	if (dir)
		tu_rmtree(dir);
	free(dir);
}

static void check_sharded(const struct qvl_model *full)
{
	static const char *const shard[3] = {"model-00001-of-00003.safetensors",
					     "model-00002-of-00003.safetensors",
					     "model-00003-of-00003.safetensors"};
	const struct qvl_tensor **part[3];
	char *dir = tu_tmpdir("sharded");
	struct tu_buf idx = {0};
	struct qvl_model *m;
	size_t np[3] = {0}, same = 0;
	int rc = dir ? 0 : -1;

	for (int s = 0; s < 3; s++)
		part[s] = calloc(full->ntensors, sizeof(*part[s]));
	/* round-robin, so each shard mixes text and vision tensors */
	tu_printf(&idx, "{\"metadata\":{\"total_size\":20273856},\"weight_map\":{");
	for (size_t i = 0; i < full->ntensors; i++) {
		int s = (int)(i % 3);

		part[s][np[s]++] = &full->tensors[i];
		tu_printf(&idx, "%s\"%s\":\"%s\"", i ? "," : "", full->tensors[i].name, shard[s]);
	}
	tu_printf(&idx, "}}\n");
	for (int s = 0; s < 3 && !rc; s++)
		rc = tu_write_st(dir, shard[s], part[s], np[s]);
	if (!rc)
		rc = tu_write_str(dir, "model.safetensors.index.json", idx.p);
	if (!rc) {
		/* the config of the model we split */
		char *cfg = qvl_path_join(tu_tiny_dir(), "config.json"), *text = NULL;
		struct qvl_err err;
		size_t len;

		rc = cfg && !qvl_read_file(cfg, 1 << 20, &text, &len, &err)
			 ? tu_write(dir, "config.json", text, len)
			 : -1;
		free(cfg);
		free(text);
	}
	ok(rc == 0, "3 shards + index written");
	m = rc ? NULL : open_ok(dir, "sharded model");
	if (m) {
		is_int(m->ntensors, full->ntensors, "same tensor count");
		is_int(m->nsources, 3, "3 sources");
		for (size_t i = 0; i < m->ntensors && i < full->ntensors; i++) {
			const struct qvl_tensor *a = &m->tensors[i], *b = &full->tensors[i];

			same += !strcmp(a->name, b->name) && a->dtype == b->dtype &&
				a->ndim == b->ndim &&
				!memcmp(a->shape, b->shape, sizeof(a->shape)) &&
				a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes) &&
				!strcmp(m->sources[a->source].path + strlen(dir) + 1, shard[i % 3]);
		}
		is_int(same, full->ntensors, "every tensor equal, from the shard the index names");
		ok(!m->preproc.present && !m->gen.present, "side files absent in the copy");
		qvl_model_close(m);
	}
	for (int s = 0; s < 3; s++)
		free(part[s]);
	free(idx.p);
	if (dir)
		tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const char *tiny = tu_tiny_dir();
	struct qvl_model *m;

	if (!tiny)
		skip_all("no tiny model ($QVL_TINY not generated, $QVL_SHARED/models/qvl-tiny "
			 "absent)");
	diag("tiny model: %s", tiny);
	m = open_ok(tiny, "tiny model");
	if (!m)
		return done_testing();
	check_config(m);
	check_values(m);
	check_novision(m);
	check_sharded(m);
	qvl_model_close(m);
	return done_testing();
}
