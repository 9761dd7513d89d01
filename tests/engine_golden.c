/* The engine against llama.cpp's golden outputs on qvl-tiny
 * ($QVL_SHARED/golden/text, README.md there): last-position logits within
 * 1e-3, the top-10 order rule, 16 identical greedy tokens, for every SIMD
 * level this machine runs and for 1 and 2 threads; all-position logits of
 * t0016; the BF16 text GGUF against the same golden numbers; and how far a
 * bf16 / f16 KV cache moves the logits (the golden used an F32 cache). */
#include "config.h"

#include "engine_common.h"

#define TOL 1e-3

static const char *golden_dir;
static float **glog; /* golden last-position logits, one per case */

/* The reference path is scalar: keep it to the short cases. */
static bool case_for_level(const struct gcase *g, enum qvl_simd_level lv)
{
	return lv != QVL_SIMD_REF || g->n <= 64;
}

static void check_case(struct qvl_engine *e, const struct gcase *g, const float *want,
		       const char *tag, float *logits)
{
	const struct qvl_model *m = qvl_engine_model(e);
	size_t V = (size_t)m->config.text.vocab_size;
	int32_t gen[16];
	int rc = run_case(e, g->ids, g->n, logits, gen, 16);

	if (!ok(rc == 0, "%s %s: forward", tag, g->name))
		return;
	double d = max_abs_diff(logits, want, V);
	if (!ok(d <= TOL, "%s %s: logits max |d| %.2e <= %.0e", tag, g->name, d, TOL))
		diag("first logits: %f %f, golden %f %f", logits[0], logits[1], want[0], want[1]);
	ok(top10_ok(logits, V, g), "%s %s: top-10 order", tag, g->name);
	int same = 0;
	while (same < 16 && gen[same] == g->greedy[same])
		same++;
	if (!ok(same == 16, "%s %s: 16 greedy tokens identical", tag, g->name))
		diag("diverged at %d: %d vs golden %d (golden margin %.3f)", same, gen[same],
		     g->greedy[same], (double)g->margin[same]);
}

static struct qvl_engine *mk_engine(const struct qvl_model *m, const struct qvl_kernels *k,
				    int threads, enum qvl_dtype kv)
{
	/* the golden numbers are f32 arithmetic */
	return test_engine(m, k, threads, kv, QVL_PREC_EXACT);
}

static void all_positions(struct qvl_engine *e, const struct gcase *g, const char *tag)
{
	size_t V = (size_t)qvl_engine_model(e)->config.text.vocab_size;
	float *want = read_f32(golden_dir, "t0016.all_logits.v8192.f32", 16 * 8192);
	float *all = malloc(16 * V * sizeof(float));
	struct qvl_err err = {{0}};
	struct qvl_seq *s = NULL;
	struct qvl_chunk c = {.ids = g->ids, .n = g->n};
	double d = 0;

	if (!want || !all || g->n != 16) {
		skip(1, "t0016.all_logits.v8192.f32 not readable");
		goto out;
	}
	if (qvl_seq_create(e, 32, &s, &err) < 0 || qvl_seq_forward(e, s, &c, all, true, &err) < 0) {
		ok(0, "%s t0016 all positions: %s", tag, err.msg);
		goto out;
	}
	for (size_t i = 0; i < 16; i++) {
		double di = max_abs_diff(all + i * V, want + i * 8192, 8192);
		d = di > d ? di : d;
	}
	ok(d <= TOL, "%s t0016 all 16 positions (ids < 8192): max |d| %.2e", tag, d);
out:
	qvl_seq_destroy(s);
	free(want);
	free(all);
}

/* The Q4_0 file (Q4_0 layers, Q8_0 embeddings) against llama.cpp on the
 * same file ($QVL_SHARED/golden/quant/README.md). llama.cpp rounds the
 * activations to 8-bit blocks before its integer dot products and qvl keeps
 * them f32, so the logits cannot agree to 1e-3; the README expects "a few
 * tenths" on logits of magnitude ~40. Measured (AVX-512, AVX2 and reference
 * kernels, 2026-12-04): max |d| 0.85 (t0007), 1.24 (t0064), 0.73 (chat).
 * Q4_MAX_D = 2.5 leaves 2x on the worst case, and is well under what a
 * wrong Q4_0 decoding gives: the file's own quantization moves these logits
 * by up to 11 against the f32 golden, and mis-decoded blocks do more
 * (measured by breaking the AVX-512 block decoder: offset 7 instead of 8,
 * max |d| 31-35; the two nibble halves swapped, 57-58). Top-10 sets and the
 * greedy tokens up to the first small margin are checked too. */
