/* Multimodal prompts (see multimodal.h): decode, preprocess and encode each
 * image, build the token sequence (chat template or raw text with
 * <|image_pad|> expanded), the M-RoPE positions and the embedding and
 * DeepStack rows the engine places at the pad positions. */
#include "multimodal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "model.h"
#include "pool.h"
#include "preprocess.h"
#include "tokenizer.h"
#include "mm_cache.h"
#include "util.h"
#include "vision.h"

#define MM_MAX_IMAGES 256

int qvl_mm_positions(const int32_t *ids, size_t n, int32_t image_token_id, const int (*merged)[2],
		     int n_images, int32_t (*pos)[3], int32_t *next_pos, struct qvl_err *err)
{
	int64_t next = 0;
	int img = 0;

	for (size_t i = 0; i < n;) {
		if (ids[i] != image_token_id) {
			pos[i][0] = pos[i][1] = pos[i][2] = (int32_t)next++;
			i++;
			continue;
		}
		if (img >= n_images)
			return qvl_errf(err, -EINVAL,
					"prompt: <|image_pad|> at token %zu but only %d image(s)",
					i, n_images);
		const int gh = merged[img][0], gw = merged[img][1];
		const size_t cnt = (size_t)gh * (size_t)gw;
		if (cnt > n - i)
			return qvl_errf(
			    err, -EINVAL,
			    "prompt: image %d needs %zu <|image_pad|> tokens at %zu, the "
			    "prompt ends first",
			    img + 1, cnt, i);
		for (size_t t = 0; t < cnt; t++) {
			if (ids[i + t] != image_token_id)
				return qvl_errf(
				    err, -EINVAL,
				    "prompt: image %d has %zu <|image_pad|> tokens, needs "
				    "%zu",
				    img + 1, t, cnt);
			pos[i + t][0] = (int32_t)next;
			pos[i + t][1] = (int32_t)(next + (int64_t)(t / (size_t)gw));
			pos[i + t][2] = (int32_t)(next + (int64_t)(t % (size_t)gw));
		}
		next += gh > gw ? gh : gw;
		i += cnt;
		img++;
		if (next > INT32_MAX)
			return qvl_errf(err, -EOVERFLOW, "prompt: positions overflow");
	}
	if (img != n_images)
		return qvl_errf(err, -EINVAL,
				"prompt: %d image(s) given but %d <|image_pad|> run(s)", n_images,
				img);
	*next_pos = (int32_t)next;
	return 0;
}

/* Raw text: tokenize with special tokens and expand each <|image_pad|> to
 * its image's token count. */
static int mm_raw_ids(const struct qvl_tokenizer *tok, const char *text, int32_t pad,
		      const int *ntok, int n_images, int32_t **ids, size_t *n, struct qvl_err *err)
{
	int32_t *raw, *o;
	size_t nr, total = 0;
	int npad = 0, rc;

	rc = qvl_tok_encode(tok, text, strlen(text), true, &raw, &nr, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < nr; i++) {
		if (raw[i] != pad) {
			total++;
			continue;
		}
		if (npad >= n_images) {
			free(raw);
			return qvl_errf(
			    err, -EINVAL,
			    "prompt: more <|image_pad|> placeholders than the %d image(s)",
			    n_images);
		}
		total += (size_t)ntok[npad++];
	}
	if (npad != n_images) {
		free(raw);
		return qvl_errf(
		    err, -EINVAL,
		    "prompt: %d <|vision_start|><|image_pad|><|vision_end|> placeholder(s) "
		    "for %d image(s)",
		    npad, n_images);
	}
	o = malloc((total ? total : 1) * sizeof(*o));
	if (!o) {
		free(raw);
		return qvl_errf(err, -ENOMEM, "prompt: out of memory");
	}
	*ids = o;
	*n = total;
	npad = 0;
	for (size_t i = 0; i < nr; i++) {
		if (raw[i] != pad) {
			*o++ = raw[i];
			continue;
		}
		for (int t = 0; t < ntok[npad]; t++)
			*o++ = pad;
		npad++;
	}
	free(raw);
	return 0;
}

