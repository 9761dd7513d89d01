/* The prefill budget of a scheduler step, bounded by time (issue 18: the
 * time to first token of a short request that arrives while a long prompt
 * is being prefilled).
 *
 * A step cannot be interrupted: a request that arrives during one waits for
 * its end, then for a step of its own. With a fixed budget of positions a
 * step carrying a 256-position chunk of a long prompt costs ~10x a step of
 * a 16-id prompt on the 2b shape (compute bound past ~16 rows), so the
 * newcomer waited ~14x its idle time. Here the budget is the number of rows
 * a step may carry for its duration to stay under ratio x the time of a
 * step of PACE_REF rows (what a short prompt costs on an idle daemon), from
 * a model of the step time fitted to the steps just run:
 *     t(rows) = a + b * rows
 * a the cost of reading every weight once, b the compute per row. The fit
 * keeps two running means, of the steps of at most PACE_REF rows (decodes,
 * short prompts) and of the larger ones (prefill chunks), and draws the
 * line through them; each mean follows the machine (exponential weights),
 * and neither is ever replaced by the other, so the line stays defined when
 * every step has the same size. Until a mean exists the budget probes:
 * PACE_REF rows (a small step), then 4 x PACE_REF; and a lone long prefill
 * (nothing else small runs) gets a small step every PACE_REPROBE steps, or
 * the small mean would go stale while the load of the machine changes.
 * Only the ratio a / b (the rows a step takes to cost its weight reads
 * twice) sets the budget:
 *     rows = (ratio - 1) * a / b + ratio * PACE_REF
 *
 * The newcomer then waits at most one bounded step plus its own: at ratio
 * 1.5, ~1.75x its idle time on average (the step in progress is half done
 * when it arrives), while the long prompt runs chunks of ~(ratio - 1) x
 * PACE_REF + 0.5 a / b rows (~30 on the 2b shape at 2 threads), ~70% of
 * the throughput of 256-row chunks. Worker thread only: no locking. */
#ifndef QVLD_PACE_H
#define QVLD_PACE_H

#include <stddef.h>

#define PACE_REF	 16 /* rows of the reference step: a short prompt */
#define PACE_REPROBE 16 /* large steps in a row, then a small one refreshes its mean */

struct pace {
	double ratio;	  /* step time bound, in reference steps; <= 0: off */
	size_t max_rows;  /* the --prefill-chunk cap */
	double n[2];	  /* steps seen, per class (small, large) */
	double x[2], t[2]; /* running means of rows and seconds, per class */
	int since_small;   /* large steps since the last small one */
};

/* ratio <= 0: the budget is always max_rows (the fixed chunk). */
void pace_init(struct pace *p, double ratio, size_t max_rows);
/* A forward of rows rows took seconds. */
void pace_observe(struct pace *p, size_t rows, double seconds);
/* Prefill positions the next step may carry besides `others` rows that run
 * anyway (decodes, a newcomer's prompt): at least min(PACE_REF, max_rows)
 * so that a prefill always progresses, at most max_rows. */
size_t pace_budget(const struct pace *p, size_t others);
/* The fitted per-step and per-row seconds (0 while unknown), for the log. */
void pace_model(const struct pace *p, double *a, double *b);

#endif
