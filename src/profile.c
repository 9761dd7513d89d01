/* Per-stage decode timers (see profile.h). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "profile.h"

/* Pool columns kept per step after the stages. */
enum { PC_RUNS = EST_N, PC_OWN, PC_WAIT, PC_WAKE, PC_TOTAL, PC_N };

/* A pause between two decode steps longer than this is not the caller's
 * per-token work (a new repetition, a prompt, a client): not counted. */
#define CALLER_MAX_NS 20000000u

struct eng_prof {
	uint64_t t_last, t_begin, t_end_prev;
	size_t rows; /* the passes recorded: those of exactly this many rows */
	bool on, prev_decode;
	int pos_lo, pos_hi;
	uint64_t cur[EST_N];
	struct qvl_pool_prof pool;
	uint64_t (*steps)[PC_N];
	size_t n;
};

static const char *const stage_names[EST_N] = {
    [EST_EMBED] = "embedding + rope angles + input norm",
    [EST_QKV] = "q/k/v matmuls",
    [EST_QKROPE] = "q/k norm + rope + KV append",
    [EST_ATTN] = "attention",
    [EST_OPROJ] = "o_proj matmul",
    [EST_RES1] = "residual + post-attention norm",
    [EST_GATEUP] = "gate/up matmuls + silu*up",
    [EST_DOWN] = "down matmul",
    [EST_RES2] = "residual + next input norm",
    [EST_FINAL] = "residual + final norm",
    [EST_LOGITS] = "logits matmul",
    [EST_ARGMAX] = "argmax reduction",
    [EST_CALLER] = "caller between steps (sampling)",
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int eng_prof_create(struct eng_prof **out, struct qvl_pool *pool)
{
	uint64_t rows = 0;
	struct eng_prof *p;

	*out = NULL;
	/* 1: decode steps; N: forward passes of exactly N rows */
	if (!qvl_env_uint("QVL_PROFILE", 0, PROF_MAX_ROWS, &rows) || !rows)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->steps = calloc(PROF_MAX_STEPS, sizeof(*p->steps)))) {
		free(p);
		return -ENOMEM;
	}
	p->rows = rows;
	qvl_pool_set_prof(pool, &p->pool);
	*out = p;
	return 0;
}

void eng_prof_begin(struct eng_prof *p, size_t rows, int pos)
{
	uint64_t t = now_ns();

	if (!p)
		return;
	memset(p->cur, 0, sizeof(p->cur));
	memset(&p->pool, 0, sizeof(p->pool));
	p->on = rows == p->rows && p->n < PROF_MAX_STEPS;
	if (p->on && p->prev_decode && t - p->t_end_prev < CALLER_MAX_NS)
		p->cur[EST_CALLER] = t - p->t_end_prev;
	if (p->on) {
		p->pos_lo = p->n ? (pos < p->pos_lo ? pos : p->pos_lo) : pos;
		p->pos_hi = p->n ? (pos > p->pos_hi ? pos : p->pos_hi) : pos;
	}
	p->prev_decode = rows == p->rows;
	p->t_begin = p->t_last = t;
}

void eng_prof_mark(struct eng_prof *p, enum eng_stage s)
{
	uint64_t t;

	if (!p || !p->on)
		return;
	t = now_ns();
	p->cur[s] += t - p->t_last;
	p->t_last = t;
}

void eng_prof_end(struct eng_prof *p)
{
	uint64_t *row;

	if (!p)
		return;
	p->t_end_prev = now_ns();
	if (!p->on)
		return;
	row = p->steps[p->n++];
	memcpy(row, p->cur, sizeof(p->cur));
	row[PC_RUNS] = p->pool.runs;
	row[PC_OWN] = p->pool.own_ns;
	row[PC_WAIT] = p->pool.wait_ns;
	row[PC_WAKE] = p->pool.wake_ns;
	row[PC_TOTAL] = p->t_end_prev - p->t_begin + p->cur[EST_CALLER];
	p->on = false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* p10, median, p90 of column c over the steps. */
static void quantiles(const struct eng_prof *p, int c, uint64_t *tmp, double q[3])
{
	for (size_t i = 0; i < p->n; i++)
		tmp[i] = p->steps[i][c];
	qsort(tmp, p->n, sizeof(*tmp), cmp_u64);
	q[0] = (double)tmp[p->n / 10];
	q[1] = p->n % 2 ? (double)tmp[p->n / 2]
			: 0.5 * ((double)tmp[p->n / 2 - 1] + (double)tmp[p->n / 2]);
	q[2] = (double)tmp[p->n - 1 - p->n / 10];
}

static void line(FILE *f, const char *name, const double q[3], double total, const char *unit)
{
	double div = strcmp(unit, "ms") ? 1.0 : 1e6;

	fprintf(f, "  %-40s %9.3f %9.3f %9.3f", name, q[1] / div, q[0] / div, q[2] / div);
	if (total > 0)
		fprintf(f, " %6.1f%%", 100.0 * q[1] / total);
	fprintf(f, "  %s\n", unit);
}

void eng_prof_report(const struct eng_prof *p, FILE *f, int threads, const char *kernels)
{
	uint64_t *tmp;
	double q[3], total[3];

	if (!p || !p->n)
		return;
	tmp = malloc(p->n * sizeof(*tmp));
	if (!tmp)
		return;
	quantiles(p, PC_TOTAL, tmp, total);
	fprintf(f,
		"qvl profile: %zu decode steps of %zu rows at positions %d..%d, %d threads, "
		"kernels %s\n"
		"  %-40s %9s %9s %9s %7s\n",
		p->n, p->rows, p->pos_lo, p->pos_hi, threads, kernels, "stage (per step)", "median",
		"p10", "p90", "share");
	for (int s = 0; s < EST_N; s++) {
		quantiles(p, s, tmp, q);
		if (q[2] > 0)
			line(f, stage_names[s], q, total[1], "ms");
	}
	line(f, "step total (incl. caller)", total, 0, "ms");
	fprintf(f, "  pool, per step:\n");
	quantiles(p, PC_RUNS, tmp, q);
	line(f, "dispatches", q, 0, "runs");
	quantiles(p, PC_OWN, tmp, q);
	line(f, "caller computing its share", q, total[1], "ms");
	quantiles(p, PC_WAIT, tmp, q);
	line(f, "caller waiting for workers (barrier)", q, total[1], "ms");
	quantiles(p, PC_WAKE, tmp, q);
	line(f, "worker wake-up latency (sum)", q, total[1], "ms");
	free(tmp);
}

void eng_prof_free(struct eng_prof *p, struct qvl_pool *pool)
{
	if (!p)
		return;
	if (pool)
		qvl_pool_set_prof(pool, NULL);
	free(p->steps);
	free(p);
}
