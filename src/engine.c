/* The engine: weights prepared once (zero-copy views of the mmapped tensors,
 * norms widened to f32), the thread pool, the activation scratch, and
 * sequences with their KV caches. The layer arithmetic is in forward.c. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../simd/qrepack.h"
#include "engine_impl.h"
#include "mm_cache.h"
#include "pool.h"
#include "util.h"
#include "weight_copy.h"

#define LM "model.language_model."

static int mat_init(struct eng_mat *w, const struct qvl_tensor *t, size_t n, size_t k,
		    const char *name, struct qvl_err *err)
{
	bool ok = true;

	if (!t)
		return qvl_errf(err, -EINVAL, "tensor '%s' missing", name);
	if (t->ndim != 2 || (size_t)t->shape[0] != n || (size_t)t->shape[1] != k)
		return qvl_errf(
		    err, -EINVAL, "tensor '%s': shape [%lld, %lld], expected [%zu, %zu]", name,
		    (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), n, k);
	/* every dtype is a matmul weight; block types need whole blocks per row */
	const struct qvl_dtype_info *di = qvl_dtype_info(t->dtype);

	if (!di)
		return qvl_errf(err, -EINVAL, "tensor '%s': dtype %d not supported for matmul",
				name, (int)t->dtype);
	if (k % di->blk)
		return qvl_errf(err, -EINVAL,
				"tensor '%s': %s rows of %zu values (not a multiple of %" PRIu32 ")",
				name, di->name, k, di->blk);
	w->row_bytes = qvl_dtype_bytes(t->dtype, k, &ok);
	if (!ok || w->row_bytes * n != t->nbytes)
		return qvl_errf(err, -EINVAL, "tensor '%s': %llu bytes for [%zu, %zu] %s", name,
				(unsigned long long)t->nbytes, n, k, qvl_dtype_name(t->dtype));
	w->data = t->data;
	w->type = t->dtype;
	w->owned = false;
	w->n = n;
	w->k = k;
	return 0;
}

static int vec_f32(float **out, const struct qvl_tensor *t, size_t n, const char *name,
		   struct qvl_err *err)
{
	if (!t)
		return qvl_errf(err, -EINVAL, "tensor '%s' missing", name);
	if (t->nelem != n)
		return qvl_errf(err, -EINVAL, "tensor '%s': %llu elements, expected %zu", name,
				(unsigned long long)t->nelem, n);
	*out = malloc(n * sizeof(float));
	if (!*out)
		return -ENOMEM;
	if (qvl_tensor_to_f32(t, 0, n, *out) < 0)
		return qvl_errf(err, -EINVAL, "tensor '%s': cannot widen %s to f32", name,
				qvl_dtype_name(t->dtype));
	return 0;
}

static const struct qvl_tensor *at(const struct qvl_tensor *t, struct qvl_tensor *tmp,
				   const uint8_t *home, const uint8_t *base);

/* One matrix being repacked by the pool: whole groups (8 rows, 16 for the
 * bf16 panels) per thread; in place when tmp is set (a group at a time
 * through the thread's tmp + ith * group bytes). */
struct repack_task {
	const struct eng_mat *w;
	enum qvl_dtype rt;
	uint8_t *dst, *tmp;
	bool *ok; /* [nth] */
};

static void repack_task(void *arg, int ith, int nth)
{
	struct repack_task *t = arg;
	size_t g0, g1, gr = qvl_repack_rows(t->rt), gb = gr * t->w->row_bytes;

	qvl_split(t->w->n / gr, 1, ith, nth, &g0, &g1);
	t->ok[ith] = true;
	if (!t->tmp) {
		t->ok[ith] = g1 <= g0 || qvl_repack(t->dst + g0 * gb, t->rt, t->w->data + g0 * gb,
						    t->w->type, (g1 - g0) * gr, t->w->k) == 0;
		return;
	}
	/* the shape was checked (qvl_repack_type): cannot fail half-way */
	for (size_t g = g0; g < g1; g++) {
		uint8_t *tmp = t->tmp + (size_t)ith * gb;
		memcpy(tmp, t->dst + g * gb, gb);
		qvl_repack(t->dst + g * gb, t->rt, tmp, t->w->type, gr, t->w->k);
	}
}