int qvl_mm_encode_wide(struct qvl_vision *v, const struct qvl_pixels *px, float **out,
		       size_t *n_tok, struct qvl_err *err)
{
	const int M = qvl_vision_merge(v), K = qvl_vision_n_deepstack(v);
	const size_t H = (size_t)qvl_vision_out_dim(v), n = (size_t)px->n / (size_t)(M * M);
	const size_t W = H * (size_t)(1 + K);
	float *tmp, *wide;
	int rc;

	*out = NULL;
	tmp = malloc((n ? n : 1) * W * sizeof(float));
	wide = malloc((n ? n : 1) * W * sizeof(float));
	if (!tmp || !wide) {
		free(tmp);
		free(wide);
		return qvl_errf(err, -ENOMEM, "vision: out of memory for %zu tokens", n);
	}
	rc = qvl_vision_encode(v, px, tmp, tmp + n * H, n * H, err);
	if (rc) {
		free(tmp);
		free(wide);
		return rc;
	}
	for (size_t t = 0; t < n; t++)
		for (int k = 0; k <= K; k++)
			memcpy(wide + t * W + (size_t)k * H, tmp + ((size_t)k * n + t) * H,
			       H * sizeof(float));
	free(tmp);
	*out = wide;
	*n_tok = n;
	return 0;
}

/* One image whose tower pass is pending: its key, grid, rows in the prompt
 * and pixels (freed once its pass has begun). */
struct mm_pend_img {
	struct mm_key key;
	int grid[3];
	size_t n, at; /* merged tokens, first image row */
	struct qvl_pixels px;
};

struct mm_pending {
	struct mm_pend_img *img;
	int n, cap, cur;	    /* images, allocated, the one running */
	struct qvl_vision_run *run; /* img[cur]'s pass, begun */
	size_t n_img;		    /* image rows of the prompt (DeepStack stride) */
	int depth;
};

/* Borrow e's vision tower: it multiplies at the engine's precision and
 * copies its weights into huge pages when the engine did (qvld, bench). */
int qvl_mm_tower_get(struct qvl_engine *e, struct qvl_vision **v, struct qvl_err *err)
{
	const struct qvl_vision_opts vo = {.precision = qvl_engine_precision(e),
					   .copy_weights = qvl_engine_copies_weights(e)};

	return mm_cache_vision_get(eng_vcache(e), qvl_engine_model(e), qvl_engine_pool(e), &vo, v,
				   err);
}

void qvl_mm_tower_put(struct qvl_engine *e)
{
	mm_cache_vision_put(eng_vcache(e));
}

static void mm_pending_free(struct mm_pending *pd)
{
	if (!pd)
		return;
	qvl_vision_end(pd->run);
	for (int i = 0; i < pd->n; i++)
		qvl_pixels_free(&pd->img[i].px);
	free(pd->img);
	free(pd);
}

int qvl_mm_pending_blocks(const struct qvl_mm_prompt *p)
{
	const struct mm_pending *pd = p->pending;

	if (!pd)
		return 0;
	return (pd->n - pd->cur) * pd->depth -
	       (pd->run ? pd->depth - qvl_vision_blocks_left(pd->run) : 0);
}

size_t qvl_mm_pending_patches(const struct qvl_mm_prompt *p)
{
	const struct mm_pending *pd = p->pending;

	return pd && pd->cur < pd->n ? (size_t)pd->img[pd->cur].grid[1] * pd->img[pd->cur].grid[2]
				     : 0;
}

int qvl_mm_encode_step(struct qvl_engine *e, struct qvl_mm_prompt *p, int blocks,
		       struct qvl_err *err)
{
	const struct qvl_model *m = qvl_engine_model(e);
	struct mm_cache *c = eng_vcache(e);
	struct mm_pending *pd = p->pending;
	const size_t H = (size_t)m->config.text.hidden_size;
	const int K = p->chunk.n_deepstack;
	struct qvl_vision *v;
	int rc;

