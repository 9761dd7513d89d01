/* The vision tower's weights (see vision.h): the tensors looked up and
 * checked, the matrices copied into memory of the tower's own and the bf16
 * ones packed as the GEMM's panels (vis_own), and the tower's shape. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "gemm_bf16.h"
#include "util.h"
#include "vattn.h"
#include "vision_impl.h"
#include "weight_copy.h"

/* ---- weights -------------------------------------------------------------- */

static int vis_f32(const struct qvl_model *m, const char *name, int n, float **out,
		   struct qvl_err *err)
{
	const struct qvl_tensor *t = qvl_model_find(m, name);
	if (!t)
		return qvl_errf(err, -ENOENT, "%s: tensor %s missing", m->path, name);
	if (t->nelem != (uint64_t)n)
		return qvl_errf(err, -EINVAL, "%s: tensor %s has %llu elements, expected %d",
				m->path, name, (unsigned long long)t->nelem, n);
	*out = malloc((size_t)n * sizeof(float));
	if (!*out)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", name);
	int rc = qvl_tensor_to_f32(t, 0, (uint64_t)n, *out);
	if (rc)
		return qvl_errf(err, rc, "%s: tensor %s: cannot convert %s to f32", m->path, name,
				qvl_dtype_name(t->dtype));
	return 0;
}

static int vis_lin(const struct qvl_model *m, const char *base, int n, int k, bool bias,
		   struct vis_lin *l, struct qvl_err *err)
{
	char name[256];
	const struct qvl_tensor *t;
	bool ok = true;

	snprintf(name, sizeof(name), VIS_PREFIX "%s.weight", base);
	t = qvl_model_find(m, name);
	if (!t)
		return qvl_errf(err, -ENOENT, "%s: tensor %s missing", m->path, name);
	if (t->nelem != (uint64_t)n * (uint64_t)k || t->shape[0] != n)
		return qvl_errf(err, -EINVAL, "%s: tensor %s: shape does not match [%d, %d]",
				m->path, name, n, k);
	/* any dtype the kernels take (all of them), in whole blocks per row */
	if (!qvl_dtype_info(t->dtype) || k % qvl_dtype_info(t->dtype)->blk)
		return qvl_errf(err, -ENOTSUP,
				"%s: tensor %s: dtype %s with rows of %d not supported", m->path,
				name, qvl_dtype_name(t->dtype), k);
	l->w = t->data;
	l->dt = t->dtype;
	l->row_bytes = qvl_dtype_bytes(t->dtype, (uint64_t)k, &ok);
	l->n = n;
	l->k = k;
	l->b = NULL;
	if (!bias)
		return 0;
	snprintf(name, sizeof(name), VIS_PREFIX "%s.bias", base);
	return vis_f32(m, name, n, &l->b, err);
}

static int vis_norm(const struct qvl_model *m, const char *base, int n, struct vis_norm *nm,
		    struct qvl_err *err)
{
	char name[256];
	int rc;
	nm->n = n;
	snprintf(name, sizeof(name), VIS_PREFIX "%s.weight", base);
	if ((rc = vis_f32(m, name, n, &nm->w, err)))
		return rc;
	snprintf(name, sizeof(name), VIS_PREFIX "%s.bias", base);
	return vis_f32(m, name, n, &nm->b, err);
}

static int vis_merger(const struct qvl_vision *v, const char *base, bool post_norm,
		      struct vis_merger *mg, struct qvl_err *err)
{
	char name[128];
	int rc, w4 = 4 * v->Dv;
	snprintf(name, sizeof(name), "%s.norm", base);
	if ((rc = vis_norm(v->m, name, post_norm ? w4 : v->Dv, &mg->norm, err)))
		return rc;
	snprintf(name, sizeof(name), "%s.linear_fc1", base);
	if ((rc = vis_lin(v->m, name, w4, w4, true, &mg->fc1, err)))
		return rc;
	snprintf(name, sizeof(name), "%s.linear_fc2", base);
	return vis_lin(v->m, name, v->Do, w4, true, &mg->fc2, err);
}

static void vis_free_norm(struct vis_norm *n)
{
	free(n->w);
	free(n->b);
}