/* The matrix in the layout e's matmul_fast streams fastest (simd/qrepack.h),
 * a copy the engine owns (freed by qvl_engine_destroy), written by the pool
 * threads into qvl_huge_alloc() memory; the file's layout when there is none or
 * no memory for it (slower, same result). A bf16 matrix the engine already
 * copied (eng_repack) becomes panels in place: a second 3.4 GB of huge pages
 * for the 2b model cost ~10 s of page clearing at load. */
static void mat_repack(struct qvl_engine *e, struct eng_mat *w)
{
	struct repack_task t = {w, qvl_repack_type(&e->k, w->type, w->n, w->k), NULL, NULL, NULL};
	bool ok = true;

	/* the one shape rule beyond qvl_repack_type's: head_dim splits
	 * (forward.c) on whole groups of every repacked type, and the panels
	 * need rows right after each other (their kernel's ldw == k) */
	if (t.rt == w->type || e->hd % qvl_repack_rows(t.rt) ||
	    (t.rt == QVL_DT_BF16_P16 && w->row_bytes != 2 * w->k))
		return;
	if (!(t.ok = calloc((size_t)e->nth, sizeof(bool))))
		return;
	if (t.rt == QVL_DT_BF16_P16 && w->owned) {
		t.dst = (uint8_t *)(uintptr_t)w->data;
		t.tmp = malloc((size_t)e->nth * QVL_P16_ROWS * w->row_bytes);
	} else {
		t.dst = qvl_huge_alloc(w->n * w->row_bytes);
	}
	if (!t.dst || (w->data == t.dst && !t.tmp)) {
		free(t.ok);
		return;
	}
	qvl_pool_run(e->pool, repack_task, &t);
	for (int i = 0; i < e->nth; i++)
		ok = ok && t.ok[i];
	free(t.ok);
	free(t.tmp);
	if (!ok) {
		if (t.dst != w->data)
			free(t.dst);
		return;
	}
	w->data = t.dst;
	w->type = t.rt;
	w->owned = true;
}

/* A resident matrix read from the file's mapping, copied once by the pool
 * threads into qvl_huge_alloc() memory the engine owns when the engine
 * copies its weights: the policy and its reasons are in weight_copy.h
 * (from 2 MiB pages a bf16 GGUF decoded 1.7-2.4x faster on a loaded
 * machine, docs/status.md has the quiet figures). The file's pages are
 * dropped from the mapping (clean page cache: a tied embedding's lookups
 * fault their rows back). */
static void mat_own(struct qvl_engine *e, struct eng_mat *w, struct qvl_weight_reader *rd)
{
	size_t bytes = w->n * w->row_bytes;
	uint8_t *dst;

	if (!e->copy_weights || w->owned || !bytes || w->row_bytes & 63 ||
	    !qvl_model_file_page(e->m, w->data) || !(dst = qvl_huge_alloc(bytes)))
		return;
	qvl_weight_copy(rd, e->pool, dst, w->data, bytes);
	w->data = dst;
	w->owned = true;
}

#define LAYER_MATS 7

/* A layer's seven weight matrices, in one place for every walk over them. */
static void layer_mats(struct eng_layer *ly, struct eng_mat *out[LAYER_MATS])
{
	out[0] = &ly->wq, out[1] = &ly->wk, out[2] = &ly->wv, out[3] = &ly->wo;
	out[4] = &ly->wg, out[5] = &ly->wu, out[6] = &ly->wd;
}

/* The layers' matrices repacked (then the rest of the file-mapped ones
 * copied into huge pages: mat_own): only the fast precision reads the
 * repacked types, and the splits of a matmul's rows between threads
 * (forward.c: multiples of 16 and of head_dim) must not cut a group. Not
 * with a weight source (tiered or streamed layers): its memory budget
 * does not count a second copy. */