	if (!pd)
		return 0;
	rc = qvl_mm_tower_get(e, &v, err);
	if (rc)
		return rc;
	for (blocks = blocks < 1 ? 1 : blocks; blocks > 0 && pd->cur < pd->n;) {
		struct mm_pend_img *im = &pd->img[pd->cur];
		if (!pd->run) {
			rc = qvl_vision_begin(v, &im->px, p->embd + im->at * H,
					      p->deepstack + im->at * H, pd->n_img * H, &pd->run,
					      err);
			if (rc)
				break;
			qvl_pixels_free(&im->px); /* the pass holds what it needs */
		}
		int before = qvl_vision_blocks_left(pd->run);
		int left = qvl_vision_run(pd->run, blocks);
		blocks -= before - left;
		if (left)
			break;
		rc = qvl_vision_end(pd->run);
		pd->run = NULL;
		if (rc)
			break;
		mm_cache_put(c, &im->key, im->grid, im->n, H, K, p->embd + im->at * H,
			     p->deepstack + im->at * H, pd->n_img * H);
		pd->cur++;
	}
	mm_cache_vision_put(c);
	if (rc)
		return rc;
	if (pd->cur < pd->n)
		return qvl_mm_pending_blocks(p);
	mm_pending_free(pd);
	p->pending = NULL;
	return 0;
}

/* Leave the pass of the image of key (pixels px, taken) pending in out. */
static int mm_defer(struct qvl_mm_prompt *out, const struct mm_key *key, const int grid[3],
		    size_t n, size_t at, size_t n_img, int depth, struct qvl_pixels *px,
		    struct qvl_err *err)
{
	struct mm_pending *pd = out->pending;

	if (!pd && !(pd = out->pending = calloc(1, sizeof(*pd))))
		return qvl_errf(err, -ENOMEM, "prompt: out of memory");
	if (pd->n == pd->cap) {
		int cap = pd->cap ? 2 * pd->cap : 4;
		struct mm_pend_img *a = realloc(pd->img, (size_t)cap * sizeof(*a));
		if (!a)
			return qvl_errf(err, -ENOMEM, "prompt: out of memory");
		pd->img = a;
		pd->cap = cap;
	}
	pd->n_img = n_img;
	pd->depth = depth;
	pd->img[pd->n] = (struct mm_pend_img){.key = *key, .n = n, .at = at, .px = *px};
	memcpy(pd->img[pd->n].grid, grid, sizeof(pd->img[pd->n].grid));
	pd->n++;
	*px = (struct qvl_pixels){0};
	return 0;
}

void qvl_mm_prompt_free(struct qvl_mm_prompt *p)
{
	if (!p)
		return;
	mm_pending_free(p->pending);
	free(p->ids);
	free(p->embd);
	free(p->deepstack);
	free(p->pos);
	free(p->img_keys);
	memset(p, 0, sizeof(*p));
}

/* The vision tower's per-block progress as image tokens of the whole prompt. */
struct mm_progress {
	const struct qvl_mm_opts *o;
	double base, ntok, total; /* tokens before this image, in it, in all */
	int depth;		  /* the tower's blocks */
};

static void mm_vis_progress(void *ctx, int done, int depth)
{
	struct mm_progress *p = ctx;

	p->o->progress(p->o->ctx, p->base + p->ntok * done / depth, p->total);
}

/* The prompt's ids for images of ntok[i] tokens each. */
static int mm_ids(const struct qvl_tokenizer *tok, const char *text, bool raw,
		  const struct qvl_mm_opts *o, int32_t pad, const int *ntok, int n_images,
		  struct qvl_mm_prompt *out, struct qvl_err *err)
{
	struct qvl_chat_msg msgs[2];
	size_t nm = 0;

