/* config.json, generation_config.json and preprocessor_config.json of a
 * Hugging Face Qwen3-VL directory (qwen3-vl.md §1.2-§1.4). Types are checked
 * here, with the key path in every message; the bounds live in one place,
 * qvl_config_validate(), so the GGUF reader shares them. */
#include "config_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

#define QVL_ARCH "Qwen3VLForConditionalGeneration"

struct cj {
	const struct json_doc *doc;
	const char *what;
	struct qvl_err *err;
};

static const char *cj_path(char *buf, size_t cap, const char *obj, const char *key)
{
	snprintf(buf, cap, "%s%s%s", obj, *obj ? "." : "", key);
	return buf;
}

static int cj_type_err(struct cj *j, const char *obj, const char *key, uint32_t t, const char *want)
{
	char p[128];

	return qvl_errf(j->err, -EINVAL, "%s: %s: expected %s, got %s", j->what,
			cj_path(p, sizeof(p), obj, key), want, json_type_name(j->doc->tok[t].type));
}

static int cj_missing(struct cj *j, const char *obj, const char *key)
{
	char p[128];

	return qvl_errf(j->err, -EINVAL, "%s: missing required key %s", j->what,
			cj_path(p, sizeof(p), obj, key));
}

/* Look up a number: 1 if absent and not required, else 0 with *iv (integer)
 * or *dv set, or a negative errno. */
static int cj_number(struct cj *j, uint32_t o, const char *obj, const char *key, bool required,
		     int64_t *iv, double *dv)
{
	uint32_t t = json_get(j->doc, o, key);
	char p[128];
	int rc;

	if (t == JSON_NONE)
		return required ? cj_missing(j, obj, key) : 1;
	if (j->doc->tok[t].type != JSON_NUMBER)
		return cj_type_err(j, obj, key, t, iv ? "an integer" : "a number");
	rc = iv ? json_int64(j->doc, t, iv) : json_double(j->doc, t, dv);
	if (rc < 0)
		return qvl_errf(j->err, -EINVAL, "%s: %s: %.*s is not %s", j->what,
				cj_path(p, sizeof(p), obj, key), (int)j->doc->tok[t].len,
				j->doc->text + j->doc->tok[t].start,
				iv ? "a 64-bit integer" : "a finite number");
	return 0;
}

/* An integer that fits in int; absent keys take `def` unless required. */
static int cj_int(struct cj *j, uint32_t o, const char *obj, const char *key, bool required,
		  int def, int *out)
{
	int64_t v;
	char p[128];
	int rc = cj_number(j, o, obj, key, required, &v, NULL);

	if (rc)
		return rc < 0 ? rc : (*out = def, 0);
	if (v < INT32_MIN || v > INT32_MAX)
		return qvl_errf(j->err, -EINVAL, "%s: %s: %" PRId64 " is out of range", j->what,
				cj_path(p, sizeof(p), obj, key), v);
	*out = (int)v;
	return 0;
}

static int cj_i64(struct cj *j, uint32_t o, const char *obj, const char *key, int64_t def,
		  int64_t *out)
{
	int rc = cj_number(j, o, obj, key, false, out, NULL);

	return rc < 0 ? rc : (rc ? (*out = def, 0) : 0);
}

static int cj_double(struct cj *j, uint32_t o, const char *obj, const char *key, double def,
		     double *out)
{
	int rc = cj_number(j, o, obj, key, false, NULL, out);

	return rc < 0 ? rc : (rc ? (*out = def, 0) : 0);
}

/* A token id: an integer, null (-1), or a list whose first element is used. */
static int cj_token(struct cj *j, uint32_t o, const char *obj, const char *key, int def, int *out)
{
	uint32_t t = json_get(j->doc, o, key);

	if (t != JSON_NONE && j->doc->tok[t].type == JSON_NULL) {
		*out = -1;
		return 0;
	}
	if (t != JSON_NONE && j->doc->tok[t].type == JSON_ARRAY) {
		uint32_t e = json_at(j->doc, t, 0);
		int64_t v;

		if (e == JSON_NONE) {
			*out = -1;
			return 0;
		}
		if (json_int64(j->doc, e, &v) < 0 || v < 0 || v > INT32_MAX)
			return cj_type_err(j, obj, key, e, "a token id");
		*out = (int)v;
		return 0;
	}
	return cj_int(j, o, obj, key, false, def, out);
}