static void eng_repack(struct qvl_engine *e)
{
	bool repack = e->prec == QVL_PREC_BF16; /* mat_repack checks the shapes */
	struct qvl_weight_reader rd;

	if (e->wsrc.home)
		return;
	qvl_weight_reader_init(&rd, e->m);
	for (int l = 0; l < e->L; l++) {
		struct eng_layer *ly = &e->layers[l];
		struct eng_mat *ws[LAYER_MATS];
		layer_mats(ly, ws);
		for (size_t i = 0; !ly->home && i < LAYER_MATS; i++) {
			/* bf16 copied first: mat_repack turns the copy into
			 * panels in place, reading huge pages, not the mapping's
			 * faults (without panels the copy is what mat_own makes) */
			if (repack && ws[i]->type == QVL_DT_BF16)
				mat_own(e, ws[i], &rd);
			if (repack)
				mat_repack(e, ws[i]);
			mat_own(e, ws[i], &rd);
		}
	}
	/* the output matrix too (Q6_K in llama.cpp's presets): a copy even when
	 * tied, the embedding lookup reads the file's rows; its row splits
	 * (forward.c: logits and argmax tiles) are multiples of 16 */
	if (repack && e->out.type == QVL_DT_BF16)
		mat_own(e, &e->out, &rd);
	if (repack)
		mat_repack(e, &e->out);
	mat_own(e, &e->out, &rd);
	qvl_weight_reader_close(&rd);
}

static void layer_free_repacked(struct eng_layer *ly)
{
	struct eng_mat *ws[LAYER_MATS];

	layer_mats(ly, ws);
	for (size_t i = 0; i < LAYER_MATS; i++)
		if (ws[i]->owned)
			free((void *)(uintptr_t)ws[i]->data);
}

static int layer_init(struct qvl_engine *e, int l, struct qvl_err *err)
{
	const struct qvl_model *m = e->m;
	struct eng_layer *ly = &e->layers[l];
	size_t H = (size_t)e->H, qd = (size_t)e->nh * e->hd, kd = (size_t)e->nkv * e->hd;
	size_t I = (size_t)e->I;
	const uint8_t *base = NULL;
	struct qvl_tensor t;
	char name[160];
	int rc;

#define MAT(field, suffix, n, k)                                                                   \
	do {                                                                                       \
		snprintf(name, sizeof(name), LM "layers.%d." suffix, l);                           \
		rc = mat_init(&ly->field, qvl_model_find(m, name), n, k, name, err);               \
		if (rc < 0)                                                                        \
			return rc;                                                                 \
	} while (0)
#define VEC(field, suffix, n)                                                                      \
	do {                                                                                       \
		snprintf(name, sizeof(name), LM "layers.%d." suffix, l);                           \
		rc = vec_f32(&ly->field, at(qvl_model_find(m, name), &t, ly->home, base), n, name, \
			     err);                                                                 \
		if (rc < 0)                                                                        \
			goto out;                                                                  \
	} while (0)
	MAT(wq, "self_attn.q_proj.weight", qd, H);
	MAT(wk, "self_attn.k_proj.weight", kd, H);
	MAT(wv, "self_attn.v_proj.weight", kd, H);
	MAT(wo, "self_attn.o_proj.weight", H, qd);
	MAT(wg, "mlp.gate_proj.weight", I, H);
	MAT(wu, "mlp.up_proj.weight", I, H);
	MAT(wd, "mlp.down_proj.weight", H, I);
	/* the norms of a layer not resident are widened from its bytes, read
	 * once here, unless the source keeps them at home (vecs_home) */
	if (e->wsrc.home && (ly->home = e->wsrc.home(e->wsrc.ctx, l)) && !e->wsrc.vecs_home) {
		rc = e->wsrc.begin(e->wsrc.ctx, l, &base, err);
		if (rc < 0)
			return rc;
	}
	VEC(attn_norm, "input_layernorm.weight", H);
	VEC(ffn_norm, "post_attention_layernorm.weight", H);
	VEC(q_norm, "self_attn.q_norm.weight", (size_t)e->hd);
	VEC(k_norm, "self_attn.k_norm.weight", (size_t)e->hd);
#undef MAT
#undef VEC
out:
	if (base)
		e->wsrc.end(e->wsrc.ctx, l);
	return rc;
}

/* t rebased from home onto base (a layer not resident), or t itself. */
static const struct qvl_tensor *at(const struct qvl_tensor *t, struct qvl_tensor *tmp,
				   const uint8_t *home, const uint8_t *base)
{
	if (!t || !base)
		return t;
	*tmp = *t;
	tmp->data = base + ((const uint8_t *)t->data - home);
	return tmp;
}