static void vis_free_merger(struct vis_merger *mg)
{
	vis_free_norm(&mg->norm);
	free(mg->fc1.b);
	free(mg->fc2.b);
}

void qvl_vision_destroy(struct qvl_vision *v)
{
	if (!v)
		return;
	vis_prof_report(v->prof, v->pool ? qvl_pool_size(v->pool) : 1);
	free(v->prof);
	free(v->wmem);
	free(v->patch.b);
	free(v->pos);
	free(v->inv_freq);
	if (v->blk)
		for (int j = 0; j < v->depth; j++) {
			struct vis_block *b = &v->blk[j];
			vis_free_norm(&b->n1);
			vis_free_norm(&b->n2);
			free(b->qkv.b);
			free(b->proj.b);
			free(b->fc1.b);
			free(b->fc2.b);
		}
	free(v->blk);
	vis_free_merger(&v->merger);
	for (int k = 0; k < v->K; k++)
		vis_free_merger(&v->ds[k]);
	free(v);
}

/* The weight matrices that are pages of a mapped file (GGUF mmproj,
 * safetensors) copied once into one huge-page arena the tower owns, as the
 * text engine does (engine.c, mat_own): from the mapping, every image paid
 * a page fault per 64 KiB of weights the first time they were read (~9 % of
 * a one-shot 448x448 encode's CPU time in the kernel), and the GEMM's
 * panel packing, which reads 32 rows 2-8 KiB apart, a TLB walk per 4 KiB
 * row piece. Only when asked (the policy, with QVL_WEIGHT_COPY's override:
 * weight_copy.h): for one image the copy costs more than it saves. A
 * pack's arena (huge pages already) and a failed allocation keep the
 * mapping too (same results: the bytes are the same).
 *
 * Where the products run on the bf16 GEMM (`--precision bf16` with
 * vdpbf16ps), a bf16 matrix is copied as the GEMM's panels instead
 * (qvl_gemm_bf16_pack()), which the GEMM otherwise builds for every call
 * (pack_w: 6 % of a 1024x768 encode's cycles; the packed tower took 10 %
 * less CPU at 448x448, docs/todo-vattn2.md), and the panels are read as one
 * stream. Same bits. The row-major W stays the file's mapping (its pages
 * dropped, read again only by calls of at most 64 rows: tiny images). */
struct vis_pack_job {
	uint32_t *wp;
	const uint16_t *w;
	size_t n, k;
};

static void vis_pack_task(void *arg, int ith, int nth)
{
	const struct vis_pack_job *j = arg;
	size_t np = (j->n + 31) / 32, lo, hi, pw = qvl_gemm_bf16_packed_words(32, j->k);

	qvl_split(np, 1, ith, nth, &lo, &hi);
	if (lo < hi)
		qvl_gemm_bf16_pack(j->wp + lo * pw, j->w + lo * 32 * j->k, j->k,
				   (hi * 32 < j->n ? hi * 32 : j->n) - lo * 32, j->k);
}

