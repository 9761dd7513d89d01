/* Greedy decoding with the argmax fused into the output projection
 * (qvl_seq_forward_argmax, qvl_batch_item.argmax: the logits are never
 * written) against the argmax of the full logits of the same step, at every
 * SIMD level and on 1 and 2 threads; the golden greedy continuation; a batch
 * that mixes argmax-only, logits-only and both; and the generate session's
 * greedy path (which uses the fused one) against its sampling path. */
#include "config.h"

#include "engine_common.h"
#include "generate.h"
#include "sample.h"

#define V     151936
#define STEPS 16

/* Decode STEPS tokens from the prompt both ways on two sequences; every
 * step's fused argmax must equal the argmax of the logits. */
static void check_level(struct qvl_engine *e, const struct gcase *g, const char *tag, float *lg)
{
	struct qvl_err err = {{0}};
	struct qvl_seq *a = NULL, *b = NULL;
	struct qvl_chunk c = {.ids = g->ids, .n = g->n};
	int32_t ida, idb, gen[STEPS];
	int same = 0, rc;

	if (qvl_seq_create(e, (int)g->n + STEPS + 1, &a, &err) < 0 ||
	    qvl_seq_create(e, (int)g->n + STEPS + 1, &b, &err) < 0) {
		ok(0, "%s: sequences: %s", tag, err.msg);
		goto out;
	}
	rc = qvl_seq_forward(e, a, &c, lg, false, &err);
	ida = qvl_argmax(lg, V);
	rc = rc < 0 ? rc : qvl_seq_forward_argmax(e, b, &c, &idb, &err);
	for (int s = 0; rc >= 0 && s < STEPS; s++) {
		same += ida == idb;
		gen[s] = idb;
		struct qvl_chunk ca = {.ids = &ida, .n = 1}, cb = {.ids = &idb, .n = 1};
		int32_t nb;
		rc = qvl_seq_forward(e, a, &ca, lg, false, &err);
		ida = qvl_argmax(lg, V);
		rc = rc < 0 ? rc : qvl_seq_forward_argmax(e, b, &cb, &nb, &err);
		idb = nb;
	}
	ok(rc >= 0 && same == STEPS, "%s: %d of %d fused argmax ids = argmax of the logits %s", tag,
	   same, STEPS, rc < 0 ? err.msg : "");
	ok(rc >= 0 && !memcmp(gen, g->greedy, sizeof(gen)),
	   "%s: the fused greedy continuation equals the golden one", tag);
out:
	qvl_seq_destroy(a);
	qvl_seq_destroy(b);
}

/* One batch pass with items of each kind: the argmax-only one gets the
 * argmax of what the logits-only one got; the item with both gets the
 * argmax of its own logits. */
static void check_mixed(struct qvl_engine *e, const struct gcase *g, float *lg)
{
	struct qvl_err err = {{0}};
	struct qvl_seq *s[3] = {NULL};
	struct qvl_batch_item it[3];
	float *lg2 = malloc(V * sizeof(float));
	int32_t id0 = -1, id2 = -1, want;
	int rc = lg2 ? 0 : -ENOMEM;

	for (int i = 0; rc >= 0 && i < 3; i++)
		rc = qvl_seq_create(e, (int)g->n + 2, &s[i], &err);
	for (int i = 0; rc >= 0 && i < 3; i++)
		it[i] = (struct qvl_batch_item){.seq = s[i], .chunk = {.ids = g->ids, .n = g->n}};
	if (rc >= 0) {
		it[0].argmax = &id0;
		it[1].logits = lg;
		it[2].logits = lg2;
		it[2].argmax = &id2;
		rc = qvl_engine_forward(e, it, 3, &err);
	}
	want = qvl_argmax(lg, V);
	ok(rc >= 0 && id0 == want && id2 == qvl_argmax(lg2, V) && id2 == want,
	   "mixed batch (argmax only, logits only, both): %d %d = %d %s", id0, id2, want,
	   rc < 0 ? err.msg : "");
	/* and decode steps as a batch of argmax-only rows (the daemon's case) */
	int32_t in[3] = {want, want, want}, out[3] = {-1, -1, -2};
	for (int i = 0; rc >= 0 && i < 3; i++) {
		it[i].chunk = (struct qvl_chunk){.ids = &in[i], .n = 1};
		it[i].logits = NULL;
		it[i].argmax = &out[i];
	}
	rc = rc < 0 ? rc : qvl_engine_forward(e, it, 3, &err);
	ok(rc >= 0 && out[0] == g->greedy[1] && out[1] == out[0] && out[2] == out[0],
	   "decode batch of 3 argmax-only rows: %d %d %d, golden %d", out[0], out[1], out[2],
	   g->greedy[1]);
	for (int i = 0; i < 3; i++)
		qvl_seq_destroy(s[i]);
	free(lg2);
}

