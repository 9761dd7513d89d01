/* The fuzz targets of the tokenizer need the Qwen3 tokenizer loaded once:
 * from $QVL_TOKENIZER_JSON, or $QVL_TOKENIZER_DIR/tokenizer.json. Without it
 * the targets do nothing (and say so once). */
#ifndef QVL_TOK_FUZZ_LOAD_H
#define QVL_TOK_FUZZ_LOAD_H

#include <stdio.h>
#include <stdlib.h>

#include "tokenizer.h"
#include "util.h"

static const struct qvl_tokenizer *tok_fuzz_tokenizer(void)
{
	static struct qvl_tokenizer *t;
	static int tried;
	if (tried)
		return t;
	tried = 1;
	const char *path = getenv("QVL_TOKENIZER_JSON");
	char *joined = NULL;
	if (!path || !*path) {
		const char *dir = getenv("QVL_TOKENIZER_DIR");
		if (dir && *dir)
			path = joined = qvl_path_join(dir, "tokenizer.json");
	}
	struct qvl_err err;
	if (!path || qvl_tok_load_json(&t, path, &err)) {
		fprintf(stderr,
			"fuzz: no tokenizer (set QVL_TOKENIZER_JSON or QVL_TOKENIZER_DIR)\n");
		t = NULL;
	}
	free(joined);
	return t;
}

#endif
