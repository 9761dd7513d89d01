/* Helpers shared by the engine tests: locate the tiny model and the golden
 * data, read golden cases, run a prompt and compare logits. Header-only
 * (static) so each test stays a single program. */
#ifndef QVL_TEST_ENGINE_COMMON_H
#define QVL_TEST_ENGINE_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../simd/kernels.h"
#include "engine.h"
#include "json.h"
#include "model.h"
#include "tap.h"
#include "util.h"

static inline char *tiny_model_path(void)
{
	static char buf[4096];
	const char *t = getenv("QVL_TINY");

	if (t && *t) {
		snprintf(buf, sizeof(buf), "%s/config.json", t);
		if (access(buf, R_OK) == 0) {
			snprintf(buf, sizeof(buf), "%s", t);
			return buf;
		}
	}
	snprintf(buf, sizeof(buf), "%s/models/qvl-tiny/config.json",
		 test_env("QVL_SHARED", "../shared"));
	if (access(buf, R_OK) == 0) {
		snprintf(buf, sizeof(buf), "%s/models/qvl-tiny",
			 test_env("QVL_SHARED", "../shared"));
		return buf;
	}
	return NULL;
}

/* A golden case from a cases.json-format file. */
struct gcase {
	char name[32];
	int32_t *ids;
	size_t n;
	int32_t top10[10];
	float top10v[10];
	int32_t greedy[16];
	float margin[16];
	char logits_file[128];
};

static inline int load_cases(const char *path, struct gcase **out, size_t *n)
{
	struct qvl_err err = {{0}};
	struct json_doc d;
	char *text;
	size_t len;
	uint32_t cases;

	if (qvl_read_file(path, 1 << 24, &text, &len, &err) < 0 ||
	    json_parse(&d, text, len, path, &err) < 0) {
		diag("%s", err.msg);
		return -1;
	}
	cases = json_get(&d, 0, "cases");
	if (cases == JSON_NONE) /* quant/<case>.json: one case per file */
		cases = 0;
	size_t cnt = d.tok[cases].type == JSON_OBJECT && cases != 0 ? d.tok[cases].count : 1;
	struct gcase *g = calloc(cnt, sizeof(*g));
	uint32_t kv = cases + 1;
	for (size_t i = 0; i < cnt; i++) {
		uint32_t c = cases, t;
		int64_t v;
		double dv;

		if (cases != 0) {
			json_str(&d, kv, g[i].name, sizeof(g[i].name));
			c = kv + 1;
			kv = d.tok[c].end;
		} else {
			json_str(&d, json_get(&d, 0, "name"), g[i].name, sizeof(g[i].name));
		}
		t = json_get(&d, c, "ids");
		g[i].n = d.tok[t].count;
		g[i].ids = calloc(g[i].n, sizeof(int32_t));
		for (size_t j = 0; j < g[i].n; j++) {
			json_int64(&d, json_at(&d, t, (uint32_t)j), &v);
			g[i].ids[j] = (int32_t)v;
		}
		t = json_get(&d, c, "logits_file");
		if (t != JSON_NONE)
			json_str(&d, t, g[i].logits_file, sizeof(g[i].logits_file));
		else
			snprintf(g[i].logits_file, sizeof(g[i].logits_file), "%s.logits.f32",
				 g[i].name);
		uint32_t top = json_get(&d, c, "top10"), gr = json_get(&d, c, "greedy");
		for (uint32_t j = 0; j < 10; j++) {
			json_int64(&d, json_at(&d, json_get(&d, top, "ids"), j), &v);
			g[i].top10[j] = (int32_t)v;
			json_double(&d, json_at(&d, json_get(&d, top, "values"), j), &dv);
			g[i].top10v[j] = (float)dv;
		}
		for (uint32_t j = 0; j < 16; j++) {
			json_int64(&d, json_at(&d, json_get(&d, gr, "ids"), j), &v);
			g[i].greedy[j] = (int32_t)v;
			json_double(&d, json_at(&d, json_get(&d, gr, "top1_top2_margin"), j), &dv);
			g[i].margin[j] = (float)dv;
		}
	}
	json_free(&d);
	free(text);
	*out = g;
	*n = cnt;
	return 0;
}

static inline float *read_f32(const char *dir, const char *name, size_t want)
{
	char path[8400];
	struct qvl_err err = {{0}};
	char *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (qvl_read_file(path, 64u << 20, &buf, &len, &err) < 0)
		return NULL;
	if (len != want * sizeof(float)) {
		diag("%s: %zu bytes, expected %zu", path, len, want * sizeof(float));
		free(buf);
		return NULL;
	}
	return (float *)buf;
}

static inline double max_abs_diff(const float *a, const float *b, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)b[i]);
		if (!(d <= m)) /* NaN counts as infinitely wrong */
			m = d == d ? d : INFINITY;
	}
	return m;
}

/* The README's top-10 rule: identical ids in order; a swap is allowed only
 * between neighbours whose golden values differ by < 2e-3. */
