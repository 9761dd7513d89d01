/* Unicode support for the tokenizer: a per-code-point class table (letters,
 * numbers, White_Space, "NFC may change this") built once from utf8proc, UTF-8
 * validation, and NFC that calls utf8proc only on the few short regions that
 * normalization can change. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tok_internal.h"

#define TOK_NCP 0x110000

const uint8_t *tok_cls;
static uint8_t *cls_table;
static pthread_once_t cls_once = PTHREAD_ONCE_INIT;

/* Unicode White_Space (PropList.txt), the meaning of \s in the HF regex
 * (Oniguruma). Not U+FEFF, U+200B, U+180E or U+001C..U+001F. */
static bool is_white_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
	       c == 0x205F || c == 0x3000;
}

static void mark_nfc(uint8_t *tab)
{
	utf8proc_int32_t buf[32];
	for (uint32_t c = 0; c < TOK_NCP; c++) {
		if (c >= 0xD800 && c < 0xE000)
			continue;
		if (c == 0x40000)
			c = 0xE0000; /* nothing decomposes in planes 4..13 (unassigned) */
		if (c == 0xF0000)
			break; /* planes 15, 16: private use */
		const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
		if (p->combining_class != 0)
			tab[c] |= TOK_C_NFC;
		/* Canonical decompositions only: compatibility ones (full-width
		 * punctuation, ligatures) are left alone by NFC. */
		if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0)
			continue;
		tab[c] |= TOK_C_NFC;
		int last = 0;
		utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)c, buf, 32,
							     UTF8PROC_DECOMPOSE, &last);
		/* Every non-first code point of a canonical decomposition may
		 * compose with what precedes it (NFC_QC = Maybe is a subset). */
		for (utf8proc_ssize_t i = 1; i < k && i < 32; i++)
			if (buf[i] >= 0 && buf[i] < TOK_NCP)
				tab[buf[i]] |= TOK_C_NFC;
	}
	/* Conjoining Hangul jamo compose algorithmically (L+V, LV+T). */
	for (uint32_t c = 0x1100; c <= 0x11FF; c++)
		tab[c] |= TOK_C_NFC;
}

static void build_table(void)
{
	uint8_t *tab = calloc(TOK_NCP, 1);
	if (!tab)
		return;
	for (uint32_t c = 0; c < TOK_NCP; c++) {
		uint8_t k = 0;
		/* planes 4..13 are unassigned, 15 and 16 private use: class 0;
		 * the asserting test tok_unicode checks this against utf8proc */
		if (c == 0x40000)
			c = 0xE0000;
		if (c == 0xF0000)
			break;
		switch (utf8proc_category((utf8proc_int32_t)c)) {
		case UTF8PROC_CATEGORY_LU:
		case UTF8PROC_CATEGORY_LL:
		case UTF8PROC_CATEGORY_LT:
		case UTF8PROC_CATEGORY_LM:
		case UTF8PROC_CATEGORY_LO:
			k = TOK_C_L;
			break;
		case UTF8PROC_CATEGORY_ND:
		case UTF8PROC_CATEGORY_NL:
		case UTF8PROC_CATEGORY_NO:
			k = TOK_C_N;
			break;
		default:
			break;
		}
		if (is_white_space(c))
			k |= TOK_C_WS;
		tab[c] = k;
	}
	tab['\r'] |= TOK_C_NL;
	tab['\n'] |= TOK_C_NL;
	mark_nfc(tab);
	cls_table = tab;
	tok_cls = tab;
}

void tok_unicode_init(void)
{
	pthread_once(&cls_once, build_table);
}

size_t tok_utf8_invalid_at(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		/* ASCII fast path, 8 bytes at a time */
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (w & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint8_t lo = 0x80, hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0; /* overlong */
			else if (c == 0xED)
				hi = 0x9F; /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90; /* overlong */
			else if (c == 0xF4)
				hi = 0x8F; /* past U+10FFFF */
		} else {
			return i; /* continuation byte, C0/C1 overlong lead, F5..FF */
		}
		if (need > n - 1 - i)
			return i; /* truncated */
		if (s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= need; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
		i += need + 1;
	}
	return n;
}

int tok_buf_put(struct tok_buf *b, const void *s, size_t n)
{
	if (n > b->cap - b->n) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->n < n) {
			if (cap > SIZE_MAX / 2)
				return -ENOMEM;
			cap *= 2;
		}
		uint8_t *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
	return 0;
}

/* Normalize the region s[a..b) (bounded by NFC-stable starters) with utf8proc. */
static int nfc_region(const uint8_t *s, size_t a, size_t b, struct tok_buf *out)
{
	utf8proc_uint8_t *r = NULL;
	utf8proc_ssize_t k =
	    utf8proc_map(s + a, (utf8proc_ssize_t)(b - a), &r, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
	if (k < 0)
		return k == UTF8PROC_ERROR_NOMEM ? -ENOMEM : -EILSEQ;
	int rc = tok_buf_put(out, r, (size_t)k);
	free(r);
	return rc;
}

const uint8_t *tok_nfc(const uint8_t *s, size_t n, struct tok_buf *scratch, size_t *out_n)
{
	size_t i = 0, len;
	size_t last_stable = 0; /* start of the last NFC-stable code point before i */
	/* find the first code point that NFC might touch */
	while (i < n) {
		if (s[i] < 0x80) {
			last_stable = i++;
			continue;
		}
		uint32_t c = tok_cp(s, i, &len);
		if (tok_cls[c] & TOK_C_NFC)
			break;
		last_stable = i;
		i += len;
	}
	if (i >= n) {
		*out_n = n;
		return s;
	}
	scratch->n = 0;
	size_t done = 0; /* s[0..done) has been emitted */
	while (i < n) {
		/* region: [last_stable or i .. end of the run of maybe code points) */
		size_t a = last_stable < i && last_stable >= done ? last_stable : i;
		size_t b = i;
		while (b < n) {
			uint32_t c = tok_cp(s, b, &len);
			if (!(tok_cls[c] & TOK_C_NFC))
				break;
			b += len;
		}
		if (tok_buf_put(scratch, s + done, a - done) || nfc_region(s, a, b, scratch))
			return NULL;
		done = b;
		/* next maybe code point after b, remembering the stable one before it */
		i = b;
		last_stable = b;
		while (i < n) {
			uint32_t c = tok_cp(s, i, &len);
			if (tok_cls[c] & TOK_C_NFC)
				break;
			last_stable = i;
			i += len;
		}
	}
	if (tok_buf_put(scratch, s + done, n - done))
		return NULL;
	*out_n = scratch->n;
	return scratch->p;
}