	if (raw)
		return mm_raw_ids(tok, text, pad, ntok, n_images, &out->ids, &out->chunk.n, err);
	if (o->system)
		msgs[nm++] = (struct qvl_chat_msg){.role = "system", .text = o->system};
	msgs[nm++] = (struct qvl_chat_msg){.role = "user", .text = text, .n_images = n_images};
	return qvl_chat_encode(tok, msgs, nm, ntok, true, &out->ids, &out->chunk.n, err);
}

void qvl_mm_cache_stats(const struct qvl_engine *e, struct qvl_mm_cache_stats *st)
{
	mm_cache_stats(eng_vcache(e), st);
}

/* One image of a build: its key, decoded size and serial, and its pixels
 * once something needed them. */
struct mm_img {
	struct mm_key key;
	int w, h;
	uint64_t serial;
	struct qvl_image im; /* im.rgb NULL until decoded */
	bool own;	     /* im.rgb is a decode of ours, not the source's rows */
};

static void mm_img_free(struct mm_img *im, int n)
{
	for (int i = 0; i < n; i++)
		if (im[i].own)
			qvl_image_free(&im[i].im);
	free(im);
}

static const char *src_name(const struct qvl_mm_src *s)
{
	return s->name ? s->name : "image";
}

/* RGB rows are used where they are; a file is decoded. */
static int mm_decode(const struct qvl_mm_src *s, struct mm_img *im, struct qvl_err *err)
{
	int rc;

	if (im->im.rgb)
		return 0;
	if (s->w) {
		im->im = (struct qvl_image){.w = s->w, .h = s->h, .rgb = (uint8_t *)s->data};
		return 0;
	}
	rc = qvl_image_decode(&im->im, s->data, s->len, src_name(s), NULL, err);
	im->own = rc == 0;
	return rc;
}

/* Image i's key, then its size: known from an earlier build (nothing
 * decoded), or from decoding it now. */
static int mm_identify(struct mm_cache *c, const struct qvl_mm_src *s,
		       const struct qvl_pp_params *pp, struct mm_img *im, struct qvl_err *err)
{
	int rc;

	if (s->w && (s->w <= 0 || s->h <= 0 || s->len / 3 / (size_t)s->w != (size_t)s->h ||
		     s->len % ((size_t)s->w * 3)))
		return qvl_errf(err, -EINVAL, "%s: %zu bytes for %dx%d RGB", src_name(s), s->len,
				s->w, s->h);
	mm_key_make(&im->key, s->data, s->len, s->w, s->h, (size_t)s->w * 3, pp);
	if (mm_cache_known(c, &im->key, &im->w, &im->h, &im->serial))
		return 0;
	rc = mm_decode(s, im, err);
	if (rc)
		return rc;
	im->w = im->im.w;
	im->h = im->im.h;
	im->serial = mm_cache_intern(c, &im->key, im->w, im->h);
	return 0;
}

/* Image i's tower rows into the prompt at image row `at` (of n_img rows):
 * from the engine's cache when it has them, else decoded (if not yet),
 * preprocessed and encoded, and offered to the cache. */
static int mm_rows(struct qvl_engine *e, const struct qvl_mm_src *s, struct mm_img *im,
		   const struct qvl_pp_params *pp, const int grid[3], struct mm_progress *prog,
		   struct qvl_mm_prompt *out, size_t at, size_t n_img, struct qvl_err *err)
{
	const struct qvl_model *m = qvl_engine_model(e);
	struct mm_cache *c = eng_vcache(e);
	const size_t H = (size_t)m->config.text.hidden_size;
	const int K = out->chunk.n_deepstack;
	const size_t n = (size_t)grid[1] * (size_t)grid[2] / ((size_t)pp->merge * (size_t)pp->merge);
	float *main = out->embd + at * H, *ds = out->deepstack + at * H;
	struct qvl_pixels px = {0};
	struct qvl_vision *v;
	int rc;

