/* qvlctl convert against llama.cpp's own files: the unquantized conversion
 * of qvl-tiny must hold exactly the tensors (names, shapes, types, bytes)
 * and keys (names, types, values: the tokenizer's tokens, merges, token
 * types, special ids and chat template included) that convert_hf_to_gguf.py
 * wrote into $QVL_SHARED/models/qvl-tiny-gguf (the text model as bf16, the
 * mmproj as f32); then GGUF -> GGUF conversions keep every tensor's values
 * and every key, with general.file_type set as llama-quantize sets it. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "gguf.h"
#include "gguf_impl.h"
#include "tap.h"

static char tmpdir[4096];

/* Serialized value of key i (type + bytes), for comparison. */
static void kv_blob(const struct gguf_file *f, size_t i, struct gguf_w *w)
{
	gguf_w_init(w);
	gguf_w_copy_kv(w, f, i);
}

static bool kv_equal(const struct gguf_file *a, size_t i, const struct gguf_file *b, size_t j)
{
	struct gguf_w x, y;
	bool eq;

	kv_blob(a, i, &x);
	kv_blob(b, j, &y);
	eq = !x.rc && !y.rc && x.kv[0].len == y.kv[0].len &&
	     !memcmp(x.kv[0].val, y.kv[0].val, x.kv[0].len);
	gguf_w_free(&x);
	gguf_w_free(&y);
	return eq;
}

/* Differences in keys, ignoring `skip` (NULL-terminated) keys. */
static int diff_keys(const struct gguf_file *a, const struct gguf_file *b, const char *const *skip)
{
	int nd = 0;

	for (int pass = 0; pass < 2; pass++) {
		const struct gguf_file *x = pass ? b : a, *y = pass ? a : b;

		for (size_t i = 0; i < gguf_n_kv(x); i++) {
			const char *k = gguf_kv_key(x, i);
			long j = gguf_find_key(y, k);
			bool skipped = false;

			for (int s = 0; skip && skip[s]; s++)
				skipped |= !strcmp(skip[s], k);
			if (skipped)
				continue;
			if (j < 0) {
				if (nd++ < 5)
					diag("key %s only in %s", k, gguf_what(x));
			} else if (!pass && !kv_equal(x, i, y, (size_t)j)) {
				if (nd++ < 5)
					diag("key %s: type or value differs (%s vs %s)", k,
					     gguf_type_name(gguf_kv_type(x, i)),
					     gguf_type_name(gguf_kv_type(y, (size_t)j)));
			}
		}
	}
	return nd;
}

/* Differences in tensors: names, shapes, types and (if bytes) data. */
static int diff_tensors(const struct gguf_file *a, const struct gguf_file *b, bool bytes)
{
	int nd = 0;

	if (gguf_n_tensors(a) != gguf_n_tensors(b)) {
		diag("%zu tensors vs %zu", gguf_n_tensors(a), gguf_n_tensors(b));
		nd++;
	}
	for (size_t i = 0; i < gguf_n_tensors(a); i++) {
		const struct gguf_tensor_info *x = gguf_tensor(a, i);
		const struct gguf_tensor_info *y = gguf_find_tensor(b, x->name);
		const char *why = NULL;

		if (!y)
			why = "missing";
		else if (x->n_dims != y->n_dims || memcmp(x->ne, y->ne, sizeof(x->ne)))
			why = "shape differs";
		else if (x->ggml_type != y->ggml_type)
			why = "type differs";
		else if (bytes && memcmp(x->data, y->data, x->nbytes))
			why = "data differs";
		if (why && nd++ < 5)
			diag("tensor %s: %s", x->name, why);
	}
	return nd;
}

static bool same_order(const struct gguf_file *a, const struct gguf_file *b)
{
	if (gguf_n_kv(a) != gguf_n_kv(b) || gguf_n_tensors(a) != gguf_n_tensors(b))
		return false;
	for (size_t i = 0; i < gguf_n_kv(a); i++)
		if (strcmp(gguf_kv_key(a, i), gguf_kv_key(b, i)))
			return false;
	for (size_t i = 0; i < gguf_n_tensors(a); i++)
		if (strcmp(gguf_tensor(a, i)->name, gguf_tensor(b, i)->name))
			return false;
	return true;
}

static bool same_bytes(const char *p, const char *q)
{
	struct qvl_map a, b;
	bool eq = false;

	if (qvl_map_file(&a, p, NULL))
		return false;
	if (!qvl_map_file(&b, q, NULL)) {
		eq = a.size == b.size && !memcmp(a.data, b.data, a.size);
		qvl_unmap(&b);
	}
	qvl_unmap(&a);
	return eq;
}

static int convert(const char *model, const char *type, const char *out, const char *mmproj)
{
	struct cv_opts o = {
	    .model = model, .out = out, .out_mmproj = mmproj, .preset = cv_preset_find(type)};
	struct qvl_err err = {{0}};
	struct cv_result r;
	int rc = cv_convert(&o, &r, &err);

	if (rc)
		diag("convert %s --type %s: %s", model, type, err.msg);
	return rc;
}

static char *path(const char *name)
{
	static char buf[8][4200];
	static int k;
	char *p = buf[k++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, name);
	return p;
}

static struct gguf_file *open_or_diag(const char *p)
{
	struct gguf_file *f = NULL;
	struct qvl_err err = {{0}};

	if (gguf_open(&f, p, &err))
		diag("%s", err.msg);
	return f;
}

