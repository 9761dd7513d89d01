/* JSON parser: accepts what RFC 8259 allows, rejects the rest with a message
 * that names the input and the position, and walks documents correctly. */
#include <string.h>

#include "json.h"
#include "tap.h"
#include "util.h"

static int parses(const char *s)
{
	struct json_doc d;
	struct qvl_err e;
	int rc = json_parse(&d, s, strlen(s), "t.json", &e);
	if (!rc)
		json_free(&d);
	return rc == 0;
}

int main(void)
{
	static const char *good[] = {
		"0", "-0", "1.5e-3", "-12E+2", "true", "false", "null", "\"\"", "[]", "{}",
		" [1, 2 ,3 ] ", "{\"a\":{\"b\":[true,null]}}", "\"\\u00e9\\ud83d\\ude00\\n\\/\"",
		"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
	};
	static const char *bad[] = {
		"",	   "01",       "1.",	  ".5",	      "1e",	   "+1",     "[1,]",
		"{\"a\"}", "{\"a\":1,}", "{1:2}", "[1 2]",   "\"abc",	   "\"\\x\"", "\"\\ud800\"",
		"\"\\udc00\"", "\"a\x01\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
		"\"\xe2\x82\"", "tru", "nul", "[1]x", "\xef\xbb\xbf{}", "{\"a\":1 \"b\":2}",
	};
	struct json_doc d;
	struct qvl_err e;
	int64_t iv;
	double dv;
	char buf[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(parses(good[i]), "accepts %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!parses(bad[i]), "rejects bad input #%zu", i);

	/* deep nesting is an error, not a stack overflow */
	{
		static char deep[4001];
		memset(deep, '[', 4000);
		ok(json_parse(&d, deep, 4000, "deep.json", &e) == -EINVAL &&
			   strstr(e.msg, "deep.json") && strstr(e.msg, "nesting"),
		   "deep nesting rejected: %s", e.msg);
	}

	/* error message names the file, line and column */
	ok(json_parse(&d, "{\n  \"a\": tru\n}", 14, "config.json", &e) == -EINVAL &&
		   strstr(e.msg, "config.json") && strstr(e.msg, "line 2 column 8"),
	   "message names file and position: %s", e.msg);

	/* walking */
	const char *doc = "{\"n\": 42, \"x\": -1.25, \"s\": \"a\\tb\", \"arr\": [10, [1, 2], {\"k\": 3}, 40],"
			  " \"big\": 9223372036854775807, \"over\": 9223372036854775808, \"f\": 2.0}";
	is_int(json_parse(&d, doc, strlen(doc), "w.json", &e), 0, "parses object");
	ok(json_int64(&d, json_get(&d, 0, "n"), &iv) == 0 && iv == 42, "int member");
	ok(json_double(&d, json_get(&d, 0, "x"), &dv) == 0 && dv == -1.25, "double member");
	ok(json_str(&d, json_get(&d, 0, "s"), buf, sizeof(buf)) == 3 && !strcmp(buf, "a\tb"),
	   "escaped string decodes");
	ok(json_str_eq(&d, json_get(&d, 0, "s"), "a\tb", 3), "str_eq on escaped string");
	uint32_t arr = json_get(&d, 0, "arr");
	is_int(d.tok[arr].count, 4, "array count");
	ok(json_int64(&d, json_at(&d, arr, 3), &iv) == 0 && iv == 40, "element after nested containers");
	ok(json_int64(&d, json_get(&d, json_at(&d, arr, 2), "k"), &iv) == 0 && iv == 3, "nested object");
	ok(json_at(&d, arr, 4) == JSON_NONE, "index past end");
	ok(json_get(&d, 0, "missing") == JSON_NONE, "missing key");
	ok(json_int64(&d, json_get(&d, 0, "big"), &iv) == 0 && iv == INT64_MAX, "INT64_MAX");
	ok(json_int64(&d, json_get(&d, 0, "over"), &iv) == -ERANGE, "overflow detected");
	ok(json_int64(&d, json_get(&d, 0, "f"), &iv) == -EINVAL, "2.0 is not an integer");
	json_free(&d);

	/* the real tokenizer.json parses quickly */
	const char *dir = test_env("QVL_TOKENIZER_DIR", NULL);
	if (dir) {
		char *path = qvl_path_join(dir, "tokenizer.json"), *text;
		size_t len;
		if (qvl_read_file(path, 64u << 20, &text, &len, &e) == 0) {
			double t0 = qvl_now();
			int rc = json_parse(&d, text, len, path, &e);
			double dt = qvl_now() - t0;
			ok(rc == 0, "tokenizer.json parses (%zu bytes, %u values, %.1f ms)", len,
			   d.ntok, dt * 1e3);
			json_free(&d);
			free(text);
		} else {
			skip(1, "%s", e.msg);
		}
		free(path);
	} else {
		skip(1, "QVL_TOKENIZER_DIR not set");
	}
	return done_testing();
}
