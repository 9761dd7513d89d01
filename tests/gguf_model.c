/* The GGUF reader against the Hugging Face reader on the same model:
 * ../shared/models/qvl-tiny (HF, bf16) and qvl-tiny-gguf (llama.cpp's GGUF
 * library wrote it: BF16 text + F32 mmproj) must give the same config, the
 * same tensor table and the same values after conversion to f32. Then the
 * llama-quantize'd Q4_0 file: its Q8_0/Q4_0 tensors must decode to within one
 * quantization step of the HF values (a real check of the block layouts), and
 * an mmproj with renumbered DeepStack blocks must still map by rank. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "tap.h"
#include "util.h"

static char shared[1024], hfdir[2048];

static float *to_f32(const struct qvl_tensor *t)
{
	float *v = malloc(t->nelem * sizeof(float) + 1);

	if (v && qvl_tensor_to_f32(t, 0, t->nelem, v)) {
		free(v);
		v = NULL;
	}
	return v;
}

static bool same_shape(const struct qvl_tensor *a, const struct qvl_tensor *b)
{
	return a->ndim == b->ndim &&
	       !memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof(a->shape[0]));
}

/* Same names, shapes and f32 values; returns the number of mismatches. */
static int compare_tables(const struct qvl_model *hf, const struct qvl_model *gg, const char *what)
{
	int bad = 0;

	is_int(gg->ntensors, hf->ntensors, "%s: tensor count", what);
	for (size_t i = 0; i < hf->ntensors; i++) {
		const struct qvl_tensor *a = &hf->tensors[i], *b = qvl_model_find(gg, a->name);
		float *va, *vb;

		if (!b || !same_shape(a, b)) {
			if (bad++ < 5)
				diag("%s: %s missing or shape differs", what, a->name);
			continue;
		}
		va = to_f32(a);
		vb = to_f32(b);
		if (!va || !vb || memcmp(va, vb, a->nelem * sizeof(float))) {
			if (bad++ < 5)
				diag("%s: %s values differ", what, a->name);
		}
		free(va);
		free(vb);
	}
	ok(bad == 0, "%s: every tensor of the HF model has the same shape and f32 values", what);
	return bad;
}

static void compare_config(const struct qvl_config *a, const struct qvl_config *b, const char *what)
{
	const struct qvl_text_config *x = &a->text, *y = &b->text;
	const struct qvl_vision_config *v = &a->vision, *w = &b->vision;

	ok(!strcmp(a->architecture, b->architecture), "%s: architecture %s", what, b->architecture);
	ok(x->hidden_size == y->hidden_size && x->num_layers == y->num_layers &&
	       x->num_heads == y->num_heads && x->num_kv_heads == y->num_kv_heads &&
	       x->head_dim == y->head_dim && x->intermediate_size == y->intermediate_size &&
	       x->vocab_size == y->vocab_size && x->max_position == y->max_position,
	   "%s: text dimensions", what);
	ok(x->rms_norm_eps == y->rms_norm_eps && x->rope_theta == y->rope_theta,
	   "%s: rms_norm_eps %g rope_theta %g", what, y->rms_norm_eps, y->rope_theta);
	ok(!memcmp(x->mrope_section, y->mrope_section, sizeof(x->mrope_section)) &&
	       x->tie_word_embeddings == y->tie_word_embeddings &&
	       x->bos_token_id == y->bos_token_id && x->eos_token_id == y->eos_token_id,
	   "%s: mrope_section, tie, bos/eos", what);
	ok(a->image_token_id == b->image_token_id && a->video_token_id == b->video_token_id &&
	       a->vision_start_token_id == b->vision_start_token_id &&
	       a->vision_end_token_id == b->vision_end_token_id,
	   "%s: image/video/vision token ids", what);
	if (!w->present)
		return;
	ok(v->present && v->depth == w->depth && v->hidden_size == w->hidden_size &&
	       v->intermediate_size == w->intermediate_size && v->num_heads == w->num_heads &&
	       v->patch_size == w->patch_size && v->temporal_patch_size == w->temporal_patch_size &&
	       v->spatial_merge_size == w->spatial_merge_size && v->in_channels == w->in_channels &&
	       v->out_hidden_size == w->out_hidden_size &&
	       v->num_position_embeddings == w->num_position_embeddings &&
	       v->layer_norm_eps == w->layer_norm_eps,
	   "%s: vision dimensions", what);
	ok(v->n_deepstack == w->n_deepstack && !memcmp(v->deepstack_indexes, w->deepstack_indexes,
						       (size_t)v->n_deepstack * sizeof(int)),
	   "%s: deepstack indexes", what);
}