	for (size_t r = 0; r < n; r++)
		out->img_keys[at + r] = im->serial;
	if (mm_cache_get(c, &im->key, grid, n, H, K, main, ds, n_img * H) == 0) {
		out->vcache_hits++;
		return 0;
	}
	rc = mm_decode(s, im, err);
	if (rc)
		return rc;
	rc = qvl_preprocess(&im->im, pp, qvl_engine_pool(e), &px, NULL, err);
	if (rc)
		return qvl_err_prefix(err, rc, "%s", src_name(s));
	if (memcmp(px.grid, grid, sizeof(px.grid))) {
		rc = qvl_errf(err, -EPROTO, "%s: grid %dx%d, predicted %dx%d", src_name(s),
			      px.grid[1], px.grid[2], grid[1], grid[2]);
		goto out;
	}
	if (prog->o->defer_encode) {
		rc = mm_defer(out, &im->key, grid, n, at, n_img, prog->depth, &px, err);
		goto out;
	}
	rc = qvl_mm_tower_get(e, &v, err);
	if (rc)
		goto out;
	if (prog->o->progress)
		qvl_vision_set_progress(v, mm_vis_progress, prog);
	rc = qvl_vision_encode(v, &px, main, ds, n_img * H, err);
	qvl_vision_set_progress(v, NULL, NULL);
	mm_cache_vision_put(c);
	if (!rc)
		mm_cache_put(c, &im->key, grid, n, H, K, main, ds, n_img * H);
out:
	qvl_pixels_free(&px);
	return rc;
}

/* The tower's shape, from the engine's tower (built on the first image). */
static int mm_shape(struct qvl_engine *e, int *K, int *M, int *depth, struct qvl_err *err)
{
	const struct qvl_model *m = qvl_engine_model(e);
	struct mm_cache *c = eng_vcache(e);
	struct qvl_vision *v;
	int rc = qvl_mm_tower_get(e, &v, err);
	int H;

	if (rc)
		return rc;
	*K = qvl_vision_n_deepstack(v);
	*M = qvl_vision_merge(v);
	*depth = qvl_vision_depth(v);
	H = qvl_vision_out_dim(v);
	mm_cache_vision_put(c);
	if (H != m->config.text.hidden_size)
		return qvl_errf(err, -EINVAL, "%s: vision out_hidden_size %d != text hidden size %d",
				m->path, H, m->config.text.hidden_size);
	return 0;
}

/* Every grid comes from smart_resize on the decoded size alone (known
 * without decoding for an image seen before), so the prompt's length is
 * known, and checked against opts->max_tokens, before any image is resized
 * or goes through the tower. */
