/* The vision tower's pass cut by blocks (vision.h: qvl_vision_begin, _run,
 * _end; issue 18: the daemon runs an image's encode a few blocks per step)
 * gives the rows of the uncut pass bit for bit: on the tiny model, at both
 * precisions, images of three sizes, every cut of its blocks into runs
 * (DeepStack layers inside a run, at its end, at its start), with another
 * image's pass run between the calls on the same tower and pool. A pass
 * ended early frees everything (ASan) and says so. */
#include "config.h"

#include "engine_common.h"
#include "image.h"
#include "picture.h"
#include "preprocess.h"
#include "vision.h"

struct rows {
	float *main, *ds;
	size_t n; /* merged tokens */
};

static int rows_alloc(struct rows *r, const struct qvl_vision *v, const struct qvl_pixels *px)
{
	const size_t M = (size_t)qvl_vision_merge(v), H = (size_t)qvl_vision_out_dim(v);
	const size_t K = (size_t)qvl_vision_n_deepstack(v);

	r->n = (size_t)px->n / (M * M);
	r->main = calloc(r->n * H, sizeof(float));
	r->ds = calloc(r->n * H * (K ? K : 1), sizeof(float));
	return r->main && r->ds ? 0 : -ENOMEM;
}

static void rows_free(struct rows *r)
{
	free(r->main);
	free(r->ds);
}

static bool rows_same(const struct rows *a, const struct rows *b, const struct qvl_vision *v)
{
	const size_t H = (size_t)qvl_vision_out_dim(v), K = (size_t)qvl_vision_n_deepstack(v);

	return a->n == b->n && !memcmp(a->main, b->main, a->n * H * sizeof(float)) &&
	       !memcmp(a->ds, b->ds, a->n * H * K * sizeof(float));
}

/* The pass of px cut as the bits of `cut` say (bit b set: a run ends after
 * block b), with a whole pass of `other` between the runs. */
static int cut_pass(struct qvl_vision *v, const struct qvl_pixels *px,
		    const struct qvl_pixels *other, unsigned cut, struct rows *out)
{
	struct qvl_err err = {{0}};
	struct qvl_vision_run *r;
	struct rows o = {0};
	const int depth = qvl_vision_depth(v);
	const size_t H = (size_t)qvl_vision_out_dim(v);
	int rc = rows_alloc(out, v, px);

	if (!rc)
		rc = rows_alloc(&o, v, other);
	if (!rc)
		rc = qvl_vision_begin(v, px, out->main, out->ds, out->n * H, &r, &err);
	if (rc) {
		rows_free(&o);
		diag("begin: %s", err.msg);
		return rc;
	}
	for (int b = 0; b < depth;) {
		int k = 1;
		while (b + k < depth && !(cut >> (b + k - 1) & 1))
			k++;
		int left = qvl_vision_run(r, k);
		b += k;
		if (left != depth - b) {
			qvl_vision_end(r);
			rows_free(&o);
			return -EPROTO;
		}
		if (b < depth)
			qvl_vision_encode(v, other, o.main, o.ds, o.n * H, &err);
	}
	rows_free(&o);
	return qvl_vision_end(r);
}

int main(void)
{
	const char *mpath = tiny_model_path();
	static const int sizes[3][2] = {{64, 64}, {160, 96}, {96, 224}};
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	struct qvl_engine *e = NULL;
	struct qvl_pp_params pp;
	struct qvl_pixels px[3] = {{0}};

	if (!mpath)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	struct qvl_engine_opts eo = {.threads = 2};
	if (qvl_kernels_init(&err) || qvl_model_open(&m, mpath, NULL, &err) ||
	    qvl_engine_create(&e, m, &eo, &err) || qvl_pp_params_from_model(&pp, m, &err)) {
		ok(0, "setup: %s", err.msg);
		return done_testing();
	}
	if (!m->config.vision.present) {
		qvl_engine_destroy(e);
		qvl_model_close(m);
		skip_all("the tiny model has no vision tower");
	}
	for (int i = 0; i < 3; i++) {
		struct qvl_image im = picture(sizes[i][0], sizes[i][1], 3 + i);
		if (qvl_preprocess(&im, &pp, qvl_engine_pool(e), &px[i], NULL, &err))
			skip_all("preprocess %dx%d: %s", sizes[i][0], sizes[i][1], err.msg);
		qvl_image_free(&im);
	}
	for (int prec = 0; prec < 2; prec++) {
		const struct qvl_vision_opts vo = {.precision =
						       prec ? QVL_PREC_EXACT : QVL_PREC_BF16};
		struct qvl_vision *v = NULL;
		if (qvl_vision_create(&v, m, qvl_engine_pool(e), &vo, &err)) {
			ok(0, "tower: %s", err.msg);
			continue;
		}
		const int depth = qvl_vision_depth(v);
		const size_t H = (size_t)qvl_vision_out_dim(v);
		ok(depth >= 3 && depth <= 16 && qvl_vision_n_deepstack(v) > 0,
		   "%s tower: %d blocks, %d DeepStack mergers", prec ? "exact" : "bf16", depth,
		   qvl_vision_n_deepstack(v));
		for (int i = 0; i < 3; i++) {
			struct rows ref = {0};
			bool all = true;
			int tried = 0;
			if (rows_alloc(&ref, v, &px[i]) ||
			    qvl_vision_encode(v, &px[i], ref.main, ref.ds, ref.n * H, &err)) {
				ok(0, "uncut pass: %s", err.msg);
				rows_free(&ref);
				continue;
			}
			/* every way to cut depth blocks into runs */
			for (unsigned cut = 0; cut < 1u << (depth - 1); cut++) {
				struct rows got = {0};
				int rc = cut_pass(v, &px[i], &px[(i + 1) % 3], cut, &got);
				if (rc || !rows_same(&ref, &got, v)) {
					if (all)
						diag("cut %#x: rc %d", cut, rc);
					all = false;
				}
				tried++;
				rows_free(&got);
			}
			ok(all, "%s, %dx%d patches: %d cuts, rows bit for bit the uncut pass's",
			   prec ? "exact" : "bf16", px[i].grid[1], px[i].grid[2], tried);
			rows_free(&ref);
		}
		/* ended early: -ECANCELED, nothing leaked */
		struct rows got = {0};
		struct qvl_vision_run *r = NULL;
		int rc = rows_alloc(&got, v, &px[1]);
		if (!rc)
			rc = qvl_vision_begin(v, &px[1], got.main, got.ds, got.n * H, &r, &err);
		if (!rc)
			qvl_vision_run(r, 1);
		ok(!rc && qvl_vision_end(r) == -ECANCELED && qvl_vision_end(NULL) == -ECANCELED,
		   "a pass ended after 1 of %d blocks: -ECANCELED, freed", depth);
		rows_free(&got);
		/* a bad grid is refused before anything is allocated */
		struct qvl_pixels bad = px[0];
		bad.grid[1] += 1;
		ok(qvl_vision_begin(v, &bad, got.main, got.ds, 0, &r, &err) == -EINVAL && !r,
		   "a grid that does not fit: -EINVAL (%s)", err.msg);
		qvl_vision_destroy(v);
	}
	for (int i = 0; i < 3; i++)
		qvl_pixels_free(&px[i]);
	qvl_engine_destroy(e);
	qvl_model_close(m);
	return done_testing();
}