static int cj_bool(struct cj *j, uint32_t o, const char *obj, const char *key, bool def, bool *out)
{
	uint32_t t = json_get(j->doc, o, key);

	if (t == JSON_NONE) {
		*out = def;
		return 0;
	}
	if (json_bool(j->doc, t, out) < 0)
		return cj_type_err(j, obj, key, t, "true or false");
	return 0;
}

/* An object, or JSON_NONE when absent or null. */
static int cj_object(struct cj *j, uint32_t o, const char *obj, const char *key, uint32_t *out)
{
	uint32_t t = json_get(j->doc, o, key);

	*out = JSON_NONE;
	if (t == JSON_NONE || j->doc->tok[t].type == JSON_NULL)
		return 0;
	if (j->doc->tok[t].type != JSON_OBJECT)
		return cj_type_err(j, obj, key, t, "an object");
	*out = t;
	return 0;
}

/* An array of up to `max` integers. */
static int cj_int_array(struct cj *j, uint32_t t, const char *obj, const char *key, int max,
			int *vals, int *n)
{
	char p[128];
	uint32_t e;

	if (j->doc->tok[t].type != JSON_ARRAY)
		return cj_type_err(j, obj, key, t, "an array of integers");
	if (j->doc->tok[t].count > (uint32_t)max)
		return qvl_errf(j->err, -EINVAL, "%s: %s: %u elements, at most %d", j->what,
				cj_path(p, sizeof(p), obj, key), j->doc->tok[t].count, max);
	*n = (int)j->doc->tok[t].count;
	e = t + 1;
	for (int i = 0; i < *n; i++, e = j->doc->tok[e].end) {
		int64_t v;

		if (json_int64(j->doc, e, &v) < 0 || v < INT32_MIN || v > INT32_MAX)
			return qvl_errf(j->err, -EINVAL, "%s: %s[%d]: expected an integer", j->what,
					cj_path(p, sizeof(p), obj, key), i);
		vals[i] = (int)v;
	}
	return 0;
}

/* A string key that must have one of the given values when present. */
static int cj_expect_str(struct cj *j, uint32_t o, const char *obj, const char *key,
			 const char *const *allowed)
{
	uint32_t t = json_get(j->doc, o, key);
	char p[128], buf[64];
	long n;

	if (t == JSON_NONE || j->doc->tok[t].type == JSON_NULL)
		return 0;
	n = json_str(j->doc, t, buf, sizeof(buf));
	if (n < 0)
		return cj_type_err(j, obj, key, t, "a string");
	for (int i = 0; allowed[i]; i++)
		if ((size_t)n == strlen(allowed[i]) && !strcmp(buf, allowed[i]))
			return 0;
	return qvl_errf(j->err, -ENOTSUP, "%s: %s: '%.40s' is not supported (qvl expects '%s')",
			j->what, cj_path(p, sizeof(p), obj, key), buf, allowed[0]);
}

static int cj_architecture(struct cj *j, struct qvl_config *c)
{
	static const char *const mt_ok[] = {"qwen3_vl", NULL};
	uint32_t archs = json_get(j->doc, 0, "architectures");
	uint32_t a0;
	char buf[64];
	long n;

	if (archs == JSON_NONE) {
		/* Some exporters drop architectures; model_type alone identifies it. */
		if (json_get(j->doc, 0, "model_type") == JSON_NONE)
			return cj_missing(j, "", "architectures");
		if (cj_expect_str(j, 0, "", "model_type", mt_ok))
			return -EINVAL;
		snprintf(c->architecture, sizeof(c->architecture), "%s", QVL_ARCH);
		return 0;
	}
	if (j->doc->tok[archs].type != JSON_ARRAY || j->doc->tok[archs].count == 0)
		return qvl_errf(j->err, -EINVAL,
				"%s: architectures: expected a non-empty array of strings",
				j->what);
	a0 = archs + 1;
	n = json_str(j->doc, a0, buf, sizeof(buf));
	if (n < 0)
		return cj_type_err(j, "", "architectures[0]", a0, "a string");
	if ((size_t)n != strlen(QVL_ARCH) || strcmp(buf, QVL_ARCH))
		return qvl_errf(j->err, -ENOTSUP,
				"%s: architectures[0]: unknown architecture '%.60s' (qvl reads %s)",
				j->what, buf, QVL_ARCH);
	snprintf(c->architecture, sizeof(c->architecture), "%s", buf);
	return 0;
}

