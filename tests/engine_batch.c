/* Several sequences in one engine pass (qvl_engine_forward), as the daemon's
 * scheduler will drive it: golden prompts prefilled side by side and then
 * decoded greedily as a batch must give each sequence exactly its golden
 * logits and continuation; a batch larger than one slice (t1000 + t0064 =
 * 1064 rows) too; and a bad item leaves every sequence unchanged. */
#include "config.h"

#include "engine_common.h"
#include "sample.h"

#define TOL 1e-3

static struct gcase *find(struct gcase *g, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(g[i].name, name))
			return &g[i];
	return NULL;
}

int main(void)
{
	const char *shared = test_env("QVL_SHARED", "../shared");
	const char *model = tiny_model_path();
	static const char *names[] = {"t0007", "t0016", "chat", "t1000", "t0064"};
	char path[4096], gdir[2048];
	struct qvl_err err = {{0}};
	struct qvl_model *m;
	struct qvl_engine *e;
	struct qvl_engine_opts o = {
	    .threads = 2, .kv_dtype = QVL_DT_F32, .precision = QVL_PREC_EXACT};
	struct gcase *cases, *g[5];
	size_t ncases;
	float *want[5], *lg[5];
	struct qvl_seq *s[5];

	if (!model)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	snprintf(path, sizeof(path), "%s/golden/text/cases.json",
		 test_env("QVL_TESTDATA", "tests/data"));
	snprintf(gdir, sizeof(gdir), "%s/golden/text", shared);
	if (load_cases(path, &cases, &ncases) < 0)
		skip_all("cannot read %s", path);
	for (int i = 0; i < 5; i++) {
		g[i] = find(cases, ncases, names[i]);
		want[i] = g[i] ? read_f32(gdir, g[i]->logits_file, 151936) : NULL;
		if (!want[i])
			skip_all("golden case %s not readable in %s", names[i], gdir);
		lg[i] = malloc(151936 * sizeof(float));
	}
	if (qvl_model_open(&m, model, NULL, &err) < 0 || qvl_engine_create(&e, m, &o, &err) < 0) {
		ok(0, "open %s: %s", model, err.msg);
		return done_testing();
	}
	for (int i = 0; i < 5; i++)
		qvl_seq_create(e, 1100, &s[i], &err);

	/* three prompts prefilled in one pass */
	struct qvl_batch_item it[5];
	for (int i = 0; i < 3; i++)
		it[i] = (struct qvl_batch_item){
		    .seq = s[i], .chunk = {.ids = g[i]->ids, .n = g[i]->n}, .logits = lg[i]};
	ok(qvl_engine_forward(e, it, 3, &err) == 0, "prefill 3 sequences together");
	for (int i = 0; i < 3; i++) {
		double d = max_abs_diff(lg[i], want[i], 151936);
		ok(d <= TOL, "%s in the batch: last logits |d| %.2e", names[i], d);
	}

	/* 16 greedy steps, one row per sequence per pass */
	int32_t gen[3][16], next[3];
	for (int step = 0; step < 16; step++) {
		for (int i = 0; i < 3; i++) {
			next[i] = qvl_argmax(lg[i], 151936);
			gen[i][step] = next[i];
			it[i].chunk = (struct qvl_chunk){.ids = &next[i], .n = 1};
		}
		if (step < 15 && qvl_engine_forward(e, it, 3, &err) < 0) {
			ok(0, "decode step %d: %s", step, err.msg);
			break;
		}
	}
	for (int i = 0; i < 3; i++)
		ok(!memcmp(gen[i], g[i]->greedy, sizeof(gen[i])),
		   "%s: 16 greedy tokens decoded in a batch equal the golden", names[i]);

	/* refused batches change nothing */
	int len0 = qvl_seq_len(s[0]), len1 = qvl_seq_len(s[1]);
	int32_t bad = 151936;
	it[1].seq = s[0];
	ok(qvl_engine_forward(e, it, 2, &err) == -EINVAL && qvl_seq_len(s[0]) == len0,
	   "same sequence twice refused: %s", err.msg);
	it[1].seq = s[1];
	it[1].chunk = (struct qvl_chunk){.ids = &bad, .n = 1};
	ok(qvl_engine_forward(e, it, 2, &err) == -EINVAL && qvl_seq_len(s[0]) == len0 &&
	       qvl_seq_len(s[1]) == len1,
	   "one bad id refuses the whole batch: %s", err.msg);

	/* 1064 rows: the batch straddles two 512-row slices and t0064 starts
	 * in the middle of the second */
	it[0] = (struct qvl_batch_item){
	    .seq = s[3], .chunk = {.ids = g[3]->ids, .n = g[3]->n}, .logits = lg[3]};
	it[1] = (struct qvl_batch_item){
	    .seq = s[4], .chunk = {.ids = g[4]->ids, .n = g[4]->n}, .logits = lg[4]};
	ok(qvl_engine_forward(e, it, 2, &err) == 0, "prefill t1000 + t0064 together");
	for (int i = 3; i < 5; i++) {
		double d = max_abs_diff(lg[i], want[i], 151936);
		ok(d <= TOL, "%s across slices: last logits |d| %.2e", names[i], d);
	}

	for (int i = 0; i < 5; i++) {
		qvl_seq_destroy(s[i]);
		free(want[i]);
		free(lg[i]);
	}
	for (size_t i = 0; i < ncases; i++)
		free(cases[i].ids);
	free(cases);
	qvl_engine_destroy(e);
	qvl_model_close(m);
	return done_testing();
}
