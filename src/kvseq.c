/* A sequence's side of the KV pool: its block table, the pages it takes
 * before a forward (copying a shared one first), the records and keys it
 * publishes after one, and prefix attach (kvcache.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"
#include "kvpool_impl.h"

/* The key chain starts here for every sequence of every engine (pools are
 * per engine, so no model identity is needed in the key). */
#define KV_ROOT 0x6b7670616765ull

int kv_seq_init(struct kv_pool *p, struct kv_seq *ks, size_t n_ctx)
{
	memset(ks, 0, sizeof(*ks));
	ks->cap = (n_ctx + p->g.page_tokens - 1) / p->g.page_tokens;
	ks->pages = malloc(ks->cap * sizeof(*ks->pages));
	if (!ks->pages)
		return -ENOMEM;
	ks->chain = KV_ROOT;
	ks->nokey_from = INT64_MAX;
	return 0;
}

void kv_seq_free(struct kv_pool *p, struct kv_seq *ks)
{
	for (size_t i = 0; i < ks->n_pages; i++)
		kv_page_unref(p, ks->pages[i]);
	free(ks->pages);
	ks->pages = NULL;
	ks->n_pages = 0;
}

static void publish_tail(struct qvl_seq *s);

void kv_seq_release(struct qvl_seq *s)
{
	struct kv_seq *ks = &s->kv;

	publish_tail(s);
	for (size_t i = 0; i < ks->n_pages; i++)
		kv_page_unref(s->e->kv, ks->pages[i]);
	ks->n_pages = 0;
	ks->n_keyed = 0;
	ks->chain = KV_ROOT;
	ks->nokey_from = INT64_MAX;
}

static bool page_shared(const struct kv_pool *p, uint32_t id)
{
	return p->meta[id].ref > 1 || p->meta[id].published;
}

size_t kv_seq_pages_needed(const struct qvl_seq *s, size_t n)
{
	const struct kv_pool *p = s->e->kv;
	size_t P = p->g.page_tokens, len = (size_t)s->len, need = 0, last;

	if (!n)
		return 0;
	last = (len + n - 1) / P;
	if (last + 1 > s->kv.n_pages)
		need = last + 1 - s->kv.n_pages;
	if (len % P && page_shared(p, s->kv.pages[len / P]))
		need++;
	return need;
}

/* Copy on write: the first r positions of page i of s (every layer and
 * head, and their records) into a page of its own. */
static int cow(struct qvl_seq *s, size_t i, size_t r)
{
	struct kv_pool *p = s->e->kv;
	uint32_t old = s->kv.pages[i], id;
	int rc = kv_page_alloc(p, &id);

	if (rc < 0)
		return rc;
	for (int l = 0; l < p->g.layers; l++)
		for (int v = 0; v < 2; v++)
			for (int h = 0; h < p->g.kv_heads; h++)
				memcpy(kv_page_rows(p, id, l, v, h), kv_page_rows(p, old, l, v, h),
				       r * p->g.row_bytes);
	memcpy(kv_page_toks(p, id), kv_page_toks(p, old), r * sizeof(struct kv_tok));
	s->kv.pages[i] = id;
	kv_page_unref(p, old);
	p->cow_copies++;
	return 0;
}