int eng_layer_begin(struct qvl_engine *e, int l, struct eng_layer *tmp,
		    const struct eng_layer **out, struct qvl_err *err)
{
	const struct eng_layer *ly = &e->layers[l];
	const uint8_t *base;
	int rc;

	*out = ly;
	if (!ly->home)
		return 0;
	rc = e->wsrc.begin(e->wsrc.ctx, l, &base, err);
	if (rc < 0)
		return rc;
	*tmp = *ly;
	struct eng_mat *w[LAYER_MATS];
	layer_mats(tmp, w);
	for (size_t i = 0; i < LAYER_MATS; i++)
		w[i]->data = base + (w[i]->data - ly->home);
	*out = tmp;
	return 0;
}

void eng_layer_end(struct qvl_engine *e, int l)
{
	if (e->layers[l].home)
		e->wsrc.end(e->wsrc.ctx, l);
}

/* inv_freq as HF computes it: 1 / base^(float(2j) / hd), all in f32; and the
 * interleaved stream of each frequency (qwen3-vl.md §6.1). */
static void rope_init(struct qvl_engine *e)
{
	const int *sec = e->m->config.text.mrope_section;
	float base = (float)e->m->config.text.rope_theta;

	for (int j = 0; j < e->hd / 2; j++) {
		float ex = (float)(2 * j) / (float)e->hd;
		e->inv_freq[j] = 1.0f / powf(base, ex);
		if (j % 3 == 1 && j < 3 * sec[1])
			e->stream[j] = 1;
		else if (j % 3 == 2 && j < 3 * sec[2])
			e->stream[j] = 2;
		else
			e->stream[j] = 0;
	}
}

/* Activation scratch in huge pages (advice only): the 2b model's ~60 MB
 * of it took 0.7-0.9 s to first-touch in 4 KiB pages at load 6-8 on this
 * VM (every fresh page a host fault), most of the engine's set-up before
 * qvld's socket (docs/todo-coldhead.md). */
#define SCRATCH_HUGE (2u << 20)

static void *scratch_alloc(size_t nfloat)
{
	size_t n = nfloat * sizeof(float) + 64;
	void *p = NULL;

	if (n < SCRATCH_HUGE)
		return posix_memalign(&p, 64, n) ? NULL : p;
	n = (n + SCRATCH_HUGE - 1) / SCRATCH_HUGE * SCRATCH_HUGE;
	if (posix_memalign(&p, SCRATCH_HUGE, n))
		return NULL;
	(void)madvise(p, n, MADV_HUGEPAGE);
	return p;
}

/* First touch: every thread zeroes its own slice of every activation
 * buffer, so on a multi-node machine the pages land near the thread that
 * writes them (matmul outputs are split the same way, by columns). */
static void touch_task(void *arg, int ith, int nth)
{
	struct qvl_engine *e = arg;
	float *bufs[] = {e->x, e->xb, e->tmp, e->q, e->kk, e->vv, e->att, e->gate, e->up, e->cs};
	size_t R = ENG_MAX_ROWS;
	size_t sizes[] = {
	    R * e->H,		R * e->H,	   R * e->H, R * e->nh * e->hd, R * e->nkv * e->hd,
	    R * e->nkv * e->hd, R * e->nh * e->hd, R * e->I, R * e->I,		R * e->hd};

	for (size_t b = 0; b < sizeof(bufs) / sizeof(bufs[0]); b++) {
		size_t lo, hi;
		qvl_split(sizes[b], 16, ith, nth, &lo, &hi);
		memset(bufs[b] + lo, 0, (hi - lo) * sizeof(float));
	}
}

/* The KV pool: pages of kv_page_tokens positions for every layer and KV
 * head, as many as the budget allows. */
static int kv_init(struct qvl_engine *e, const struct qvl_engine_opts *opts, struct qvl_err *err)
{
	struct kv_pool_geom g = {
	    .page_tokens = opts && opts->kv_page_tokens ? (size_t)opts->kv_page_tokens
							: QVL_KV_PAGE_TOKENS,
	    .row_bytes = (size_t)e->hd * (e->kv_dtype == QVL_DT_F32 ? 4 : 2),
	    .layers = e->L,
	    .kv_heads = e->nkv,
	    .max_pages = opts ? opts->kv_pages : 0};

	if (opts && opts->kv_page_tokens < 0)
		return qvl_errf(err, -EINVAL, "KV page size %d tokens: must be positive",
				opts->kv_page_tokens);
	if (!g.max_pages && opts && opts->kv_bytes) {
		size_t page = g.page_tokens * g.row_bytes * 2 * (size_t)e->nkv * (size_t)e->L;

		g.max_pages = opts->kv_bytes / page;
		if (!g.max_pages)
			return qvl_errf(err, -EINVAL,
					"KV budget of %zu bytes: less than one page (%zu bytes)",
					opts->kv_bytes, page);
	}
	return kv_pool_create(&e->kv, &g, err);
}

