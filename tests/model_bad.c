/* Malformed Hugging Face directories: each case writes a small model into a
 * scratch directory, breaks one thing, and checks that qvl_model_open fails
 * with the right code and a message naming the file and the problem.
 * A valid "micro" model (1 layer, H 8, V 16, 13 BF16 tensors) is the base;
 * none of this needs the shared tiny model. */
#define _GNU_SOURCE
#include "hf_util.h"
#include "tap.h"

static const char micro_config[] =
    "{\"architectures\":[\"Qwen3VLForConditionalGeneration\"],\"model_type\":\"qwen3_vl\","
    "\"tie_word_embeddings\":true,\"text_config\":{\"hidden_size\":8,\"intermediate_size\":8,"
    "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
    "\"head_dim\":4,\"vocab_size\":16,\"max_position_embeddings\":64,\"rms_norm_eps\":1e-06,"
    "\"rope_theta\":10000,\"rope_scaling\":{\"rope_type\":\"default\",\"mrope_section\":[1,1,0],"
    "\"mrope_interleaved\":true},\"bos_token_id\":1,\"eos_token_id\":2}}";

/* name, shape of the 13 micro tensors */
static const struct {
	const char *name;
	int ndim;
	int64_t shape[2];
} micro[] = {
    {"model.language_model.embed_tokens.weight", 2, {16, 8}},
    {"model.language_model.norm.weight", 1, {8}},
    {"model.language_model.layers.0.input_layernorm.weight", 1, {8}},
    {"model.language_model.layers.0.post_attention_layernorm.weight", 1, {8}},
    {"model.language_model.layers.0.self_attn.q_proj.weight", 2, {8, 8}},
    {"model.language_model.layers.0.self_attn.k_proj.weight", 2, {4, 8}},
    {"model.language_model.layers.0.self_attn.v_proj.weight", 2, {4, 8}},
    {"model.language_model.layers.0.self_attn.o_proj.weight", 2, {8, 8}},
    {"model.language_model.layers.0.self_attn.q_norm.weight", 1, {4}},
    {"model.language_model.layers.0.self_attn.k_norm.weight", 1, {4}},
    {"model.language_model.layers.0.mlp.gate_proj.weight", 2, {8, 8}},
    {"model.language_model.layers.0.mlp.up_proj.weight", 2, {8, 8}},
    {"model.language_model.layers.0.mlp.down_proj.weight", 2, {8, 8}},
};
#define NMICRO (sizeof(micro) / sizeof(micro[0]))

static uint8_t zeros[16 * 8 * 4];

/* Micro tensors, minus `skip` (name or NULL), plus `extra` tensors. */
static int write_micro(const char *dir, const char *file, const char *skip,
		       const struct qvl_tensor *extra, size_t nextra)
{
	struct qvl_tensor t[NMICRO + 4];
	const struct qvl_tensor *pt[NMICRO + 4];
	size_t n = 0;

	for (size_t i = 0; i < NMICRO; i++) {
		if (skip && !strcmp(skip, micro[i].name))
			continue;
		t[n] = (struct qvl_tensor){.name = micro[i].name,
					   .dtype = QVL_DT_BF16,
					   .ndim = micro[i].ndim,
					   .data = zeros};
		t[n].nelem = 1;
		for (int d = 0; d < micro[i].ndim; d++) {
			t[n].shape[d] = micro[i].shape[d];
			t[n].nelem *= (uint64_t)micro[i].shape[d];
		}
		t[n].nbytes = 2 * t[n].nelem;
		n++;
	}
	for (size_t i = 0; i < nextra && n < NMICRO + 4; i++)
		t[n++] = extra[i];
	for (size_t i = 0; i < n; i++)
		pt[i] = &t[i];
	return tu_write_st(dir, file, pt, n);
}

/* micro_config with the first `from` replaced by `to` */
static int write_config(const char *dir, const char *from, const char *to)
{
	struct tu_buf b = {0};
	const char *at = from ? strstr(micro_config, from) : NULL;
	int rc;

	if (from && !at)
		return -1; /* the case is wrong, not the reader */
	if (at)
		tu_printf(&b, "%.*s%s%s", (int)(at - micro_config), micro_config, to,
			  at + strlen(from));
	else
		tu_printf(&b, "%s", micro_config);
	rc = tu_write_str(dir, "config.json", b.p);
	free(b.p);
	return rc;
}

