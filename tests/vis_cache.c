/* The vision-output cache (engine option vision_cache_bytes, multimodal.h)
 * on the tiny model: an image seen again gets the stored tower rows (the
 * same embeddings and DeepStack rows, bit for bit, a hit counted), another
 * image misses, the byte bound evicts the least recently used, and the
 * prompt's image keys let a second sequence reuse the KV pages of the
 * first (prefix reuse across the whole path: pixels -> keys -> pages). */
#include "config.h"

#include "engine_common.h"
#include "image.h"
#include "picture.h"
#include "multimodal.h"
#include "tokenizer.h"

static int build(struct qvl_engine *e, const struct qvl_tokenizer *tok, const struct qvl_image *im,
		 struct qvl_mm_prompt *p)
{
	struct qvl_err err = {{0}};
	int rc = qvl_mm_prompt_build_images(e, tok, "What is in the picture?", false, im, NULL, 1,
					    p, &err);

	if (rc < 0)
		diag("build: %s", err.msg);
	return rc;
}

static bool same_rows(const struct qvl_mm_prompt *a, const struct qvl_mm_prompt *b, size_t H)
{
	size_t n = a->chunk.n_img, K = (size_t)a->chunk.n_deepstack;

	return n == b->chunk.n_img && K == (size_t)b->chunk.n_deepstack &&
	       !memcmp(a->embd, b->embd, n * H * sizeof(float)) &&
	       !memcmp(a->deepstack, b->deepstack, K * n * H * sizeof(float)) &&
	       !memcmp(a->img_keys, b->img_keys, n * sizeof(uint64_t));
}

int main(void)
{
	const char *mpath = tiny_model_path();
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	struct qvl_tokenizer *tok = NULL;
	struct qvl_engine *e = NULL, *small = NULL, *nocache = NULL;
	struct qvl_mm_prompt a = {0}, a2 = {0}, b = {0}, ref = {0};
	struct qvl_mm_cache_stats st;
	int rc;

	if (!mpath)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	struct qvl_engine_opts eo = {.threads = 2,
				     .kv_dtype = QVL_DT_F32,
				     .precision = QVL_PREC_EXACT,
				     .vision_cache_bytes = 64 << 20};
	if (qvl_kernels_init(&err) || qvl_model_open(&m, mpath, NULL, &err) ||
	    qvl_tok_load(&tok, m, &err) || qvl_engine_create(&e, m, &eo, &err)) {
		ok(0, "setup: %s", err.msg);
		return done_testing();
	}
	if (!m->config.vision.n_deepstack && !m->config.vision.depth) {
		qvl_engine_destroy(e);
		skip_all("the tiny model has no vision tower");
	}
	const size_t H = (size_t)m->config.text.hidden_size;
	struct qvl_image pa = picture(256, 256, 3), pb = picture(256, 256, 5);

	/* reference without a cache */
	eo.vision_cache_bytes = 0;
	if (qvl_engine_create(&nocache, m, &eo, &err) == 0)
		build(nocache, tok, &pa, &ref);
	qvl_mm_cache_stats(nocache, &st);
	ok(st.hits == 0 && st.misses == 0 && st.max_bytes == 0, "no cache: nothing counted");

	rc = build(e, tok, &pa, &a);
	ok(rc == 0 && a.vcache_hits == 0, "image A encoded (%zu rows)", a.chunk.n_img);
	ok(build(e, tok, &pa, &a2) == 0 && a2.vcache_hits == 1, "image A again: from the cache");
	qvl_mm_cache_stats(e, &st);
	ok(st.hits == 1 && st.misses == 1 && st.entries == 1, "1 hit, 1 miss, 1 entry (%zu bytes)",
	   st.bytes);
	ok(same_rows(&a, &a2, H) && same_rows(&a, &ref, H),
	   "cached rows = encoded rows = rows without a cache, bit for bit");
	ok(build(e, tok, &pb, &b) == 0 && b.vcache_hits == 0 && b.img_keys[0] != a.img_keys[0],
	   "image B: a miss, another key");

	/* room for one image: B evicts A */
	eo.vision_cache_bytes = st.bytes + st.bytes / 2;
	struct qvl_mm_prompt t = {0};
	if (qvl_engine_create(&small, m, &eo, &err) == 0) {
		build(small, tok, &pa, &t);
		qvl_mm_prompt_free(&t);
		build(small, tok, &pb, &t);
		qvl_mm_prompt_free(&t);
		build(small, tok, &pa, &t);
		qvl_mm_prompt_free(&t);
	}
	qvl_mm_cache_stats(small, &st);
	ok(st.misses == 3 && st.hits == 0 && st.evictions == 2 && st.entries == 1,
	   "bounded to one image: A, B, A miss 3 times, 2 evictions");

	/* the prompt's keys drive prefix reuse: a second sequence attaches
	 * the pages of the first */
	struct qvl_seq *s1 = NULL, *s2 = NULL;
	size_t V = (size_t)m->config.text.vocab_size, nr = 0;
	float *lg = malloc(V * sizeof(float));
	rc = qvl_seq_create(e, 512, &s1, &err);
	if (!rc)
		rc = qvl_seq_forward(e, s1, &a.chunk, lg, false, &err);
	struct qvl_prefix pf = {
	    .ids = a2.ids, .n = a2.chunk.n, .pos = a2.chunk.pos, .img_keys = a2.img_keys};
	if (!rc)
		rc = qvl_seq_create(e, 512, &s2, &err);
	if (!rc)
		rc = qvl_seq_attach_prefix(e, s2, &pf, &nr, &err);
	ok(rc == 0 && nr == 64 && a.chunk.n > 64,
	   "prompt of %zu tokens with a %zu-row image: second sequence reuses %zu positions",
	   a.chunk.n, a.chunk.n_img, nr);
	pf.img_keys = b.img_keys;
	qvl_seq_reset(s2);
	rc = qvl_seq_attach_prefix(e, s2, &pf, &nr, &err);
	ok(rc == 0 && nr < 64, "with image B's keys: only the text before the image (%zu)", nr);
	qvl_seq_destroy(s1);
	qvl_seq_destroy(s2);
	free(lg);

	qvl_mm_prompt_free(&a);
	qvl_mm_prompt_free(&a2);
	qvl_mm_prompt_free(&b);
	qvl_mm_prompt_free(&ref);
	qvl_image_free(&pa);
	qvl_image_free(&pb);
	qvl_engine_destroy(e);
	qvl_engine_destroy(small);
	qvl_engine_destroy(nocache);
	qvl_tok_free(tok);
	qvl_model_close(m);
	return done_testing();
}
