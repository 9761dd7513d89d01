/* libFuzzer target: the streaming detokenizer on arbitrary id streams (each
 * 3 input bytes make one id, some outside the vocabulary). Every push's
 * output is valid UTF-8; unknown ids are -EINVAL and change nothing; when
 * the concatenated bytes of the known ids are valid UTF-8, the stream gives
 * exactly those bytes. */
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
	if (!t)
		return 0;
	size_t nid = size / 3;
	int32_t *ids = malloc((nid + 1) * sizeof(*ids));
	size_t cap = 3 * (qvl_tok_max_piece(t) + 8);
	char *buf = malloc(cap), *all = malloc(nid * cap + 4);
	size_t nknown = 0, o = 0;
	struct qvl_detok d;
	qvl_detok_init(&d, t);
	for (size_t i = 0; i < nid; i++) {
		uint32_t v =
		    data[3 * i] | (uint32_t)data[3 * i + 1] << 8 | (uint32_t)data[3 * i + 2] << 16;
		/* mostly small ids (byte tokens split characters), some invalid */
		int32_t id = v & 0x800000 ? (int32_t)(v & 0x3FFFF) - 1000 : (int32_t)(v % 512);
		long k = qvl_detok_push(&d, id, buf, cap);
		size_t pl;
		if (!qvl_tok_piece(t, id, &pl)) {
			if (k != -EINVAL)
				abort();
			continue;
		}
		if (k < 0 || tok_utf8_invalid_at((const uint8_t *)buf, (size_t)k) != (size_t)k)
			abort();
		memcpy(all + o, buf, (size_t)k);
		o += (size_t)k;
		ids[nknown++] = id;
	}
	long k = qvl_detok_flush(&d, buf, cap);
	if (k < 0 || tok_utf8_invalid_at((const uint8_t *)buf, (size_t)k) != (size_t)k)
		abort();
	memcpy(all + o, buf, (size_t)k);
	o += (size_t)k;
	char *text;
	size_t len;
	struct qvl_err err;
	if (qvl_tok_decode(t, ids, nknown, &text, &len, &err))
		abort();
	if (tok_utf8_invalid_at((const uint8_t *)text, len) == len &&
	    (len != o || memcmp(text, all, o)))
		abort();
	free(text);
	free(ids);
	free(buf);
	free(all);
	return 0;
}