struct bad_case {
	const char *what;
	int (*setup)(const char *dir, const void *arg);
	const void *arg;
	int code;
	const char *file;    /* must appear in the message */
	const char *problem; /* must appear in the message */
};

/* ---- safetensors: a raw header with `data` zero bytes after it ---------- */

struct raw {
	const char *header;
	size_t data;
};

static int setup_raw(const char *dir, const void *arg)
{
	const struct raw *r = arg;

	return write_config(dir, NULL, NULL) ||
	       tu_write_raw_st(dir, "model.safetensors", r->header, r->data);
}

static int setup_bytes(const char *dir, const void *arg)
{
	const char *s = arg; /* first byte: length, then the bytes */

	return write_config(dir, NULL, NULL) ||
	       tu_write(dir, "model.safetensors", s + 1, (size_t)(unsigned char)s[0]);
}

static int setup_truncated_data(const char *dir, const void *arg)
{
	char *p = qvl_path_join(dir, "model.safetensors");
	struct stat st;
	int rc;

	(void)arg;
	rc = write_config(dir, NULL, NULL) || write_micro(dir, "model.safetensors", NULL, NULL, 0);
	/* cut the last tensor short */
	rc = rc || !p || stat(p, &st) < 0 || truncate(p, st.st_size - 100) < 0;
	free(p);
	return rc;
}

#define T1 "\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}"
static const struct raw raw_past_end = {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[456],"
					"\"data_offsets\":[0,912]}}",
					800};
