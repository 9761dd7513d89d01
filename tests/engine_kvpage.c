/* The paged KV cache (src/kvcache.h) on the tiny model:
 * - 64-position pages give bit for bit the logits of one page holding the
 *   whole context (the contiguous layout), at every SIMD level, for three
 *   sequences of ragged lengths crossing page boundaries, prefilled in
 *   chunks and decoded together in one qvl_engine_forward per step;
 * - a pool with a budget refuses with -ENOSPC before anything runs, leaves
 *   the sequences unchanged, and works again once pages are given back;
 * - qvl_seq_pages_needed() predicts what a forward takes. */
#include "config.h"

#include "engine_common.h"

#define NSEQ  3
#define STEPS 12
#define CTX   1024

/* Prefill rounds: the chunk each sequence gets per round (0: none). */
static const size_t rounds[][NSEQ] = {{37, 70, 5}, {64, 0, 0}, {49, 58, 0}};

/* Run the schedule on e; all logits of every step into out (in order). */
static int run_schedule(struct qvl_engine *e, const int32_t *ids, float *out, size_t V)
{
	struct qvl_err err = {{0}};
	struct qvl_seq *s[NSEQ] = {NULL};
	struct qvl_batch_item it[NSEQ];
	size_t off[NSEQ] = {0}, nout = 0;
	int32_t next[NSEQ];
	int rc = 0;

	for (int i = 0; i < NSEQ && rc >= 0; i++)
		rc = qvl_seq_create(e, CTX, &s[i], &err);
	for (size_t r = 0; rc >= 0 && r < sizeof(rounds) / sizeof(rounds[0]); r++) {
		size_t n = 0;

		for (int i = 0; i < NSEQ; i++) {
			if (!rounds[r][i])
				continue;
			it[n] = (struct qvl_batch_item){
			    .seq = s[i],
			    .chunk = {.ids = ids + i * 256 + off[i], .n = rounds[r][i]},
			    .logits = out + V * nout++,
			    .all_logits = false};
			off[i] += rounds[r][i];
			n++;
		}
		rc = qvl_engine_forward(e, it, n, &err);
	}
	for (int step = 0; rc >= 0 && step < STEPS; step++) {
		for (int i = 0; i < NSEQ; i++) {
			float v;
			/* greedy from this sequence's last logits */
			next[i] = step
				      ? (int32_t)qvl_kern.argmax(out + V * (nout - NSEQ + i), V, &v)
				      : ids[i * 256 + 200 + i];
			it[i] = (struct qvl_batch_item){.seq = s[i],
							.chunk = {.ids = &next[i], .n = 1},
							.logits = out + V * (nout + i)};
		}
		nout += NSEQ;
		rc = qvl_engine_forward(e, it, NSEQ, &err);
	}
	if (rc < 0)
		diag("schedule: %s", err.msg);
	for (int i = 0; i < NSEQ; i++)
		qvl_seq_destroy(s[i]);
	return rc;
}

static size_t n_outputs(void)
{
	size_t n = (size_t)NSEQ * STEPS;

	for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]); r++)
		for (int i = 0; i < NSEQ; i++)
			n += rounds[r][i] != 0;
	return n;
}

static void layouts(const struct qvl_model *m, const struct qvl_kernels *k, enum qvl_dtype kv,
		    enum qvl_precision prec, const int32_t *ids)
{
	size_t V = (size_t)m->config.text.vocab_size, no = n_outputs();
	float *a = calloc(no * V, sizeof(float)), *b = calloc(no * V, sizeof(float));
	struct qvl_engine *pe = kv_engine(m, k, 64, 0, kv, prec);
	struct qvl_engine *ce = kv_engine(m, k, CTX, 0, kv, prec);
	int ra = pe ? run_schedule(pe, ids, a, V) : -1;
	int rb = ce ? run_schedule(ce, ids, b, V) : -1;
	size_t diff = 0;

	for (size_t i = 0; i < no * V; i++)
		diff += memcmp(&a[i], &b[i], sizeof(float)) != 0;
	ok(ra == 0 && rb == 0 && diff == 0,
	   "%s %s kv-%s: 64-position pages = one %d-position page, bit for bit (%zu logits "
	   "rows, %zu values differ)",
	   k->name, qvl_precision_name(prec), qvl_dtype_name(kv), CTX, no, diff);
	qvl_engine_destroy(pe);
	qvl_engine_destroy(ce);
	free(a);
	free(b);
}