static int cj_rope(struct cj *j, uint32_t tc, struct qvl_text_config *t)
{
	static const char *const rope_ok[] = {"default", "mrope", NULL};
	uint32_t params, scaling, rope, ms;
	const char *rname;
	int n = 0, rc;
	/* transformers 5.x keeps rope settings in rope_parameters, 4.x in
	 * rope_scaling (+ rope_theta beside it); the class defaults differ. */
	rc = cj_object(j, tc, "text_config", "rope_parameters", &params);
	if (!rc)
		rc = cj_object(j, tc, "text_config", "rope_scaling", &scaling);
	if (rc)
		return rc;
	rope = params != JSON_NONE ? params : scaling;
	rname = params != JSON_NONE ? "text_config.rope_parameters" : "text_config.rope_scaling";
	if (json_get(j->doc, tc, "rope_theta") != JSON_NONE || rope == JSON_NONE)
		rc = cj_double(j, tc, "text_config", "rope_theta",
			       params != JSON_NONE ? 500000.0 : 5000000.0, &t->rope_theta);
	else
		rc = cj_double(j, rope, rname, "rope_theta",
			       params != JSON_NONE ? 500000.0 : 5000000.0, &t->rope_theta);
	if (rc)
		return rc;
	t->mrope_section[0] = 24;
	t->mrope_section[1] = 20;
	t->mrope_section[2] = 20;
	if (rope == JSON_NONE)
		return 0;
	/* Qwen2-VL era files spell it "type" */
	rc = cj_expect_str(j, rope, rname, "rope_type", rope_ok);
	if (!rc)
		rc = cj_expect_str(j, rope, rname, "type", rope_ok);
	if (rc)
		return rc;
	ms = json_get(j->doc, rope, "mrope_section");
	if (ms == JSON_NONE)
		return 0;
	rc = cj_int_array(j, ms, rname, "mrope_section", 3, t->mrope_section, &n);
	if (!rc && n != 3)
		rc = qvl_errf(j->err, -EINVAL, "%s: %s.mrope_section: %d elements, expected 3",
			      j->what, rname, n);
	return rc;
}

static int cj_text(struct cj *j, uint32_t root, struct qvl_config *c)
{
	static const char *const act_ok[] = {"silu", NULL};
	struct qvl_text_config *t = &c->text;
	const char *o = "text_config";
	uint32_t tc;
	bool bias, tie_top;
	int rc;

	rc = cj_object(j, root, "", "text_config", &tc);
	if (rc)
		return rc;
	if (tc == JSON_NONE)
		return cj_missing(j, "", "text_config");
	if ((rc = cj_int(j, tc, o, "hidden_size", true, 0, &t->hidden_size)) ||
	    (rc = cj_int(j, tc, o, "num_hidden_layers", true, 0, &t->num_layers)) ||
	    (rc = cj_int(j, tc, o, "num_attention_heads", true, 0, &t->num_heads)) ||
	    (rc = cj_int(j, tc, o, "num_key_value_heads", true, 0, &t->num_kv_heads)) ||
	    (rc = cj_int(j, tc, o, "head_dim", true, 0, &t->head_dim)) ||
	    (rc = cj_int(j, tc, o, "intermediate_size", true, 0, &t->intermediate_size)) ||
	    (rc = cj_int(j, tc, o, "vocab_size", true, 0, &t->vocab_size)) ||
	    (rc = cj_i64(j, tc, o, "max_position_embeddings", 128000, &t->max_position)) ||
	    (rc = cj_double(j, tc, o, "rms_norm_eps", 1e-6, &t->rms_norm_eps)) ||
	    (rc = cj_token(j, tc, o, "bos_token_id", -1, &t->bos_token_id)) ||
	    (rc = cj_token(j, tc, o, "eos_token_id", -1, &t->eos_token_id)) ||
	    (rc = cj_bool(j, tc, o, "attention_bias", false, &bias)) ||
	    (rc = cj_expect_str(j, tc, o, "hidden_act", act_ok)) || (rc = cj_rope(j, tc, t)))
		return rc;
	if (bias)
		return qvl_errf(
		    j->err, -ENOTSUP,
		    "%s: text_config.attention_bias: true is not supported (Qwen3-VL has "
		    "no attention bias)",
		    j->what);
	/* The top-level flag is what the model class reads; text_config's is a copy. */
	if ((rc = cj_bool(j, tc, o, "tie_word_embeddings", false, &tie_top)) ||
	    (rc = cj_bool(j, root, "", "tie_word_embeddings", tie_top, &t->tie_word_embeddings)))
		return rc;
	return 0;
}