/* The two files must agree on keys and tensors; with `exact`, also on the
 * order of both and on every byte of the file. */
static void compare(const char *what, const char *got, const char *want, bool exact)
{
	struct gguf_file *a = open_or_diag(got), *b = open_or_diag(want);

	if (!ok(a && b, "%s: both files parse", what)) {
		gguf_close(a);
		gguf_close(b);
		return;
	}
	ok(diff_keys(a, b, NULL) == 0, "%s: same keys, types and values (%zu keys)", what,
	   gguf_n_kv(b));
	ok(diff_tensors(a, b, true) == 0, "%s: same tensors: names, shapes, types, bytes (%zu)",
	   what, gguf_n_tensors(b));
	if (exact) {
		ok(same_order(a, b), "%s: keys and tensors in the same order", what);
		ok(same_bytes(got, want), "%s: byte-identical file", what);
	}
	gguf_close(a);
	gguf_close(b);
}

int main(void)
{
	const char *shared = test_env("QVL_SHARED", "../shared");
	char model[4096], gdir[4096], gtext[4200], gproj[4200];
	static const char *const moved[] = {"general.file_type", NULL};
	struct gguf_file *a, *b;

	snprintf(model, sizeof(model), "%s/models/qvl-tiny", shared);
	snprintf(gdir, sizeof(gdir), "%s/models/qvl-tiny-gguf", shared);
	snprintf(gtext, sizeof(gtext), "%s/qvl-tiny-bf16.gguf", gdir);
	snprintf(gproj, sizeof(gproj), "%s/mmproj-qvl-tiny-f32.gguf", gdir);
	if (access(gtext, R_OK) || access(gproj, R_OK) || access(model, R_OK))
		skip_all("no %s and %s (set QVL_SHARED)", model, gdir);
	snprintf(tmpdir, sizeof(tmpdir), "%s/tests/tmp", test_env("QVL_BUILDDIR", "."));
	mkdir(tmpdir, 0777);
	snprintf(tmpdir + strlen(tmpdir), sizeof(tmpdir) - strlen(tmpdir), "/convert_match.%d",
		 (int)getpid());
	if (mkdir(tmpdir, 0777))
		skip_all("cannot create %s", tmpdir);
	plan(21);

	/* HF -> GGUF, against llama.cpp's converter */
	ok(convert(model, "bf16", path("t-bf16.gguf"), path("m-bf16.gguf")) == 0,
	   "convert qvl-tiny --type bf16 --mmproj");
	compare("text bf16 vs convert_hf_to_gguf.py", path("t-bf16.gguf"), gtext, true);
	ok(convert(model, "f32", path("t-f32.gguf"), path("m-f32.gguf")) == 0,
	   "convert qvl-tiny --type f32 --mmproj");
	compare("mmproj f32 vs convert_hf_to_gguf.py", path("m-f32.gguf"), gproj, true);

	/* GGUF -> GGUF: the directory holding llama.cpp's text + mmproj */
	ok(convert(gdir, "bf16", path("g-bf16.gguf"), NULL) == 0,
	   "convert the GGUF directory to bf16");
	a = open_or_diag(path("g-bf16.gguf"));
	b = open_or_diag(gtext);
	ok(a && b && diff_tensors(a, b, true) == 0 && diff_keys(a, b, NULL) == 0,
	   "GGUF bf16 -> bf16: every tensor and key unchanged");
	ok(a && !strcmp(gguf_kv_key(a, gguf_n_kv(a) - 1), "general.file_type"),
	   "GGUF -> GGUF: general.file_type set last, as llama-quantize does");
	gguf_close(a);
	gguf_close(b);
	ok(convert(gtext, "f32", path("g-f32.gguf"), NULL) == 0, "convert the text .gguf to f32");
	a = open_or_diag(path("g-f32.gguf"));
	b = open_or_diag(path("t-f32.gguf"));
	ok(a && b && diff_tensors(a, b, true) == 0,
	   "GGUF bf16 -> f32 holds the same tensors as HF -> f32");
	ok(a && b && diff_keys(a, b, moved) == 0, "... and the same keys");
	ok(convert(gdir, "f16", path("g-f16.gguf"), path("gm-f16.gguf")) == 0,
	   "convert the GGUF directory to f16 with its mmproj");
	gguf_close(a);
	gguf_close(b);
	a = open_or_diag(path("gm-f16.gguf"));
	b = open_or_diag(gproj);
	ok(a && b && diff_tensors(a, b, false) != 0 && diff_keys(a, b, moved) == 0,
	   "GGUF mmproj f32 -> f16: types change, keys do not (but file_type)");
	ok(a && gguf_find_tensor(a, "v.patch_embd.weight.1") &&
	       gguf_find_tensor(a, "v.patch_embd.weight.1")->ggml_type == 1 &&
	       gguf_find_tensor(a, "v.position_embd.weight")->ggml_type == 0,
	   "mmproj f16: patch embedding halves F16, position embedding F32");
	gguf_close(a);
	gguf_close(b);

	for (int i = 0; i < 8; i++) {
		static const char *const names[] = {"t-bf16.gguf", "m-bf16.gguf", "t-f32.gguf",
						    "m-f32.gguf",  "g-bf16.gguf", "g-f32.gguf",
						    "g-f16.gguf",  "gm-f16.gguf"};
		unlink(path(names[i]));
	}
	rmdir(tmpdir);
	return done_testing();
}
