/* A model quantized with our quantizer runs in the engine with the logits of
 * the same model whose weights are the dequantized values stored as F32:
 * for every block type and every SIMD level, prefill (matrix-matrix) and
 * decode (matrix-vector), token embeddings and lm_head quantized too. The
 * only difference allowed is summation order: |diff| <= 1e-4 * max|logit|.
 * The model is built in memory: H = 256 so that rows are whole 256-value
 * super-blocks for the K-quants (the tiny model's 64 are not). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "engine.h"
#include "model.h"
#include "quant.h"
#include "tap.h"

#define H   256
#define L   2
#define NH  4
#define NKV 2
#define HD  64
#define I   512
#define V   512
#define NP  7 /* prompt tokens */

static uint64_t rs = 0x2545f4914f6cdd1dull;

static float gauss(void)
{
	double u, v;

	rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
	u = (double)(rs >> 11) * 0x1p-53 + 1e-300;
	rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
	v = (double)(rs >> 11) * 0x1p-53;
	return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

struct pair {
	struct qvl_model *q, *f; /* quantized, and its dequantized F32 twin */
};

static struct qvl_model *new_model(void)
{
	struct qvl_model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->path = strdup("mem");
	m->config.text = (struct qvl_text_config){.hidden_size = H,
						  .num_layers = L,
						  .num_heads = NH,
						  .num_kv_heads = NKV,
						  .head_dim = HD,
						  .intermediate_size = I,
						  .vocab_size = V,
						  .max_position = 4096,
						  .rms_norm_eps = 1e-6,
						  .rope_theta = 1e6,
						  .mrope_section = {12, 10, 10}};
	return m;
}

/* Hand buf to m (freed by qvl_model_close). */
static int own(struct qvl_model *m, void *buf)
{
	void **o = realloc(m->owned, (m->nowned + 1) * sizeof(*o));

	if (!o || !buf) {
		free(buf);
		return -ENOMEM;
	}
	m->owned = o;
	m->owned[m->nowned++] = buf;
	return 0;
}

static int add(struct qvl_model *m, const char *name, enum qvl_dtype t, int64_t rows, int64_t cols,
	       void *data, struct qvl_err *err)
{
	struct qvl_tensor x = {.name = name, .dtype = t, .ndim = cols ? 2 : 1, .data = data};
	bool ok;

	x.shape[0] = rows, x.shape[1] = cols;
	x.nelem = (uint64_t)rows * (uint64_t)(cols ? cols : 1);
	x.nbytes = qvl_dtype_bytes(t, x.nelem, &ok);
	return qvl_model_add_tensor(m, &x, err);
}

/* A [rows, cols] weight: random f32 quantized to t in p->q, its
 * dequantization as F32 in p->f. */
static int weight(struct pair *p, enum qvl_dtype t, const char *name, int64_t rows, int64_t cols,
		  struct qvl_err *err)
{
	size_t n = (size_t)(rows * cols);
	float *x = malloc(n * 4), *deq = malloc(n * 4);
	void *q = malloc(qvl_dtype_bytes(t, n, NULL));
	int rc = own(p->f, deq) || own(p->q, q) || !x ? -ENOMEM : 0;

	for (size_t i = 0; !rc && i < n; i++)
		x[i] = gauss() / sqrtf((float)cols);
	rc = rc ? rc : qvl_quantize_row(t, x, q, n);
	rc = rc ? rc : qvl_dequant_row(t, q, deq, n);
	rc = rc ? rc : add(p->q, name, t, rows, cols, q, err);
	rc = rc ? rc : add(p->f, name, QVL_DT_F32, rows, cols, deq, err);
	free(x);
	return rc;
}

/* An F32 norm vector (the same in both models). */
static int norm(struct pair *p, const char *name, int64_t n, struct qvl_err *err)
{
	float *v = malloc((size_t)n * 4);
	int rc = own(p->f, v);

	for (int64_t i = 0; !rc && i < n; i++)
		v[i] = 1 + 0.1f * gauss();
	rc = rc ? rc : add(p->f, name, QVL_DT_F32, n, 0, v, err);
	return rc ? rc : add(p->q, name, QVL_DT_F32, n, 0, v, err);
}

static int build(struct pair *p, enum qvl_dtype t, struct qvl_err *err)
{
	static const char *const norms[] = {"input_layernorm", "post_attention_layernorm",
					    "self_attn.q_norm", "self_attn.k_norm"};
	static const struct {
		const char *name;
		int64_t rows, cols;
	} mats[] = {{"self_attn.q_proj", NH * HD, H},
		    {"self_attn.k_proj", NKV * HD, H},
		    {"self_attn.v_proj", NKV * HD, H},
		    {"self_attn.o_proj", H, NH * HD},
		    {"mlp.gate_proj", I, H},
		    {"mlp.up_proj", I, H},
		    {"mlp.down_proj", H, I}};
	char n[128];
	int rc;

	p->q = new_model(), p->f = new_model();
	if (!p->q || !p->f)
		return -ENOMEM;
	rc = weight(p, t, "model.language_model.embed_tokens.weight", V, H, err);
	rc = rc ? rc : weight(p, t, "lm_head.weight", V, H, err);
	rc = rc ? rc : norm(p, "model.language_model.norm.weight", H, err);
	for (int l = 0; l < L && !rc; l++) {
		for (int i = 0; i < 4 && !rc; i++) {
			snprintf(n, sizeof(n), "model.language_model.layers.%d.%s.weight", l,
				 norms[i]);
			rc = norm(p, n, i < 2 ? H : HD, err);
		}
		for (size_t i = 0; i < sizeof(mats) / sizeof(mats[0]) && !rc; i++) {
			snprintf(n, sizeof(n), "model.language_model.layers.%d.%s.weight", l,
				 mats[i].name);
			rc = weight(p, t, n, mats[i].rows, mats[i].cols, err);
		}
	}
	rc = rc ? rc : qvl_model_finish(p->q, err);
	rc = rc ? rc : qvl_model_finish(p->f, err);
	rc = rc ? rc : qvl_model_check_tensors(p->q, err);
	return rc;
}

/* Prefill NP tokens then decode 2; all logits into out[(NP + 2) * V]. */
static int run(const struct qvl_model *m, const struct qvl_kernels *k, float *out,
	       struct qvl_err *err)
{
	struct qvl_engine_opts o = {.threads = 1, .kv_dtype = QVL_DT_F32, .kern = k};
	static const int32_t ids[NP + 2] = {3, 141, 59, 265, 358, 97, 93, 238, 462};
	struct qvl_engine *e = NULL;
	struct qvl_seq *s = NULL;
	int rc = qvl_engine_create(&e, m, &o, err);

	rc = rc ? rc : qvl_seq_create(e, 64, &s, err);
	if (!rc) {
		struct qvl_chunk c = {.ids = ids, .n = NP};

		rc = qvl_seq_forward(e, s, &c, out, true, err);
	}
	for (int i = NP; i < NP + 2 && !rc; i++) {
		struct qvl_chunk c = {.ids = &ids[i], .n = 1};

		rc = qvl_seq_forward(e, s, &c, out + (size_t)i * V, false, err);
	}
	qvl_seq_destroy(s);
	qvl_engine_destroy(e);
	return rc;
}

int main(void)
{
	static const enum qvl_dtype types[] = {
	    QVL_DT_Q8_0, QVL_DT_Q4_0, QVL_DT_Q4_1, QVL_DT_Q5_0, QVL_DT_Q5_1,   QVL_DT_Q2_K,
	    QVL_DT_Q3_K, QVL_DT_Q4_K, QVL_DT_Q5_K, QVL_DT_Q6_K, QVL_DT_IQ4_NL, QVL_DT_IQ4_XS};
	static float lq[(NP + 2) * V], lf[(NP + 2) * V];
	struct qvl_err err = {{0}};

	for (int lv = QVL_SIMD_REF; lv <= QVL_SIMD_AVX512; lv++) {
		struct qvl_kernels k;

		if (qvl_kernels_get(&k, (enum qvl_simd_level)lv) < 0) {
			skip(12, "%s: not supported here", qvl_simd_name((enum qvl_simd_level)lv));
			continue;
		}
		for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
			struct pair p = {0};
			int rc = build(&p, types[ti], &err);
			double worst = 0, amax = 0;

			rc = rc ? rc : run(p.q, &k, lq, &err);
			rc = rc ? rc : run(p.f, &k, lf, &err);
			for (size_t i = 0; !rc && i < (NP + 2) * V; i++)
				amax = fmax(amax, fabs(lf[i]));
			for (size_t i = 0; !rc && i < (NP + 2) * V; i++)
				worst = fmax(worst, fabs((double)lq[i] - lf[i]));
			if (rc)
				diag("%s", err.msg);
			ok(!rc && amax > 0 && worst <= 1e-4 * amax,
			   "%s %s model: logits (prefill %d, decode 2) = dequantized-F32 model's "
			   "(max diff %.2g, max |logit| %.3g)",
			   k.name, qvl_dtype_name(types[ti]), NP, worst, amax);
			qvl_model_close(p.q);
			qvl_model_close(p.f);
		}
	}
	return done_testing();
}