#define Q4_MAX_D 2.5

static void quant_case(struct qvl_engine *e, const char *qdir, const char *name, float *logits)
{
	char path[4200];
	struct gcase *g = NULL;
	size_t n;
	float *want = NULL;
	int32_t gen[16];

	snprintf(path, sizeof(path), "%s/%s.json", qdir, name);
	if (load_cases(path, &g, &n) < 0 || !(want = read_f32(qdir, g->logits_file, 151936))) {
		skip(3, "quant golden %s not readable", name);
		goto out;
	}
	if (run_case(e, g->ids, g->n, logits, gen, 16) < 0) {
		ok(0, "q4_0 %s: forward", name);
		skip(2, "no logits");
		goto out;
	}
	int overlap = 0;
	for (int a = 0; a < 10; a++) {
		/* rank of golden id a in our logits: in our top 10? */
		int above = 0;
		for (size_t j = 0; j < 151936; j++)
			above += logits[j] > logits[g->top10[a]];
		overlap += above < 10;
	}
	int upto = 0, same = 0;
	while (upto < 16 && g->margin[upto] >= 0.5f)
		upto++;
	while (same < upto && gen[same] == g->greedy[same])
		same++;
	double d = max_abs_diff(logits, want, 151936);
	ok(d <= Q4_MAX_D, "q4_0 %s: logits max |d| %.3f <= %.1f vs llama.cpp", name, d, Q4_MAX_D);
	ok(overlap >= 8, "q4_0 %s: top-10 sets share %d >= 8 ids", name, overlap);
	ok(same == upto, "q4_0 %s: greedy equal up to the first margin < 0.5 (%d/%d tokens)", name,
	   same, upto);
out:
	free(want);
	if (g)
		free(g->ids);
	free(g);
}

static void quant_cases(const char *shared, float *logits)
{
	static const char *names[] = {"t0007", "t0064", "chat"};
	char path[4200], qdir[2048];
	struct qvl_err err = {{0}};
	struct qvl_model *mq;
	struct qvl_engine *e;

	snprintf(path, sizeof(path), "%s/models/qvl-tiny-q4_0/qvl-tiny-Q4_0.gguf", shared);
	snprintf(qdir, sizeof(qdir), "%s/golden/quant", shared);
	if (access(path, R_OK) != 0) {
		skip(1, "%s absent", path);
		return;
	}
	if (qvl_model_open(&mq, path, NULL, &err) < 0) {
		ok(0, "open %s: %s", path, err.msg);
		return;
	}
	e = mk_engine(mq, NULL, 0, QVL_DT_F32);
	if (ok(e != NULL, "q4_0 engine"))
		for (size_t c = 0; c < sizeof(names) / sizeof(names[0]); c++)
			quant_case(e, qdir, names[c], logits);
	qvl_engine_destroy(e);
	qvl_model_close(mq);
}

