/* Edge cases of encoding. Expected ids come from the Hugging Face tokenizers
 * referee (tests/data/tokenizer/gen_edge.py says how edge.jsonl and
 * edge_long.jsonl were generated): empty text, every added token next to
 * letters, spaces, newlines, CJK, combining marks and punctuation (special on
 * and off), CRLF, combining marks, emoji ZWJ sequences, and 1 MB runs of one
 * character (timed). Invalid UTF-8 must be -EILSEQ naming the byte offset. */
#include "config.h"

#include <stdio.h>

#include "tok_testutil.h"

static void check_long(const struct qvl_tokenizer *t, const char *path)
{
	char *text;
	size_t len;
	struct qvl_err err;
	if (qvl_read_file(path, (size_t)1 << 20, &text, &len, &err)) {
		ok(0, "read %s: %s", path, err.msg);
		return;
	}
	char *p = text, *line;
	size_t ll;
	while (tt_line(&p, text + len, &line, &ll)) {
		struct json_doc d;
		if (json_parse(&d, line, ll, path, &err)) {
			ok(0, "%s", err.msg);
			continue;
		}
		char *nm = json_strdup(&d, json_get(&d, 0, "name"), NULL);
		size_t cl;
		char *ch = json_strdup(&d, json_get(&d, 0, "char"), &cl);
		int64_t count = 0;
		json_int64(&d, json_get(&d, 0, "count"), &count);
		char *big = malloc((size_t)count * cl);
		for (int64_t i = 0; i < count; i++)
			memcpy(big + i * (int64_t)cl, ch, cl);
		int32_t *ids;
		size_t n;
		double t0 = qvl_now();
		int rc = qvl_tok_encode(t, big, (size_t)count * cl, true, &ids, &n, &err);
		double dt = qvl_now() - t0;
		bool same = rc == 0;
		uint32_t rle = json_get(&d, 0, "expected_rle"), k = rle + 1;
		size_t pos = 0;
		for (uint32_t r = 0; same && r < d.tok[rle].count; r++, k = d.tok[k].end) {
			int64_t id, cnt;
			json_int64(&d, k + 1, &id);
			json_int64(&d, d.tok[k + 1].end, &cnt);
			for (int64_t c = 0; same && c < cnt; c++, pos++)
				same = pos < n && ids[pos] == id;
		}
		same = same && pos == n;
		ok(same, "%s: %zu bytes -> %zu ids as the referee, in %.1f ms", nm,
		   (size_t)count * cl, n, dt * 1e3);
		if (!rc)
			free(ids);
		free(big);
		free(nm);
		free(ch);
		json_free(&d);
	}
	free(text);
}

static void check_invalid(const struct qvl_tokenizer *t, const char *what, const char *s, size_t n,
			  size_t offset)
{
	int32_t *ids = (int32_t *)1;
	size_t cnt = 99;
	struct qvl_err err = {{0}};
	char want[64];
	int rc = qvl_tok_encode(t, s, n, true, &ids, &cnt, &err);
	snprintf(want, sizeof(want), "byte offset %zu ", offset);
	ok(rc == -EILSEQ && !ids && cnt == 0 && strstr(err.msg, want), "%s: -EILSEQ at %zu (%s)",
	   what, offset, err.msg);
}

int main(void)
{
	struct qvl_tokenizer *t = tt_load(NULL);
	const char *data = test_env("QVL_TESTDATA", "tests/data");
	char *edge = qvl_path_join(data, "tokenizer/edge.jsonl");
	char *lng = qvl_path_join(data, "tokenizer/edge_long.jsonl");
	int total, passed = tt_check_jsonl(t, edge, &total);
	diag("%d of %d edge cases match the referee", passed, total);
	check_long(t, lng);

	check_invalid(t, "lone continuation byte", "\x80", 1, 0);
	check_invalid(t, "continuation byte after text",
		      "abc\xBF"
		      "def",
		      7, 3);
	check_invalid(t, "overlong 2-byte /", "a\xC0\xAF", 3, 1);
	check_invalid(t, "overlong 3-byte /", "\xE0\x80\xAF", 3, 0);
	check_invalid(t, "overlong 4-byte", "xy\xF0\x80\x80\xAF", 6, 2);
	check_invalid(t, "truncated 3-byte at end", "\xE4\xB8", 2, 0);
	check_invalid(t, "truncated 4-byte before text",
		      "\xF0\x9F\x98"
		      "a",
		      4, 0);
	check_invalid(t, "surrogate U+D800", "ok \xED\xA0\x80", 6, 3);
	check_invalid(t, "past U+10FFFF", "\xF4\x90\x80\x80", 4, 0);
	check_invalid(t, "byte FF", "\xFF", 1, 0);
	check_invalid(t, "byte F5", "abcdefghij\xF5\x80\x80\x80", 14, 10);
	check_invalid(t, "invalid after special token", "<|im_start|>\xC3", 13, 12);

	int32_t *ids;
	size_t n;
	struct qvl_err err;
	ok(qvl_tok_encode(t, "", 0, true, &ids, &n, &err) == 0 && n == 0 && ids,
	   "empty text: 0 ids, a freeable array");
	free(ids);
	ok(qvl_tok_encode(t, NULL, 0, false, &ids, &n, &err) == 0 && n == 0, "NULL, 0: 0 ids");
	free(ids);
	is_int(qvl_tok_n_vocab(t), 151669, "151643 base tokens + 26 added");
	is_int(qvl_tok_special(t, "<|im_start|>"), 151644, "<|im_start|> id");
	is_int(qvl_tok_special(t, "<think>"), 151667, "<think> id");
	is_int(qvl_tok_special(t, "</s>"), -1, "</s> is not an added token");
	bool sp = false;
	ok(qvl_tok_is_added(t, 151655, &sp) && sp, "<|image_pad|> is added and special");
	ok(qvl_tok_is_added(t, 151667, &sp) && !sp, "<think> is added, not special");
	ok(!qvl_tok_is_added(t, 128247, NULL), "</s> (128247) is an ordinary token");
	free(edge);
	free(lng);
	qvl_tok_free(t);
	return done_testing();
}
