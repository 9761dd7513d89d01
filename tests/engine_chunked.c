/* Chunked prefill (what the daemon's scheduler will do): a 4096-token prompt
 * on the tiny model gives the same last-position logits whether it is
 * prefilled as one chunk, as 1000 + 1000 + 2096, or as 512-token chunks,
 * and a sequence refuses input past its context without changing. */
#include "config.h"

#include "engine_common.h"

#define N 4096

static int prefill(struct qvl_engine *e, const int32_t *ids, const size_t *parts, float *logits)
{
	struct qvl_err err = {{0}};
	struct qvl_seq *s;
	size_t off = 0;
	int rc = qvl_seq_create(e, N, &s, &err);

	for (int i = 0; rc >= 0 && off < N; i++) {
		struct qvl_chunk c = {.ids = ids + off, .n = parts[i]};
		rc = qvl_seq_forward(e, s, &c, logits, false, &err);
		off += parts[i];
	}
	if (rc >= 0 && qvl_seq_len(s) != N)
		rc = -EINVAL;
	if (rc < 0)
		diag("prefill: %s", err.msg);
	qvl_seq_destroy(s);
	return rc;
}

int main(void)
{
	const char *model = tiny_model_path();
	struct qvl_err err = {{0}};
	struct qvl_model *m;
	struct qvl_engine *e;
	struct qvl_engine_opts o = {
	    .threads = 2, .kv_dtype = QVL_DT_F32, .precision = QVL_PREC_EXACT};
	static int32_t ids[N];
	static size_t whole[] = {N}, three[] = {1000, 1000, 2096}, by512[8], odd[] = {1, 4095};
	uint64_t x = 20251122;

	if (!model)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	if (qvl_model_open(&m, model, NULL, &err) < 0 || qvl_engine_create(&e, m, &o, &err) < 0) {
		ok(0, "open %s: %s", model, err.msg);
		return done_testing();
	}
	size_t V = (size_t)m->config.text.vocab_size;
	float *ref = malloc(V * sizeof(float)), *got = malloc(V * sizeof(float));
	for (int i = 0; i < N; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		ids[i] = (int32_t)((x >> 33) % 151643);
	}
	for (int i = 0; i < 8; i++)
		by512[i] = 512;

	ok(prefill(e, ids, whole, ref) == 0, "4096 tokens in one chunk");
	const struct {
		const char *name;
		const size_t *parts;
	} runs[] = {{"1000 + 1000 + 2096", three}, {"8 x 512", by512}, {"1 + 4095", odd}};
	for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		int rc = prefill(e, ids, runs[r].parts, got);
		double d = max_abs_diff(ref, got, V);
		/* the same rows meet the same weights; only the matmul's row
		 * blocking may differ, so agreement is to f32 rounding */
		ok(rc == 0 && d <= 1e-4, "chunks %s: last logits match one chunk (max |d| %.2e)",
		   runs[r].name, d);
	}

	/* context full: the chunk is refused and the sequence keeps its state */
	struct qvl_seq *s;
	struct qvl_chunk c = {.ids = ids, .n = 8};
	int rc = qvl_seq_create(e, 10, &s, &err);
	if (rc >= 0)
		rc = qvl_seq_forward(e, s, &c, got, false, &err);
	ok(rc == 0 && qvl_seq_len(s) == 8, "8 of 10 positions filled");
	c.n = 3;
	rc = qvl_seq_forward(e, s, &c, got, false, &err);
	ok(rc == -ENOSPC && qvl_seq_len(s) == 8, "3 more refused (%s), length still 8", err.msg);
	int32_t bad = (int32_t)V;
	struct qvl_chunk cb = {.ids = &bad, .n = 1};
	rc = qvl_seq_forward(e, s, &cb, got, false, &err);
	ok(rc == -EINVAL && qvl_seq_len(s) == 8, "id %d refused: %s", bad, err.msg);
	struct qvl_chunk ce = {.ids = ids, .n = 0};
	rc = qvl_seq_forward(e, s, &ce, got, false, &err);
	ok(rc == -EINVAL && qvl_seq_len(s) == 8, "empty chunk refused: %s", err.msg);
	qvl_seq_destroy(s);

	free(ref);
	free(got);
	qvl_engine_destroy(e);
	qvl_model_close(m);
	return done_testing();
}
