/* The Qwen2 pre-tokenizer as a hand-written scanner. tokenizer.json splits
 * (behaviour Isolated) with the regex
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)          A1 contractions, any case
 *   |[^\r\n\p{L}\p{N}]?\p{L}+             A2 optional prefix, letters
 *   |\p{N}                                A3 one digit
 *   | ?[^\s\p{L}\p{N}]+[\r\n]*            A4 symbols (optional space), newlines
 *   |\s*[\r\n]+                           A5 blanks ending in a newline
 *   |\s+(?!\S)                            A6 blanks not followed by text
 *   |\s+                                  A7 blanks
 *
 * Every code point is matched by one of A2..A7, so the matches tile the text.
 * The scanner decides, at the start of a pre-token, which alternative the
 * backtracking matcher (Oniguruma: leftmost alternative wins, greedy
 * quantifiers backtrack) would take and where it ends:
 *   A1: ' followed by s S U+017F(ſ, folds to s) t T m M d D, or re ve ll in any case.
 *   A2: a letter run; or one code point that is not \r \n L N followed by a
 *       letter run (the optional prefix backtracks to empty when no letter
 *       follows, and then A2 needs a letter at the start).
 *   A3: one N.
 *   A4: a run of "other" (not \s L N), optionally preceded by one U+0020, then
 *       any \r \n bytes.
 *   A5..A7, at a \s code point; let W be the maximal \s run from the start:
 *       A5: if W contains \r or \n, the match ends after the last of them
 *           (\s* backtracks until [\r\n]+ fits).
 *       A6: if W reaches the end of the text, all of W; else if W has at least
 *           two code points, W minus its last code point (the lookahead fails
 *           right after W, which is followed by non-space).
 *       A7: W (a single blank before text).
 * \s is Unicode White_Space, as in Oniguruma (tok_unicode.c). The scanner is
 * checked against PCRE2 running the same regex in tests/tok_pretok.c. */
#include "config.h"

#include "tok_internal.h"

static inline uint8_t cls_at(const uint8_t *s, size_t n, size_t i, size_t *len)
{
	if (i >= n) {
		*len = 0;
		return 0xFF; /* end of text: no class */
	}
	return tok_cls[tok_cp(s, i, len)];
}

static size_t letter_run(const uint8_t *s, size_t n, size_t i)
{
	size_t len;
	while (i < n) {
		if (s[i] < 0x80) {
			uint8_t c = s[i] | 0x20;
			if (c >= 'a' && c <= 'z') {
				i++;
				continue;
			}
			return i;
		}
		if (!(tok_cls[tok_cp(s, i, &len)] & TOK_C_L))
			return i;
		i += len;
	}
	return i;
}

#define OTHER(k) (!((k) & (TOK_C_L | TOK_C_N | TOK_C_WS)))

static size_t contraction(const uint8_t *s, size_t n, size_t i)
{
	/* s[i] == '\'' */
	if (i + 1 >= n)
		return 0;
	uint8_t c1 = s[i + 1] | 0x20;
	if (s[i + 1] < 0x80 && (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd'))
		return i + 2;
	if (s[i + 1] == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) /* U+017F long s */
		return i + 3;
	if (i + 2 >= n || s[i + 1] >= 0x80 || s[i + 2] >= 0x80)
		return 0;
	uint8_t c2 = s[i + 2] | 0x20;
	if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
		return i + 3;
	return 0;
}

size_t tok_pretok_next(const uint8_t *s, size_t n, size_t i)
{
	size_t l0, l1;
	uint8_t k0 = cls_at(s, n, i, &l0);

	if (s[i] == '\'') {
		size_t e = contraction(s, n, i);
		if (e)
			return e;
	}
	if (k0 & TOK_C_L)
		return letter_run(s, n, i + l0);
	if (!(k0 & (TOK_C_NL | TOK_C_N))) {
		uint8_t k1 = cls_at(s, n, i + l0, &l1);
		if (k1 != 0xFF && (k1 & TOK_C_L))
			return letter_run(s, n, i + l0 + l1);
	}
	if (k0 & TOK_C_N)
		return i + l0;

	size_t j = i;
	if (s[i] == ' ') {
		uint8_t k1 = cls_at(s, n, i + 1, &l1);
		if (k1 != 0xFF && OTHER(k1))
			j = i + 1;
	}
	uint8_t kj = j == i ? k0 : cls_at(s, n, j, &l1);
	if (OTHER(kj)) {
		/* A4: other+ then [\r\n]* */
		while (j < n) {
			uint8_t k = cls_at(s, n, j, &l1);
			if (!OTHER(k))
				break;
			j += l1;
		}
		while (j < n && (s[j] == '\r' || s[j] == '\n'))
			j++;
		return j;
	}

	/* k0 is \s here (not L, N or other) */
	size_t w = i, last_nl = SIZE_MAX, last_cp = i, ncp = 0;
	while (w < n) {
		uint8_t k = cls_at(s, n, w, &l1);
		if (!(k & TOK_C_WS))
			break;
		if (k & TOK_C_NL)
			last_nl = w;
		last_cp = w;
		ncp++;
		w += l1;
	}
	if (last_nl != SIZE_MAX)
		return last_nl + 1; /* A5 */
	if (w == n)
		return w; /* A6 at the end */
	if (ncp >= 2)
		return last_cp; /* A6 */
	return w;		/* A7 */
}
