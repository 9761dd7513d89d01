/* The time bound of a step's long-prefill part (see pace.h). */
#include "config.h"

#include "daemon/pace.h"

/* Weight of a new measurement in a running mean: the last ~4 count, so the
 * bound follows a machine whose load changes. */
#define PACE_ALPHA 0.25

static void mean_add(double *n, double *mean, double v)
{
	*mean += (*n ? PACE_ALPHA : 1.0) * (v - *mean);
	(*n)++;
}

void pace_init(struct pace *p, double ratio)
{
	*p = (struct pace){.ratio = ratio};
}

void pace_step(struct pace *p, size_t rows, double seconds)
{
	if (rows && rows <= PACE_REF && seconds > 0)
		mean_add(&p->n_small, &p->t_small, seconds);
}

void pace_split(struct pace *p, size_t rows, int layers, double seconds)
{
	if (rows && layers > 0 && seconds > 0)
		mean_add(&p->n_split, &p->u, seconds / ((double)rows * layers));
}

int pace_layers(const struct pace *p, size_t rows, int n_layers)
{
	if (!p->n_small || !p->n_split || !rows || n_layers < 1)
		return 1;
	double k = p->ratio * p->t_small / (p->u * (double)rows);
	return k < 1 ? 1 : k >= n_layers ? n_layers : (int)k;
}