static int cj_vision(struct cj *j, uint32_t root, struct qvl_config *c)
{
	static const char *const act_ok[] = {"gelu_pytorch_tanh", NULL};
	struct qvl_vision_config *v = &c->vision;
	const char *o = "vision_config";
	uint32_t vc, ds;
	int rc;

	rc = cj_object(j, root, "", "vision_config", &vc);
	if (rc || vc == JSON_NONE)
		return rc;
	v->present = true;
	v->layer_norm_eps = 1e-6; /* hard-coded in the modeling code, not in the config */
	if ((rc = cj_int(j, vc, o, "depth", true, 0, &v->depth)) ||
	    (rc = cj_int(j, vc, o, "hidden_size", true, 0, &v->hidden_size)) ||
	    (rc = cj_int(j, vc, o, "intermediate_size", true, 0, &v->intermediate_size)) ||
	    (rc = cj_int(j, vc, o, "num_heads", true, 0, &v->num_heads)) ||
	    (rc = cj_int(j, vc, o, "out_hidden_size", true, 0, &v->out_hidden_size)) ||
	    (rc = cj_int(j, vc, o, "num_position_embeddings", true, 0,
			 &v->num_position_embeddings)) ||
	    (rc = cj_int(j, vc, o, "patch_size", false, 16, &v->patch_size)) ||
	    (rc = cj_int(j, vc, o, "temporal_patch_size", false, 2, &v->temporal_patch_size)) ||
	    (rc = cj_int(j, vc, o, "spatial_merge_size", false, 2, &v->spatial_merge_size)) ||
	    (rc = cj_int(j, vc, o, "in_channels", false, 3, &v->in_channels)) ||
	    (rc = cj_expect_str(j, vc, o, "hidden_act", act_ok)))
		return rc;
	ds = json_get(j->doc, vc, "deepstack_visual_indexes");
	if (ds == JSON_NONE)
		return cj_missing(j, o, "deepstack_visual_indexes");
	return cj_int_array(j, ds, o, "deepstack_visual_indexes", QVL_MAX_DEEPSTACK,
			    v->deepstack_indexes, &v->n_deepstack);
}

static int cv_range(struct qvl_err *err, const char *what, const char *field, int64_t v, int64_t lo,
		    int64_t hi)
{
	if (v >= lo && v <= hi)
		return 0;
	return qvl_errf(err, -EINVAL, "%s: %s: %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]",
			what, field, v, lo, hi);
}

