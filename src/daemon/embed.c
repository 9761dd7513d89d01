/* QVL_OP_EMBED_IMAGE inside qvld: one image part through the HF
 * preprocessing and the vision tower, written to the output region as
 * f32 [n_tokens][(1 + K) * D] in the layout of `qvlctl embed-image`
 * (llama.cpp's mtmd_get_output_embd: main | DeepStack 0 | ... | K-1).
 * It runs on the scheduler thread (the engine's pool is its to use) as one
 * job that finishes in its start step.
 *
 * The tower is the engine's own (qvl_mm_tower_get): built once, on the
 * first image of any kind, with the engine's weight copy, and kept with the
 * engine, which outlives the scheduler (qvld.c stop()). The scheduler's
 * image prefill borrows the same tower, from this thread too, between
 * steps; a pass it left pending (qvl_vision_run) holds its own activations,
 * not the tower's, so an EMBED_IMAGE between two of its steps changes
 * nothing in it. The borrow is held over the encode only. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/job.h"
#include "daemon/stats.h"
#include "engine.h"
#include "image.h"
#include "multimodal.h"
#include "preprocess.h"
#include "util.h"
#include "vision.h"

static int load_image(const struct shm_request *req, struct qvl_image *im, struct qvl_err *err)
{
	uint64_t asize;
	const uint8_t *arena = shm_request_arena(req, &asize);
	const struct shm_part *p = NULL;
	int rc;

	for (uint32_t i = 0; i < req->gen.n_parts; i++) {
		uint32_t k = req->parts[i].kind;
		if (k != QVL_PART_IMAGE && k != QVL_PART_IMAGE_RGB)
			return qvl_errf(err, -EINVAL, "part %u: EMBED_IMAGE takes only an image",
					i);
		if (p)
			return qvl_errf(err, -EINVAL, "EMBED_IMAGE takes exactly one image");
		p = &req->parts[i];
	}
	if (!p)
		return qvl_errf(err, -EINVAL, "EMBED_IMAGE without an image part");
	if (p->kind == QVL_PART_IMAGE_RGB)
		return qvl_image_from_rgb(im, arena + p->off, p->len, (int)p->width, (int)p->height,
					  p->stride, NULL, err);
	void *copy = malloc(p->len ? p->len : 1); /* decode a private copy */
	if (!copy)
		return qvl_errf(err, -ENOMEM, "out of memory");
	memcpy(copy, arena + p->off, p->len);
	rc = qvl_image_decode(im, copy, p->len, "image", NULL, err);
	free(copy);
	return rc;
}

int job_embed(struct job *j, const struct job_env *env)
{
	struct shm_request *req = j->req;
	const struct qvl_model *m = qvl_engine_model(env->e);
	struct qvl_err err = {{0}};
	struct qvl_image im = {0};
	struct qvl_pixels px = {0};
	struct qvl_pp_params pp;
	struct qvl_vision *v = NULL; /* borrowed from the engine */
	struct qvl_cqe c = {0};
	float *wide = NULL;
	size_t ntok = 0;
	uint64_t bytes = 0;
	double t0 = qvl_now();
	int rc;

	if ((rc = load_image(req, &im, &err)) == 0 &&
	    (rc = qvl_pp_params_from_model(&pp, m, &err)) == 0 &&
	    (rc = qvl_preprocess(&im, &pp, qvl_engine_pool(env->e), &px, NULL, &err)) == 0 &&
	    (rc = qvl_mm_tower_get(env->e, &v, &err)) == 0) {
		rc = qvl_mm_encode_wide(v, &px, &wide, &ntok, &err);
		bytes = (uint64_t)ntok * (uint64_t)(1 + qvl_vision_n_deepstack(v)) *
			(uint64_t)qvl_vision_out_dim(v) * sizeof(float);
		qvl_mm_tower_put(env->e);
	}
	if (rc == 0) {
		uint64_t asize;
		c.n_tokens = (uint32_t)ntok;
		c.text_len = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
		if (bytes > req->out_len) /* text_len says how much room it needs */
			rc = qvl_errf(&err, -ENOBUFS, "embedding of %llu bytes, output region %llu",
				      (unsigned long long)bytes, (unsigned long long)req->out_len);
		else
			memcpy(shm_request_arena(req, &asize) + req->out_off, wide, bytes);
	}
	if (rc < 0) {
		qvld_log_request_error(env->stats, shm_client_id(req->client), req->user_data, rc,
				       err.msg);
		if (rc != -ENOBUFS)
			c.n_tokens = c.text_len = 0;
	}
	c.res = rc;
	c.prefill_ns = (uint64_t)((qvl_now() - t0) * 1e9);
	c.queue_ns = (uint64_t)((t0 - j->t_submit) * 1e9);
	qvld_stats_done(env->stats, shm_client_id(req->client), rc, 0, 0, qvl_now() - j->t_submit,
			0);
	shm_complete(req, &c);
	j->req = NULL;
	free(wide);
	qvl_pixels_free(&px);
	qvl_image_free(&im);
	return 1;
}
