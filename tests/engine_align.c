/* The weight-copy policy (src/weight_copy.h): an engine asked to copy
 * (opts.copy_weights: qvld, bench, --copy-weights) copies every weight
 * matrix its file's mapping holds into memory it owns (src/engine.c,
 * mat_own: huge pages, rows on a cache line); one not asked copies none
 * (a matrix converted to a kernel's layout, bf16 panels, is the engine's either way),
 * whatever the file's alignment: the kernels read the mapping (the golden
 * tests check that the logits are the same either way). On the tiny model,
 * whose safetensors tensors sit 32 bytes past a line, and on llama.cpp's
 * GGUF of it (32-byte aligned), at both precisions; QVL_WEIGHT_COPY=0|1
 * overrides the option either way, a value that is neither leaves it. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "engine_common.h"
#include "engine_impl.h"
#include "../simd/qrepack.h"

/* The layer matrices and the output matrix of e. */
static size_t mats(const struct qvl_engine *e, const struct eng_mat **out, size_t cap)
{
	size_t n = 0;

	for (int l = 0; l < e->L; l++) {
		const struct eng_layer *ly = &e->layers[l];
		const struct eng_mat *ws[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo,
					      &ly->wg, &ly->wu, &ly->wd};
		for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]) && n < cap; i++)
			out[n++] = ws[i];
	}
	if (n < cap)
		out[n++] = &e->out;
	return n;
}

/* Every matrix the engine's copy on a cache line (want), or none its copy,
 * each where the file's mapping holds it (!want). */
static bool copied(const struct qvl_model *m, const struct qvl_engine *e, bool want)
{
	const struct eng_mat *ws[7 * 64 + 1];
	size_t n = mats(e, ws, sizeof(ws) / sizeof(ws[0])), owned = 0;
	bool good = n == (size_t)e->L * 7 + 1;

	for (size_t i = 0; i < n; i++) {
		/* a matrix in a kernel's layout (bf16 panels under --precision
		 * bf16, simd/qrepack.h) is a conversion the engine owns, asked
		 * to copy or not: the policy is about the file's layout */
		bool conv = ws[i]->type == QVL_DT_BF16_P16 || qvl_dtype_is_repacked(ws[i]->type);

		owned += ws[i]->owned;
		good = good && ws[i]->owned == (want || conv) &&
		       (want || conv ? (uintptr_t)ws[i]->data % 64 == 0
				     : qvl_model_file_page(m, ws[i]->data));
	}
	diag("copy %s: %zu of %zu matrices the engine's copies", want ? "asked" : "not asked",
	     owned, n);
	return good;
}

/* The tiny model's safetensors: off a line in the file, the matrices are
 * read there unless the engine is asked to copy. */
static void check(const struct qvl_model *m, enum qvl_precision p, const char *pn)
{
	const struct qvl_tensor *t =
	    qvl_model_find(m, "model.language_model.layers.0.mlp.up_proj.weight");

	ok(t && (uintptr_t)t->data % 64 != 0,
	   "%s: the file's up_proj is off a cache line (%ju mod 64)", pn,
	   (uintmax_t)(t ? (uintptr_t)t->data % 64 : 0));
	for (int copy = 0; copy < 2; copy++) {
		struct qvl_engine_opts o = {
		    .threads = 2, .kv_dtype = QVL_DT_F16, .precision = p, .copy_weights = copy};
		struct qvl_err err = {{0}};
		struct qvl_engine *e;

		if (qvl_engine_create(&e, m, &o, &err) < 0) {
			ok(0, "%s engine: %s", pn, err.msg);
			continue;
		}
		ok(copied(m, e, copy) && qvl_engine_copies_weights(e) == copy,
		   copy ? "%s, asked: every layer matrix and the output matrix are the engine's "
			  "copies, on a cache line"
			: "%s, not asked: every matrix is read where the file's mapping holds it, "
			  "off a line",
		   pn);
		qvl_engine_destroy(e);
	}
}

/* The GGUF: copy_weights 0 and 1 under each QVL_WEIGHT_COPY value. */
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
			ok(copied(m, e, want) && qvl_engine_copies_weights(e) == want,
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
