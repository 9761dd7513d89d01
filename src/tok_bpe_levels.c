/* BPE of very long pre-tokens (a megabyte of one repeated character, long
 * runs of letters) level by level instead of through one big heap.
 *
 * Valid only for "monotone" merge lists, checked at load (tok_check_monotone):
 * every token is produced by at most one merge, and both halves of merge k
 * exist before it (bytes, or results of merges of rank < k). Then merging a
 * pair of rank k creates only pairs of rank > k, so the heap's order (lowest
 * rank, then leftmost position) is: every pair of the lowest rank present,
 * left to right, then the next rank, and so on. Pairs wait in one bucket per
 * rank; a bucket is taken in position order and each entry is checked to be
 * still current, exactly as in the heap version. Memory is touched in order
 * where the heap's sift-downs miss the cache at every level. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define NONE UINT32_MAX

struct lv_ent {
	uint32_t pos;
	int32_t left, right, id;
	uint32_t next; /* older entry of the same rank, NONE ends */
};

struct lv {
	struct lv_ent *e;
	size_t n, cap;
	uint32_t *head; /* per rank: newest entry */
	uint32_t lo;	/* lowest rank with entries, among those added */
};

static int lv_add(const struct qvl_tokenizer *t, struct tok_pair_ent *pc, struct lv *L,
		  const int32_t *sym, uint32_t l, uint32_t r, uint32_t level)
{
	uint32_t rank;
	int32_t id;
	if (!tok_pair_merge(t, pc, sym[l], sym[r], &rank, &id))
		return 0;
	if (rank >= t->rank_end || (level != NONE && rank <= level))
		return -EPROTO; /* excluded by tok_check_monotone */
	if (L->n == L->cap) {
		size_t cap = L->cap ? L->cap * 2 : 4096;
		struct lv_ent *e = realloc(L->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		L->e = e;
		L->cap = cap;
	}
	L->e[L->n] = (struct lv_ent){l, sym[l], sym[r], id, L->head[rank]};
	L->head[rank] = (uint32_t)L->n++;
	if (rank < L->lo)
		L->lo = rank;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int tok_bpe_levels(const struct qvl_tokenizer *t, const uint8_t *s, size_t n, struct tok_ids *out,
		   struct tok_pair_ent *pc)
{
	int rc = -ENOMEM;
	struct lv L = {.lo = NONE};
	uint64_t *lvl = NULL; /* (pos << 32) | entry, of one rank */
	size_t lvl_cap = 0;
	if (n >= NONE)
		return -E2BIG;
	int32_t *sym = malloc(n * sizeof(*sym));
	uint32_t *prev = malloc(n * sizeof(*prev)), *next = malloc(n * sizeof(*next));
	L.head = malloc((size_t)t->rank_end * sizeof(*L.head));
	if (!sym || !prev || !next || !L.head)
		goto out;
	memset(L.head, 0xFF, (size_t)t->rank_end * sizeof(*L.head));
	for (size_t i = 0; i < n; i++) {
		sym[i] = t->byte_id[s[i]];
		prev[i] = i ? (uint32_t)i - 1 : NONE;
		next[i] = i + 1 < n ? (uint32_t)i + 1 : NONE;
	}
	for (size_t i = 0; i + 1 < n; i++)
		if ((rc = lv_add(t, pc, &L, sym, (uint32_t)i, (uint32_t)i + 1, NONE)))
			goto out;
	rc = 0;
	for (uint32_t k = L.lo; k < t->rank_end; k++) {
		if (L.head[k] == NONE)
			continue;
		size_t m = 0;
		for (uint32_t e = L.head[k]; e != NONE; e = L.e[e].next) {
			if (m == lvl_cap) {
				size_t cap = lvl_cap ? lvl_cap * 2 : 4096;
				uint64_t *nl = realloc(lvl, cap * sizeof(*nl));
				if (!nl) {
					rc = -ENOMEM;
					goto out;
				}
				lvl = nl;
				lvl_cap = cap;
			}
			lvl[m++] = (uint64_t)L.e[e].pos << 32 | e;
		}
		L.head[k] = NONE;
		/* newest first: reversed, the entries are runs of ascending
		 * position (one run per level that added them) */
		bool sorted = true;
		for (size_t i = 0; i < m / 2; i++) {
			uint64_t x = lvl[i];
			lvl[i] = lvl[m - 1 - i];
			lvl[m - 1 - i] = x;
		}
		for (size_t i = 1; i < m && sorted; i++)
			sorted = lvl[i - 1] <= lvl[i];
		if (!sorted)
			qsort(lvl, m, sizeof(*lvl), cmp_u64);
		for (size_t i = 0; i < m; i++) {
			const struct lv_ent *e = &L.e[(uint32_t)lvl[i]];
			uint32_t l = e->pos, r = next[l];
			/* stale: the left symbol was absorbed, or either side changed */
			if (sym[l] != e->left || r == NONE || sym[r] != e->right)
				continue;
			sym[l] = e->id;
			sym[r] = -1;
			next[l] = next[r];
			if (next[r] != NONE)
				prev[next[r]] = l;
			/* (e may move when L.e grows: done with it) */
			if ((prev[l] != NONE && (rc = lv_add(t, pc, &L, sym, prev[l], l, k))) ||
			    (next[l] != NONE && (rc = lv_add(t, pc, &L, sym, l, next[l], k))))
				goto out;
		}
	}
	for (uint32_t i = 0; i != NONE; i = next[i])
		if ((rc = tok_ids_push(out, sym[i])))
			goto out;
out:
	free(L.e);
	free(L.head);
	free(lvl);
	free(sym);
	free(prev);
	free(next);
	return rc;
}

int tok_check_monotone(struct qvl_tokenizer *t)
{
	t->monotone = false;
	int64_t *made = malloc((size_t)t->n_ids * sizeof(*made)); /* rank that makes id */
	if (!made)
		return -ENOMEM;
	for (int32_t i = 0; i < t->n_ids; i++)
		made[i] = -1;
	bool ok = true;
	uint32_t end = 0;
	for (uint32_t h = 0; h <= t->mmask && ok; h++) {
		const struct tok_merge *m = &t->merges[h];
		if (!m->key)
			continue;
		if (made[m->id] >= 0)
			ok = false; /* two merges make the same token */
		made[m->id] = m->rank;
		if (m->rank + 1 > end)
			end = m->rank + 1;
	}
	for (uint32_t h = 0; h <= t->mmask && ok; h++) {
		const struct tok_merge *m = &t->merges[h];
		if (!m->key)
			continue;
		int32_t a = (int32_t)((m->key >> 32) & 0x7FFFFFFF), b = (int32_t)(uint32_t)m->key;
		if (made[a] >= (int64_t)m->rank || made[b] >= (int64_t)m->rank)
			ok = false;
	}
	free(made);
	t->monotone = ok;
	t->rank_end = end;
	return 0;
}
