/* The hand-written pre-tokenizer scanner (src/tok_pretok.c) against PCRE2
 * running the Qwen2 split regex itself, on 30000 random strings drawn from
 * characters that exercise every alternative: contractions in any case and
 * with U+017F, letters/numbers of several scripts, each White_Space
 * character, \r \n runs, format characters that are NOT \s (U+200B, U+FEFF,
 * U+180E, U+001C..U+001F), marks, symbols, emoji. In the PCRE2 pattern \s is
 * spelled out as Unicode White_Space, because that is its meaning in
 * Hugging Face's Oniguruma (golden README); \p{L} and \p{N} are PCRE2's.
 * All characters used are from Unicode <= 13, where utf8proc and PCRE2 agree. */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tok_internal.h"

#define WS                                                                                         \
	"\\t\\n\\x{0B}\\f\\r "                                                                     \
	"\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static const char PATTERN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
			      "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+"
			      "|[" WS "]+(?![^" WS "])|[" WS "]+";

static const uint32_t POOL[] = {
    '\'',   '\'',    '\'',    's',    'S',    't',    'T',     'r',	'R',	'e',	'E',
    'v',    'V',     'm',     'M',    'l',    'L',    'd',     'D',	'x',	'Q',	0x17F,
    ' ',    ' ',     ' ',     ' ',    '\r',   '\n',   '\n',    '\t',	0x0B,	0x0C,	0x85,
    0xA0,   0x1680,  0x2000,  0x2005, 0x200A, 0x2028, 0x2029,  0x202F,	0x205F, 0x3000, 0x200B,
    0xFEFF, 0x180E,  0x1C,    0x1F,   0,      1,      0x7F,    '0',	'7',	'.',	',',
    '!',    '?',     '-',     '(',    '<',    '>',    '|',     '_',	'#',	0xE9,	0xDF,
    0x416,  0x3B1,   0x4E2D,  0x3042, 0xD55C, 0x627,  0x5D0,   0x915,	0x93F,	0x301,	0x20DD,
    0x661,  0xBD,    0x216B,  0xB2,   0x3002, 0xFF0C, 0x1F600, 0x1F1E9, 0x200D, 0xFE0F, 0x2211,
    0x20AC, 0x1D518, 0x10400, 0xE000, 0xFFFD,
};

static size_t put_utf8(uint8_t *o, uint32_t c)
{
	if (c < 0x80) {
		o[0] = (uint8_t)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (uint8_t)(0xC0 | c >> 6);
		o[1] = (uint8_t)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (uint8_t)(0xE0 | c >> 12);
		o[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
		o[2] = (uint8_t)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | c >> 18);
	o[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
	o[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
	o[3] = (uint8_t)(0x80 | (c & 0x3F));
	return 4;
}

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

int main(void)
{
	int ec;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)PATTERN, PCRE2_ZERO_TERMINATED,
				       PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
	if (!re)
		skip_all("PCRE2 cannot compile the pattern (error %d at %zu)", ec, (size_t)eo);
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	tok_unicode_init();
	const int N = 30000;
	int bad = 0, pieces = 0;
	uint8_t s[256];
	for (int it = 0; it < N; it++) {
		size_t n = 0, want = 1 + rnd(40);
		for (size_t k = 0; k < want; k++)
			n += put_utf8(s + n, POOL[rnd(sizeof(POOL) / sizeof(POOL[0]))]);
		for (size_t i = 0; i < n;) {
			int rc = pcre2_match(re, s, n, i, PCRE2_NO_UTF_CHECK, md, NULL);
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
			size_t ours = tok_pretok_next(s, n, i);
			pieces++;
			if (rc < 0 || ov[0] != i || ov[1] != ours) {
				if (bad++ < 5) {
					printf("# string %d at byte %zu: pcre2 [%zu,%zu) rc %d, "
					       "scanner "
					       "ends at %zu; bytes:",
					       it, i, rc < 0 ? 0 : (size_t)ov[0],
					       rc < 0 ? 0 : (size_t)ov[1], rc, ours);
					for (size_t k = 0; k < n; k++)
						printf(" %02x", s[k]);
					printf("\n");
				}
				break;
			}
			i = ours;
		}
	}
	plan(1);
	ok(bad == 0, "scanner == PCRE2 on %d random strings (%d pre-tokens), %d differ", N, pieces,
	   bad);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return bad != 0;
}