static int mm_build(struct qvl_engine *e, const struct qvl_tokenizer *tok, const char *text,
		    bool raw, const struct qvl_mm_src *srcs, int n_images,
		    const struct qvl_mm_opts *opts, struct qvl_mm_prompt *out, struct qvl_err *err)
{
	static const struct qvl_mm_opts none;
	const struct qvl_mm_opts *o = opts ? opts : &none;
	const struct qvl_model *m = qvl_engine_model(e);
	struct mm_img *img = NULL;
	struct qvl_pp_params pp;
	int *ntok = NULL, (*merged)[2] = NULL, rc, K = 0, M = 0, depth = 0;
	size_t n_img_tok = 0, done = 0, H = (size_t)m->config.text.hidden_size;

	memset(out, 0, sizeof(*out));
	if (n_images < 0 || n_images > MM_MAX_IMAGES)
		return qvl_errf(err, -EINVAL, "prompt: %d images (at most %d)", n_images,
				MM_MAX_IMAGES);
	rc = qvl_pp_params_from_model(&pp, m, err);
	if (!rc && o->max_image_tokens > 0)
		rc = qvl_pp_set_max_tokens(&pp, o->max_image_tokens, err);
	if (rc)
		return rc;
	ntok = calloc((size_t)n_images + 1, sizeof(*ntok));
	merged = calloc((size_t)n_images + 1, sizeof(*merged));
	img = calloc((size_t)n_images + 1, sizeof(*img));
	if (!ntok || !merged || !img) {
		rc = qvl_errf(err, -ENOMEM, "prompt: out of memory");
		goto out;
	}
	for (int i = 0; i < n_images; i++) {
		const int f = pp.patch * pp.merge;
		struct qvl_mm_image_info info = {.index = i, .name = src_name(&srcs[i])};
		int rh, rw;

		rc = mm_identify(eng_vcache(e), &srcs[i], &pp, &img[i], err);
		if (rc) /* the decoder's message names the image */
			goto out;
		rc = qvl_pp_smart_resize(img[i].h, img[i].w, &pp, &rh, &rw, err);
		if (rc) {
			qvl_err_prefix(err, rc, "%s", src_name(&srcs[i]));
			goto out;
		}
		merged[i][0] = rh / f;
		merged[i][1] = rw / f;
		ntok[i] = merged[i][0] * merged[i][1];
		n_img_tok += (size_t)ntok[i];
		if (o->on_image) {
			info.w = img[i].w;
			info.h = img[i].h;
			info.rw = rw;
			info.rh = rh;
			info.tokens = ntok[i];
			info.downscaled = qvl_pp_over_budget(img[i].h, img[i].w, &pp);
			o->on_image(o->ctx, &info);
		}
	}
	out->n_images = n_images;
	rc = mm_ids(tok, text, raw, o, m->config.image_token_id, ntok, n_images, out, err);
	if (rc)
		goto out;
	if (o->max_tokens && out->chunk.n > o->max_tokens) {
		rc = qvl_errf(err, -ENOSPC,
			      "prompt of %zu tokens (%zu of them for %d image(s)) does not fit "
			      "the context of %zu",
			      out->chunk.n, n_img_tok, n_images, o->max_tokens);
		goto out;
	}
	out->pos = malloc((out->chunk.n ? out->chunk.n : 1) * sizeof(*out->pos));
	if (!out->pos) {
		rc = qvl_errf(err, -ENOMEM, "prompt: out of memory");
		goto out;
	}
	rc = qvl_mm_positions(out->ids, out->chunk.n, m->config.image_token_id,
			      (const int(*)[2])merged, n_images, out->pos, &out->chunk.next_pos,
			      err);
	if (rc || (n_images && (rc = mm_shape(e, &K, &M, &depth, err))))
		goto out;
	if (n_images && M != pp.merge) {
		rc = qvl_errf(err, -EINVAL, "%s: vision merge %d != preprocessor merge %d",
			      m->path, M, pp.merge);
		goto out;
	}
	out->chunk.n_deepstack = K;
	out->img_keys = malloc((n_img_tok ? n_img_tok : 1) * sizeof(*out->img_keys));
	out->embd = malloc((n_img_tok ? n_img_tok : 1) * H * sizeof(float));
	out->deepstack = malloc((n_img_tok ? n_img_tok : 1) * H * (size_t)(K ? K : 1) * sizeof(float));
	if (!out->embd || !out->deepstack || !out->img_keys) {
		rc =
		    qvl_errf(err, -ENOMEM, "prompt: out of memory for %zu image tokens", n_img_tok);
		goto out;
	}
	struct mm_progress prog = {.o = o, .total = (double)n_img_tok, .depth = depth};
	for (int i = 0; i < n_images; i++) {
		const int grid[3] = {1, merged[i][0] * pp.merge, merged[i][1] * pp.merge};

		if (i < 16)
			memcpy(out->grid[i], grid, sizeof(out->grid[i]));
		prog.base = (double)done;
		prog.ntok = ntok[i];
		if (o->progress)
			o->progress(o->ctx, prog.base, prog.total);
		rc = mm_rows(e, &srcs[i], &img[i], &pp, grid, &prog, out, done, n_img_tok, err);
		if (img[i].own) { /* its pixels are not needed any more */
			qvl_image_free(&img[i].im);
			img[i].own = false;
		}
		if (rc)
			goto out;
		done += (size_t)ntok[i];
	}
	out->chunk.ids = out->ids;
	out->chunk.embd = out->embd;
	out->chunk.n_img = n_img_tok;
	out->chunk.deepstack = out->deepstack;
	out->chunk.pos = (const int32_t(*)[3])out->pos;
	out->chunk.img_keys = out->img_keys;
out:
	free(ntok);
	free(merged);
	if (img)
		mm_img_free(img, n_images);
	if (rc)
		qvl_mm_prompt_free(out);
	return rc;
}