static const struct raw raw_begin_after_end = {
    "{\"a\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16};
static const struct raw raw_overlap = {
    "{" T1 ",\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[6,14]}}", 16};
static const struct raw raw_bytecount = {
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_shape_mismatch = {
    "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_too_many_dims = {
    "{\"a\":{\"dtype\":\"BF16\",\"shape\":[1,1,1,1,1,4],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_negative_dim = {
    "{\"a\":{\"dtype\":\"BF16\",\"shape\":[-4],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_absurd_dim = {
    "{\"a\":{\"dtype\":\"BF16\",\"shape\":[1000000000000],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_overflow = {
    "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_dtype = {
    "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_dtype_type = {
    "{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_not_utf8 = {
    "{\"a\xc3\x28\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_nul_name = {
    "{\"a\\u0000b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_empty_name = {
    "{\"\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_dup = {"{" T1 "," T1 "}", 16};
static const struct raw raw_offsets_form = {
    "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0]}}", 16};
static const struct raw raw_no_shape = {"{\"a\":{\"dtype\":\"BF16\",\"data_offsets\":[0,8]}}", 16};
static const struct raw raw_not_json = {"{\"a\":{\"dtype\":\"BF16\",", 16};
static const struct raw raw_array = {"[1,2,3]", 16};
static const struct raw raw_entry_type = {"{\"a\":[1]}", 16};
static const struct raw raw_metadata = {"{\"__metadata__\":5}", 16};
static const char bytes_short[] = "\x05"
				  "\x10\x00\x00\x00\x00";
static const char bytes_hlen_past_eof[] = "\x0c"
					  "\xe8\x03\x00\x00\x00\x00\x00\x00{}  ";
static const char bytes_hlen_absurd[] = "\x0c"
					"\x00\x00\x00\x00\x00\x01\x00\x00{}  ";
static const char bytes_hlen_zero[] = "\x0c"
				      "\x00\x00\x00\x00\x00\x00\x00\x00{}  ";

/* ---- model level: the micro model with one tensor changed -------------- */

static int setup_missing(const char *dir, const void *arg)
{
	return write_config(dir, NULL, NULL) || write_micro(dir, "model.safetensors", arg, NULL, 0);
}

static const struct qvl_tensor extra_tensor = {
    .name = "model.language_model.layers.0.self_attn.q_proj.bias",
    .dtype = QVL_DT_BF16,
    .ndim = 1,
    .shape = {8},
    .nelem = 8,
    .data = zeros,
    .nbytes = 16};
static const struct qvl_tensor visual_tensor = {.name = "model.visual.pos_embed.weight",
						.dtype = QVL_DT_F32,
						.ndim = 2,
						.shape = {4, 2},
						.nelem = 8,
						.data = zeros,
						.nbytes = 32};
static const struct qvl_tensor wrong_shape = {.name = "model.language_model.norm.weight",
					      .dtype = QVL_DT_F16,
					      .ndim = 1,
					      .shape = {4},
					      .nelem = 4,
					      .data = zeros,
					      .nbytes = 8};
static const struct qvl_tensor lm_head_bad = {.name = "lm_head.weight",
					      .dtype = QVL_DT_BF16,
					      .ndim = 2,
					      .shape = {8, 16},
					      .nelem = 128,
					      .data = zeros,
					      .nbytes = 256};

static const struct qvl_tensor lm_head_ok = {.name = "lm_head.weight",
					     .dtype = QVL_DT_BF16,
					     .ndim = 2,
					     .shape = {16, 8},
					     .nelem = 128,
					     .data = zeros,
					     .nbytes = 256};

static int setup_extra(const char *dir, const void *arg)
{
	return write_config(dir, NULL, NULL) || write_micro(dir, "model.safetensors", NULL, arg, 1);
}

static int setup_wrong_shape(const char *dir, const void *arg)
{
	return write_config(dir, NULL, NULL) ||
	       write_micro(dir, "model.safetensors", wrong_shape.name, arg, 1);
}

static int setup_untied_no_lm_head(const char *dir, const void *arg)
{
	(void)arg;
	return write_config(dir, "\"tie_word_embeddings\":true", "\"tie_word_embeddings\":false") ||
	       write_micro(dir, "model.safetensors", NULL, NULL, 0);
}

static int setup_no_weights(const char *dir, const void *arg)
{
	(void)arg;
	return write_config(dir, NULL, NULL);
}

static int setup_no_config(const char *dir, const void *arg)
{
	(void)arg;
	return write_micro(dir, "model.safetensors", NULL, NULL, 0);
}

/* ---- sharded ------------------------------------------------------------ */

/* Two shards: norm.weight alone in shard 2, the rest in shard 1; `arg`
 * selects the breakage. */
static int setup_shards(const char *dir, const void *arg)
{
	const char *how = arg, *norm = "model.language_model.norm.weight";
	struct tu_buf idx = {0};
	int rc;

	rc = write_config(dir, NULL, NULL);
	rc = rc || write_micro(dir, "s1.safetensors", !strcmp(how, "dup") ? NULL : norm, NULL, 0);
	if (!rc && strcmp(how, "missing-file")) {
		const struct qvl_tensor n = {.name = !strcmp(how, "absent") ? "x.weight" : norm,
					     .dtype = QVL_DT_BF16,
					     .ndim = 1,
					     .shape = {8},
					     .nelem = 8,
					     .data = zeros,
					     .nbytes = 16};
		const struct qvl_tensor *pn = &n;

		rc = tu_write_st(dir, "s2.safetensors", &pn, 1);
	}
	tu_printf(&idx, "{\"weight_map\":{");
	for (size_t i = 0; i < NMICRO; i++)
		tu_printf(&idx, "%s\"%s\":\"%s\"", i ? "," : "", micro[i].name,
			  !strcmp(micro[i].name, norm)
			      ? (!strcmp(how, "escape") ? "../s2.safetensors" : "s2.safetensors")
			      : "s1.safetensors");
	if (!strcmp(how, "lacks"))
		tu_printf(&idx, ",\"extra.weight\":\"s2.safetensors\"");
	if (!strcmp(how, "unlisted"))
		tu_printf(&idx, ",\"model.language_model.layers.0.mlp.up_proj.weight\":\"s2."
				"safetensors\"");
	tu_printf(&idx, "}}");
	rc = rc || tu_write_str(dir, "model.safetensors.index.json", idx.p);
	free(idx.p);
	return rc;
}

/* ---- config.json --------------------------------------------------------- */

struct edit {
	const char *from, *to;
};

static int setup_config(const char *dir, const void *arg)
{
	const struct edit *e = arg;

	return write_config(dir, e->from, e->to) ||
	       write_micro(dir, "model.safetensors", NULL, NULL, 0);
}

static int setup_config_text(const char *dir, const void *arg)
{
	return tu_write_str(dir, "config.json", arg) ||
	       write_micro(dir, "model.safetensors", NULL, NULL, 0);
}

static int setup_side(const char *dir, const void *arg)
{
	const char *const *f = arg; /* file name, contents */

	return write_config(dir, NULL, NULL) ||
	       write_micro(dir, "model.safetensors", NULL, NULL, 0) ||
	       tu_write_str(dir, f[0], f[1]);
}

static const struct edit e_missing = {"\"hidden_size\":8,", ""};
static const struct edit e_type = {"\"hidden_size\":8", "\"hidden_size\":\"8\""};
static const struct edit e_float = {"\"hidden_size\":8", "\"hidden_size\":8.5"};
static const struct edit e_arch = {"Qwen3VLForConditionalGeneration", "LlamaForCausalLM"};
static const struct edit e_layers = {"\"num_hidden_layers\":1", "\"num_hidden_layers\":100000"};
static const struct edit e_vocab = {"\"vocab_size\":16", "\"vocab_size\":99999999"};
static const struct edit e_kv = {"\"num_key_value_heads\":1", "\"num_key_value_heads\":3"};
static const struct edit e_heads_div = {"\"num_attention_heads\":2,\"num_key_value_heads\":1",
					"\"num_attention_heads\":3,\"num_key_value_heads\":2"};
static const struct edit e_mrope = {"[1,1,0]", "[2,1,0]"};
static const struct edit e_mrope_len = {"[1,1,0]", "[1,1]"};
static const struct edit e_rope_type = {"\"rope_type\":\"default\"", "\"rope_type\":\"yarn\""};
static const struct edit e_no_text = {"\"text_config\"", "\"txt_config\""};
static const struct edit e_bias = {"\"head_dim\":4", "\"head_dim\":4,\"attention_bias\":true"};
static const struct edit e_theta = {"\"rope_theta\":10000", "\"rope_theta\":-1"};
static const struct edit e_eps = {"\"rms_norm_eps\":1e-06", "\"rms_norm_eps\":0"};
static const struct edit e_huge_int = {"\"head_dim\":4", "\"head_dim\":99999999999999999999"};
static const struct edit e_vision_out = {
    "\"tie_word_embeddings\":true,",
    "\"tie_word_embeddings\":true,\"vision_config\":{\"depth\":2,\"hidden_size\":8,"
    "\"intermediate_size\":8,\"num_heads\":2,\"out_hidden_size\":16,"
    "\"num_position_embeddings\":16,\"deepstack_visual_indexes\":[1]},"
    "\"image_token_id\":3,\"video_token_id\":4,\"vision_start_token_id\":5,"
    "\"vision_end_token_id\":6,"};
static const struct edit e_deepstack = {
    "\"tie_word_embeddings\":true,",
    "\"tie_word_embeddings\":true,\"vision_config\":{\"depth\":2,\"hidden_size\":8,"
    "\"intermediate_size\":8,\"num_heads\":2,\"out_hidden_size\":8,"
    "\"num_position_embeddings\":16,\"deepstack_visual_indexes\":[2]},"
    "\"image_token_id\":3,\"video_token_id\":4,\"vision_start_token_id\":5,"
    "\"vision_end_token_id\":6,"};
static const struct edit e_vision_token = {
    "\"tie_word_embeddings\":true,",
    "\"tie_word_embeddings\":true,\"vision_config\":{\"depth\":2,\"hidden_size\":8,"
    "\"intermediate_size\":8,\"num_heads\":2,\"out_hidden_size\":8,"
    "\"num_position_embeddings\":16,\"deepstack_visual_indexes\":[1]},"};
static const struct edit e_vision_missing = {
    "\"tie_word_embeddings\":true,",
    "\"tie_word_embeddings\":true,\"vision_config\":{\"depth\":2,\"hidden_size\":8,"
    "\"intermediate_size\":8,\"num_heads\":2,\"out_hidden_size\":8,"
    "\"deepstack_visual_indexes\":[1]},"};
static const char *const gen_bad_eos[] = {"generation_config.json", "{\"eos_token_id\":[2,\"x\"]}"};
static const char *const gen_bad_top_p[] = {"generation_config.json", "{\"top_p\":1.5}"};
static const char *const gen_not_json[] = {"generation_config.json", "{eos:1}"};
static const char *const pp_bad[] = {"preprocessor_config.json",
				     "{\"min_pixels\":100,\"max_pixels\":10}"};
static const char *const pp_mean[] = {"preprocessor_config.json", "{\"image_mean\":[0.5,0.5]}"};

static const struct bad_case cases[] = {
    /* safetensors framing */
    {"file shorter than 8 bytes", setup_bytes, bytes_short, -EBADMSG, "model.safetensors",
     "too short"},
    {"header length past EOF", setup_bytes, bytes_hlen_past_eof, -EBADMSG, "model.safetensors",
     "header length 1000 past end of file (12 bytes)"},
    {"absurd header length", setup_bytes, bytes_hlen_absurd, -EBADMSG, "model.safetensors",
     "is absurd"},
    {"zero header length", setup_bytes, bytes_hlen_zero, -EBADMSG, "model.safetensors",
     "header length is 0"},
    {"header not JSON", setup_raw, &raw_not_json, -EBADMSG, "model.safetensors: header",
     "invalid JSON"},
    {"header not an object", setup_raw, &raw_array, -EBADMSG, "model.safetensors",
     "header is not a JSON object (got array)"},
    {"entry not an object", setup_raw, &raw_entry_type, -EBADMSG, "model.safetensors",
     "tensor 'a': entry is not an object (got array)"},
    {"__metadata__ not an object", setup_raw, &raw_metadata, -EBADMSG, "model.safetensors",
     "__metadata__"},
    /* entries */
    {"offsets past end of data", setup_raw, &raw_past_end, -EBADMSG, "model.safetensors",
     "tensor 'a': data_offsets [0, 912] past end of data (800 bytes)"},
    {"data truncated", setup_truncated_data, NULL, -EBADMSG, "model.safetensors",
     "past end of data"},
    {"begin after end", setup_raw, &raw_begin_after_end, -EBADMSG, "model.safetensors",
     "begin is after end"},
    {"overlapping tensors", setup_raw, &raw_overlap, -EBADMSG, "model.safetensors",
     "tensor 'b' [6, 14) overlaps tensor 'a' [0, 8)"},
    {"byte count vs dtype", setup_raw, &raw_bytecount, -EBADMSG, "model.safetensors",
     "hold 8 bytes but F32 shape needs 4 elements x 4 = 16 bytes"},
    {"byte count vs shape", setup_raw, &raw_shape_mismatch, -EBADMSG, "model.safetensors",
     "needs 6 elements"},
    {"more than 5 dims", setup_raw, &raw_too_many_dims, -EBADMSG, "model.safetensors",
     "shape has 6 dimensions"},
    {"negative dim", setup_raw, &raw_negative_dim, -EBADMSG, "model.safetensors",
     "shape[0] is not a non-negative integer"},
    {"absurd dim", setup_raw, &raw_absurd_dim, -EBADMSG, "model.safetensors",
     "shape[0] = 1000000000000 is absurd"},
    {"element count overflow", setup_raw, &raw_overflow, -EOVERFLOW, "model.safetensors",
     "overflows"},
    {"unsupported dtype", setup_raw, &raw_dtype, -ENOTSUP, "model.safetensors",
     "tensor 'a': unsupported dtype 'F64'"},
    {"dtype not a string", setup_raw, &raw_dtype_type, -EBADMSG, "model.safetensors",
     "dtype is not a string (got number)"},
    {"non-UTF-8 name", setup_raw, &raw_not_utf8, -EBADMSG, "model.safetensors", "not valid UTF-8"},
    {"NUL in name", setup_raw, &raw_nul_name, -EBADMSG, "model.safetensors", "name contains a NUL"},
    {"empty name", setup_raw, &raw_empty_name, -EBADMSG, "model.safetensors", "empty name"},
    {"duplicate name in a header", setup_raw, &raw_dup, -EBADMSG, "model.safetensors",
     "tensor 'a' is listed twice"},
    {"data_offsets not two ints", setup_raw, &raw_offsets_form, -EBADMSG, "model.safetensors",
     "data_offsets is not two non-negative integers"},
    {"no shape", setup_raw, &raw_no_shape, -EBADMSG, "model.safetensors", "no shape"},
    /* tensor table against the config */
    {"missing tensor", setup_missing, "model.language_model.layers.0.self_attn.k_norm.weight",
     -ENOENT, "", "missing tensor 'model.language_model.layers.0.self_attn.k_norm.weight'"},
    {"unexpected tensor", setup_extra, &extra_tensor, -EBADMSG, "model.safetensors",
     "unexpected tensor 'model.language_model.layers.0.self_attn.q_proj.bias'"},
    {"vision tensor without vision_config", setup_extra, &visual_tensor, -EBADMSG,
     "model.safetensors", "in a model without vision_config"},
    {"wrong shape", setup_wrong_shape, &wrong_shape, -EBADMSG, "model.safetensors",
     "tensor 'model.language_model.norm.weight': shape [4], but the config implies [8]"},
    {"tied lm_head of the wrong shape", setup_extra, &lm_head_bad, -EBADMSG, "model.safetensors",
     "tensor 'lm_head.weight': shape [8,16]"},
    {"untied without lm_head", setup_untied_no_lm_head, NULL, -ENOENT, "",
     "missing tensor 'lm_head.weight'"},
    {"no weights", setup_no_weights, NULL, -ENOENT, "",
     "no model.safetensors and no model.safetensors.index.json"},
    {"no config.json", setup_no_config, NULL, -ENOENT, "", "no config.json"},
    /* shards */
    {"shard holds a tensor the index does not map", setup_shards, "absent", -EBADMSG,
     "s2.safetensors", "tensor 'x.weight' is not mapped to this file"},
    {"shard holds a tensor twice over", setup_shards, "dup", -EBADMSG, "s1.safetensors",
     "tensor 'model.language_model.norm.weight' is not mapped to this file"},
    {"index lists a tensor twice", setup_shards, "unlisted", -EBADMSG,
     "model.safetensors.index.json", "weight_map lists tensor"},
    {"index maps a tensor to a shard without it", setup_shards, "lacks", -EBADMSG, "s2.safetensors",
     "missing tensor 'extra.weight' (model.safetensors.index.json maps it to this file)"},
    {"shard file missing", setup_shards, "missing-file", -ENOENT, "s2.safetensors", "cannot open"},
    {"shard outside the directory", setup_shards, "escape", -EBADMSG,
     "model.safetensors.index.json", "expected a file name in the model directory"},
    /* config.json */
    {"config not JSON", setup_config_text, "{\"architectures\": [", -EINVAL, "config.json",
     "invalid JSON"},
    {"config not an object", setup_config_text, "[]", -EINVAL, "config.json",
     "expected a JSON object"},
    {"missing key", setup_config, &e_missing, -EINVAL, "config.json",
     "missing required key text_config.hidden_size"},
    {"missing text_config", setup_config, &e_no_text, -EINVAL, "config.json",
     "missing required key text_config"},
    {"wrong type", setup_config, &e_type, -EINVAL, "config.json",
     "text_config.hidden_size: expected an integer, got string"},
    {"fraction for an integer", setup_config, &e_float, -EINVAL, "config.json",
     "text_config.hidden_size: 8.5 is not a 64-bit integer"},
    {"huge integer", setup_config, &e_huge_int, -EINVAL, "config.json",
     "text_config.head_dim: 99999999999999999999"},
    {"unknown architecture", setup_config, &e_arch, -ENOTSUP, "config.json",
     "unknown architecture 'LlamaForCausalLM'"},
    {"absurd layer count", setup_config, &e_layers, -EINVAL, "config.json",
     "text_config.num_hidden_layers: 100000 out of range [1, 1024]"},
    {"absurd vocab", setup_config, &e_vocab, -EINVAL, "config.json",
     "text_config.vocab_size: 99999999 out of range"},
    {"kv heads above heads", setup_config, &e_kv, -EINVAL, "config.json",
     "text_config.num_key_value_heads: 3 out of range [1, 2]"},
    {"heads not a multiple of kv heads", setup_config, &e_heads_div, -EINVAL, "config.json",
     "num_attention_heads 3 is not a multiple of num_key_value_heads 2"},
    {"mrope sum", setup_config, &e_mrope, -EINVAL, "config.json",
     "mrope_section [2, 1, 0] sums to 3, not head_dim / 2 = 2"},
    {"mrope length", setup_config, &e_mrope_len, -EINVAL, "config.json",
     "mrope_section: 2 elements, expected 3"},
    {"rope type", setup_config, &e_rope_type, -ENOTSUP, "config.json",
     "rope_scaling.rope_type: 'yarn' is not supported"},
    {"attention bias", setup_config, &e_bias, -ENOTSUP, "config.json",
     "text_config.attention_bias: true is not supported"},
    {"negative rope theta", setup_config, &e_theta, -EINVAL, "config.json",
     "rope_theta: -1 out of range"},
    {"zero eps", setup_config, &e_eps, -EINVAL, "config.json",
     "text_config.rms_norm_eps: 0 out of range"},
    {"vision out_hidden_size", setup_config, &e_vision_out, -EINVAL, "config.json",
     "vision_config.out_hidden_size 16 differs from text_config.hidden_size 8"},
    {"deepstack index past depth", setup_config, &e_deepstack, -EINVAL, "config.json",
     "deepstack_visual_indexes[0]: 2 out of range [0, 2)"},
    {"image token outside vocab", setup_config, &e_vision_token, -EINVAL, "config.json",
     "image_token_id: 151655 out of range [0, 15]"},
    {"vision key missing", setup_config, &e_vision_missing, -EINVAL, "config.json",
     "missing required key vision_config.num_position_embeddings"},
    /* side files */
    {"eos list with a string", setup_side, gen_bad_eos, -EINVAL, "generation_config.json",
     "eos_token_id[1]: expected an integer"},
    {"top_p above 1", setup_side, gen_bad_top_p, -EINVAL, "generation_config.json",
     "top_p: 1.5 out of range"},
    {"generation config not JSON", setup_side, gen_not_json, -EINVAL, "generation_config.json",
     "invalid JSON"},
    {"max_pixels below min_pixels", setup_side, pp_bad, -EINVAL, "preprocessor_config.json",
     "max_pixels: 10 out of range [100,"},
    {"image_mean of 2", setup_side, pp_mean, -EINVAL, "preprocessor_config.json",
     "image_mean: expected an array of 3 numbers"},
};

static void run_case(const struct bad_case *c)
{
	char *dir = tu_tmpdir("bad");
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	int rc;

	if (!dir || c->setup(dir, c->arg)) {
		ok(0, "%s: setup", c->what);
		ok(0, "%s: message", c->what);
		goto out;
	}
	rc = qvl_model_open(&m, dir, NULL, &err);
	if (!ok(rc == c->code && !m, "%s: fails with %s", c->what, qvl_strerror(c->code)))
		diag("rc %d (%s): %s", rc, qvl_strerror(rc), err.msg);
	if (!ok(strstr(err.msg, c->file) && strstr(err.msg, c->problem) &&
		    strstr(err.msg, strrchr(dir, '/') + 1),
		"%s: message names the file and the problem", c->what))
		diag("got: %s\nwant: %s ... %s", err.msg, c->file, c->problem);
	qvl_model_close(m);
out:
	if (dir)
		tu_rmtree(dir);
	free(dir);
}

/* The micro model with one extra space in the header: data starts at an
 * odd offset. */
static int write_misaligned(const char *dir)
{
	char *p = qvl_path_join(dir, "model.safetensors"), *buf = NULL, *out;
	struct qvl_err err;
	uint64_t n;
	size_t len;
	int rc;

	rc = !p || write_config(dir, NULL, NULL) ||
	     write_micro(dir, "model.safetensors", NULL, NULL, 0) ||
	     qvl_read_file(p, 1 << 20, &buf, &len, &err);
	free(p);
	if (rc)
		return -1;
	memcpy(&n, buf, 8);
	out = malloc(len + 1);
	if (!out) {
		free(buf);
		return -1;
	}
	n++;
	memcpy(out, &n, 8);
	memcpy(out + 8, buf + 8, n - 1);
	out[7 + n] = ' ';
	memcpy(out + 8 + n, buf + 7 + n, len - 7 - n);
	rc = tu_write(dir, "model.safetensors", out, len + 1);
	free(out);
	free(buf);
	return rc;
}

/* The valid micro model and its variants open: the cases above fail for
 * the reason they name, not because the base is broken. */
static void check_base(void)
{
	static const struct edit v5 = {"\"rope_theta\":10000,\"rope_scaling\"",
				       "\"rope_parameters\""};
	static const char *const gen_int_eos[] = {"generation_config.json",
						  "{\"eos_token_id\":3,\"top_k\":0}"};
	static const char *const pp_old[] = {"preprocessor_config.json",
					     "{\"min_pixels\":3136,\"max_pixels\":12845056}"};
	char *dir = tu_tmpdir("good");
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	bool aligned;
	int rc;

	rc = !dir || write_config(dir, NULL, NULL) ||
	     write_micro(dir, "model.safetensors", NULL, NULL, 0);
	rc = rc ? -1 : qvl_model_open(&m, dir, NULL, &err);
	if (!ok(rc == 0 && m && m->ntensors == NMICRO, "micro model opens (%zu tensors)", NMICRO))
		diag("%s", err.msg);
	qvl_model_close(m);
	m = NULL;
	/* transformers 5.x: rope in rope_parameters, theta default 500000 */
	rc = dir && !write_config(dir, v5.from, v5.to) ? qvl_model_open(&m, dir, NULL, &err) : -1;
	if (!ok(rc == 0 && m && m->config.text.rope_theta == 500000.0 &&
		    m->config.text.mrope_section[1] == 1,
		"rope_parameters without rope_theta: 5.x default 500000"))
		diag("%s", err.msg);
	qvl_model_close(m);
	m = NULL;
	rc = dir && !setup_side(dir, gen_int_eos) ? qvl_model_open(&m, dir, NULL, &err) : -1;
	ok(rc == 0 && m && m->gen.n_eos == 1 && m->gen.eos_token_ids[0] == 3 && m->gen.top_k == 0,
	   "eos_token_id as a single integer");
	qvl_model_close(m);
	m = NULL;
	rc = dir && !setup_side(dir, pp_old) ? qvl_model_open(&m, dir, NULL, &err) : -1;
	ok(rc == 0 && m && m->preproc.min_pixels == 3136 && m->preproc.max_pixels == 12845056,
	   "min_pixels/max_pixels keys");
	qvl_model_close(m);
	m = NULL;
	/* untied: lm_head.weight required and read */
	rc = dir &&
		     !write_config(dir, "\"tie_word_embeddings\":true",
				   "\"tie_word_embeddings\":false") &&
		     !write_micro(dir, "model.safetensors", NULL, &lm_head_ok, 1)
		 ? qvl_model_open(&m, dir, NULL, &err)
		 : -1;
	if (!ok(rc == 0 && m && !m->config.text.tie_word_embeddings &&
		    qvl_model_find(m, "lm_head.weight"),
		"untied model with lm_head.weight opens"))
		diag("%s", err.msg);
	qvl_model_close(m);
	m = NULL;
	/* an odd header length leaves every tensor misaligned: aligned copies */
	rc = dir ? write_misaligned(dir) : -1;
	rc = rc ? -1 : qvl_model_open(&m, dir, NULL, &err);
	aligned = rc == 0 && m && m->nowned == NMICRO;
	for (size_t i = 0; aligned && i < m->ntensors; i++)
		aligned = (uintptr_t)m->tensors[i].data % 64 == 0;
	ok(aligned, "misaligned tensors get aligned copies");
	qvl_model_close(m);
	m = NULL;
	/* the model path itself */
	rc = qvl_model_open(&m, "/nonexistent/model", NULL, &err);
	ok(rc == -ENOENT && strstr(err.msg, "/nonexistent/model"), "missing path: ENOENT");
	rc = dir && !write_config(dir, NULL, NULL) ? 0 : -1;
	if (!rc) {
		char *cfg = qvl_path_join(dir, "config.json");

		rc = cfg ? qvl_model_open(&m, cfg, NULL, &err) : -1;
		free(cfg);
	}
	ok(rc == -EINVAL && strstr(err.msg, "named by its directory"),
	   "config.json instead of its directory: EINVAL with a hint");
	rc = qvl_model_open(&m, "/dev/null", NULL, &err);
	ok(rc == -EINVAL && strstr(err.msg, "not a model"), "not a model: EINVAL");
	rc = dir ? qvl_model_open(&m, dir, "x.gguf", &err) : -1;
	ok(rc == -EINVAL && strstr(err.msg, "--mmproj only applies to GGUF"),
	   "--mmproj with an HF directory refused");
	if (dir)
		tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	check_base();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	return done_testing();
}