static void test_equivalence(const struct qvl_model *hf)
{
	char dir[4096], text[4096], proj[4096];
	struct qvl_model *gg;
	struct qvl_err e = {{0}};
	int rc;

	snprintf(dir, sizeof(dir), "%s/models/qvl-tiny-gguf", shared);
	snprintf(text, sizeof(text), "%s/models/qvl-tiny-gguf/qvl-tiny-bf16.gguf", shared);
	snprintf(proj, sizeof(proj), "%s/models/qvl-tiny-gguf/mmproj-qvl-tiny-f32.gguf", shared);
	rc = qvl_model_open(&gg, dir, NULL, &e);
	if (!ok(rc == 0, "GGUF directory opens (%s)", rc ? e.msg : dir)) {
		skip(10, "no GGUF model");
		return;
	}
	ok(gg->format == QVL_FMT_GGUF && gg->gguf_text && gg->gguf_mmproj,
	   "format gguf, handles kept");
	compare_config(&hf->config, &gg->config, "dir");
	compare_tables(hf, gg, "dir");
	ok(qvl_model_find(gg, "model.visual.patch_embed.proj.weight")->dtype == QVL_DT_F32 &&
	       qvl_model_find(gg, "model.language_model.layers.0.mlp.up_proj.weight")->dtype ==
		   QVL_DT_BF16,
	   "dtypes as written (F32 mmproj, BF16 text)");
	ok(gg->preproc.present && gg->preproc.patch_size == hf->preproc.patch_size &&
	       gg->preproc.merge_size == hf->preproc.merge_size &&
	       gg->preproc.image_mean[2] == hf->preproc.image_mean[2] &&
	       gg->preproc.min_pixels == hf->preproc.min_pixels &&
	       gg->preproc.max_pixels == hf->preproc.max_pixels,
	   "preprocessing config");
	ok(gg->gen.top_k == hf->gen.top_k && gg->gen.top_p == hf->gen.top_p &&
	       gg->gen.temperature == hf->gen.temperature &&
	       gg->gen.bos_token_id == hf->gen.bos_token_id &&
	       gg->gen.eos_token_ids[0] == hf->gen.eos_token_ids[0],
	   "generation config (sampling keys)");
	qvl_model_close(gg);

	rc = qvl_model_open(&gg, text, proj, &e);
	if (ok(rc == 0, "text .gguf + --mmproj opens (%s)", rc ? e.msg : "ok")) {
		compare_tables(hf, gg, "file+mmproj");
		qvl_model_close(gg);
	}
	rc = qvl_model_open(&gg, text, NULL, &e);
	if (ok(rc == 0 && !gg->config.vision.present && !gg->gguf_mmproj &&
		   gg->ntensors == hf->ntensors - 3 - 12 * 4 - 6 * 3,
	       "text .gguf alone: no vision (%s)", rc ? e.msg : "ok"))
		qvl_model_close(gg);
	rc = qvl_model_open(&gg, proj, text, &e);
	ok(rc < 0 && strstr(e.msg, "mmproj-qvl-tiny-f32.gguf") &&
	       strstr(e.msg, "general.architecture"),
	   "mmproj as the text model refused (%s)", e.msg);
	if (!rc)
		qvl_model_close(gg);
}

/* Worst |x - ref| in quantization steps |d| over the elements that exceed
 * what the format allows (0 if none), and the relative RMS error. */
