/* The tensor table without files: dtype sizes, conversion to f32 against the
 * IEEE-754 / bfloat16 / GGUF block definitions, add/finish (sorting,
 * duplicates, inconsistent sizes), find/findf, and the config check. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "quant.h"
#include "tap.h"

static void check_dtypes(void)
{
	bool good;

	ok(!strcmp(qvl_dtype_name(QVL_DT_BF16), "BF16") &&
	       !strcmp(qvl_dtype_name(QVL_DT_Q4_0), "Q4_0") &&
	       !strcmp(qvl_dtype_name((enum qvl_dtype)99), "?"),
	   "dtype names");
	ok(qvl_dtype_bytes(QVL_DT_F32, 3, &good) == 12 && good, "F32: 4 bytes each");
	ok(qvl_dtype_bytes(QVL_DT_BF16, 3, &good) == 6 && good, "BF16: 2 bytes each");
	ok(qvl_dtype_bytes(QVL_DT_Q8_0, 64, &good) == 68 && good, "Q8_0: 34 bytes per 32");
	ok(qvl_dtype_bytes(QVL_DT_Q4_0, 64, &good) == 36 && good, "Q4_0: 18 bytes per 32");
	ok(qvl_dtype_bytes(QVL_DT_Q4_0, 33, &good) == 0 && !good, "Q4_0: partial block refused");
	ok(qvl_dtype_bytes(QVL_DT_F32, UINT64_MAX / 2, &good) == 0 && !good, "overflow refused");
	ok(!strcmp(qvl_format_name(QVL_FMT_HF), "hf") &&
	       !strcmp(qvl_format_name(QVL_FMT_GGUF), "gguf"),
	   "format names");
}

static void check_convert(void)
{
	/* f16: 1, -2, smallest subnormal 2^-24, 65504, +inf, 0.5 */
	static const uint16_t h[6] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x3800};
	/* bf16: 1, -0.0005035400390625 (testmodel.md §5.5), 2^-133 subnormal */
	static const uint16_t b[3] = {0x3f80, 0xba04, 0x0001};
	static const float f[2] = {1.5f, -3.25f};
	struct qvl_tensor t = {.name = "x", .ndim = 1};
	uint8_t q8[34], q4[18];
	float out[32];

	t.dtype = QVL_DT_F16, t.data = h, t.nelem = 6, t.nbytes = 12;
	ok(qvl_tensor_to_f32(&t, 0, 6, out) == 0 && out[0] == 1.0f && out[1] == -2.0f &&
	       out[2] == 0x1p-24f && out[3] == 65504.0f && isinf(out[4]) && out[5] == 0.5f,
	   "F16 to f32 (normal, subnormal, max, inf)");
	ok(qvl_tensor_to_f32(&t, 5, 1, out) == 0 && out[0] == 0.5f, "F16 offset");
	ok(qvl_tensor_to_f32(&t, 5, 2, out) == -ERANGE, "F16 past end refused");
	t.dtype = QVL_DT_BF16, t.data = b, t.nelem = 3, t.nbytes = 6;
	ok(qvl_tensor_to_f32(&t, 0, 3, out) == 0 && out[0] == 1.0f &&
	       out[1] == -0.0005035400390625f && out[2] == 0x1p-133f,
	   "BF16 to f32");
	t.dtype = QVL_DT_F32, t.data = f, t.nelem = 2, t.nbytes = 8;
	ok(qvl_tensor_to_f32(&t, 1, 1, out) == 0 && out[0] == -3.25f, "F32 copy");
	ok(qvl_tensor_to_f32(&t, UINT64_MAX, 2, out) == -ERANGE, "F32 index overflow refused");
	/* Q8_0: d = 0.5 (f16 0x3800), q[i] = i - 16 */
	q8[0] = 0x00, q8[1] = 0x38;
	for (int i = 0; i < 32; i++)
		q8[2 + i] = (uint8_t)(int8_t)(i - 16);
	t.dtype = QVL_DT_Q8_0, t.data = q8, t.nelem = 32, t.nbytes = 34;
	ok(qvl_tensor_to_f32(&t, 0, 32, out) == 0 && out[0] == -8.0f && out[16] == 0.0f &&
	       out[31] == 7.5f,
	   "Q8_0 block: d * q");
	ok(qvl_tensor_to_f32(&t, 1, 31, out) == -EINVAL, "Q8_0 unaligned range refused");
	/* Q4_0: d = 2 (0x4000); byte j: low nibble element j, high nibble j + 16 */
	q4[0] = 0x00, q4[1] = 0x40;
	for (int j = 0; j < 16; j++)
		q4[2 + j] = (uint8_t)(j | (15 - j) << 4);
	t.dtype = QVL_DT_Q4_0, t.data = q4, t.nelem = 32, t.nbytes = 18;
	ok(qvl_tensor_to_f32(&t, 0, 32, out) == 0 && out[0] == -16.0f && out[15] == 14.0f &&
	       out[16] == 14.0f && out[31] == -16.0f,
	   "Q4_0 block: d * (nibble - 8)");
}

static int add(struct qvl_model *m, const char *name, enum qvl_dtype dt, int64_t d0, int64_t d1,
	       struct qvl_err *err)
{
	static const uint8_t zero[1 << 12];
	struct qvl_tensor t = {.name = name, .dtype = dt, .ndim = d1 ? 2 : 1, .data = zero};