static int cv_vision(const struct qvl_config *c, const char *what, struct qvl_err *err)
{
	const struct qvl_vision_config *v = &c->vision;
	int64_t side;
	int rc;

	if ((rc = cv_range(err, what, "vision_config.depth", v->depth, 1, 256)) ||
	    (rc = cv_range(err, what, "vision_config.hidden_size", v->hidden_size, 1, 16384)) ||
	    (rc = cv_range(err, what, "vision_config.intermediate_size", v->intermediate_size, 1,
			   1 << 18)) ||
	    (rc = cv_range(err, what, "vision_config.num_heads", v->num_heads, 1, 1024)) ||
	    (rc = cv_range(err, what, "vision_config.patch_size", v->patch_size, 1, 64)) ||
	    (rc = cv_range(err, what, "vision_config.temporal_patch_size", v->temporal_patch_size,
			   1, 16)) ||
	    (rc = cv_range(err, what, "vision_config.spatial_merge_size", v->spatial_merge_size, 1,
			   16)) ||
	    (rc = cv_range(err, what, "vision_config.in_channels", v->in_channels, 1, 4)) ||
	    (rc = cv_range(err, what, "vision_config.num_position_embeddings",
			   v->num_position_embeddings, 1, 1 << 20)) ||
	    (rc = cv_range(err, what, "vision_config.n_deepstack", v->n_deepstack, 0,
			   QVL_MAX_DEEPSTACK)))
		return rc;
	/* 2-D RoPE splits each head's rotary half into a row and a column quarter */
	if (v->hidden_size % v->num_heads || (v->hidden_size / v->num_heads) % 4)
		return qvl_errf(err, -EINVAL,
				"%s: vision_config.hidden_size %d / num_heads %d must be a whole "
				"multiple of 4",
				what, v->hidden_size, v->num_heads);
	if (v->out_hidden_size != c->text.hidden_size)
		return qvl_errf(err, -EINVAL,
				"%s: vision_config.out_hidden_size %d differs from "
				"text_config.hidden_size %d",
				what, v->out_hidden_size, c->text.hidden_size);
	for (side = 1; side * side < v->num_position_embeddings; side++)
		;
	if (side * side != v->num_position_embeddings)
		return qvl_errf(err, -EINVAL,
				"%s: vision_config.num_position_embeddings %d is not a square",
				what, v->num_position_embeddings);
	if (v->n_deepstack > c->text.num_layers)
		return qvl_errf(
		    err, -EINVAL,
		    "%s: vision_config.deepstack_visual_indexes: %d taps but only %d text "
		    "layers",
		    what, v->n_deepstack, c->text.num_layers);
	for (int k = 0; k < v->n_deepstack; k++) {
		if (v->deepstack_indexes[k] < 0 || v->deepstack_indexes[k] >= v->depth)
			return qvl_errf(err, -EINVAL,
					"%s: vision_config.deepstack_visual_indexes[%d]: %d out of "
					"range [0, %d)",
					what, k, v->deepstack_indexes[k], v->depth);
		/* merger k must serve the k-th tap in block order (qwen3-vl.md §2.4) */
		if (k && v->deepstack_indexes[k] <= v->deepstack_indexes[k - 1])
			return qvl_errf(
			    err, -EINVAL,
			    "%s: vision_config.deepstack_visual_indexes must be strictly "
			    "increasing (%d after %d)",
			    what, v->deepstack_indexes[k], v->deepstack_indexes[k - 1]);
	}
	if ((rc = cv_range(err, what, "image_token_id", c->image_token_id, 0,
			   c->text.vocab_size - 1)) ||
	    (rc = cv_range(err, what, "video_token_id", c->video_token_id, 0,
			   c->text.vocab_size - 1)) ||
	    (rc = cv_range(err, what, "vision_start_token_id", c->vision_start_token_id, 0,
			   c->text.vocab_size - 1)) ||
	    (rc = cv_range(err, what, "vision_end_token_id", c->vision_end_token_id, 0,
			   c->text.vocab_size - 1)))
		return rc;
	return 0;
}

