/* Batch invariance of qvl_engine_forward: does one sequence's decode step
 * give the same logits whatever else is in the batch? The same sequence
 * (same prompt, same prefill) takes one decode step alone (m = 1 row),
 * beside 1 and 3 other decodes (m = 2, 4: the streamed small-m matmul),
 * beside 16 (m = 17: the packed matmul) and beside a 30-token prefill
 * chunk (m = 31). Measured, at every SIMD level and both precisions
 * (docs/kv-cache.md has the table): the scalar reference is invariant; the
 * SIMD matmuls round differently in their three row regimes (m == 1,
 * 2..16, > 16); bf16dot (AVX512-BF16, the default precision on bf16
 * weights) computes every row of a batch of up to 64 rows the same way.
 * Asserted here: what holds (reference and bf16dot: all equal; other SIMD
 * kernels: m = 2 equals m = 4), so a kernel change that breaks it fails;
 * the rest is reported with diag(). */
#include "config.h"

#include "engine_common.h"

#define PROMPT 40
#define NCASE  5

static const size_t company[NCASE] = {0, 1, 3, 16, 0};
static const char *const case_name[NCASE] = {"alone (m=1)", "m=2", "m=4", "m=17",
					     "beside a 30-token prefill (m=31)"};

/* Logits of the decode step of a fresh sequence prefilled with ids[0..40)
 * and then fed ids[40], with `others` other sequences decoding (or, for
 * case 4, one sequence prefilling 30 tokens) in the same forward. */
static int step(struct qvl_engine *e, const int32_t *ids, int cs, float *out)
{
	struct qvl_err err = {{0}};
	struct qvl_seq *s[17] = {NULL};
	struct qvl_batch_item it[17];
	size_t n = company[cs] + 1 + (cs == 4);
	int rc = 0;

	for (size_t i = 0; i < n && rc >= 0; i++) {
		struct qvl_chunk c = {.ids = ids + 100 * i, .n = PROMPT};

		rc = qvl_seq_create(e, 256, &s[i], &err);
		if (rc >= 0 && (cs != 4 || i == 0))
			rc = qvl_seq_forward(e, s[i], &c, NULL, false, &err);
	}
	for (size_t i = 0; i < n && rc >= 0; i++)
		it[i] = (struct qvl_batch_item){
		    .seq = s[i],
		    .chunk = {.ids = ids + 100 * i + PROMPT, .n = cs == 4 && i ? 30 : 1},
		    .logits = i ? NULL : out};
	if (rc >= 0)
		rc = qvl_engine_forward(e, it, n, &err);
	if (rc < 0)
		diag("step: %s", err.msg);
	for (size_t i = 0; i < n; i++)
		qvl_seq_destroy(s[i]);
	return rc;
}

int main(void)
{
	const char *model = tiny_model_path();
	struct qvl_err err = {{0}};
	struct qvl_model *m;
	static int32_t ids[2000];

	if (!model)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	if (qvl_model_open(&m, model, NULL, &err) < 0 || qvl_kernels_init(&err) < 0) {
		ok(0, "open %s: %s", model, err.msg);
		return done_testing();
	}
	size_t V = (size_t)m->config.text.vocab_size;
	float *lg = malloc(NCASE * V * sizeof(float));
	rand_ids(ids, 2000, 5);
	for (int lv = QVL_SIMD_REF; lv <= QVL_SIMD_AVX512; lv++) {
		struct qvl_kernels k;

		if (qvl_kernels_get(&k, (enum qvl_simd_level)lv) < 0) {
			skip(2, "%s: not supported by this CPU", qvl_simd_name(lv));
			continue;
		}
		for (int p = 0; p < 2; p++) {
			enum qvl_precision prec = p ? QVL_PREC_BF16 : QVL_PREC_EXACT;
			struct qvl_engine *e =
			    kv_engine(m, &k, 0, 0, p ? QVL_DT_F16 : QVL_DT_F32, prec);
			int rc = e ? 0 : -1;
			bool all = true;

			for (int cs = 0; cs < NCASE && rc >= 0; cs++)
				rc = step(e, ids, cs, lg + (size_t)cs * V);
			for (int cs = 1; cs < NCASE && rc >= 0; cs++) {
				bool eq = !memcmp(lg, lg + (size_t)cs * V, V * sizeof(float));
				all &= eq;
				diag("%s %s: %s vs alone: %s (max |d| %.2e)", k.name,
				     qvl_precision_name(prec), case_name[cs],
				     eq ? "identical" : "DIFFERENT",
				     max_abs_diff(lg, lg + (size_t)cs * V, V));
			}
			if (lv == QVL_SIMD_REF)
				ok(rc == 0 && all, "ref %s: the batch never changes a row's logits",
				   qvl_precision_name(prec));
			else if (prec == QVL_PREC_BF16 && qvl_kernels_bf16dot(&k))
				/* bf16dot computes every row of up to 64 the same
				 * way (matmul_dp): every case here is invariant */
				ok(rc == 0 && all,
				   "%s bf16 (vdpbf16ps): the batch never changes a row's logits",
				   k.name);
			else
				ok(rc == 0 && !memcmp(lg + V, lg + 2 * V, V * sizeof(float)),
				   "%s %s: m = 2 and m = 4 (streamed small-m matmul) give the same "
				   "logits",
				   k.name, qvl_precision_name(prec));
			qvl_engine_destroy(e);
		}
	}
	free(lg);
	qvl_model_close(m);
	return done_testing();
}
