/* The level-by-level BPE (src/tok_bpe_levels.c, used for pre-tokens of 4096
 * bytes and more when the merge list is monotone) against the heap version
 * it replaces, on long random byte strings made of a few letters, spaces,
 * digits and multi-byte characters, so that many merges of many ranks
 * happen. (The referee comparison of 1 MB runs is in tok_edge.) */
#include "config.h"

#include <stdio.h>

#include "tok_internal.h"
#include "tok_testutil.h"

static uint64_t rng = 0x853C49E6748FEA9Bull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

int main(void)
{
	struct qvl_tokenizer *t = tt_load(NULL);
	ok(t->monotone, "the Qwen merge list is monotone (levels path enabled)");
	static const char *const pieces[] = {"a",  "b", "e", "r", "t", "in",  "the", "中",
					     "国", "é", "😀", " ", "1", "ing", "er",  "!"};
	int same = 0;
	const int N = 24;
	for (int it = 0; it < N; it++) {
		size_t cap = 4096 + rnd(20000), n = 0;
		uint8_t *s = malloc(cap + 8);
		while (n < cap) {
			const char *p = pieces[rnd(it % 3 == 0 ? 4 : 16)];
			size_t l = strlen(p);
			memcpy(s + n, p, l);
			n += l;
		}
		struct tok_ids a = {0}, b = {0};
		t->monotone = true;
		int ra = tok_bpe_uncached(t, s, n, &a, NULL);
		t->monotone = false;
		int rb = tok_bpe_uncached(t, s, n, &b, NULL);
		t->monotone = true;
		bool eq = !ra && !rb && a.n == b.n && !memcmp(a.v, b.v, a.n * sizeof(*a.v));
		same += eq;
		if (!eq)
			diag("string %d (%zu bytes): levels %zu ids, heap %zu ids", it, n, a.n,
			     b.n);
		free(a.v);
		free(b.v);
		free(s);
	}
	is_int(same, N, "levels == heap on %d long random strings", N);
	qvl_tok_free(t);
	return done_testing();
}
