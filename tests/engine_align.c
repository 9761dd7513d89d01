/* Weight matrices read from a file's mapping are copied at load into
 * memory the engine owns (src/engine.c, mat_own: huge pages, rows on a
 * cache line). On the tiny model, whose safetensors tensors sit 32 bytes
 * past a line, every layer matrix and the output matrix must be 64-byte
 * aligned and the engine's own copy, at both precisions (the golden tests
 * check that the logits are unchanged). From llama.cpp's GGUF of it they
 * are copied when the engine is asked to (qvld, bench), else only those off
 * a line in the file; QVL_WEIGHT_COPY=0|1 overrides, a bad value is taken as
 * the option. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "engine_common.h"
#include "engine_impl.h"

/* Whether every layer matrix and the output matrix of e are the engine's
 * own copies. */
static bool all_owned(const struct qvl_engine *e)
{
	bool owned = e->out.owned;

	for (int l = 0; l < e->L; l++) {
		const struct eng_layer *ly = &e->layers[l];
		owned = owned && ly->wq.owned && ly->wk.owned && ly->wv.owned && ly->wo.owned &&
			ly->wg.owned && ly->wu.owned && ly->wd.owned;
	}
	return owned;
}

/* Not asked to copy, only the matrices off a cache line in the file
 * are copied (a GGUF aligns its tensors to 32 bytes): each layer matrix is
 * the engine's copy exactly when the file's tensor is off a line. */
static bool owned_iff_unaligned(const struct qvl_model *m, const struct qvl_engine *e)
{
	static const char *const names[] = {"self_attn.q_proj", "self_attn.k_proj",
					    "self_attn.v_proj", "self_attn.o_proj",
					    "mlp.gate_proj",	"mlp.up_proj",
					    "mlp.down_proj"};
	bool good = true;
	int copied = 0;

	for (int l = 0; l < e->L; l++) {
		const struct eng_layer *ly = &e->layers[l];
		const struct eng_mat *ws[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo,
					      &ly->wg, &ly->wu, &ly->wd};
		for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
			const struct qvl_tensor *t = qvl_model_findf(
			    m, "model.language_model.layers.%d.%s.weight", l, names[i]);
			bool off = t && (uintptr_t)t->data % 64 != 0;
			good = good && t && ws[i]->owned == off;
			copied += ws[i]->owned;
		}
	}
	diag("not asked to copy: %d of %d layer matrices copied (off a line in the file)",
	     copied, e->L * 7);
	return good;
}

static void check(const struct qvl_model *m, enum qvl_precision p, const char *pn)
{
	const struct qvl_tensor *t =
	    qvl_model_find(m, "model.language_model.layers.0.mlp.up_proj.weight");
	struct qvl_engine *e = test_engine(m, NULL, 2, QVL_DT_F16, p);
	bool aligned = true;

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
		for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
			aligned = aligned && (uintptr_t)ws[i]->data % 64 == 0;
	}
	ok(aligned && (uintptr_t)e->out.data % 64 == 0,
	   "%s: every layer matrix and the output matrix start on a cache line", pn);
	ok(all_owned(e), "%s: each is the engine's copy (freed with it)", pn);
	qvl_engine_destroy(e);
}

/* The GGUF: with opts.copy_weights (qvld, bench) every matrix is copied,
 * without it (one-shot commands) only those off a line; QVL_WEIGHT_COPY=0|1
 * overrides the option either way, a value that is neither leaves it. */
static void check_gguf(const char *path)
{
	static const char *const vals[] = {NULL, "0", "1", "yes"};
	struct qvl_model *m = NULL;
	struct qvl_err err = {{0}};

	if (qvl_model_open(&m, path, NULL, &err) < 0) {
		ok(0, "open %s: %s", path, err.msg);
		return;
	}
	for (int opt = 0; opt < 2; opt++)
		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			struct qvl_engine_opts o = {.threads = 2,
						    .kv_dtype = QVL_DT_F16,
						    .precision = QVL_PREC_EXACT,
						    .copy_weights = opt};
			bool want = vals[i] && !strcmp(vals[i], "0")   ? false
				    : vals[i] && !strcmp(vals[i], "1") ? true
								       : opt;
			struct qvl_engine *e;
			if (vals[i])
				setenv("QVL_WEIGHT_COPY", vals[i], 1);
			else
				unsetenv("QVL_WEIGHT_COPY");
			if (qvl_engine_create(&e, m, &o, &err) < 0) {
				ok(0, "gguf engine: %s", err.msg);
				continue;
			}
			ok((want ? all_owned(e) : owned_iff_unaligned(m, e)) &&
			       qvl_engine_copies_weights(e) == want,
			   "gguf, copy_weights %d, QVL_WEIGHT_COPY=%s: the matrices are %s", opt,
			   vals[i] ? vals[i] : "(unset)",
			   want ? "the engine's copies" : "the file's pages");
			qvl_engine_destroy(e);
		}
	unsetenv("QVL_WEIGHT_COPY");
	qvl_model_close(m);
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
	{
		char g[4200];
		snprintf(g, sizeof(g), "%s/models/qvl-tiny-gguf/qvl-tiny-bf16.gguf",
			 test_env("QVL_SHARED", "../shared"));
		check_gguf(g);
	}
	return done_testing();
}
