/* Prefix reuse of the paged KV cache (src/kvcache.h) on the tiny model.
 * "Recomputation" is a fresh sequence prefilled with the same chunk split
 * as the reusing one ([0, n_reused) then the rest): the matmul kernels may
 * round a row differently with the number of rows in the call
 * (docs/kv-cache.md), so that is what a reused prefix must equal bit for
 * bit. Checked: text prefix (whole pages), a prompt that ends on a page
 * boundary (the shared last page is copied on write), two prompts that
 * diverge inside a shared page (copy on write), an image prompt (keys of
 * the image rows; the M-RoPE text position after the image restored), a
 * different image key (no reuse), the last page of a sequence that ended
 * (published when not full: reused up to the divergence), and LRU
 * eviction under a tiny budget. */
#include "config.h"

#include "engine_common.h"
#include "multimodal.h"

#define PG 64

static size_t V;

/* Fresh sequence: chunks [0, split), [split, split2) when split2 is not 0,
 * and the rest of (ids, pos, image rows) with the given keys; last logits
 * into out. */
static int recompute2(struct qvl_engine *e, const struct qvl_chunk *whole, size_t split,
		      size_t split2, float *out)
{
	struct qvl_err err = {{0}};
	struct qvl_seq *s;
	int rc = qvl_seq_create(e, 1024, &s, &err);
	struct qvl_chunk a = *whole, b = *whole, b2;

	a.n = split;
	a.next_pos = whole->pos ? whole->pos[split - 1][0] + 1 : 0; /* unused: b has pos */
	b.ids += split;
	b.n -= split;
	if (whole->pos)
		b.pos += split;
	/* the tests keep image rows inside [0, split) */
	b.n_img = 0;
	b.embd = b.deepstack = NULL;
	b.n_deepstack = 0;
	b.img_keys = NULL;
	if (rc >= 0)
		rc = qvl_seq_forward(e, s, &a, out, false, &err);
	if (rc >= 0 && split2) {
		b2 = b;
		b2.n = split2 - split;
		b.ids += b2.n;
		b.n -= b2.n;
		if (b.pos)
			b.pos += b2.n;
		rc = qvl_seq_forward(e, s, &b2, out, false, &err);
	}
	if (rc >= 0)
		rc = qvl_seq_forward(e, s, &b, out, false, &err);
	if (rc < 0)
		diag("recompute: %s", err.msg);
	qvl_seq_destroy(s);
	return rc;
}

static int recompute(struct qvl_engine *e, const struct qvl_chunk *whole, size_t split, float *out)
{
	return recompute2(e, whole, split, 0, out);
}

/* A sequence that attaches what it can of `whole`, then runs the rest
 * (text only, pos as given or NULL to use the restored position). */
static int reuse(struct qvl_engine *e, const struct qvl_chunk *whole, bool restored_pos,
		 size_t *n_reused, float *out, struct qvl_seq **keep)
{
	struct qvl_err err = {{0}};
	struct qvl_seq *s;
	struct qvl_prefix pf = {
	    .ids = whole->ids, .n = whole->n, .pos = whole->pos, .img_keys = whole->img_keys};
	int rc = qvl_seq_create(e, 1024, &s, &err);

	if (rc >= 0)
		rc = qvl_seq_attach_prefix(e, s, &pf, n_reused, &err);
	if (rc >= 0) {
		struct qvl_chunk b = {.ids = whole->ids + *n_reused, .n = whole->n - *n_reused};

		if (whole->pos && !restored_pos) {
			b.pos = whole->pos + *n_reused;
			b.next_pos = whole->next_pos;
		}
		rc = qvl_seq_forward(e, s, &b, out, false, &err);
	}
	if (rc < 0)
		diag("reuse: %s", err.msg);
	if (keep)
		*keep = s;
	else
		qvl_seq_destroy(s);
	return rc;
}

static void first_fill(struct qvl_engine *e, const struct qvl_chunk *c, struct qvl_seq **s)
{
	struct qvl_err err = {{0}};
	float *lg = malloc(V * sizeof(float));

	if (qvl_seq_create(e, 1024, s, &err) < 0 || qvl_seq_forward(e, *s, c, lg, false, &err) < 0)
		diag("first fill: %s", err.msg);
	free(lg);
}

static bool same(const float *a, const float *b)
{
	return memcmp(a, b, V * sizeof(float)) == 0;
}

