/* Shared by cmd_run.c and cmd_bench.c (see run_common.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "run_common.h"
#include "util.h"

int run_parse_kv(const char *s, enum qvl_dtype *out)
{
	if (!strcmp(s, "bf16"))
		*out = QVL_DT_BF16;
	else if (!strcmp(s, "f16"))
		*out = QVL_DT_F16;
	else if (!strcmp(s, "f32"))
		*out = QVL_DT_F32;
	else
		return -EINVAL;
	return 0;
}

const char *run_precision_desc(enum qvl_precision p)
{
	if (p == QVL_PREC_EXACT)
		return "exact";
	return qvl_kernels_bf16dot(&qvl_kern) ? "bf16 (vdpbf16ps for bf16 weights)"
					      : "bf16 (= exact for bf16 weights: no AVX512-BF16 "
						"at this SIMD level)";
}

#define ID_SEPS " \t,\n\r"

/* One item of an id list, [p, p + len): an optional '-' then decimal
 * digits, the whole item, within int32. */
static int parse_id(const char *p, size_t len, int32_t *out)
{
	bool neg = len > 0 && p[0] == '-';
	int64_t v = 0;
	size_t i = neg;

	if (i == len)
		return -EINVAL;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (p[i] - '0');
		if (v > (int64_t)INT32_MAX + 1)
			return -ERANGE;
	}
	v = neg ? -v : v;
	if (v > INT32_MAX || v < INT32_MIN)
		return -ERANGE;
	*out = (int32_t)v;
	return 0;
}

int run_parse_ids(const char *s, int32_t **ids, size_t *n, char *why, size_t cap)
{
	size_t len = strlen(s), cnt = 0;
	int32_t *v = malloc((len / 2 + 1) * sizeof(int32_t));
	const char *p = s;

	if (!v) {
		snprintf(why, cap, "out of memory");
		return -ENOMEM;
	}
	while (*p) {
		size_t k;
		int rc;

		p += strspn(p, ID_SEPS);
		if (!*p)
			break;
		k = strcspn(p, ID_SEPS);
		rc = parse_id(p, k, &v[cnt]);
		if (rc < 0) {
			const char *what =
			    rc == -ERANGE ? "out of range (32-bit ids)" : "not an integer id";

			/* the whole item, or its start and end when it is long */
			if (k <= 40)
				snprintf(why, cap, "item %zu: '%.*s' is %s", cnt + 1, (int)k, p,
					 what);
			else
				snprintf(why, cap,
					 "item %zu: '%.16s...%.16s' (%zu characters) is %s",
					 cnt + 1, p, p + k - 16, k, what);
			free(v);
			return -EINVAL;
		}
		cnt++;
		p += k;
	}
	*ids = v;
	*n = cnt;
	return 0;
}

uint64_t run_kv_bytes(const struct qvl_model *m, int64_t n_ctx, enum qvl_dtype kv)
{
	const struct qvl_text_config *tc = &m->config.text;
	bool ok = true;
	uint64_t per =
	    qvl_dtype_bytes(kv, (uint64_t)tc->num_kv_heads * (uint64_t)tc->head_dim, &ok);

	/* K and V, every layer, every position */
	return ok ? per * 2 * (uint64_t)tc->num_layers * (uint64_t)n_ctx : 0;
}

int run_open(struct run_load *r)
{
	struct qvl_engine_opts o = {.threads = r->threads,
				    .cpus = r->cpus,
				    .kv_dtype = r->kv,
				    .precision = r->prec,
				    .copy_weights = r->copy_weights,
				    .kv_pages = r->kv_pages};
	struct qvl_err err = {{0}};
	double t0 = qvl_now();
	int rc;

	rc = qvl_kernels_init(&err);
	if (rc >= 0)
		rc = tier_model_open(&r->m, &r->pool, r->model, r->mmproj, &r->tiers, &err);
	o.wsrc = tier_weight_src(r->pool);
	if (rc >= 0)
		rc = qvl_engine_create(&r->e, r->m, &o, &err);
	if (rc < 0) {
		fprintf(stderr, "qvlctl %s: %s\n", r->cmd, err.msg[0] ? err.msg : qvl_strerror(rc));
		run_close(r);
		return 1;
	}
	r->load_s = qvl_now() - t0;
	if (!r->quiet)
		fprintf(stderr,
			"qvlctl %s: loaded %s (%s) in %.3f s, %d threads, kernels %s, "
			"precision %s\n",
			r->cmd, r->model, qvl_format_name(r->m->format), r->load_s,
			qvl_engine_threads(r->e), qvl_kern.name, run_precision_desc(r->prec));
	return 0;
}

void run_close(struct run_load *r)
{
	qvl_engine_destroy(r->e);
	r->e = NULL;
	tier_close(r->pool); /* before the model it points into */
	r->pool = NULL;
	if (r->m)
		qvl_model_close(r->m);
	r->m = NULL;
}

uint64_t run_weight_bytes_per_token(const struct qvl_model *m)
{
	const struct qvl_text_config *tc = &m->config.text;
	const char *mats[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
			      "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
			      "mlp.down_proj",	  "input_layernorm",  "post_attention_layernorm",
			      "self_attn.q_norm", "self_attn.k_norm"};
	const struct qvl_tensor *t;
	uint64_t sum = 0;

	for (int l = 0; l < tc->num_layers; l++)
		for (size_t i = 0; i < sizeof(mats) / sizeof(mats[0]); i++) {
			t = qvl_model_findf(m, "model.language_model.layers.%d.%s.weight", l,
					    mats[i]);
			sum += t ? t->nbytes : 0;
		}
	t = qvl_model_find(m, "model.language_model.embed_tokens.weight");
	if (t && t->shape[0] > 0)
		sum += t->nbytes / (uint64_t)t->shape[0]; /* one row looked up */
	if (!tc->tie_word_embeddings)
		t = qvl_model_find(m, "lm_head.weight");
	sum += t ? t->nbytes : 0;
	t = qvl_model_find(m, "model.language_model.norm.weight");
	sum += t ? t->nbytes : 0;
	return sum;
}
