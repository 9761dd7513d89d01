/* Decoding: ids back to the exact bytes (round trips of NFC text), and the
 * streaming detokenizer fed one id at a time, including tokens that split a
 * character and byte sequences that can never be valid UTF-8. */
#include "config.h"

#include <stdio.h>

#include "tok_testutil.h"

static bool valid_utf8(const char *s, size_t n)
{
	/* independent of the module's validator: decode and re-check ranges */
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned c = p[i], len = c < 0x80   ? 1
					 : c < 0xC2 ? 0
					 : c < 0xE0 ? 2
					 : c < 0xF0 ? 3
					 : c < 0xF5 ? 4
						    : 0;
		if (!len || i + len > n)
			return false;
		unsigned cp = len == 1 ? c : c & (0xFF >> (len + 1));
		for (unsigned k = 1; k < len; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3F);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp < 0xE000))
			return false;
		i += len;
	}
	return true;
}

static int32_t byte_token(const struct qvl_tokenizer *t, unsigned char b)
{
	for (int32_t id = 0; id < 512; id++) {
		size_t len;
		const char *p = qvl_tok_piece(t, id, &len);
		if (p && len == 1 && (unsigned char)p[0] == b)
			return id;
	}
	return -1;
}

/* push the single-byte tokens of bytes[] one by one, then flush */
static void stream_bytes(const struct qvl_tokenizer *t, const char *what, const char *bytes,
			 size_t n, const char *want, size_t want_n)
{
	struct qvl_detok d;
	char out[256], buf[64];
	size_t o = 0;
	bool good = true;
	qvl_detok_init(&d, t);
	for (size_t i = 0; i < n; i++) {
		long k =
		    qvl_detok_push(&d, byte_token(t, (unsigned char)bytes[i]), buf, sizeof(buf));
		good = good && k >= 0 && valid_utf8(buf, (size_t)k);
		if (k > 0) {
			memcpy(out + o, buf, (size_t)k);
			o += (size_t)k;
		}
	}
	long k = qvl_detok_flush(&d, buf, sizeof(buf));
	if (k > 0) {
		memcpy(out + o, buf, (size_t)k);
		o += (size_t)k;
	}
	ok(good && o == want_n && !memcmp(out, want, o), "stream %s", what);
}

int main(void)
{
	struct qvl_tokenizer *t = tt_load(NULL);
	static const char *const texts[] = {
	    "Hello, world! It's 2024.\n\tIndented\r\nCRLF",
	    "中文分词测试：你好，世界。日本語のテキスト。한국어 텍스트",
	    "emoji 😀 👨‍👩‍👧‍👦 🏳️‍🌈 🇩🇪 #️⃣ and café naïve",
	    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi<|im_end|>\n",
	    "math ∑ ∫ ≠ ≤ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and ١٢٣ ½",
	    "   leading and trailing spaces   \n\n\n",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		int32_t *ids;
		size_t n, len;
		char *back;
		struct qvl_err err;
		const char *s = texts[i];
		int rc = qvl_tok_encode(t, s, strlen(s), true, &ids, &n, &err);
		rc = rc ? rc : qvl_tok_decode(t, ids, n, &back, &len, &err);
		ok(!rc && len == strlen(s) && !memcmp(back, s, len),
		   "decode(encode(text %zu)) == text", i);
		/* the streaming decoder gives the same text and only valid UTF-8 */
		struct qvl_detok d;
		char buf[4096], all[4096];
		size_t o = 0;
		bool good = !rc;
		qvl_detok_init(&d, t);
		for (size_t k = 0; good && k < n; k++) {
			long w = qvl_detok_push(&d, ids[k], buf, sizeof(buf));
			good = w >= 0 && valid_utf8(buf, (size_t)w) && o + (size_t)w < sizeof(all);
			if (good) {
				memcpy(all + o, buf, (size_t)w);
				o += (size_t)w;
			}
		}
		good = good && qvl_detok_flush(&d, buf, sizeof(buf)) == 0;
		ok(good && o == strlen(s) && !memcmp(all, s, o), "streamed text %zu, id by id", i);
		if (!rc)
			free(back);
		free(ids);
	}

	stream_bytes(t, "emoji split in 4 byte tokens", "\xF0\x9F\x98\x80", 4, "\xF0\x9F\x98\x80",
		     4);
	stream_bytes(t, "3-byte char then ASCII",
		     "\xE4\xB8\xAD"
		     "a",
		     4,
		     "\xE4\xB8\xAD"
		     "a",
		     4);
	stream_bytes(t, "incomplete tail flushed as U+FFFD", "a\xE4\xB8", 3, "a\xEF\xBF\xBD", 4);
	stream_bytes(t, "lead byte then ASCII",
		     "\xF0"
		     "a",
		     2,
		     "\xEF\xBF\xBD"
		     "a",
		     4);
	stream_bytes(t, "lone continuation byte",
		     "\x80"
		     "b",
		     2,
		     "\xEF\xBF\xBD"
		     "b",
		     4);
	stream_bytes(t, "surrogate ED A0 80 (3 replacements)", "\xED\xA0\x80", 3,
		     "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9);
	stream_bytes(t, "overlong C0 AF", "\xC0\xAF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD", 6);
	stream_bytes(t, "F4 90 past U+10FFFF", "\xF4\x90\x80\x80", 4,
		     "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 12);

	struct qvl_detok d;
	char small[2];
	qvl_detok_init(&d, t);
	is_int(qvl_detok_push(&d, 9707, small, sizeof(small)), -ENOBUFS,
	       "push into a too small buffer: -ENOBUFS");
	is_int(qvl_detok_push(&d, 151669, small, sizeof(small)), -EINVAL, "push of an unknown id");
	is_int(qvl_detok_push(&d, -1, small, sizeof(small)), -EINVAL, "push of a negative id");

	int32_t bad[] = {9707, 151700};
	char *txt;
	size_t len;
	struct qvl_err err;
	is_int(qvl_tok_decode(t, bad, 2, &txt, &len, &err), -EINVAL, "decode of an unknown id");
	size_t pl;
	const char *p = qvl_tok_piece(t, 151644, &pl);
	ok(p && pl == 12 && !memcmp(p, "<|im_start|>", 12), "piece of 151644 is <|im_start|>");
	p = qvl_tok_piece(t, 9707, &pl);
	ok(p && pl == 5 && !memcmp(p, "Hello", 5), "piece of 9707 is Hello");
	ok(qvl_tok_max_piece(t) >= 12 && qvl_tok_max_piece(t) < 1024, "max piece %zu",
	   qvl_tok_max_piece(t));
	qvl_tok_free(t);
	return done_testing();
}