static inline bool top10_ok(const float *logits, size_t V, const struct gcase *g)
{
	int32_t mine[10];
	bool used[10] = {false};

	for (int r = 0; r < 10; r++) {
		int32_t best = -1;
		for (size_t i = 0; i < V; i++) {
			bool taken = false;
			for (int q = 0; q < r; q++)
				taken |= mine[q] == (int32_t)i;
			if (!taken && (best < 0 || logits[i] > logits[best]))
				best = (int32_t)i;
		}
		mine[r] = best;
	}
	for (int r = 0; r < 10; r++) {
		if (mine[r] == g->top10[r])
			continue;
		/* a neighbour swap with a near tie in the golden values */
		if (r + 1 < 10 && mine[r] == g->top10[r + 1] && mine[r + 1] == g->top10[r] &&
		    fabsf(g->top10v[r] - g->top10v[r + 1]) < 2e-3f) {
			r++;
			continue;
		}
		diag("top-10 rank %d: id %d, golden %d", r, mine[r], g->top10[r]);
		return false;
	}
	(void)used;
	return true;
}

/* An engine on k (NULL: qvl_kern) with diag() of why not; NULL then. */
static inline struct qvl_engine *test_engine(const struct qvl_model *m, const struct qvl_kernels *k,
					     int threads, enum qvl_dtype kv, enum qvl_precision p)
{
	struct qvl_engine_opts o = {.threads = threads, .kv_dtype = kv, .kern = k, .precision = p};
	struct qvl_err err = {{0}};
	struct qvl_engine *e;

	if (qvl_engine_create(&e, m, &o, &err) < 0) {
		diag("engine: %s", err.msg);
		return NULL;
	}
	return e;
}

/* test_engine() with a KV pool of `pages` pages (0: no budget) of
 * page_tokens positions (0: the default). */
static inline struct qvl_engine *kv_engine(const struct qvl_model *m, const struct qvl_kernels *k,
					   int page_tokens, size_t pages, enum qvl_dtype kv,
					   enum qvl_precision p)
{
	struct qvl_engine_opts o = {.threads = 2,
				    .kv_dtype = kv,
				    .kern = k,
				    .precision = p,
				    .kv_pages = pages,
				    .kv_page_tokens = page_tokens};
	struct qvl_err err = {{0}};
	struct qvl_engine *e;

	if (qvl_engine_create(&e, m, &o, &err) < 0) {
		diag("engine: %s", err.msg);
		return NULL;
	}
	return e;
}

/* Deterministic pseudo-random token ids below 151643 (no special tokens). */
static inline void rand_ids(int32_t *ids, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		ids[i] = (int32_t)((seed >> 33) % 151643);
	}
}

/* The golden text cases ($QVL_TESTDATA/golden/text/cases.json) and their
 * last-position logits (in gdir = $QVL_SHARED/golden/text), or skip_all()
 * naming what is missing. */
static inline float **golden_text_load(struct gcase **cases, size_t *n, char *gdir, size_t cap)
{
	char path[4096];
	float **glog;

	snprintf(gdir, cap, "%s/golden/text", test_env("QVL_SHARED", "../shared"));
	snprintf(path, sizeof(path), "%s/golden/text/cases.json",
		 test_env("QVL_TESTDATA", "tests/data"));
	if (load_cases(path, cases, n) < 0)
		skip_all("cannot read %s", path);
	glog = calloc(*n, sizeof(*glog));
	if (!glog)
		skip_all("out of memory");
	for (size_t i = 0; i < *n; i++)
		if (!(glog[i] = read_f32(gdir, (*cases)[i].logits_file, 151936)))
			skip_all("golden logits %s/%s not readable", gdir, (*cases)[i].logits_file);
	return glog;
}

static inline void golden_text_free(struct gcase *cases, size_t n, float **glog)
{
	for (size_t i = 0; i < n; i++) {
		free(cases[i].ids);
		free(glog[i]);
	}
	free(glog);
	free(cases);
}

/* Prefill ids, return the last logits in out[V]; then greedy-decode ng tokens
 * into gen (gen[0] = argmax of the prompt logits). */
static inline int run_case(struct qvl_engine *e, const int32_t *ids, size_t n, float *out,
			   int32_t *gen, int ng)
{
	const struct qvl_model *m = qvl_engine_model(e);
	size_t V = (size_t)m->config.text.vocab_size;
	struct qvl_err err = {{0}};
	struct qvl_seq *s;
	struct qvl_chunk c = {.ids = ids, .n = n};
	float *tmp = malloc(V * sizeof(float));
	int rc = qvl_seq_create(e, (int)n + ng + 1, &s, &err);

	if (rc < 0 || !tmp) {
		diag("%s", err.msg);
		free(tmp);
		return -1;
	}
	rc = qvl_seq_forward(e, s, &c, out, false, &err);
	memcpy(tmp, out, V * sizeof(float));
	for (int i = 0; rc >= 0 && i < ng; i++) {
		int32_t id = (int32_t)0;
		for (size_t j = 1; j < V; j++)
			if (tmp[j] > tmp[id])
				id = (int32_t)j;
		gen[i] = id;
		if (i + 1 < ng) {
			struct qvl_chunk one = {.ids = &id, .n = 1};
			rc = qvl_seq_forward(e, s, &one, tmp, false, &err);
		}
	}
	if (rc < 0)
		diag("forward: %s", err.msg);
	qvl_seq_destroy(s);
	free(tmp);
	return rc;
}

#endif