static double quant_err(const struct qvl_tensor *q, const float *ref, const float *deq, bool q4,
			double *rel)
{
	const int bytes = q4 ? QVL_Q4_0_BYTES : QVL_Q8_0_BYTES;
	const uint8_t *b = q->data;
	double worst = 0, num = 0, den = 0;

	for (uint64_t i = 0; i < q->nelem; i += 32, b += bytes) {
		uint16_t h = (uint16_t)(b[0] | b[1] << 8);
		int ex = (h >> 10) & 31;
		double d = ex ? ldexp(1.0 + (h & 1023) / 1024.0, ex - 15)
			      : ldexp((h & 1023) / 1024.0, -14);

		d = h & 0x8000 ? -d : d;
		for (int j = 0; j < 32; j++) {
			double err = fabs((double)deq[i + j] - ref[i + j]);
			/* Rounding: half a step. The f16-rounded scale adds up to
			 * |q| * |d| * 2^-11 (|q| <= 128 for Q8_0, 8 for Q4_0). Q4_0 maps
			 * the largest-magnitude value to -8, so values beyond +7.5 steps
			 * clamp at +7: up to one step there. */
			double allowed = q4 ? (ref[i + j] / d > 7.5 ? 1.0 : 0.5) + 8.0 / 2048
					    : 0.5 + 128.0 / 2048;

			if (d != 0 && err > allowed * fabs(d) + 1e-7)
				worst = fmax(worst, err / fabs(d));
			num += err * err;
			den += (double)ref[i + j] * ref[i + j];
		}
	}
	*rel = den > 0 ? sqrt(num / den) : 0;
	return worst;
}

static void test_q4_0(const struct qvl_model *hf)
{
	char path[4096];
	struct qvl_model *q;
	struct qvl_err e = {{0}};
	int nq8 = 0, nq4 = 0, bad = 0;
	double rel_q8 = 0, rel_q4 = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/models/qvl-tiny-q4_0/qvl-tiny-Q4_0.gguf", shared);
	rc = qvl_model_open(&q, path, NULL, &e);
	if (!ok(rc == 0, "Q4_0 file opens (%s)", rc ? e.msg : "ok")) {
		skip(4, "no Q4_0 model");
		return;
	}
	compare_config(&hf->config, &q->config, "Q4_0");
	for (size_t i = 0; i < q->ntensors; i++) {
		const struct qvl_tensor *t = &q->tensors[i], *r = qvl_model_find(hf, t->name);
		bool q4 = t->dtype == QVL_DT_Q4_0;
		float *vr, *vq;
		double worst, rel;

		if (!r || !same_shape(t, r)) {
			bad++;
			diag("%s: no HF counterpart of that shape", t->name);
			continue;
		}
		vr = to_f32(r);
		vq = to_f32(t);
		if (t->dtype == QVL_DT_F32) {
			bad += memcmp(vr, vq, t->nelem * 4) != 0;
		} else if (t->dtype == QVL_DT_Q8_0 || q4) {
			worst = quant_err(t, vr, vq, q4, &rel);
			*(q4 ? &nq4 : &nq8) += 1;
			if (q4)
				rel_q4 = fmax(rel_q4, rel);
			else
				rel_q8 = fmax(rel_q8, rel);
			if (worst > 0) {
				bad++;
				diag("%s: an element is %.3f quantization steps off", t->name,
				     worst);
			}
		} else {
			bad++;
		}
		free(vr);
		free(vq);
	}
	diag("Q8_0 tensors %d (relative RMS error %.2e), Q4_0 tensors %d (%.2e)", nq8, rel_q8, nq4,
	     rel_q4);
	ok(nq8 == 1 && nq4 == 28, "1 Q8_0 and 28 Q4_0 tensors, as llama-quantize wrote them");
	ok(bad == 0, "every element within its quantization step; F32 norms exact");
	ok(rel_q8 < 0.01 && rel_q4 < 0.2, "relative RMS error: Q8_0 %.4f < 1%%, Q4_0 %.3f < 20%%",
	   rel_q8, rel_q4);
	qvl_model_close(q);
}

/* Rename v.deepstack.1.* to v.deepstack.3.* in a copy of the mmproj: blocks
 * {2, 3}, so the merger HF calls 0 (tapping block 1) now ranks second. */
