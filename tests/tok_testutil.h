/* Shared helpers of the tokenizer tests: load the Qwen3 tokenizer, and check a
 * JSONL file of cases ({"name", "text", "special", "expected"}: ids from a
 * reference implementation) against qvl_tok_encode. */
#ifndef QVL_TOK_TESTUTIL_H
#define QVL_TOK_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"
#include "tokenizer.h"
#include "util.h"

static inline struct qvl_tokenizer *tt_load(double *ms)
{
	const char *dir = test_env("QVL_TOKENIZER_DIR", NULL);
	if (!dir)
		skip_all("QVL_TOKENIZER_DIR not set (configure --with-tokenizer-dir)");
	char *tj = qvl_path_join(dir, "tokenizer.json");
	struct qvl_err err;
	struct qvl_tokenizer *t;
	double t0 = qvl_now();
	if (qvl_tok_load_json(&t, tj, &err))
		skip_all("cannot load %s: %s", tj, err.msg);
	if (ms)
		*ms = (qvl_now() - t0) * 1e3;
	free(tj);
	return t;
}

/* The next non-empty line of [*p, end) into line/n; false at the end. */
static inline bool tt_line(char **p, char *end, char **line, size_t *n)
{
	while (*p < end) {
		char *l = *p, *nl = memchr(l, '\n', (size_t)(end - l));
		if (!nl)
			nl = end;
		*p = nl < end ? nl + 1 : end;
		if (nl > l) {
			*line = l;
			*n = (size_t)(nl - l);
			return true;
		}
	}
	return false;
}

/* Is array token arr of d equal to ids[0..n)? *first_diff gets where not. */
static inline bool tt_ids_equal(const struct json_doc *d, uint32_t arr, const int32_t *ids,
				size_t n, size_t *first_diff)
{
	*first_diff = 0;
	if (arr == JSON_NONE || d->tok[arr].type != JSON_ARRAY)
		return false;
	uint32_t k = arr + 1;
	for (size_t i = 0; i < n && i < d->tok[arr].count; i++, k = d->tok[k].end) {
		int64_t v;
		if (json_int64(d, k, &v) || v != ids[i]) {
			*first_diff = i;
			return false;
		}
	}
	*first_diff = n < d->tok[arr].count ? n : d->tok[arr].count;
	return d->tok[arr].count == n;
}

static inline void tt_diag_ids(const char *what, const int32_t *ids, size_t n)
{
	printf("# %s:", what);
	for (size_t i = 0; i < n && i < 48; i++)
		printf(" %d", ids[i]);
	printf("%s\n", n > 48 ? " ..." : "");
}

/* One TAP line per case; returns how many matched (*total gets the count). */
static inline int tt_check_jsonl(const struct qvl_tokenizer *t, const char *path, int *total)
{
	char *text;
	size_t len;
	struct qvl_err err;
	int passed = 0;
	*total = 0;
	if (qvl_read_file(path, (size_t)64 << 20, &text, &len, &err)) {
		ok(0, "read %s: %s", path, err.msg);
		return 0;
	}
	char *p = text, *line;
	size_t ll;
	while (tt_line(&p, text + len, &line, &ll)) {
		struct json_doc d;
		(*total)++;
		if (json_parse(&d, line, ll, path, &err)) {
			ok(0, "case %d parses: %s", *total, err.msg);
			continue;
		}
		char *nm = json_strdup(&d, json_get(&d, 0, "name"), NULL);
		size_t tl = 0;
		char *tx = json_strdup(&d, json_get(&d, 0, "text"), &tl);
		bool special = true;
		uint32_t sp = json_get(&d, 0, "special");
		if (sp != JSON_NONE)
			json_bool(&d, sp, &special);
		int32_t *ids = NULL;
		size_t n = 0, diff = 0;
		int rc = tx ? qvl_tok_encode(t, tx, tl, special, &ids, &n, &err) : -EINVAL;
		uint32_t exp = json_get(&d, 0, "expected");
		bool same = !rc && tt_ids_equal(&d, exp, ids, n, &diff);
		passed += ok(same, "%s (special %s)", nm ? nm : "?", special ? "on" : "off");
		if (!same) {
			diag("rc %d, %zu ids; first difference at %zu", rc, n, diff);
			tt_diag_ids("got", ids, n);
		}
		free(ids);
		free(nm);
		free(tx);
		json_free(&d);
	}
	free(text);
	return passed;
}

#endif