int main(void)
{
	const char *shared = test_env("QVL_SHARED", "../shared");
	const char *model = tiny_model_path();
	char path[4096], gdir[4096];
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL, *mg = NULL;
	struct gcase *cases;
	size_t ncases;

	if (!model)
		skip_all("no tiny model ($QVL_TINY or $QVL_SHARED/models/qvl-tiny)");
	glog = golden_text_load(&cases, &ncases, gdir, sizeof(gdir));
	golden_dir = gdir;
	if (qvl_model_open(&m, model, NULL, &err) < 0) {
		ok(0, "open %s: %s", model, err.msg);
		return done_testing();
	}
	diag("model %s", model);
	float *logits = malloc(151936 * sizeof(float));

	/* every SIMD level x 1 and 2 threads, F32 KV cache as the golden */
	for (int lv = QVL_SIMD_REF; lv <= QVL_SIMD_AVX512; lv++) {
		struct qvl_kernels k;
		if (qvl_kernels_get(&k, (enum qvl_simd_level)lv) < 0) {
			skip(1, "SIMD level %s not available here", qvl_simd_name(lv));
			continue;
		}
		for (int th = 1; th <= 2; th++) {
			char tag[64];
			struct qvl_engine *e = mk_engine(m, &k, th, QVL_DT_F32);
			snprintf(tag, sizeof(tag), "%s/%dt/kv-f32", k.name, th);
			if (!ok(e != NULL, "%s: engine", tag))
				continue;
			for (size_t i = 0; i < ncases; i++)
				if (case_for_level(&cases[i], k.level))
					check_case(e, &cases[i], glog[i], tag, logits);
			for (size_t i = 0; i < ncases; i++)
				if (!strcmp(cases[i].name, "t0016"))
					all_positions(e, &cases[i], tag);
			qvl_engine_destroy(e);
		}
	}

	/* bf16 / f16 KV: they round k and v (8 / 11 mantissa bits), which moves
	 * the logits by far more than 1e-3 (measured: bf16 ~0.3, f16 ~0.03 on
	 * these cases). Checked with the README's rule for bf16 arithmetic:
	 * |d| <= 1.0 and top-1 equal where the golden margin exceeds 1.0 (f16:
	 * |d| <= 0.1, top-1 where the margin exceeds 0.1). */
	for (int kvi = 0; kvi < 2; kvi++) {
		enum qvl_dtype kv = kvi ? QVL_DT_F16 : QVL_DT_BF16;
		struct qvl_engine *e = mk_engine(m, NULL, 0, kv);
		double worst = 0, tol = kvi ? 0.1 : 1.0;
		int greedy_same = 0, top1 = 0, top1_bad = 0, failed = 0;
		if (!ok(e != NULL, "engine with %s KV", qvl_dtype_name(kv)))
			continue;
		for (size_t i = 0; i < ncases; i++) {
			int32_t gen[16];
			if (run_case(e, cases[i].ids, cases[i].n, logits, gen, 16) < 0) {
				diag("%s KV %s: forward failed", qvl_dtype_name(kv), cases[i].name);
				failed++;
				continue;
			}
			double d = max_abs_diff(logits, glog[i], 151936);
			worst = d > worst ? d : worst;
			top1 += gen[0] == cases[i].greedy[0];
			top1_bad += gen[0] != cases[i].greedy[0] && cases[i].margin[0] > tol;
			greedy_same += !memcmp(gen, cases[i].greedy, sizeof(gen));
		}
		diag("%s KV cache: worst last-logit |d| %.3e, top-1 equal %d/%zu, greedy-16 equal "
		     "%d/%zu",
		     qvl_dtype_name(kv), worst, top1, ncases, greedy_same, ncases);
		ok(failed == 0 && worst <= tol && top1_bad == 0,
		   "%s KV: %zu of %zu cases ran, logits within %.1f of golden, top-1 equal where "
		   "the margin > %.1f",
		   qvl_dtype_name(kv), ncases - (size_t)failed, ncases, tol, tol);
		qvl_engine_destroy(e);
	}

	/* The BF16 text GGUF: same weights, so the same numbers as the HF dir. */
	snprintf(path, sizeof(path), "%s/models/qvl-tiny-gguf/qvl-tiny-bf16.gguf", shared);
	if (access(path, R_OK) != 0) {
		skip(1, "%s absent", path);
	} else if (qvl_model_open(&mg, path, NULL, &err) < 0) {
		ok(0, "open %s: %s", path, err.msg);
	} else {
		struct qvl_engine *e = mk_engine(mg, NULL, 0, QVL_DT_F32);
		struct qvl_engine *eh = mk_engine(m, NULL, 0, QVL_DT_F32);
		float *lh = malloc(151936 * sizeof(float));
		int32_t gh[16], gg[16];
		if (ok(e != NULL && eh != NULL, "GGUF engine"))
			for (size_t i = 0; i < ncases; i++) {
				if (cases[i].n > 64)
					continue;
				check_case(e, &cases[i], glog[i], "gguf-bf16", logits);
				/* bit for bit the HF directory's weights (bf16 matrices,
				 * bf16 norms widened to F32): the same arithmetic */
				int rg = run_case(e, cases[i].ids, cases[i].n, logits, gg, 1);
				int rh = run_case(eh, cases[i].ids, cases[i].n, lh, gh, 1);
				double d = rg || rh ? INFINITY : max_abs_diff(logits, lh, 151936);
				ok(rg == 0 && rh == 0 && d == 0,
				   "gguf-bf16 %s: logits identical to the HF directory's (%.1e)",
				   cases[i].name, d);
			}
		free(lh);
		qvl_engine_destroy(eh);
		qvl_engine_destroy(e);
		qvl_model_close(mg);
	}

	quant_cases(shared, logits);

	free(logits);
	golden_text_free(cases, ncases, glog);
	qvl_model_close(m);
	return done_testing();
}