static void vis_own(struct qvl_vision *v, bool copy)
{
	struct vis_lin *ls[4 * 64 + 2 * (1 + QVL_MAX_DEEPSTACK) + 1];
	size_t n = 0, tot = 0, off = 0, sz[sizeof(ls) / sizeof(ls[0])];
	const bool gemm = v->wmm == v->k->matmul_fast && qvl_kernels_bf16dot(v->k);
	struct qvl_weight_reader rd;

	if (!qvl_weight_copy_asked(copy))
		return;
	ls[n++] = &v->patch;
	for (int j = 0; j < v->depth; j++) {
		ls[n++] = &v->blk[j].qkv;
		ls[n++] = &v->blk[j].proj;
		ls[n++] = &v->blk[j].fc1;
		ls[n++] = &v->blk[j].fc2;
	}
	ls[n++] = &v->merger.fc1;
	ls[n++] = &v->merger.fc2;
	for (int k = 0; k < v->K; k++) {
		ls[n++] = &v->ds[k].fc1;
		ls[n++] = &v->ds[k].fc2;
	}
	for (size_t i = 0; i < n; i++) {
		sz[i] = 0;
		if (!qvl_model_file_page(v->m, ls[i]->w))
			continue;
		if (gemm && ls[i]->dt == QVL_DT_BF16)
			sz[i] = 4 * qvl_gemm_bf16_packed_words((size_t)ls[i]->n, (size_t)ls[i]->k);
		else
			sz[i] = ls[i]->row_bytes * (size_t)ls[i]->n;
		tot += (sz[i] + 63) & ~(size_t)63;
	}
	if (!tot || !(v->wmem = qvl_huge_alloc(tot)))
		return;
	qvl_weight_reader_init(&rd, v->m);
	for (size_t i = 0; i < n; i++) {
		size_t bytes = ls[i]->row_bytes * (size_t)ls[i]->n;
		if (!sz[i])
			continue;
		uint8_t *dst = (uint8_t *)v->wmem + off;
		const void *src = ls[i]->w;
		if (gemm && ls[i]->dt == QVL_DT_BF16) {
			struct vis_pack_job pj = {(uint32_t *)(void *)dst, src, (size_t)ls[i]->n,
						  (size_t)ls[i]->k};
			if (v->pool)
				qvl_pool_run(v->pool, vis_pack_task, &pj);
			else
				vis_pack_task(&pj, 0, 1);
			ls[i]->wp = pj.wp;
			v->packed = true;
			qvl_model_drop_pages(src, bytes);
		} else {
			qvl_weight_copy(&rd, v->pool, dst, src, bytes);
			ls[i]->w = dst;
		}
		off += (sz[i] + 63) & ~(size_t)63;
	}
	qvl_weight_reader_close(&rd);
}