int qvl_engine_create(struct qvl_engine **out, const struct qvl_model *m,
		      const struct qvl_engine_opts *opts, struct qvl_err *err)
{
	const struct qvl_text_config *tc = &m->config.text;
	struct qvl_engine *e;
	int rc;

	*out = NULL;
	if (tc->hidden_size <= 0 || tc->num_layers <= 0 || tc->num_heads <= 0 ||
	    tc->num_kv_heads <= 0 || tc->head_dim <= 0 || tc->head_dim % 2 ||
	    tc->num_heads % tc->num_kv_heads || tc->intermediate_size <= 0 || tc->vocab_size <= 0)
		return qvl_errf(err, -EINVAL, "%s: text config not usable by the engine", m->path);
	if (tc->mrope_section[0] + tc->mrope_section[1] + tc->mrope_section[2] != tc->head_dim / 2)
		return qvl_errf(err, -EINVAL, "%s: mrope_section sums to %d, head_dim/2 is %d",
				m->path,
				tc->mrope_section[0] + tc->mrope_section[1] + tc->mrope_section[2],
				tc->head_dim / 2);
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->m = m;
	e->H = tc->hidden_size;
	e->L = tc->num_layers;
	e->nh = tc->num_heads;
	e->nkv = tc->num_kv_heads;
	e->hd = tc->head_dim;
	e->I = tc->intermediate_size;
	e->V = tc->vocab_size;
	e->eps = (float)tc->rms_norm_eps;
	e->image_token_id = m->config.image_token_id;
	e->n_deepstack_max = e->L < QVL_MAX_DEEPSTACK ? e->L : QVL_MAX_DEEPSTACK;
	e->kv_dtype = opts ? opts->kv_dtype : QVL_DT_F16;
	e->prec = opts ? opts->precision : QVL_PREC_BF16;
	/* the weight-copy policy: weight_copy.h */
	e->copy_weights = qvl_weight_copy_asked(opts && opts->copy_weights);
	if (opts && opts->wsrc)
		e->wsrc = *opts->wsrc;
	if (e->kv_dtype != QVL_DT_F32 && e->kv_dtype != QVL_DT_F16 && e->kv_dtype != QVL_DT_BF16) {
		rc = qvl_errf(err, -EINVAL, "KV cache type %s: use bf16, f16 or f32",
			      qvl_dtype_name(e->kv_dtype));
		goto fail;
	}

	if (opts && opts->kern) {
		e->k = *opts->kern;
	} else {
		if (!qvl_kern.matmul) {
			rc = qvl_kernels_init(err);
			if (rc < 0)
				goto fail;
		}
		e->k = qvl_kern;
	}
	if (e->prec != QVL_PREC_BF16 && e->prec != QVL_PREC_EXACT) {
		rc = qvl_errf(err, -EINVAL, "precision %d: use QVL_PREC_BF16 or QVL_PREC_EXACT",
			      (int)e->prec);
		goto fail;
	}
	if (e->prec == QVL_PREC_BF16) /* see struct qvl_engine */
		e->k.matmul = e->k.matmul_fast;

	rc = mat_init(&e->embd, qvl_model_find(m, LM "embed_tokens.weight"), (size_t)e->V,
		      (size_t)e->H, LM "embed_tokens.weight", err);
	if (rc < 0)
		goto fail;
	if (tc->tie_word_embeddings) {
		e->out = e->embd;
	} else {
		rc = mat_init(&e->out, qvl_model_find(m, "lm_head.weight"), (size_t)e->V,
			      (size_t)e->H, "lm_head.weight", err);
		if (rc < 0)
			goto fail;
	}
	rc = vec_f32(&e->out_norm, qvl_model_find(m, LM "norm.weight"), (size_t)e->H,
		     LM "norm.weight", err);
	if (rc < 0)
		goto fail;
	e->layers = calloc((size_t)e->L, sizeof(*e->layers));
	e->inv_freq = calloc((size_t)e->hd / 2, sizeof(float));
	e->stream = calloc((size_t)e->hd / 2, 1);
	rc = -ENOMEM;
	if (!e->layers || !e->inv_freq || !e->stream)
		goto fail;
	for (int l = 0; l < e->L; l++) {
		rc = layer_init(e, l, err);
		if (rc < 0)
			goto fail;
	}
	rope_init(e);

	size_t R = ENG_MAX_ROWS, qd = (size_t)e->nh * e->hd, kd = (size_t)e->nkv * e->hd;
	e->x = scratch_alloc(R * e->H);
	e->xb = scratch_alloc(R * e->H);
	e->tmp = scratch_alloc(R * e->H);
	e->q = scratch_alloc(R * qd);
	e->kk = scratch_alloc(R * kd);
	e->vv = scratch_alloc(R * kd);
	e->att = scratch_alloc(R * qd);
	e->gate = scratch_alloc(R * e->I);
	e->up = scratch_alloc(R * e->I);
	e->cs = scratch_alloc(R * e->hd);
	e->rows = calloc(R, sizeof(*e->rows));
	e->out_dst = calloc(R, sizeof(*e->out_dst));
	e->out_arg = calloc(R, sizeof(*e->out_arg));
	e->lscratch = scratch_alloc((size_t)ENG_LOGIT_ROWS * e->V);
	rc = -ENOMEM;
	if (!e->x || !e->xb || !e->tmp || !e->q || !e->kk || !e->vv || !e->att || !e->gate ||
	    !e->up || !e->cs || !e->rows || !e->out_dst || !e->out_arg || !e->lscratch)
		goto fail;

	rc = qvl_pool_create(&e->pool, opts ? opts->threads : 0, opts ? opts->cpus : NULL, err);
	if (rc < 0)
		goto fail;
	e->nth = qvl_pool_size(e->pool);
	e->arg_val = calloc((size_t)e->nth * ENG_LOGIT_ROWS, sizeof(*e->arg_val));
	e->arg_idx = calloc((size_t)e->nth * ENG_LOGIT_ROWS, sizeof(*e->arg_idx));
	e->claims = aligned_alloc(64, (size_t)e->nth * sizeof(*e->claims));
	rc = -ENOMEM;
	if (!e->arg_val || !e->arg_idx || !e->claims)
		goto fail;
	qvl_pool_run(e->pool, touch_task, e);
	eng_repack(e);
	rc = eng_prof_create(&e->prof, e->pool);
	if (rc < 0)
		goto fail;
	rc = kv_init(e, opts, err);
	if (rc < 0)
		goto fail;
	/* always: image keys and the vision tower live there (mm_cache.h) */
	rc = mm_cache_create(&e->vcache, opts ? opts->vision_cache_bytes : 0);
	if (rc < 0)
		goto fail;
	*out = e;
	return 0;
fail:
	if (rc == -ENOMEM)
		qvl_errf(err, rc, "engine: out of memory");
	qvl_engine_destroy(e);
	return rc;
}