static void budget(const struct qvl_model *m, const int32_t *ids)
{
	struct qvl_err err = {{0}};
	struct qvl_engine *e = kv_engine(m, NULL, 64, 3, QVL_DT_F32, QVL_PREC_EXACT);
	struct qvl_seq *a = NULL, *b = NULL;
	struct qvl_kv_usage u;
	size_t V = (size_t)m->config.text.vocab_size;
	float *lg = malloc(V * sizeof(float)), *lg2 = malloc(V * sizeof(float));
	float *first = malloc(V * sizeof(float));
	int rc;

	if (!e || qvl_seq_create(e, 512, &a, &err) < 0 || qvl_seq_create(e, 512, &b, &err) < 0) {
		ok(0, "budget engine: %s", err.msg);
		return;
	}
	struct qvl_chunk c = {.ids = ids, .n = 150};
	ok(qvl_seq_pages_needed(a, 150) == 3, "150 positions need 3 pages of 64");
	rc = qvl_seq_forward(e, a, &c, first, false, &err);
	qvl_engine_kv_usage(e, &u);
	ok(rc == 0 && u.pages_used == 3 && u.pages_total == 3 && u.page_tokens == 64,
	   "a fills the 3-page pool (%zu of %zu used)", u.pages_used, u.pages_total);
	c = (struct qvl_chunk){.ids = ids + 300, .n = 1};
	rc = qvl_seq_forward(e, b, &c, lg2, false, &err);
	ok(rc == -ENOSPC && qvl_seq_len(b) == 0, "b refused with -ENOSPC (%s), still empty",
	   err.msg);
	/* a batch: a fits alone, b does not; the whole batch is refused */
	struct qvl_batch_item it[2] = {{.seq = a, .chunk = {.ids = ids + 150, .n = 2}},
				       {.seq = b, .chunk = {.ids = ids + 300, .n = 1}}};
	rc = qvl_engine_forward(e, it, 2, &err);
	ok(rc == -ENOSPC && qvl_seq_len(a) == 150 && qvl_seq_len(b) == 0,
	   "batch needing 1 page more than the pool refused, a still at 150");
	ok(qvl_seq_pages_needed(a, 42) == 0 && qvl_seq_pages_needed(a, 43) == 1,
	   "a can grow 42 positions in its last page, 43 need a page");
	c = (struct qvl_chunk){.ids = ids + 150, .n = 42};
	ok(qvl_seq_forward(e, a, &c, lg, false, &err) == 0 && qvl_seq_len(a) == 192,
	   "a grows to 192 without a new page");
	qvl_seq_reset(a);
	qvl_engine_kv_usage(e, &u);
	ok(qvl_seq_len(a) == 0 && u.pages_used == 0 && u.pages_cached == 3,
	   "reset gives a's pages back (%zu used, %zu cached for reuse)", u.pages_used,
	   u.pages_cached);
	c = (struct qvl_chunk){.ids = ids + 300, .n = 1};
	rc = qvl_seq_forward(e, b, &c, lg2, false, &err);
	qvl_engine_kv_usage(e, &u);
	ok(rc == 0 && u.evictions == 1 && u.pages_used == 1,
	   "b runs now, evicting one cached page (%llu evictions)",
	   (unsigned long long)u.evictions);
	/* b after preemption and re-prefill gives what it gave the first time */
	c = (struct qvl_chunk){.ids = ids, .n = 150};
	qvl_seq_reset(b);
	rc = qvl_seq_forward(e, b, &c, lg2, false, &err);
	ok(rc == 0 && memcmp(first, lg2, V * sizeof(float)) == 0,
	   "b preempted and re-prefilled with a's prompt gives a's logits bit for bit");
	qvl_seq_destroy(a);
	qvl_seq_destroy(b);
	qvl_engine_destroy(e);
	free(lg);
	free(lg2);
	free(first);
}

static void bad_options(const struct qvl_model *m)
{
	struct qvl_engine_opts o = {.threads = 1, .kv_page_tokens = 48};
	struct qvl_err err = {{0}};
	struct qvl_engine *e = NULL;

	ok(qvl_engine_create(&e, m, &o, &err) == -EINVAL && !e, "page of 48 refused: %s", err.msg);
	o = (struct qvl_engine_opts){.threads = 1, .kv_bytes = 1000};
	ok(qvl_engine_create(&e, m, &o, &err) == -EINVAL && !e, "1000-byte budget refused: %s",
	   err.msg);
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
	rand_ids(ids, 1024, 20261205);
	for (int lv = QVL_SIMD_REF; lv <= QVL_SIMD_AVX512; lv++) {
		struct qvl_kernels k;

		if (qvl_kernels_get(&k, (enum qvl_simd_level)lv) < 0) {
			skip(3, "%s: not supported by this CPU", qvl_simd_name(lv));
			continue;
		}
		layouts(m, &k, QVL_DT_F32, QVL_PREC_EXACT, ids);
		if (lv != QVL_SIMD_REF) {
			layouts(m, &k, QVL_DT_F16, QVL_PREC_BF16, ids);
			layouts(m, &k, QVL_DT_BF16, QVL_PREC_BF16, ids);
		}
	}
	budget(m, ids);
	bad_options(m);
	qvl_model_close(m);
	return done_testing();
}