int qvl_config_validate(const struct qvl_config *c, const char *what, struct qvl_err *err)
{
	const struct qvl_text_config *t = &c->text;
	int64_t sum = 0;
	int rc;

	if ((rc = cv_range(err, what, "text_config.hidden_size", t->hidden_size, 1, 65536)) ||
	    (rc = cv_range(err, what, "text_config.num_hidden_layers", t->num_layers, 1, 1024)) ||
	    (rc = cv_range(err, what, "text_config.num_attention_heads", t->num_heads, 1, 1024)) ||
	    (rc = cv_range(err, what, "text_config.num_key_value_heads", t->num_kv_heads, 1,
			   t->num_heads)) ||
	    (rc = cv_range(err, what, "text_config.head_dim", t->head_dim, 2, 1024)) ||
	    (rc = cv_range(err, what, "text_config.intermediate_size", t->intermediate_size, 1,
			   1 << 20)) ||
	    (rc = cv_range(err, what, "text_config.vocab_size", t->vocab_size, 1, 4 << 20)) ||
	    (rc = cv_range(err, what, "text_config.max_position_embeddings", t->max_position, 1,
			   INT64_C(1) << 26)) ||
	    (rc = cv_range(err, what, "text_config.bos_token_id", t->bos_token_id, -1,
			   t->vocab_size - 1)) ||
	    (rc = cv_range(err, what, "text_config.eos_token_id", t->eos_token_id, -1,
			   t->vocab_size - 1)))
		return rc;
	if (t->num_heads % t->num_kv_heads)
		return qvl_errf(err, -EINVAL,
				"%s: text_config.num_attention_heads %d is not a multiple of "
				"num_key_value_heads %d",
				what, t->num_heads, t->num_kv_heads);
	if (t->head_dim % 2)
		return qvl_errf(err, -EINVAL, "%s: text_config.head_dim %d is odd", what,
				t->head_dim);
	if (!(t->rms_norm_eps > 0 && t->rms_norm_eps < 1))
		return qvl_errf(err, -EINVAL,
				"%s: text_config.rms_norm_eps: %g out of range (0, 1)", what,
				t->rms_norm_eps);
	if (!(t->rope_theta >= 1 && t->rope_theta <= 1e12))
		return qvl_errf(err, -EINVAL, "%s: rope_theta: %g out of range [1, 1e12]", what,
				t->rope_theta);
	for (int i = 0; i < 3; i++) {
		if (t->mrope_section[i] < 0 || t->mrope_section[i] > t->head_dim)
			return qvl_errf(err, -EINVAL, "%s: mrope_section[%d]: %d out of range",
					what, i, t->mrope_section[i]);
		sum += t->mrope_section[i];
	}
	if (sum != t->head_dim / 2)
		return qvl_errf(err, -EINVAL,
				"%s: mrope_section [%d, %d, %d] sums to %" PRId64
				", not head_dim / 2 = %d",
				what, t->mrope_section[0], t->mrope_section[1], t->mrope_section[2],
				sum, t->head_dim / 2);
	return c->vision.present ? cv_vision(c, what, err) : 0;
}

/* Parse a side file whose top level must be an object. */
static int cj_parse_object(struct json_doc *doc, const char *text, size_t len, const char *what,
			   struct qvl_err *err)
{
	int rc = json_parse(doc, text, len, what, err);

	if (rc < 0)
		return rc;
	if (doc->tok[0].type != JSON_OBJECT) {
		rc = qvl_errf(err, -EINVAL, "%s: expected a JSON object, got %s", what,
			      json_type_name(doc->tok[0].type));
		json_free(doc);
	}
	return rc;
}

int qvl_config_parse(struct qvl_config *c, const char *text, size_t len, const char *what,
		     struct qvl_err *err)
{
	struct json_doc doc = {0};
	struct cj j = {&doc, what, err};
	int rc;

	memset(c, 0, sizeof(*c));
	rc = cj_parse_object(&doc, text, len, what, err);
	if (rc < 0)
		return rc;
	/* Token id defaults are Qwen3VLConfig's. */
	if ((rc = cj_architecture(&j, c)) || (rc = cj_text(&j, 0, c)) ||
	    (rc = cj_vision(&j, 0, c)) ||
	    (rc = cj_int(&j, 0, "", "image_token_id", false, 151655, &c->image_token_id)) ||
	    (rc = cj_int(&j, 0, "", "video_token_id", false, 151656, &c->video_token_id)) ||
	    (rc = cj_int(&j, 0, "", "vision_start_token_id", false, 151652,
			 &c->vision_start_token_id)) ||
	    (rc = cj_int(&j, 0, "", "vision_end_token_id", false, 151653, &c->vision_end_token_id)))
		goto out;
	rc = qvl_config_validate(c, what, err);
out:
	json_free(&doc);
	return rc;
}

void qvl_gen_config_default(struct qvl_gen_config *g, const struct qvl_config *c)
{
	memset(g, 0, sizeof(*g));
	g->bos_token_id = c->text.bos_token_id;
	g->pad_token_id = -1;
	if (c->text.eos_token_id >= 0) {
		g->n_eos = 1;
		g->eos_token_ids[0] = c->text.eos_token_id;
	}
	g->temperature = 1.0;
	g->top_p = 1.0;
	g->top_k = 50;
	g->repetition_penalty = 1.0;
}