void qvl_engine_destroy(struct qvl_engine *e)
{
	if (!e)
		return;
	eng_prof_report(e->prof, stderr, e->nth, e->k.name);
	eng_prof_free(e->prof, e->pool);
	kv_pool_destroy(e->kv);
	mm_cache_destroy(e->vcache);
	if (e->pool)
		qvl_pool_destroy(e->pool);
	if (e->layers)
		for (int l = 0; l < e->L; l++) {
			free(e->layers[l].attn_norm);
			free(e->layers[l].ffn_norm);
			free(e->layers[l].q_norm);
			free(e->layers[l].k_norm);
			layer_free_repacked(&e->layers[l]);
		}
	free(e->layers);
	if (e->out.owned)
		free((void *)(uintptr_t)e->out.data);
	free(e->out_norm);
	free(e->inv_freq);
	free(e->stream);
	free(e->x);
	free(e->xb);
	free(e->tmp);
	free(e->q);
	free(e->kk);
	free(e->vv);
	free(e->att);
	free(e->gate);
	free(e->up);
	free(e->cs);
	free(e->rows);
	free(e->out_dst);
	free(e->out_arg);
	free(e->arg_val);
	free(e->arg_idx);
	free(e->claims);
	free(e->lscratch);
	free(e->xa);
	free(e->xn);
	free(e);
}

