/* Weight matrices whose rows start off a cache line in the file (a
 * safetensors file packs its tensors after a JSON header of any length)
 * are copied aligned at load (src/engine.c, mat_align): on the tiny model,
 * whose tensors sit 32 bytes past a line, every layer matrix and the
 * output matrix must be 64-byte aligned and the engine's own copy, at both
 * precisions (the golden tests check that the logits are unchanged). */
#include "config.h"

#include <stdint.h>

#include "engine_common.h"
#include "engine_impl.h"

static void check(const struct qvl_model *m, enum qvl_precision p, const char *pn)
{
	const struct qvl_tensor *t =
	    qvl_model_find(m, "model.language_model.layers.0.mlp.up_proj.weight");
	struct qvl_engine *e = test_engine(m, NULL, 2, QVL_DT_F16, p);
	bool aligned = true, owned = true;

	if (!e || !t) {
		ok(0, "%s: engine and tensor", pn);
		return;
	}
	ok((uintptr_t)t->data % 64 != 0, "%s: the file's up_proj is off a cache line (%ju mod 64)",
	   pn, (uintmax_t)((uintptr_t)t->data % 64));
	for (int l = 0; l < e->L; l++) {
		const struct eng_layer *ly = &e->layers[l];
		const struct eng_mat *ws[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo,
					      &ly->wg, &ly->wu, &ly->wd};
		for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
			aligned = aligned && (uintptr_t)ws[i]->data % 64 == 0;
			owned = owned && ws[i]->owned;
		}
	}
	ok(aligned && (uintptr_t)e->out.data % 64 == 0,
	   "%s: every layer matrix and the output matrix start on a cache line", pn);
	ok(owned && e->out.owned, "%s: each is the engine's copy (freed with it)", pn);
	qvl_engine_destroy(e);
}

int main(void)
{
	const char *path = tiny_model_path();
	struct qvl_model *m = NULL;
	struct qvl_err err = {{0}};

	if (!path) {
		printf("1..0 # SKIP tiny model not found (QVL_SHARED)\n");
		return 0;
	}
	if (qvl_model_open(&m, path, NULL, &err) < 0) {
		ok(0, "open %s: %s", path, err.msg);
		return done_testing();
	}
	check(m, QVL_PREC_BF16, "bf16");
	check(m, QVL_PREC_EXACT, "exact");
	qvl_model_close(m);
	return done_testing();
}
