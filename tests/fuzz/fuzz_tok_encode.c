/* libFuzzer target: the encoder on arbitrary bytes. Byte 0 chooses
 * parse_special; the rest is the text. Never crashes; invalid UTF-8 is
 * -EILSEQ at the first bad byte; for valid input, decode(encode(x)) is x
 * itself when x is ASCII (NFC cannot change it), and always re-encodes to
 * the same ids (encoding is idempotent through NFC). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tok_fuzz_load.h"
#include "tok_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct qvl_tokenizer *t = tok_fuzz_tokenizer();
	if (!t || size == 0)
		return 0;
	bool special = data[0] & 1;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	int32_t *ids, *ids2;
	size_t nids, nids2, len;
	char *back;
	struct qvl_err err;
	int rc = qvl_tok_encode(t, s, n, special, &ids, &nids, &err);
	size_t bad = tok_utf8_invalid_at((const uint8_t *)s, n);
	if (rc) {
		if (rc != -EILSEQ || bad == n)
			abort(); /* only invalid UTF-8 may fail */
		return 0;
	}
	if (bad != n || qvl_tok_decode(t, ids, nids, &back, &len, &err))
		abort();
	bool ascii = true;
	for (size_t i = 0; i < n; i++)
		ascii = ascii && !(s[i] & 0x80);
	if (ascii && (len != n || memcmp(back, s, n)))
		abort();
	if (tok_utf8_invalid_at((const uint8_t *)back, len) != len)
		abort();
	if (qvl_tok_encode(t, back, len, special, &ids2, &nids2, &err) || nids2 != nids ||
	    memcmp(ids, ids2, nids * sizeof(*ids)))
		abort();
	free(ids2);
	free(back);
	free(ids);
	return 0;
}