struct mm_cache *eng_vcache(const struct qvl_engine *e)
{
	return e->vcache;
}

const struct qvl_model *qvl_engine_model(const struct qvl_engine *e)
{
	return e->m;
}

struct qvl_pool *qvl_engine_pool(struct qvl_engine *e)
{
	return e->pool;
}

enum qvl_precision qvl_engine_precision(const struct qvl_engine *e)
{
	return e->prec;
}

bool qvl_engine_copies_weights(const struct qvl_engine *e)
{
	return e->copy_weights;
}

int qvl_engine_threads(const struct qvl_engine *e)
{
	return e->nth;
}

int qvl_seq_create(struct qvl_engine *e, int n_ctx, struct qvl_seq **out, struct qvl_err *err)
{
	struct qvl_seq *s;

	*out = NULL;
	if (n_ctx <= 0)
		return qvl_errf(err, -EINVAL, "context length %d: must be positive", n_ctx);
	s = calloc(1, sizeof(*s));
	if (!s || kv_seq_init(e->kv, &s->kv, (size_t)n_ctx) < 0) {
		free(s);
		return qvl_errf(err, -ENOMEM, "sequence: out of memory");
	}
	s->e = e;
	s->n_ctx = n_ctx;
	*out = s;
	return 0;
}

void qvl_seq_destroy(struct qvl_seq *s)
{
	if (!s)
		return;
	kv_seq_release(s); /* publishes its last page (prefix reuse) */
	kv_seq_free(s->e->kv, &s->kv);
	free(s);
}

int qvl_seq_len(const struct qvl_seq *s)
{
	return s->len;
}

int qvl_seq_ctx(const struct qvl_seq *s)
{
	return s->n_ctx;
}

/* Everything about one item that can be wrong, before anything runs. */
static int check_item(const struct qvl_engine *e, const struct qvl_batch_item *it, size_t idx,
		      struct qvl_err *err)
{
	const struct qvl_chunk *c = &it->chunk;
	const struct qvl_seq *s = it->seq;
	size_t nimg = 0;

	if (!s || s->e != e)
		return qvl_errf(err, -EINVAL, "item %zu: no sequence of this engine", idx);
	if (!c->ids || c->n == 0)
		return qvl_errf(err, -EINVAL, "empty input: nothing to run");
	if (c->n > (size_t)(s->n_ctx - s->len))
		return qvl_errf(err, -ENOSPC,
				"input of %zu tokens does not fit the context: %d of %d positions "
				"used",
				c->n, s->len, s->n_ctx);
	for (size_t i = 0; i < c->n; i++) {
		if (c->ids[i] < 0 || c->ids[i] >= e->V)
			return qvl_errf(err, -EINVAL,
					"token %zu: id %d out of range (vocabulary has %d ids)", i,
					c->ids[i], e->V);
		nimg += c->n_img && c->ids[i] == e->image_token_id;
	}
	if (c->n_img) {
		if (!c->embd)
			return qvl_errf(err, -EINVAL, "%zu image rows announced, no embeddings",
					c->n_img);
		if (nimg != c->n_img)
			return qvl_errf(err, -EINVAL,
					"%zu image embeddings for %zu image tokens (id %d)",
					c->n_img, nimg, e->image_token_id);
		if (c->n_deepstack < 0 || c->n_deepstack > e->n_deepstack_max ||
		    (c->n_deepstack && !c->deepstack))
			return qvl_errf(err, -EINVAL, "%d DeepStack features (at most %d)",
					c->n_deepstack, e->n_deepstack_max);
	}
	return 0;
}

/* The pages every item needs, taken before anything runs: -ENOSPC, and no
 * sequence changed, when the pool cannot supply them all. */
static int kv_take(struct qvl_engine *e, const struct qvl_batch_item *items, size_t n,
		   struct qvl_err *err)
{
	size_t need = 0, avail = kv_pool_available(e->kv);
	int rc;

	for (size_t i = 0; i < n; i++)
		need += kv_seq_pages_needed(items[i].seq, items[i].chunk.n);
	if (need > avail)
		return qvl_errf(err, -ENOSPC, "KV pool: %zu pages needed, %zu available", need,
				avail);
	for (size_t i = 0; i < n; i++) {
		rc = kv_seq_reserve(items[i].seq, items[i].chunk.n);
		if (rc < 0)
			return qvl_errf(err, rc, "KV pool: out of memory for page metadata");
	}
	return 0;
}