int qvl_mm_prompt_build_src(struct qvl_engine *e, const struct qvl_tokenizer *tok,
			    const char *text, bool raw, const struct qvl_mm_src *srcs,
			    int n_images, const struct qvl_mm_opts *opts,
			    struct qvl_mm_prompt *out, struct qvl_err *err)
{
	return mm_build(e, tok, text, raw, srcs, n_images, opts, out, err);
}

int qvl_mm_prompt_build_images(struct qvl_engine *e, const struct qvl_tokenizer *tok,
			       const char *text, bool raw, const struct qvl_image *images,
			       const char *const *names, int n_images, struct qvl_mm_prompt *out,
			       struct qvl_err *err)
{
	struct qvl_mm_src *src;
	int rc;

	memset(out, 0, sizeof(*out));
	if (n_images < 0 || n_images > MM_MAX_IMAGES)
		return qvl_errf(err, -EINVAL, "prompt: %d images (at most %d)", n_images,
				MM_MAX_IMAGES);
	src = calloc((size_t)n_images + 1, sizeof(*src));
	if (!src)
		return qvl_errf(err, -ENOMEM, "prompt: out of memory");
	for (int i = 0; i < n_images; i++)
		src[i] = (struct qvl_mm_src){.data = images[i].rgb,
					     .len = (size_t)images[i].w * (size_t)images[i].h * 3,
					     .w = images[i].w,
					     .h = images[i].h,
					     .name = names ? names[i] : NULL};
	rc = mm_build(e, tok, text, raw, src, n_images, NULL, out, err);
	free(src);
	return rc;
}

int qvl_mm_prompt_build_opts(struct qvl_engine *e, const struct qvl_tokenizer *tok,
			     const char *text, bool raw, const char *const *image_paths,
			     int n_images, const struct qvl_mm_opts *opts,
			     struct qvl_mm_prompt *out, struct qvl_err *err)
{
	struct qvl_mm_src *src;
	struct qvl_map *map;
	int rc = 0, mapped = 0;

	memset(out, 0, sizeof(*out));
	if (n_images < 0 || n_images > MM_MAX_IMAGES)
		return qvl_errf(err, -EINVAL, "prompt: %d images (at most %d)", n_images,
				MM_MAX_IMAGES);
	src = calloc((size_t)n_images + 1, sizeof(*src));
	map = calloc((size_t)n_images + 1, sizeof(*map));
	if (!src || !map)
		rc = qvl_errf(err, -ENOMEM, "prompt: out of memory");
	/* the files as they are: an image seen before is not decoded */
	for (; mapped < n_images && !rc; mapped++) {
		rc = qvl_map_file(&map[mapped], image_paths[mapped], err);
		src[mapped] = (struct qvl_mm_src){.data = map[mapped].data,
						  .len = map[mapped].size,
						  .name = image_paths[mapped]};
	}
	if (rc)
		mapped--;
	else
		rc = mm_build(e, tok, text, raw, src, n_images, opts, out, err);
	for (int i = 0; i < mapped; i++)
		qvl_unmap(&map[i]);
	free(map);
	free(src);
	return rc;
}

int qvl_mm_prompt_build(struct qvl_engine *e, const struct qvl_tokenizer *tok, const char *text,
			bool raw, const char *const *image_paths, int n_images,
			struct qvl_mm_prompt *out, struct qvl_err *err)
{
	return qvl_mm_prompt_build_opts(e, tok, text, raw, image_paths, n_images, NULL, out, err);
}