static void text(struct qvl_engine *e, const int32_t *ids, const char *tag)
{
	float *a = malloc(V * sizeof(float)), *b = malloc(V * sizeof(float));
	struct qvl_chunk p200 = {.ids = ids, .n = 200};
	struct qvl_seq *owner = NULL;
	struct qvl_kv_usage u0, u;
	size_t nr = 0;
	int32_t q[200];

	first_fill(e, &p200, &owner);
	qvl_engine_kv_usage(e, &u0);
	int rc = reuse(e, &p200, false, &nr, a, NULL);
	qvl_engine_kv_usage(e, &u);
	ok(rc == 0 && nr == 192 && u.prefix_hits == u0.prefix_hits + 1 &&
	       u.prefix_tokens_reused == u0.prefix_tokens_reused + 192,
	   "%s: 200-token prompt reuses 3 whole pages (%zu positions, %llu hits)", tag, nr,
	   (unsigned long long)u.prefix_hits);
	ok(recompute(e, &p200, 192, b) == 0 && same(a, b),
	   "%s: logits after the reused prefix = recomputation, bit for bit", tag);

	/* a prompt of exactly 3 pages: 191 reused, the last page shared and
	 * copied when position 191 is written */
	struct qvl_chunk p192 = {.ids = ids, .n = 192};
	rc = reuse(e, &p192, false, &nr, a, NULL);
	qvl_engine_kv_usage(e, &u0);
	ok(rc == 0 && nr == 191 && u0.cow_copies == u.cow_copies + 1,
	   "%s: 192-token prompt reuses 191 positions, its last page copied on write (%llu "
	   "copies)",
	   tag, (unsigned long long)u0.cow_copies);
	ok(recompute(e, &p192, 191, b) == 0 && same(a, b), "%s: and its logits = recomputation",
	   tag);

	/* diverging at 150, inside the third page */
	memcpy(q, ids, 150 * sizeof(int32_t));
	rand_ids(q + 150, 50, 777);
	struct qvl_chunk pq = {.ids = q, .n = 200};
	struct qvl_seq *s2 = NULL;
	rc = reuse(e, &pq, false, &nr, a, &s2);
	qvl_engine_kv_usage(e, &u);
	ok(rc == 0 && nr == 150 && u.cow_copies == u0.cow_copies + 1,
	   "%s: prompt diverging at 150 shares 2 pages and 22 positions of the third, copied "
	   "on write",
	   tag);
	ok(recompute(e, &pq, 150, b) == 0 && same(a, b),
	   "%s: diverged prompt's logits = recomputation", tag);
	/* the owner's page was not touched by the copy: reusing it again
	 * still gives the recomputed logits; the sequences of p200 that ended
	 * published their last page (8 positions, computed as a chunk of its
	 * own after the 192 reused): all but the last position is reused now */
	rc = reuse(e, &p200, false, &nr, a, NULL);
	ok(rc == 0 && nr == 199 && recompute2(e, &p200, 192, 199, b) == 0 && same(a, b),
	   "%s: the shared page is intact after the other sequence diverged, and the last "
	   "page of one that ended is reused too (%zu positions)",
	   tag, nr);
	qvl_seq_destroy(s2);
	qvl_seq_destroy(owner);
	free(a);
	free(b);
}

/* 10 text tokens, an image of 8 x 10 merged rows (80 tokens), 60 text: the
 * first two pages hold image rows. */