int eng_prepare(struct qvl_engine *e, const struct qvl_batch_item *items, size_t n,
		struct qvl_err *err)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		rc = check_item(e, &items[i], i, err);
		if (rc < 0)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (items[j].seq == items[i].seq)
				return qvl_errf(err, -EINVAL, "items %zu and %zu: same sequence", j,
						i);
	}
	return kv_take(e, items, n, err);
}

void eng_item_rows(const struct qvl_engine *e, const struct qvl_batch_item *it,
		   const struct qvl_chunk *c, size_t ci0, size_t n, int32_t *rank,
		   struct eng_row *rows)
{
	for (size_t ci = ci0; ci < ci0 + n; ci++) {
		struct eng_row *r = &rows[ci - ci0];
		bool img = c->n_img && c->ids[ci] == e->image_token_id;

		r->s = it->seq;
		r->c = c;
		r->ci = (uint32_t)ci;
		r->pos = it->seq->len + (int32_t)ci;
		r->rank = img ? (*rank)++ : -1;
		r->logits = !it->logits	     ? NULL
			    : it->all_logits ? it->logits + ci * (size_t)e->V
			    : ci + 1 == c->n ? it->logits
					     : NULL;
		r->argmax = ci + 1 == c->n ? it->argmax : NULL;
	}
}

void eng_commit(const struct qvl_batch_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct qvl_seq *s = items[i].seq;
		const struct qvl_chunk *c = &items[i].chunk;

		kv_seq_publish(s, c, s->len, s->next_pos);
		s->len += (int)c->n;
		s->next_pos = c->pos ? c->next_pos : s->next_pos + (int32_t)c->n;
	}
}

int qvl_engine_forward(struct qvl_engine *e, const struct qvl_batch_item *items, size_t n,
		       struct qvl_err *err)
{
	size_t nr = 0, done = 0, total = 0;
	int rc = eng_prepare(e, items, n, err);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		total += items[i].chunk.n;
	/* Rows of all items, in order, cut into slices of ENG_MAX_ROWS. A
	 * chunk may straddle two slices: its first part is in the cache
	 * before the second part attends to it. */
	for (size_t i = 0; i < n; i++) {
		const struct qvl_chunk *c = &items[i].chunk;
		int32_t rank = 0;

		for (size_t ci = 0; ci < c->n;) {
			size_t take = c->n - ci < ENG_MAX_ROWS - nr ? c->n - ci : ENG_MAX_ROWS - nr;
			eng_item_rows(e, &items[i], c, ci, take, &rank, e->rows + nr);
			nr += take;
			ci += take;
			if (nr == ENG_MAX_ROWS) {
				rc = eng_forward_rows(e, nr, err);
				if (rc < 0)
					return rc; /* no sequence advanced */
				done += nr;
				nr = 0;
				if (e->progress)
					e->progress(e->progress_ctx, (double)done, (double)total);
			}
		}
	}
	if (nr && (rc = eng_forward_rows(e, nr, err)) < 0)
		return rc;
	eng_commit(items, n);
	return 0;
}

void qvl_engine_set_progress(struct qvl_engine *e, qvl_progress_fn fn, void *ctx)
{
	e->progress = fn;
	e->progress_ctx = ctx;
}

int qvl_seq_forward_argmax(struct qvl_engine *e, struct qvl_seq *s, const struct qvl_chunk *c,
			   int32_t *id, struct qvl_err *err)
{
	struct qvl_batch_item it = {.seq = s, .argmax = id};

	if (!c)
		return qvl_errf(err, -EINVAL, "empty input: nothing to run");
	if (!id)
		return qvl_errf(err, -EINVAL, "no destination for the argmax");
	it.chunk = *c;
	return qvl_engine_forward(e, &it, 1, err);
}

int qvl_seq_forward(struct qvl_engine *e, struct qvl_seq *s, const struct qvl_chunk *c,
		    float *logits, bool all_logits, struct qvl_err *err)
{
	struct qvl_batch_item it = {.seq = s, .logits = logits, .all_logits = all_logits};

	if (!c)
		return qvl_errf(err, -EINVAL, "empty input: nothing to run");
	it.chunk = *c;
	return qvl_engine_forward(e, &it, 1, err);
}