static int gen_eos(struct cj *j, const struct qvl_config *c, struct qvl_gen_config *g)
{
	uint32_t t = json_get(j->doc, 0, "eos_token_id");
	int rc;

	if (t == JSON_NONE || j->doc->tok[t].type == JSON_NULL)
		return 0;
	if (j->doc->tok[t].type == JSON_ARRAY) {
		rc = cj_int_array(j, t, "", "eos_token_id", 8, g->eos_token_ids, &g->n_eos);
	} else {
		g->n_eos = 1;
		rc = cj_int(j, 0, "", "eos_token_id", true, 0, &g->eos_token_ids[0]);
	}
	for (int i = 0; !rc && i < g->n_eos; i++)
		rc = cv_range(j->err, j->what, "eos_token_id", g->eos_token_ids[i], 0,
			      c->text.vocab_size - 1);
	return rc;
}

int qvl_gen_config_parse(struct qvl_gen_config *g, const struct qvl_config *c, const char *text,
			 size_t len, const char *what, struct qvl_err *err)
{
	struct json_doc doc = {0};
	struct cj j = {&doc, what, err};
	int rc;

	qvl_gen_config_default(g, c);
	rc = cj_parse_object(&doc, text, len, what, err);
	if (rc < 0)
		return rc;
	g->present = true;
	if ((rc = cj_token(&j, 0, "", "bos_token_id", g->bos_token_id, &g->bos_token_id)) ||
	    (rc = cj_token(&j, 0, "", "pad_token_id", -1, &g->pad_token_id)) ||
	    (rc = gen_eos(&j, c, g)) ||
	    (rc = cj_bool(&j, 0, "", "do_sample", false, &g->do_sample)) ||
	    (rc = cj_double(&j, 0, "", "temperature", 1.0, &g->temperature)) ||
	    (rc = cj_double(&j, 0, "", "top_p", 1.0, &g->top_p)) ||
	    (rc = cj_int(&j, 0, "", "top_k", false, 50, &g->top_k)) ||
	    (rc = cj_double(&j, 0, "", "repetition_penalty", 1.0, &g->repetition_penalty)))
		goto out;
	if (!(g->temperature >= 0 && g->temperature <= 100))
		rc = qvl_errf(err, -EINVAL, "%s: temperature: %g out of range [0, 100]", what,
			      g->temperature);
	else if (!(g->top_p > 0 && g->top_p <= 1))
		rc = qvl_errf(err, -EINVAL, "%s: top_p: %g out of range (0, 1]", what, g->top_p);
	else if (!(g->repetition_penalty > 0 && g->repetition_penalty <= 100))
		rc = qvl_errf(err, -EINVAL, "%s: repetition_penalty: %g out of range (0, 100]",
			      what, g->repetition_penalty);
	else
		rc = cv_range(err, what, "top_k", g->top_k, 0, c->text.vocab_size);
out:
	json_free(&doc);
	return rc;
}

void qvl_preproc_config_default(struct qvl_preproc_config *p, const struct qvl_config *c)
{
	memset(p, 0, sizeof(*p));
	p->min_pixels = 65536;
	p->max_pixels = 16777216;
	p->patch_size = c->vision.present ? c->vision.patch_size : 16;
	p->temporal_patch_size = c->vision.present ? c->vision.temporal_patch_size : 2;
	p->merge_size = c->vision.present ? c->vision.spatial_merge_size : 2;
	for (int i = 0; i < 3; i++) {
		p->image_mean[i] = 0.5;
		p->image_std[i] = 0.5;
	}
	p->rescale_factor = 1.0 / 255.0;
}

static int pp_triple(struct cj *j, const char *key, double *out)
{
	uint32_t t = json_get(j->doc, 0, key), e;

	if (t == JSON_NONE)
		return 0;
	if (j->doc->tok[t].type != JSON_ARRAY || j->doc->tok[t].count != 3)
		return qvl_errf(j->err, -EINVAL, "%s: %s: expected an array of 3 numbers", j->what,
				key);
	e = t + 1;
	for (int i = 0; i < 3; i++, e = j->doc->tok[e].end)
		if (json_double(j->doc, e, &out[i]) < 0)
			return qvl_errf(j->err, -EINVAL, "%s: %s[%d]: expected a number", j->what,
					key, i);
	return 0;
}