#define IMG_ROWS 80
static void image(struct qvl_engine *e, const struct qvl_model *m, const int32_t *ids)
{
	struct qvl_err err = {{0}};
	size_t H = (size_t)m->config.text.hidden_size, n = 150;
	int32_t pid[150], (*pos)[3] = calloc(n, sizeof(*pos)), next = 0;
	float *embd = malloc(IMG_ROWS * H * sizeof(float));
	float *ds = malloc(3 * IMG_ROWS * H * sizeof(float));
	float *a = malloc(V * sizeof(float)), *b = malloc(V * sizeof(float));
	uint64_t keys[IMG_ROWS], other[IMG_ROWS], key = qvl_kv_hash("pixels", 6, 1);
	static const int merged[1][2] = {{8, 10}};
	struct qvl_seq *owner = NULL;
	size_t nr = 0;

	for (size_t i = 0; i < n; i++)
		pid[i] = i >= 10 && i < 10 + IMG_ROWS ? m->config.image_token_id : ids[i];
	for (size_t i = 0; i < IMG_ROWS * H; i++)
		embd[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
	for (size_t i = 0; i < 3 * IMG_ROWS * H; i++)
		ds[i] = (float)((i * 40503u) % 1000) / 4000.0f;
	for (int i = 0; i < IMG_ROWS; i++) {
		keys[i] = key;
		other[i] = key + 1;
	}
	if (qvl_mm_positions(pid, n, m->config.image_token_id, merged, 1, pos, &next, &err) < 0) {
		ok(0, "positions: %s", err.msg);
		return;
	}
	struct qvl_chunk c = {.ids = pid,
			      .n = n,
			      .embd = embd,
			      .n_img = IMG_ROWS,
			      .deepstack = ds,
			      .n_deepstack = 3,
			      .pos = (const int32_t(*)[3])pos,
			      .next_pos = next,
			      .img_keys = keys};
	first_fill(e, &c, &owner);
	/* the rest is text: pos NULL, so the position must be the restored one */
	int rc = reuse(e, &c, true, &nr, a, NULL);
	ok(rc == 0 && nr == 128, "image prompt: 2 pages with image rows reused (%zu positions)",
	   nr);
	ok(recompute(e, &c, 128, b) == 0 && same(a, b),
	   "image prompt: logits = recomputation (text position after the image restored)");
	c.img_keys = other;
	rc = reuse(e, &c, false, &nr, a, NULL);
	ok(rc == 0 && nr == 10,
	   "another image key: only the 10 text positions before the image reused (%zu)", nr);
	c.img_keys = NULL;
	struct qvl_seq *nokey = NULL;
	struct qvl_kv_usage u0, u;
	qvl_engine_kv_usage(e, &u0);
	first_fill(e, &c, &nokey); /* image rows without keys: nothing published */
	qvl_seq_reset(nokey);
	qvl_engine_kv_usage(e, &u);
	qvl_seq_destroy(nokey);
	c.img_keys = other; /* with keys: its 2 full pages and its last stay cached */
	first_fill(e, &c, &nokey);
	qvl_seq_destroy(nokey);
	struct qvl_kv_usage u2;
	qvl_engine_kv_usage(e, &u2);
	ok(u.pages_cached == u0.pages_cached && u2.pages_cached == u.pages_cached + 3,
	   "image rows without keys publish no page (cached %zu -> %zu; with keys -> %zu)",
	   u0.pages_cached, u.pages_cached, u2.pages_cached);
	qvl_seq_destroy(owner);
	free(pos);
	free(embd);
	free(ds);
	free(a);
	free(b);
}

/* Positions a new sequence could attach for c (the pages are given back). */
static size_t attach_only(struct qvl_engine *e, const struct qvl_chunk *c)
{
	struct qvl_err err = {{0}};
	struct qvl_prefix pf = {.ids = c->ids, .n = c->n};
	struct qvl_seq *s;
	size_t nr = SIZE_MAX;

	if (qvl_seq_create(e, 1024, &s, &err) < 0 || qvl_seq_attach_prefix(e, s, &pf, &nr, &err))
		diag("attach: %s", err.msg);
	qvl_seq_destroy(s);
	return nr;
}

/* 8 pages: A (200 tokens: 3 full pages + a last of 8) and F (130: 2 + 2)
 * reset, all 7 published, then G needs 3: the free page and the 2 least
 * recently used (A's first two). */
static void eviction(const struct qvl_model *m, const int32_t *ids)
{
	struct qvl_engine *e = kv_engine(m, NULL, PG, 8, QVL_DT_F32, QVL_PREC_EXACT);
	struct qvl_seq *a = NULL, *f = NULL, *g = NULL;
	struct qvl_chunk ca = {.ids = ids, .n = 200}, cf = {.ids = ids + 300, .n = 130};
	struct qvl_chunk cg = {.ids = ids + 500, .n = 150};
	struct qvl_kv_usage u;

	if (!e) {
		ok(0, "engine with 8 pages");
		return;
	}
	first_fill(e, &ca, &a);
	qvl_seq_reset(a);
	first_fill(e, &cf, &f);
	qvl_seq_reset(f);
	qvl_engine_kv_usage(e, &u);
	ok(u.pages_used == 0 && u.pages_cached == 7, "A and F reset: 7 pages cached, 0 used");
	first_fill(e, &cg, &g);
	qvl_engine_kv_usage(e, &u);
	ok(u.pages_used == 3 && u.evictions == 2 && u.pages_cached == 5,
	   "G took the free page and evicted 2 (%llu evictions, %zu cached)",
	   (unsigned long long)u.evictions, u.pages_cached);
	ok(attach_only(e, &ca) == 0, "A's first page was the least recently used: gone");
	ok(attach_only(e, &cf) == 129, "F's pages survive, its last one too");
	qvl_seq_destroy(a);
	qvl_seq_destroy(f);
	qvl_seq_destroy(g);
	qvl_engine_destroy(e);
}

int main(void)
{
	const char *model = tiny_model_path();
	struct qvl_err err = {{0}};
	struct qvl_model *m;
	static int32_t ids[1024];

	if (!model)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	if (qvl_model_open(&m, model, NULL, &err) < 0 || qvl_kernels_init(&err) < 0) {
		ok(0, "open %s: %s", model, err.msg);
		return done_testing();
	}
	V = (size_t)m->config.text.vocab_size;
	rand_ids(ids, 1024, 42);
	/* a budget: without one no unreferenced page is kept */
	struct qvl_engine *e = kv_engine(m, NULL, PG, 64, QVL_DT_F32, QVL_PREC_EXACT);
	if (e) {
		text(e, ids, "exact kv-f32");
		image(e, m, ids);
	}
	qvl_engine_destroy(e);
	e = kv_engine(m, NULL, PG, 64, QVL_DT_F16, QVL_PREC_BF16);
	if (e)
		text(e, ids, "bf16 kv-f16");
	qvl_engine_destroy(e);
	eviction(m, ids);
	qvl_model_close(m);
	return done_testing();
}
