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

/* Units (layers, blocks) of cost u per row that fit in ratio short steps. */
static int fit(const struct pace *p, double n_meas, double u, size_t rows, int n)
{
	if (!p->n_small || !n_meas || !rows || n < 1)
		return 1;
	double k = p->ratio * p->t_small / (u * (double)rows);
	return k < 1 ? 1 : k >= n ? n : (int)k;
}

int pace_layers(const struct pace *p, size_t rows, int n_layers)
{
	return fit(p, p->n_split, p->u, rows, n_layers);
}

void pace_vision(struct pace *p, size_t patches, int blocks, double seconds)
{
	if (patches && blocks > 0 && seconds > 0)
		mean_add(&p->n_vis, &p->uv, seconds / ((double)patches * blocks));
}

int pace_blocks(const struct pace *p, size_t patches, int n_blocks)
{
	return fit(p, p->n_vis, p->uv, patches, n_blocks);
}