static void test_deepstack_rank(const struct qvl_model *hf)
{
	char src[2048], dir[2048], dst[4096], *buf;
	size_t len, n = 0;
	struct qvl_model *gg;
	struct qvl_err e = {{0}};
	FILE *f;
	int rc;

	snprintf(src, sizeof(src), "%s/models/qvl-tiny-gguf/mmproj-qvl-tiny-f32.gguf", shared);
	snprintf(dir, sizeof(dir), "%.1000s/tests/tmp", test_env("QVL_BUILDDIR", "."));
	if (qvl_read_file(src, 16 << 20, &buf, &len, &e)) {
		skip(3, "no mmproj");
		return;
	}
	for (char *p = buf; (p = memmem(p, len - (size_t)(p - buf), "v.deepstack.1.", 14)); n++)
		p[12] = '3';
	mkdir(test_env("QVL_BUILDDIR", "."), 0755);
	snprintf(dst, sizeof(dst), "%.1000s/tests", test_env("QVL_BUILDDIR", "."));
	mkdir(dst, 0755);
	mkdir(dir, 0755);
	snprintf(dst, sizeof(dst), "%s/mmproj-renumbered.gguf", dir);
	f = fopen(dst, "wb");
	ok(n == 6 && f && fwrite(buf, 1, len, f) == len && !fclose(f),
	   "renumbered %zu deepstack tensors into %s", n, dst);
	free(buf);
	snprintf(src, sizeof(src), "%s/models/qvl-tiny-gguf/qvl-tiny-bf16.gguf", shared);
	rc = qvl_model_open(&gg, src, dst, &e);
	if (!ok(rc == 0, "renumbered mmproj opens (%s)", rc ? e.msg : "ok")) {
		skip(1, "open failed");
		return;
	}
	{
		const struct qvl_vision_config *v = &gg->config.vision;
		const struct qvl_tensor *a0 =
		    qvl_model_find(hf, "model.visual.deepstack_merger_list.0.linear_fc1.weight");
		const struct qvl_tensor *a1 =
		    qvl_model_find(hf, "model.visual.deepstack_merger_list.1.linear_fc1.weight");
		const struct qvl_tensor *b0 =
		    qvl_model_find(gg, "model.visual.deepstack_merger_list.0.linear_fc1.weight");
		const struct qvl_tensor *b1 =
		    qvl_model_find(gg, "model.visual.deepstack_merger_list.1.linear_fc1.weight");
		float *x0 = to_f32(a0), *x1 = to_f32(a1), *y0 = to_f32(b0), *y1 = to_f32(b1);

		ok(v->n_deepstack == 2 && v->deepstack_indexes[0] == 2 &&
		       v->deepstack_indexes[1] == 3 && x0 && y1 && x1 && y0 &&
		       !memcmp(x0, y1, a0->nelem * 4) && !memcmp(x1, y0, a1->nelem * 4),
		   "blocks {2, 3}: HF merger 0 (block 1, now 3) is rank 1, merger 1 is rank 0");
		free(x0), free(x1), free(y0), free(y1);
	}
	qvl_model_close(gg);
	unlink(dst);
}

int main(void)
{
	struct qvl_model *hf;
	struct qvl_err e = {{0}};
	struct stat st;
	char probe[4096];

	snprintf(shared, sizeof(shared), "%.1000s", test_env("QVL_SHARED", "../shared"));
	snprintf(probe, sizeof(probe), "%s/models/qvl-tiny-gguf", shared);
	if (stat(probe, &st))
		skip_all("no %s (the shared GGUF files)", probe);
	snprintf(hfdir, sizeof(hfdir), "%.1000s/config.json", test_env("QVL_TINY", ""));
	if (stat(hfdir, &st))
		snprintf(hfdir, sizeof(hfdir), "%s/models/qvl-tiny", shared);
	else
		snprintf(hfdir, sizeof(hfdir), "%.1000s", test_env("QVL_TINY", ""));
	if (qvl_model_open(&hf, hfdir, NULL, &e))
		skip_all("HF model %s does not open: %s", hfdir, e.msg);
	diag("HF side: %s", hfdir);
	test_equivalence(hf);
	test_q4_0(hf);
	test_deepstack_rank(hf);
	qvl_model_close(hf);
	return done_testing();
}