int kv_seq_reserve(struct qvl_seq *s, size_t n)
{
	struct kv_pool *p = s->e->kv;
	struct kv_seq *ks = &s->kv;
	size_t P = p->g.page_tokens, len = (size_t)s->len, last = (len + n - 1) / P;
	int rc;

	if (!n)
		return 0;
	if (len % P && page_shared(p, ks->pages[len / P])) {
		rc = cow(s, len / P, len % P);
		if (rc < 0)
			return rc;
	}
	while (ks->n_pages <= last) {
		rc = kv_page_alloc(p, &ks->pages[ks->n_pages]);
		if (rc < 0)
			return rc;
		ks->n_pages++;
	}
	return 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

/* Chained key of a full page: the parent's key and every position's token,
 * M-RoPE position and image key. */
static uint64_t page_key(uint64_t parent, const struct kv_tok *t, size_t P)
{
	uint64_t h = parent;

	for (size_t i = 0; i < P; i++) {
		h = mix(h, (uint64_t)(uint32_t)t[i].id);
		h = mix(h, (uint64_t)(uint32_t)t[i].pos[0] << 32 | (uint32_t)t[i].pos[1]);
		h = mix(h, (uint64_t)(uint32_t)t[i].pos[2]);
		h = mix(h, t[i].img);
	}
	return h;
}

static bool tok_eq(const struct kv_tok *a, const struct kv_tok *b)
{
	return a->id == b->id && a->pos[0] == b->pos[0] && a->pos[1] == b->pos[1] &&
	       a->pos[2] == b->pos[2] && a->img == b->img;
}

void kv_seq_publish(struct qvl_seq *s, const struct qvl_chunk *c, int32_t len0, int32_t next0)
{
	struct kv_pool *p = s->e->kv;
	struct kv_seq *ks = &s->kv;
	size_t P = p->g.page_tokens, rank = 0, full;
	int32_t hi = next0 - 1; /* largest position component so far, + 1 = next text */

	for (size_t ci = 0; ci < c->n; ci++) {
		size_t q = (size_t)len0 + ci;
		struct kv_tok *t = kv_page_toks(p, ks->pages[q / P]) + q % P;
		bool img = c->n_img && c->ids[ci] == s->e->image_token_id;

		t->id = c->ids[ci];
		for (int k = 0; k < 3; k++) {
			t->pos[k] = c->pos ? c->pos[ci][k] : next0 + (int32_t)ci;
			hi = t->pos[k] > hi ? t->pos[k] : hi;
		}
		t->next = ci + 1 == c->n ? (c->pos ? c->next_pos : next0 + (int32_t)c->n) : hi + 1;
		t->img = img && c->img_keys ? c->img_keys[rank] : 0;
		if (img && !t->img && (int64_t)q < ks->nokey_from)
			ks->nokey_from = (int64_t)q;
		rank += img;
	}
	full = ((size_t)len0 + c->n) / P;
	for (; ks->n_keyed < full; ks->n_keyed++) {
		uint32_t id = ks->pages[ks->n_keyed];
		uint64_t key;

		if ((int64_t)((ks->n_keyed + 1) * P) > ks->nokey_from)
			break; /* an image without a key: no later page is shareable */
		key = page_key(ks->chain, kv_page_toks(p, id), P);
		if (!p->meta[id].published && kv_page_publish(p, id, ks->chain, key))
			p->meta[id].filled = (uint32_t)P;
		ks->chain = key;
	}
}

/* A sequence that lets its pages go (finished, preempted) publishes its
 * last page when it is not full, under its own key, so that a prompt that
 * repeats its start (the same image, followed by other text) reuses all of
 * it, not only its full pages: a repeated image then recomputes only the
 * text after it. Another sequence attaching it copies the part it shares
 * on its first write (kv_seq_reserve). Not when a page already published
 * under the same chain holds the same records (the same prompt again). */
static void publish_tail(struct qvl_seq *s)
{
	struct kv_pool *p = s->e->kv;
	struct kv_seq *ks = &s->kv;
	size_t P = p->g.page_tokens, len = (size_t)s->len, r = len % P, i = len / P;
	const struct kv_tok *t;
	uint32_t id;

	if (!r || i != ks->n_keyed || i >= ks->n_pages || (int64_t)len > ks->nokey_from)
		return;
	id = ks->pages[i];
	if (p->meta[id].published)
		return;
	t = kv_page_toks(p, id);
	for (uint32_t o = kv_page_first_child(p, ks->chain); o != KV_NONE; o = p->meta[o].pnext) {
		const struct kv_tok *u = kv_page_toks(p, o);
		size_t k = 0;

		if (p->meta[o].parent != ks->chain || p->meta[o].filled < r)
			continue;
		while (k < r && tok_eq(&u[k], &t[k]))
			k++;
		if (k == r)
			return;
	}
	/* a key no full page has: page_key() over r records, then r itself */
	if (kv_page_publish(p, id, ks->chain, mix(page_key(ks->chain, t, r), ~(uint64_t)r)))
		p->meta[id].filled = (uint32_t)r;
}

/* The prompt's records for positions [i0, i0 + n), image ranks counted from
 * *rank. false: an image row without a key (nothing from there matches). */
static bool prompt_toks(const struct qvl_engine *e, const struct qvl_prefix *pf, size_t i0,
			size_t n, struct kv_tok *t, size_t *rank, size_t *valid)
{
	for (size_t i = 0; i < n; i++) {
		size_t q = i0 + i;
		bool img = pf->img_keys && pf->ids[q] == e->image_token_id;

		t[i].id = pf->ids[q];
		for (int k = 0; k < 3; k++)
			t[i].pos[k] = pf->pos ? pf->pos[q][k] : (int32_t)q;
		t[i].img = img ? pf->img_keys[(*rank)++] : 0;
		if (img && !t[i].img) {
			*valid = i;
			return false;
		}
	}
	*valid = n;
	return true;
}

static void attach_page(struct qvl_seq *s, uint32_t id)
{
	kv_page_ref(s->e->kv, id);
	s->kv.pages[s->kv.n_pages++] = id;
}

int kv_prefix_attach(struct kv_pool *p, struct qvl_seq *s, const struct qvl_prefix *pf,
		     size_t *n_reused)
{
	struct kv_seq *ks = &s->kv;
	size_t P = p->g.page_tokens, len = 0, rank = 0, limit;
	struct kv_tok *buf;

	*n_reused = 0;
	if (pf->n < 2)
		return 0;
	limit = pf->n - 1;
	if (limit > (size_t)s->n_ctx)
		limit = (size_t)s->n_ctx;
	buf = malloc(P * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	while (len < limit) {
		size_t cnt = pf->n - len < P ? pf->n - len : P, valid, best = 0;
		uint32_t id, pick = KV_NONE;
		bool whole = prompt_toks(s->e, pf, len, cnt, buf, &rank, &valid) && cnt == P;

		if (whole) {
			uint64_t key = page_key(ks->chain, buf, P);

			id = kv_page_find(p, key);
			if (id != KV_NONE && p->meta[id].parent == ks->chain &&
			    p->meta[id].filled == P) {
				size_t r = 0;
				const struct kv_tok *t = kv_page_toks(p, id);

				while (r < P && tok_eq(&t[r], &buf[r]))
					r++;
				if (r == P && limit - len >= P) {
					attach_page(s, id);
					len += P;
					ks->chain = key;
					ks->n_keyed++;
					continue;
				}
			}
		}
		/* the longest partial match among the pages that follow chain */
		for (id = kv_page_first_child(p, ks->chain); id != KV_NONE;
		     id = p->meta[id].pnext) {
			const struct kv_tok *t = kv_page_toks(p, id);
			size_t r = 0;

			if (p->meta[id].parent != ks->chain)
				continue;
			while (r < valid && r < p->meta[id].filled && tok_eq(&t[r], &buf[r]))
				r++;
			if (r > best) {
				best = r;
				pick = id;
			}
		}
		if (best > limit - len)
			best = limit - len;
		if (best) {
			attach_page(s, pick);
			len += best;
		}
		break;
	}
	free(buf);
	s->len = (int)len;
	if (len) {
		s->next_pos = kv_page_toks(p, ks->pages[(len - 1) / P])[(len - 1) % P].next;
		p->prefix_hits++;
		p->prefix_tokens += len;
	}
	*n_reused = len;
	return 0;
}
