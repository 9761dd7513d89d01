/* The time-bounded prefill budget (see pace.h). */
#include "config.h"

#include "daemon/pace.h"

/* Weight of a new step in its class's running means: the last ~4 steps
 * count, so the model follows a machine whose load changes. */
#define PACE_ALPHA 0.25

void pace_init(struct pace *p, double ratio, size_t max_rows)
{
	*p = (struct pace){.ratio = ratio, .max_rows = max_rows ? max_rows : 1};
}

void pace_observe(struct pace *p, size_t rows, double seconds)
{
	int c = rows > PACE_REF;
	double w = p->n[c] ? PACE_ALPHA : 1.0;

	if (!rows || !(seconds > 0))
		return;
	p->n[c]++;
	p->since_small = c ? p->since_small + 1 : 0;
	p->x[c] += w * ((double)rows - p->x[c]);
	p->t[c] += w * (seconds - p->t[c]);
}

void pace_model(const struct pace *p, double *a, double *b)
{
	*a = *b = 0;
	/* the two means must be apart for the slope to mean something */
	if (!p->n[0] || !p->n[1] || p->x[1] - p->x[0] < PACE_REF / 2)
		return;
	*b = (p->t[1] - p->t[0]) / (p->x[1] - p->x[0]);
	if (!(*b > 0)) { /* noise: larger steps measured faster */
		*b = 0;
		return;
	}
	*a = p->t[0] - *b * p->x[0];
	if (*a < 0)
		*a = 0;
}

static size_t clamp_rows(const struct pace *p, double rows)
{
	size_t lo = p->max_rows < PACE_REF ? p->max_rows : PACE_REF;

	if (!(rows > (double)lo))
		return lo;
	return rows >= (double)p->max_rows ? p->max_rows : (size_t)rows;
}

size_t pace_budget(const struct pace *p, size_t others)
{
	double a, b;

	if (p->ratio <= 0)
		return p->max_rows;
	if (!p->n[0] || (p->since_small >= PACE_REPROBE && others < PACE_REF)) {
		/* probe: a small step gives (or refreshes) the small mean */
		size_t rows = others < PACE_REF ? PACE_REF - others : PACE_REF;
		return rows < p->max_rows ? rows : p->max_rows;
	}
	pace_model(p, &a, &b);
	if (b <= 0) /* probe a larger step, or keep the last good size */
		return clamp_rows(p, p->n[1] ? p->x[1] : 4.0 * PACE_REF);
	return clamp_rows(p, (p->ratio - 1) * a / b + p->ratio * PACE_REF - (double)others);
}