int qvl_vision_create(struct qvl_vision **out, const struct qvl_model *m, struct qvl_pool *pool,
		      const struct qvl_vision_opts *opts, struct qvl_err *err)
{
	const struct qvl_vision_opts none = {0};
	const struct qvl_vision_config *c = &m->config.vision;
	struct qvl_vision *v;
	char name[128];
	int rc;

	*out = NULL;
	if (!opts)
		opts = &none;
	if (!c->present)
		return qvl_errf(err, -EINVAL, "%s: the model has no vision tower", m->path);
	if (opts->precision != QVL_PREC_BF16 && opts->precision != QVL_PREC_EXACT)
		return qvl_errf(err, -EINVAL, "vision: precision %d: use bf16 or exact",
				(int)opts->precision);
	/* a pack opened with its vision tower read later (qvld): its bytes,
	 * CRC-checked, or the read's error naming the shard */
	rc = qvl_model_vision_wait(m, err);
	if (rc < 0)
		return rc;
	v = calloc(1, sizeof(*v));
	if (!v)
		return qvl_errf(err, -ENOMEM, "vision: out of memory");
	v->m = m;
	v->pool = pool;
	v->prof = vis_prof_create();
	v->k = opts->kern ? opts->kern : &qvl_kern;
	v->wmm = opts->precision == QVL_PREC_BF16 ? v->k->matmul_fast : v->k->matmul;
	v->bf16attn = opts->precision == QVL_PREC_BF16 && qvl_kernels_bf16dot(v->k) &&
		      qvl_vattn_bf16_available();
	v->f32attn = !v->bf16attn && v->k->vattn_f32 &&
		     !qvl_env_flag("QVL_VIS_GEMM_ATTN", false);
	uint64_t mc = VIS_MC;
	qvl_env_uint("QVL_VIS_MC", 0, 1u << 20, &mc);
	v->mc = mc < VIS_MC_MIN ? 0 : (size_t)mc;
	v->Dv = c->hidden_size;
	v->Iv = c->intermediate_size;
	v->nv = c->num_heads;
	v->depth = c->depth;
	v->P = c->patch_size;
	v->T = c->temporal_patch_size;
	v->M = c->spatial_merge_size;
	v->Do = c->out_hidden_size;
	v->K = c->n_deepstack;
	v->eps = (float)c->layer_norm_eps;
	v->patch_dim = c->in_channels * v->T * v->P * v->P;
	v->S = (int)lrint(sqrt((double)c->num_position_embeddings));
	if (v->nv <= 0 || v->Dv % v->nv || (v->hv = v->Dv / v->nv) % 4 || v->hv > 1024 ||
	    v->M != 2 || v->S * v->S != c->num_position_embeddings || v->S < 2 || v->depth > 64 ||
	    v->depth <= 0 || v->K < 0 || v->K > QVL_MAX_DEEPSTACK) {
		rc = qvl_errf(err, -EINVAL,
			      "%s: vision config not supported (hidden %d, heads %d, merge %d, "
			      "position embeddings %d, depth %d)",
			      m->path, v->Dv, v->nv, v->M, c->num_position_embeddings, v->depth);
		goto fail;
	}
	for (int j = 0; j < v->depth; j++)
		v->ds_of_block[j] = -1;
	for (int k = 0; k < v->K; k++) {
		int j = c->deepstack_indexes[k];
		if (j < 0 || j >= v->depth) {
			rc = qvl_errf(err, -EINVAL, "%s: deepstack index %d outside depth %d",
				      m->path, j, v->depth);
			goto fail;
		}
		v->ds_of_block[j] = k;
	}
	if ((rc = vis_lin(m, "patch_embed.proj", v->Dv, v->patch_dim, true, &v->patch, err)) ||
	    (rc = vis_f32(m, VIS_PREFIX "pos_embed.weight", v->S * v->S * v->Dv, &v->pos, err)))
		goto fail;
	v->inv_freq = malloc((size_t)(v->hv / 4) * sizeof(float));
	v->blk = calloc((size_t)v->depth, sizeof(*v->blk));
	if (!v->inv_freq || !v->blk) {
		rc = qvl_errf(err, -ENOMEM, "vision: out of memory");
		goto fail;
	}
	/* VisionRotaryEmbedding(dim = hv/2): 1 / 10000^(2j / (hv/2)) in float32 */
	for (int j = 0; j < v->hv / 4; j++)
		v->inv_freq[j] = 1.0f / powf(10000.0f, (float)(2 * j) / (float)(v->hv / 2));
	for (int j = 0; j < v->depth; j++) {
		struct vis_block *b = &v->blk[j];
#define VB(part) (snprintf(name, sizeof(name), "blocks.%d.%s", j, part), name)
		if ((rc = vis_norm(m, VB("norm1"), v->Dv, &b->n1, err)) ||
		    (rc = vis_norm(m, VB("norm2"), v->Dv, &b->n2, err)) ||
		    (rc = vis_lin(m, VB("attn.qkv"), 3 * v->Dv, v->Dv, true, &b->qkv, err)) ||
		    (rc = vis_lin(m, VB("attn.proj"), v->Dv, v->Dv, true, &b->proj, err)) ||
		    (rc = vis_lin(m, VB("mlp.linear_fc1"), v->Iv, v->Dv, true, &b->fc1, err)) ||
		    (rc = vis_lin(m, VB("mlp.linear_fc2"), v->Dv, v->Iv, true, &b->fc2, err)))
			goto fail;
#undef VB
	}
	if ((rc = vis_merger(v, "merger", false, &v->merger, err)))
		goto fail;
	for (int k = 0; k < v->K; k++) {
		snprintf(name, sizeof(name), "deepstack_merger_list.%d", k);
		if ((rc = vis_merger(v, name, true, &v->ds[k], err)))
			goto fail;
	}
	vis_own(v, opts->copy_weights);
	*out = v;
	return 0;
fail:
	qvl_vision_destroy(v);
	return rc;
}

int qvl_vision_out_dim(const struct qvl_vision *v)
{
	return v->Do;
}

int qvl_vision_n_deepstack(const struct qvl_vision *v)
{
	return v->K;
}

int qvl_vision_merge(const struct qvl_vision *v)
{
	return v->M;
}

double qvl_vision_flops(const struct qvl_vision *v, int n)
{
	const double N = n, D = v->Dv, I = v->Iv, w4 = 4.0 * D, Do = v->Do;
	double f = 2 * N * D * v->patch_dim;
	f += v->depth * (2 * N * (3 * D * D + D * D + 2 * D * I) + 4 * N * N * D);
	f += (1 + v->K) * 2 * (N / 4) * (w4 * w4 + w4 * Do);
	return f;
}
