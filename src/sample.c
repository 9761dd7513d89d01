/* Sampling (see sample.h). The order is Hugging Face's: penalties, then
 * temperature, top-k, top-p, min-p, then a draw from the renormalised
 * distribution. The RNG is xoshiro256** seeded through splitmix64, so a seed
 * gives the same tokens on every machine. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "sample.h"

/* Logits more than this many nats (after temperature) below the maximum
 * carry < 1e-13 of the probability mass each; dropping them before the sort
 * keeps sampling over a 152k vocabulary cheap without changing any draw. */
#define PRUNE_NATS 30.0f

struct qvl_sampler {
	struct qvl_sample_params p;
	int V;
	int32_t *hist; /* ring of the last `cap` accepted ids */
	size_t cap, nhist, head;
	uint8_t *seen;	 /* [V], scratch for the penalties */
	uint32_t *count; /* [V] occurrences in the output (frequency penalty only) */
	int32_t *outs;	 /* the distinct ids with count > 0 */
	size_t nouts, cap_outs;
	int32_t *idx; /* [V] candidates */
	float *val;   /* [V] their logits, then probabilities */
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro(uint64_t *s)
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* uniform in [0, 1) with 53 random bits */
static double uniform(uint64_t *s)
{
	return (double)(xoshiro(s) >> 11) * (1.0 / 9007199254740992.0);
}

void qvl_sample_defaults(struct qvl_sample_params *p, const struct qvl_gen_config *g)
{
	memset(p, 0, sizeof(*p));
	p->greedy = true;
	p->temperature = 1.0f;
	p->top_p = 1.0f;
	p->repeat_penalty = 1.0f;
	p->penalty_last_n = 64;
	p->seed = 0;
	if (g && g->present && g->do_sample) {
		p->greedy = false;
		p->temperature = (float)g->temperature;
		p->top_k = g->top_k;
		p->top_p = (float)g->top_p;
		if (g->repetition_penalty > 0)
			p->repeat_penalty = (float)g->repetition_penalty;
	}
}

int qvl_sampler_create(struct qvl_sampler **out, const struct qvl_sample_params *p, int n_vocab,
		       struct qvl_err *err)
{
	struct qvl_sampler *s;
	uint64_t seed = p->seed;