/* The session decides: greedy without penalties takes the fused path,
 * with logprobs the logits one; both give the golden ids. */
static void check_session(struct qvl_engine *e, const struct gcase *g)
{
	for (int lp = 0; lp < 2; lp++) {
		struct gen_params gp = {.max_tokens = STEPS,
					.ignore_eos = true,
					.logprobs = lp,
					.n_ctx = (int)g->n + STEPS + 1};
		struct gen_prompt p = {.ids = g->ids, .n_ids = g->n};
		struct gen_session *s = NULL;
		struct qvl_err err = {{0}};
		struct gen_out o;
		int32_t gen[STEPS];
		int n = 0, rc;

		qvl_sample_defaults(&gp.sp, NULL);
		rc = gen_create(&s, e, NULL, &p, &gp, &err);
		while (rc >= 0 && !gen_done(s) && n < STEPS) {
			rc = gen_step(s, &o, &err);
			if (o.has_id)
				gen[n++] = o.id;
		}
		ok(rc >= 0 && n == STEPS && !memcmp(gen, g->greedy, sizeof(gen)),
		   "generate session (%s): greedy ids equal the golden %s",
		   lp ? "logprobs: full logits" : "fused argmax", rc < 0 ? err.msg : "");
		gen_destroy(s);
	}
}

int main(void)
{
	const char *model = tiny_model_path();
	const char *shared = test_env("QVL_SHARED", "../shared");
	struct qvl_err err = {{0}};
	struct gcase *cases, *g = NULL;
	struct qvl_model *m;
	size_t ncases;
	char path[4096];
	float *lg = malloc(V * sizeof(float));

	(void)shared;
	if (!model)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	snprintf(path, sizeof(path), "%s/golden/text/cases.json",
		 test_env("QVL_TESTDATA", "tests/data"));
	if (load_cases(path, &cases, &ncases) < 0)
		skip_all("cannot read %s", path);
	for (size_t i = 0; i < ncases; i++)
		if (!strcmp(cases[i].name, "t0016"))
			g = &cases[i];
	if (!g || !lg)
		skip_all("golden case t0016 not in %s", path);
	if (qvl_model_open(&m, model, NULL, &err) < 0) {
		ok(0, "open %s: %s", model, err.msg);
		return done_testing();
	}
	for (int lv = QVL_SIMD_REF; lv <= QVL_SIMD_AVX512; lv++) {
		struct qvl_kernels k;
		if (qvl_kernels_get(&k, (enum qvl_simd_level)lv) < 0) {
			skip(2, "SIMD level %s not available here", qvl_simd_name(lv));
			continue;
		}
		for (int th = 1; th <= 2; th++) {
			struct qvl_engine_opts o = {
			    .threads = th, .kv_dtype = QVL_DT_F32, .kern = &k};
			struct qvl_engine *e;
			char tag[64];

			snprintf(tag, sizeof(tag), "%s/%dt", k.name, th);
			if (qvl_engine_create(&e, m, &o, &err) < 0) {
				ok(0, "%s: engine: %s", tag, err.msg);
				continue;
			}
			check_level(e, g, tag, lg);
			if (lv == QVL_SIMD_REF && th == 2)
				check_mixed(e, g, lg);
			qvl_engine_destroy(e);
		}
	}
	struct qvl_engine_opts o = {.threads = 2, .kv_dtype = QVL_DT_F32};
	struct qvl_engine *e;
	if (qvl_engine_create(&e, m, &o, &err) == 0) {
		check_session(e, g);
		qvl_engine_destroy(e);
	} else {
		ok(0, "engine: %s", err.msg);
	}
	for (size_t i = 0; i < ncases; i++)
		free(cases[i].ids);
	free(cases);
	free(lg);
	qvl_model_close(m);
	return done_testing();
}