static int pp_check(struct cj *j, const struct qvl_config *c, const struct qvl_preproc_config *p)
{
	int rc;

	if ((rc = cv_range(j->err, j->what, "min_pixels", p->min_pixels, 1, INT64_C(1) << 40)) ||
	    (rc = cv_range(j->err, j->what, "max_pixels", p->max_pixels, p->min_pixels,
			   INT64_C(1) << 40)) ||
	    (rc = cv_range(j->err, j->what, "patch_size", p->patch_size, 1, 64)) ||
	    (rc =
		 cv_range(j->err, j->what, "temporal_patch_size", p->temporal_patch_size, 1, 16)) ||
	    (rc = cv_range(j->err, j->what, "merge_size", p->merge_size, 1, 16)))
		return rc;
	for (int i = 0; i < 3; i++)
		if (!(p->image_std[i] > 0))
			return qvl_errf(j->err, -EINVAL, "%s: image_std[%d]: %g is not positive",
					j->what, i, p->image_std[i]);
	if (!(p->rescale_factor > 0 && p->rescale_factor <= 1))
		return qvl_errf(j->err, -EINVAL, "%s: rescale_factor: %g out of range (0, 1]",
				j->what, p->rescale_factor);
	if (c->vision.present && (p->patch_size != c->vision.patch_size ||
				  p->temporal_patch_size != c->vision.temporal_patch_size ||
				  p->merge_size != c->vision.spatial_merge_size))
		return qvl_errf(j->err, -EINVAL,
				"%s: patch_size/temporal_patch_size/merge_size %d/%d/%d disagree "
				"with config.json's vision_config %d/%d/%d",
				j->what, p->patch_size, p->temporal_patch_size, p->merge_size,
				c->vision.patch_size, c->vision.temporal_patch_size,
				c->vision.spatial_merge_size);
	return 0;
}

int qvl_preproc_config_parse(struct qvl_preproc_config *p, const struct qvl_config *c,
			     const char *text, size_t len, const char *what, struct qvl_err *err)
{
	struct json_doc doc = {0};
	struct cj j = {&doc, what, err};
	uint32_t size;
	int rc;

	qvl_preproc_config_default(p, c);
	rc = cj_parse_object(&doc, text, len, what, err);
	if (rc < 0)
		return rc;
	p->present = true;
	/* Qwen3-VL names pixel budgets size.shortest_edge/longest_edge; Qwen2-VL
	 * era files use min_pixels/max_pixels. */
	if ((rc = cj_i64(&j, 0, "", "min_pixels", p->min_pixels, &p->min_pixels)) ||
	    (rc = cj_i64(&j, 0, "", "max_pixels", p->max_pixels, &p->max_pixels)) ||
	    (rc = cj_object(&j, 0, "", "size", &size)))
		goto out;
	if (size != JSON_NONE &&
	    ((rc = cj_i64(&j, size, "size", "shortest_edge", p->min_pixels, &p->min_pixels)) ||
	     (rc = cj_i64(&j, size, "size", "longest_edge", p->max_pixels, &p->max_pixels))))
		goto out;
	if ((rc = cj_int(&j, 0, "", "patch_size", false, p->patch_size, &p->patch_size)) ||
	    (rc = cj_int(&j, 0, "", "temporal_patch_size", false, p->temporal_patch_size,
			 &p->temporal_patch_size)) ||
	    (rc = cj_int(&j, 0, "", "merge_size", false, p->merge_size, &p->merge_size)) ||
	    (rc = pp_triple(&j, "image_mean", p->image_mean)) ||
	    (rc = pp_triple(&j, "image_std", p->image_std)) ||
	    (rc = cj_double(&j, 0, "", "rescale_factor", p->rescale_factor, &p->rescale_factor)))
		goto out;
	rc = pp_check(&j, c, p);
out:
	json_free(&doc);
	return rc;
}
