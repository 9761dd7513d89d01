/* The vocabulary read from a text GGUF (tokenizer.ggml.*) must encode the
 * golden cases exactly like tokenizer.json does. The exception is documented
 * in the golden README (cause 2): GGUF types the non-special <|fim_*|>,
 * <|repo_name|>, <|file_sep|> CONTROL, so with special off they are text; for
 * those cases the llama.cpp ids (same GGUF semantics) are expected instead. */
#include "config.h"

#include <stdio.h>

#include "gguf.h"
#include "tok_testutil.h"

static bool cause2(const char *name)
{
	static const char *const names[] = {"special_all_concat_nospecial",
					    "special_all_spaced_nospecial", "special_fim_nospecial",
					    "special_repo_file_nospecial"};
	for (size_t i = 0; i < 4; i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

int main(void)
{
	const char *shared = test_env("QVL_SHARED", NULL);
	if (!shared)
		skip_all("QVL_SHARED not set");
	char *path = qvl_path_join(shared, "models/qvl-tiny-gguf/qvl-tiny-bf16.gguf");
	struct qvl_err err;
	struct gguf_file *g;
	if (gguf_open(&g, path, &err))
		skip_all("cannot open %s: %s", path, err.msg);
	struct qvl_tokenizer *t;
	double t0 = qvl_now();
	if (qvl_tok_load_gguf(&t, g, &err)) {
		ok(0, "load the GGUF vocabulary: %s", err.msg);
		return done_testing();
	}
	diag("GGUF vocabulary loaded in %.1f ms", (qvl_now() - t0) * 1e3);
	is_int(qvl_tok_n_vocab(t), 151669, "151669 ids (the [PAD] fillers left out)");
	is_int(qvl_tok_special(t, "<|im_start|>"), 151644, "<|im_start|>");
	bool sp = false;
	ok(qvl_tok_is_added(t, 151667, &sp) && !sp, "<think> (USER_DEFINED) is not special");
	ok(qvl_tok_is_added(t, 151655, &sp) && sp, "<|image_pad|> (CONTROL) is special");

	char *cases =
	    qvl_path_join(test_env("QVL_TESTDATA", "tests/data"), "tokenizer/cases.jsonl");
	char *text;
	size_t len;
	if (qvl_read_file(cases, (size_t)64 << 20, &text, &len, &err)) {
		ok(0, "read %s", cases);
		return done_testing();
	}
	int total = 0, passed = 0, alt = 0;
	char *p = text, *line;
	size_t ll;
	while (tt_line(&p, text + len, &line, &ll)) {
		struct json_doc d;
		if (json_parse(&d, line, ll, cases, &err))
			continue;
		total++;
		char *nm = json_strdup(&d, json_get(&d, 0, "name"), NULL);
		size_t tl, n, diff;
		char *tx = json_strdup(&d, json_get(&d, 0, "text"), &tl);
		bool special = true;
		json_bool(&d, json_get(&d, 0, "special"), &special);
		int32_t *ids;
		bool c2 = nm && cause2(nm);
		uint32_t exp = json_get(&d, 0, c2 ? "ids_llamacpp" : "expected");
		int rc = qvl_tok_encode(t, tx, tl, special, &ids, &n, &err);
		bool same = !rc && tt_ids_equal(&d, exp, ids, n, &diff);
		passed += same;
		alt += c2 && same;
		if (!same)
			diag("%s differs", nm);
		if (!rc)
			free(ids);
		free(nm);
		free(tx);
		json_free(&d);
	}
	ok(total == 213 && passed == total,
	   "GGUF vocabulary: %d of %d golden cases as expected (%d of them the 4 cause-2 cases, "
	   "compared with llama.cpp)",
	   passed, total, alt);
	free(text);
	free(cases);
	free(path);
	qvl_tok_free(t);
	gguf_close(g);
	return done_testing();
}
