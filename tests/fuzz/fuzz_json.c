/* libFuzzer target: the JSON parser on arbitrary bytes, then a full walk of
 * whatever it accepted (every accessor on every token). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_doc d;
	struct qvl_err e;
	char buf[64];

	if (json_parse(&d, (const char *)data, size, "fuzz.json", &e))
		return 0;
	for (uint32_t i = 0; i < d.ntok; i++) {
		int64_t iv;
		double dv;
		bool bv;
		(void)json_int64(&d, i, &iv);
		(void)json_double(&d, i, &dv);
		(void)json_bool(&d, i, &bv);
		(void)json_str(&d, i, buf, sizeof(buf));
		free(json_strdup(&d, i, NULL));
		(void)json_get(&d, i, "a");
		(void)json_at(&d, i, 1);
		if (d.tok[i].end <= i || d.tok[i].end > d.ntok)
			abort(); /* structural invariant broken */
	}
	json_free(&d);
	return 0;
}