	*out = NULL;
	if (n_vocab <= 0)
		return qvl_errf(err, -EINVAL, "sampler: vocabulary of %d ids", n_vocab);
	if (p->top_p <= 0 || p->min_p >= 1 || p->repeat_penalty <= 0 || isnan(p->temperature) ||
	    isnan(p->presence_penalty) || isnan(p->frequency_penalty))
		return qvl_errf(
		    err, -EINVAL,
		    "sampler: top_p %g must be > 0, min_p %g < 1, repeat penalty %g > 0",
		    (double)p->top_p, (double)p->min_p, (double)p->repeat_penalty);
	s = calloc(1, sizeof(*s));
	if (!s)
		return qvl_errf(err, -ENOMEM, "sampler: out of memory");
	s->p = *p;
	s->V = n_vocab;
	s->cap = p->penalty_last_n > 0 ? (size_t)p->penalty_last_n : 1u << 20;
	s->hist = malloc(s->cap * sizeof(int32_t));
	s->seen = calloc((size_t)n_vocab, 1);
	s->idx = malloc((size_t)n_vocab * sizeof(int32_t));
	s->val = malloc((size_t)n_vocab * sizeof(float));
	if (p->frequency_penalty != 0.0f)
		s->count = calloc((size_t)n_vocab, sizeof(uint32_t));
	if (!s->hist || !s->seen || !s->idx || !s->val ||
	    (p->frequency_penalty != 0.0f && !s->count)) {
		qvl_sampler_free(s);
		return qvl_errf(err, -ENOMEM, "sampler: out of memory");
	}
	for (int i = 0; i < 4; i++)
		s->s[i] = splitmix64(&seed);
	*out = s;
	return 0;
}

void qvl_sampler_free(struct qvl_sampler *s)
{
	if (!s)
		return;
	free(s->hist);
	free(s->seen);
	free(s->count);
	free(s->outs);
	free(s->idx);
	free(s->val);
	free(s);
}

void qvl_sampler_accept(struct qvl_sampler *s, int32_t id)
{
	s->hist[s->head] = id;
	s->head = (s->head + 1) % s->cap;
	if (s->nhist < s->cap)
		s->nhist++;
}

int qvl_sampler_accept_output(struct qvl_sampler *s, int32_t id)
{
	qvl_sampler_accept(s, id);
	if (!s->count || id < 0 || id >= s->V)
		return 0;
	if (!s->count[id]) {
		if (s->nouts == s->cap_outs) {
			size_t cap = s->cap_outs ? 2 * s->cap_outs : 64;
			int32_t *v = realloc(s->outs, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			s->outs = v;
			s->cap_outs = cap;
		}
		s->outs[s->nouts++] = id;
	}
	s->count[id]++;
	return 0;
}

bool qvl_sampler_is_argmax(const struct qvl_sampler *s)
{
	return (s->p.greedy || s->p.temperature <= 0) && s->p.repeat_penalty == 1.0f &&
	       s->p.presence_penalty == 0.0f && s->p.frequency_penalty == 0.0f;
}

int32_t qvl_argmax(const float *x, size_t n)
{
	size_t best = 0;

	for (size_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return (int32_t)best;
}

static void penalize(struct qvl_sampler *s, float *logits)
{
	float rp = s->p.repeat_penalty, pp = s->p.presence_penalty, fp = s->p.frequency_penalty;

	/* OpenAI's rule: logit - count * frequency_penalty, independent of
	 * the window of the other two */
	for (size_t i = 0; fp != 0.0f && i < s->nouts; i++)
		logits[s->outs[i]] -= (float)s->count[s->outs[i]] * fp;
	if (rp == 1.0f && pp == 0.0f)
		return;
	/* each distinct token once, as HF's gather/scatter over the ids does */
	for (size_t i = 0; i < s->nhist; i++) {
		int32_t id = s->hist[i];
		if (id < 0 || id >= s->V || s->seen[id])
			continue;
		s->seen[id] = 1;
		float l = logits[id];
		l = l > 0 ? l / rp : l * rp;
		logits[id] = l - pp;
	}
	for (size_t i = 0; i < s->nhist; i++)
		if (s->hist[i] >= 0 && s->hist[i] < s->V)
			s->seen[s->hist[i]] = 0;
}

static int cmp_desc(const void *a, const void *b, void *arg)
{
	const float *v = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	if (v[x] != v[y])
		return v[x] < v[y] ? 1 : -1;
	return x < y ? -1 : x > y;
}

/* "a ranks below b": smaller logit, or equal logit and higher id */
static bool below(const float *v, int32_t a, int32_t b)
{
	return v[a] < v[b] || (v[a] == v[b] && a > b);
}

static void sift_down(int32_t *h, size_t n, size_t i, const float *v)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && below(v, h[l], h[m]))
			m = l;
		if (r < n && below(v, h[r], h[m]))
			m = r;
		if (m == i)
			return;
		int32_t t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* The k best ids in one pass with a min-heap of k (unordered): a 152k
 * vocabulary with top-k 20 then sorts 20 ids, not all of them. */
static size_t top_k_select(int32_t *h, const float *v, size_t n, size_t k)
{
	for (size_t i = 0; i < k; i++)
		h[i] = (int32_t)i;
	for (size_t i = k / 2; i-- > 0;)
		sift_down(h, k, i, v);
	for (size_t i = k; i < n; i++)
		if (below(v, h[0], (int32_t)i)) {
			h[0] = (int32_t)i;
			sift_down(h, k, 0, v);
		}
	return k;
}

void qvl_top_k(const float *x, size_t n, size_t k, int32_t *ids)
{
	top_k_select(ids, x, n, k);
	for (size_t i = 1; i < k; i++) /* k <= 20: insertion sort, best first */
		for (size_t j = i; j > 0 && below(x, ids[j - 1], ids[j]); j--) {
			int32_t t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
}

int32_t qvl_sample(struct qvl_sampler *s, float *logits)
{
	const struct qvl_sample_params *p = &s->p;
	size_t n = 0, V = (size_t)s->V;

	penalize(s, logits);
	if (p->greedy || p->temperature <= 0)
		return qvl_argmax(logits, V);

	float inv_t = 1.0f / p->temperature, mx = logits[qvl_argmax(logits, V)];
	if (p->top_k > 0 && (size_t)p->top_k < V) {
		n = top_k_select(s->idx, logits, V, (size_t)p->top_k);
	} else {
		for (size_t i = 0; i < V; i++)
			if ((logits[i] - mx) * inv_t > -PRUNE_NATS)
				s->idx[n++] = (int32_t)i;
	}
	qsort_r(s->idx, n, sizeof(int32_t), cmp_desc, logits);

	double sum = 0.0;
	for (size_t i = 0; i < n; i++) {
		s->val[i] = expf((logits[s->idx[i]] - mx) * inv_t);
		sum += s->val[i];
	}
	/* top-p: the smallest prefix whose mass reaches p (at least one token) */
	if (p->top_p < 1.0f) {
		double acc = 0.0;
		size_t keep = n;
		for (size_t i = 0; i < n; i++) {
			acc += s->val[i] / sum;
			if (acc >= p->top_p) {
				keep = i + 1;
				break;
			}
		}
		sum = 0.0;
		for (size_t i = 0; i < keep; i++)
			sum += s->val[i];
		n = keep;
	}
	/* min-p: drop tokens below min_p times the top probability */
	if (p->min_p > 0.0f) {
		size_t keep = 1;
		while (keep < n && s->val[keep] >= p->min_p * s->val[0])
			keep++;
		sum = 0.0;
		for (size_t i = 0; i < keep; i++)
			sum += s->val[i];
		n = keep;
	}
	double r = uniform(s->s) * sum, acc = 0.0;
	for (size_t i = 0; i < n; i++) {
		acc += s->val[i];
		if (r < acc)
			return s->idx[i];
	}
	return s->idx[n - 1];
}
