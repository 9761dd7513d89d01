/* Token sampling from a logits vector: greedy, or temperature with top-k,
 * top-p and min-p filtering, repetition and presence penalties, and a seeded
 * RNG so a run can be repeated. One sampler per sequence; the scratch it
 * needs (vocabulary-sized) is allocated once at creation. */
#ifndef QVL_SAMPLE_H
#define QVL_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct qvl_gen_config;

struct qvl_sample_params {
	bool greedy;		 /* argmax (ties: lowest id); the rest is ignored */
	float temperature;	 /* <= 0 means greedy */
	int top_k;		 /* <= 0: off */
	float top_p;		 /* >= 1: off */
	float min_p;		 /* <= 0: off */
	float repeat_penalty;	 /* 1: off (HF rule: divide positive logits, multiply negative) */
	float presence_penalty;	 /* 0: off (subtracted once per token seen) */
	float frequency_penalty; /* 0: off (OpenAI's: subtracted per occurrence of the id
				    in the output so far, prompt not counted) */
	int penalty_last_n;	 /* tokens looked back for the penalties (<= 0: all) */
	uint64_t seed;
};

/* Defaults from generation_config.json (m->gen): do_sample false or absent
 * file -> greedy; otherwise its temperature, top_k, top_p, repetition_penalty. */
void qvl_sample_defaults(struct qvl_sample_params *p, const struct qvl_gen_config *g);

struct qvl_sampler;

int qvl_sampler_create(struct qvl_sampler **out, const struct qvl_sample_params *p, int n_vocab,
		       struct qvl_err *err);
void qvl_sampler_free(struct qvl_sampler *s);
/* Record a token of the context (prompt or generated) for the penalties. */
void qvl_sampler_accept(struct qvl_sampler *s, int32_t id);
/* Record a generated token: qvl_sampler_accept, and its count for the
 * frequency penalty. -ENOMEM (the token is then recorded but not counted). */
int qvl_sampler_accept_output(struct qvl_sampler *s, int32_t id);
/* Pick the next id. logits[n_vocab] may be modified (penalties). */
int32_t qvl_sample(struct qvl_sampler *s, float *logits);

/* The next id is the plain argmax of the logits (greedy, no penalty), so a
 * caller may ask the engine for the argmax alone (qvl_seq_forward_argmax)
 * instead of the logits. */
bool qvl_sampler_is_argmax(const struct qvl_sampler *s);

/* Index of the largest value (lowest index on ties). */
int32_t qvl_argmax(const float *x, size_t n);

/* The k (<= n) largest values' indices into ids[], largest first (ties:
 * lowest index first). */
void qvl_top_k(const float *x, size_t n, size_t k, int32_t *ids);

#endif
