/* libFuzzer target: tokenizer.json loading from arbitrary bytes (seeds: tiny
 * valid tokenizers in both merge spellings). Whatever loads must encode and
 * decode a fixed text without crashing. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qvl_tokenizer *t;
	struct qvl_err err;
	if (qvl_tok_load_json_buf(&t, (const char *)data, size, "fuzz.json", &err))
		return 0;
	static const char text[] = "hello world <|im_start|> <think>'s \xe4\xb8\xad e\xcc\x81 12";
	int32_t *ids;
	size_t n, len;
	char *back;
	if (!qvl_tok_encode(t, text, sizeof(text) - 1, true, &ids, &n, &err)) {
		if (!qvl_tok_decode(t, ids, n, &back, &len, &err))
			free(back);
		free(ids);
	}
	qvl_tok_free(t);
	return 0;
}
