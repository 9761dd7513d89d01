/* A forward cut between layers (qvl_split_*, engine.h): the logits, the
 * argmax and the sequence after a split run equal those of one
 * qvl_engine_forward() of the same rows bit for bit, while other
 * sequences' forwards run between its calls (they reuse the engine's
 * scratch); an abandoned split leaves its sequence as it was; too many
 * rows are refused. Tiny model, exact / f32 and bf16 / f16. */
#include "config.h"

#include "engine_common.h"

#define V 151936

/* 37 prompt ids on seq ref with one forward, and on seq sp cut by `step`
 * layers with a 5-id forward of seq other between the calls; then one more
 * decode row on each, compared too. */
static void compare(struct qvl_engine *e, int step, const char *what)
{
	struct qvl_err err = {{0}};
	struct qvl_seq *ref, *sp, *other;
	static int32_t ids[37], oid[5];
	static float la[V], lb[V], lo[V];
	int32_t aa = -1, ab = -2, calls = 0, rc = 0;

	rand_ids(ids, 37, 11);
	rand_ids(oid, 5, 12);
	qvl_seq_create(e, 256, &ref, &err);
	qvl_seq_create(e, 256, &sp, &err);
	qvl_seq_create(e, 256, &other, &err);
	struct qvl_batch_item a = {
	    .seq = ref, .chunk = {.ids = ids, .n = 37}, .logits = la, .argmax = &aa};
	struct qvl_batch_item b = a;
	b.seq = sp;
	b.logits = lb;
	b.argmax = &ab;
	ok(qvl_engine_forward(e, &a, 1, &err) == 0, "%s: reference forward", what);
	struct qvl_split *s;
	ok(qvl_split_begin(e, &b, 1, &s, &err) == 0 && qvl_split_rows(s) == 37,
	   "%s: split begins (%s)", what, err.msg);
	while (rc == 0 && calls < 1000) {
		struct qvl_batch_item o = {
		    .seq = other, .chunk = {.ids = oid, .n = 5}, .logits = lo};
		rc = qvl_split_run(s, step, &err);
		calls++;
		if (rc == 0 && qvl_engine_forward(e, &o, 1, &err) < 0)
			break;
		if (qvl_seq_len(other) > 200)
			qvl_seq_reset(other);
	}
	ok(rc == 1 && qvl_split_layers_left(s) == 0, "%s: done after %d calls", what, calls);
	qvl_split_destroy(s);
	ok(qvl_seq_len(sp) == 37 && !memcmp(la, lb, sizeof(la)) && aa == ab,
	   "%s: logits and argmax bit for bit those of one forward (argmax %d)", what, ab);
	/* the next row sees the same cache */
	int32_t next = aa;
	a.chunk = b.chunk = (struct qvl_chunk){.ids = &next, .n = 1};
	ok(qvl_engine_forward(e, &a, 1, &err) == 0 && qvl_engine_forward(e, &b, 1, &err) == 0 &&
	       !memcmp(la, lb, sizeof(la)),
	   "%s: the next decode row equal too", what);
	qvl_seq_destroy(ref);
	qvl_seq_destroy(sp);
	qvl_seq_destroy(other);
}

int main(void)
{
	const char *model = tiny_model_path();
	struct qvl_err err = {{0}};
	struct qvl_model *m;

	if (!model)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	if (qvl_model_open(&m, model, NULL, &err) < 0) {
		ok(0, "open %s: %s", model, err.msg);
		return done_testing();
	}
	struct qvl_engine *e = test_engine(m, NULL, 2, QVL_DT_F32, QVL_PREC_EXACT);
	if (!e)
		return done_testing();
	compare(e, 1, "exact, 1 layer a call");
	compare(e, 2, "exact, 2 layers a call");
	compare(e, 0, "exact, all layers in one call");

	/* abandoned half way: the sequence is unchanged, then computes the
	 * same as a fresh one */
	struct qvl_seq *s1, *s2;
	static int32_t ids[20];
	static float l1[V], l2[V];
	struct qvl_split *sp;
	rand_ids(ids, 20, 3);
	qvl_seq_create(e, 64, &s1, &err);
	qvl_seq_create(e, 64, &s2, &err);
	struct qvl_batch_item it = {.seq = s1, .chunk = {.ids = ids, .n = 20}, .logits = l1};
	ok(qvl_split_begin(e, &it, 1, &sp, &err) == 0 && qvl_split_run(sp, 1, &err) == 0,
	   "a split runs its first layer");
	qvl_split_destroy(sp);
	ok(qvl_seq_len(s1) == 0, "destroyed before its end: the sequence is still empty");
	struct qvl_batch_item it2 = {.seq = s2, .chunk = {.ids = ids, .n = 20}, .logits = l2};
	ok(qvl_engine_forward(e, &it, 1, &err) == 0 && qvl_engine_forward(e, &it2, 1, &err) == 0 &&
	       !memcmp(l1, l2, sizeof(l1)),
	   "then its forward equals a fresh sequence's");
	static int32_t many[513];
	struct qvl_seq *big;
	qvl_seq_create(e, 1024, &big, &err);
	struct qvl_batch_item ib = {.seq = big, .chunk = {.ids = many, .n = 513}};
	ok(qvl_split_begin(e, &ib, 1, &sp, &err) == -E2BIG && !sp && qvl_seq_len(big) == 0,
	   "513 rows refused: %s", err.msg);
	qvl_seq_destroy(big);
	qvl_seq_destroy(s1);
	qvl_seq_destroy(s2);
	qvl_engine_destroy(e);

	e = test_engine(m, NULL, 2, QVL_DT_F16, QVL_PREC_BF16);
	if (e) {
		compare(e, 1, "bf16/f16, 1 layer a call");
		qvl_engine_destroy(e);
	}
	qvl_model_close(m);
	return done_testing();
}