	t.shape[0] = d0;
	t.shape[1] = d1;
	t.nelem = (uint64_t)d0 * (uint64_t)(d1 ? d1 : 1);
	t.nbytes = qvl_dtype_bytes(dt, t.nelem, NULL);
	return qvl_model_add_tensor(m, &t, err);
}

static struct qvl_model *new_model(void)
{
	struct qvl_model *m = calloc(1, sizeof(*m));

	if (m)
		m->path = strdup("mem");
	return m;
}

static void check_table(void)
{
	struct qvl_model *m = new_model();
	struct qvl_err err = {{0}};
	struct qvl_tensor bad = {
	    .name = "bad", .dtype = QVL_DT_BF16, .ndim = 1, .shape = {4}, .nelem = 4, .nbytes = 6};
	char name[64];
	int rc = 0;

	if (!m)
		return;
	/* 200 names in reverse order, so finish() really sorts */
	for (int i = 199; i >= 0 && !rc; i--) {
		snprintf(name, sizeof(name), "t.%d.w", i);
		rc = add(m, name, QVL_DT_BF16, 2, 0, &err);
	}
	ok(rc == 0 && qvl_model_finish(m, &err) == 0 && m->ntensors == 200, "200 tensors added");
	ok(qvl_model_find(m, "t.0.w") == &m->tensors[0] && qvl_model_find(m, "t.99.w") &&
	       qvl_model_findf(m, "t.%d.w", 150) && !qvl_model_find(m, "t.200.w") &&
	       !qvl_model_find(m, "") && !qvl_model_find(m, "u"),
	   "find / findf by binary search");
	ok(qvl_model_add_tensor(m, &bad, &err) == -EBADMSG && strstr(err.msg, "'bad'"),
	   "add_tensor refuses a byte count that does not match the shape");
	ok(add(m, "t.7.w", QVL_DT_F32, 2, 0, &err) == 0 && qvl_model_finish(m, &err) == -EBADMSG &&
	       strstr(err.msg, "duplicate tensor 't.7.w'"),
	   "finish refuses duplicates");
	qvl_model_close(m);
}

/* The config check on a table built in memory: 1 layer, H 8, V 16. */
static void check_config(void)
{
	static const char *const lay[] = {"input_layernorm", "post_attention_layernorm",
					  "self_attn.q_norm", "self_attn.k_norm"};
	struct qvl_model *m = new_model();
	struct qvl_err err = {{0}};
	char n[128];
	int rc;

	if (!m)
		return;
	m->config.text = (struct qvl_text_config){.hidden_size = 8,
						  .num_layers = 1,
						  .num_heads = 2,
						  .num_kv_heads = 1,
						  .head_dim = 4,
						  .intermediate_size = 32,
						  .vocab_size = 16};
	rc = add(m, "model.language_model.embed_tokens.weight", QVL_DT_Q8_0, 16, 32, &err);
	rc = rc || add(m, "model.language_model.norm.weight", QVL_DT_F32, 8, 0, &err);
	for (int i = 0; i < 4 && !rc; i++) {
		snprintf(n, sizeof(n), "model.language_model.layers.0.%s.weight", lay[i]);
		rc = add(m, n, QVL_DT_F32, i < 2 ? 8 : 4, 0, &err);
	}
	rc = rc || add(m, "model.language_model.layers.0.self_attn.q_proj.weight", QVL_DT_BF16, 8,
		       8, &err);
	rc = rc || add(m, "model.language_model.layers.0.self_attn.k_proj.weight", QVL_DT_BF16, 4,
		       8, &err);
	rc = rc || add(m, "model.language_model.layers.0.self_attn.v_proj.weight", QVL_DT_BF16, 4,
		       8, &err);
	rc = rc || add(m, "model.language_model.layers.0.self_attn.o_proj.weight", QVL_DT_BF16, 8,
		       8, &err);
	rc = rc ||
	     add(m, "model.language_model.layers.0.mlp.gate_proj.weight", QVL_DT_BF16, 32, 8, &err);
	rc = rc ||
	     add(m, "model.language_model.layers.0.mlp.up_proj.weight", QVL_DT_BF16, 32, 8, &err);
	rc = rc ||
	     add(m, "model.language_model.layers.0.mlp.down_proj.weight", QVL_DT_BF16, 8, 32, &err);
	/* embed_tokens is [16, 8]: as a Q8_0 [16, 32] it has the wrong shape */
	ok(rc == 0 && qvl_model_finish(m, &err) == 0, "config-check table built");
	ok(qvl_model_check_tensors(m, &err) == -EBADMSG &&
	       strstr(err.msg,
		      "embed_tokens.weight': shape [16,32], but the config implies [16,8]"),
	   "shape mismatch named");
	m->config.text.hidden_size = 32; /* now embed fits; others do not */
	ok(qvl_model_check_tensors(m, &err) == -EBADMSG && strstr(err.msg, "norm.weight"),
	   "next mismatch named");
	qvl_model_close(m);
}

int main(void)
{
	check_dtypes();
	check_convert();
	check_table();
	check_config();
	return done_testing();
}
