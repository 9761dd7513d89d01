/* Sampling (src/sample.c): each filter against its definition on small
 * vocabularies where the expected distribution can be written down, the
 * penalties against the HF rule, seeds reproducible, and defaults from a
 * generation_config. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "model.h"
#include "sample.h"
#include "tap.h"

#define V     8
#define DRAWS 200000

static struct qvl_sampler *mk(struct qvl_sample_params *p)
{
	struct qvl_err err = {{0}};
	struct qvl_sampler *s = NULL;

	if (qvl_sampler_create(&s, p, V, &err) < 0)
		diag("sampler: %s", err.msg);
	return s;
}

static void base(struct qvl_sample_params *p)
{
	qvl_sample_defaults(p, NULL);
	p->greedy = false;
	p->temperature = 1.0f;
	p->seed = 7;
}

/* frequencies of DRAWS draws from fixed logits */
static void histogram(struct qvl_sampler *s, const float *logits, double *freq)
{
	float l[V];

	memset(freq, 0, V * sizeof(double));
	for (int i = 0; i < DRAWS; i++) {
		memcpy(l, logits, sizeof(l));
		int32_t id = qvl_sample(s, l);
		if (id >= 0 && id < V)
			freq[id] += 1.0 / DRAWS;
	}
}

int main(void)
{
	const float logits[V] = {1.0f, 3.0f, 2.0f, 0.5f, 2.5f, -1.0f, 0.0f, 1.5f};
	struct qvl_sample_params p;
	struct qvl_sampler *s;
	double f[V], want[V], z = 0, err;
	float l[V];

	/* greedy and argmax ties */
	qvl_sample_defaults(&p, NULL);
	s = mk(&p);
	memcpy(l, logits, sizeof(l));
	is_int(qvl_sample(s, l), 1, "greedy picks the largest logit");
	qvl_sampler_free(s);
	const float tie[4] = {1, 5, 5, 2};
	is_int(qvl_argmax(tie, 4), 1, "argmax ties go to the lowest id");

	/* temperature 0.5: p ~ exp(2 l) */
	base(&p);
	p.temperature = 0.5f;
	s = mk(&p);
	histogram(s, logits, f);
	for (int i = 0; i < V; i++)
		z += want[i] = exp(2.0 * logits[i]);
	err = 0;
	for (int i = 0; i < V; i++)
		err = fmax(err, fabs(f[i] - want[i] / z));
	ok(err < 0.01, "temperature 0.5: frequencies match softmax(l / T) (max |d| %.4f)", err);
	qvl_sampler_free(s);

	/* top-k 3: only ids 1, 4, 2, renormalised */
	base(&p);
	p.top_k = 3;
	s = mk(&p);
	histogram(s, logits, f);
	z = exp(3.0) + exp(2.5) + exp(2.0);
	err = fabs(f[1] - exp(3.0) / z) + fabs(f[4] - exp(2.5) / z) + fabs(f[2] - exp(2.0) / z);
	ok(err < 0.01 && f[0] == 0 && f[7] == 0, "top-k 3: the three largest, renormalised");
	qvl_sampler_free(s);

	/* top-p: the smallest prefix of the sorted ids (1, 4, 2, 7, ...) whose
	 * softmax mass reaches p, computed here from the definition */
	double pr[V], zz = 0, acc = 0;
	int order[V] = {1, 4, 2, 7, 0, 3, 6, 5}, keep = 0;
	for (int i = 0; i < V; i++)
		zz += pr[i] = exp(logits[i]);
	for (keep = 0; keep < V; keep++) {
		acc += pr[order[keep]] / zz;
		if (acc >= 0.7)
			break;
	}
	keep++;
	base(&p);
	p.top_p = 0.7f;
	s = mk(&p);
	histogram(s, logits, f);
	int outside = 0;
	for (int i = keep; i < V; i++)
		outside += f[order[i]] > 0;
	ok(outside == 0 && f[order[keep - 1]] > 0,
	   "top-p 0.7: exactly the %d most likely ids are drawn", keep);
	qvl_sampler_free(s);

	/* min-p 0.5: ids with p >= 0.5 p_max, i.e. l >= 3 - ln 2 = 2.31 -> 1, 4 */
	base(&p);
	p.min_p = 0.5f;
	s = mk(&p);
	histogram(s, logits, f);
	ok(f[1] > 0 && f[4] > 0 && f[2] == 0 && f[7] == 0, "min-p 0.5 keeps ids 1 and 4 only");
	qvl_sampler_free(s);

	/* repetition penalty (HF): positive logits divided, negative multiplied,
	 * each seen token once; presence penalty subtracted once */
	qvl_sample_defaults(&p, NULL);
	p.repeat_penalty = 2.0f;
	p.presence_penalty = 0.25f;
	s = mk(&p);
	qvl_sampler_accept(s, 1);
	qvl_sampler_accept(s, 1);
	qvl_sampler_accept(s, 5);
	memcpy(l, logits, sizeof(l));
	int32_t id = qvl_sample(s, l);
	ok(fabsf(l[1] - (3.0f / 2 - 0.25f)) < 1e-6f && fabsf(l[5] - (-2.0f - 0.25f)) < 1e-6f &&
	       l[4] == 2.5f,
	   "penalties: 3 -> %.3f, -1 -> %.3f, unseen untouched", (double)l[1], (double)l[5]);
	is_int(id, 4, "greedy after penalties picks the next best (id 4)");
	qvl_sampler_free(s);

	/* seeds: same seed same sequence, different seed different */
	int32_t a[64], b[64], c[64];
	for (int run = 0; run < 3; run++) {
		base(&p);
		p.seed = run == 2 ? 8 : 7;
		s = mk(&p);
		for (int i = 0; i < 64; i++) {
			memcpy(l, logits, sizeof(l));
			(run == 0 ? a : run == 1 ? b : c)[i] = qvl_sample(s, l);
		}
		qvl_sampler_free(s);
	}
	ok(!memcmp(a, b, sizeof(a)), "same seed, same 64 draws");
	ok(memcmp(a, c, sizeof(a)) != 0, "another seed, other draws");

	/* defaults from generation_config */
	struct qvl_gen_config g = {.present = true,
				   .do_sample = true,
				   .temperature = 0.7,
				   .top_p = 0.8,
				   .top_k = 20,
				   .repetition_penalty = 1.0};
	qvl_sample_defaults(&p, &g);
	ok(!p.greedy && fabsf(p.temperature - 0.7f) < 1e-6f && p.top_k == 20 &&
	       fabsf(p.top_p - 0.8f) < 1e-6f && p.repeat_penalty == 1.0f,
	   "generation_config: sample, T 0.7, top-k 20, top-p 0.8");
	g.do_sample = false;
	qvl_sample_defaults(&p, &g);
	ok(p.greedy, "do_sample false: greedy");

	/* bad parameters are refused */
	struct qvl_err e2 = {{0}};
	base(&p);
	p.top_p = 0;
	ok(qvl_sampler_create(&s, &p, V, &e2) == -EINVAL, "top_p 0 refused: %s", e2.msg);
	return done_testing();
}
