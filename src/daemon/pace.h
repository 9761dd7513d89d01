/* How much of a long prefill a scheduler step carries, bounded by time
 * (issue 18: the time to first token of a short request that arrives while
 * a long prompt is being prefilled).
 *
 * A step cannot be interrupted: a request that arrives during one waits for
 * its end, then for a step of its own. A step that carried a whole
 * 256-position chunk of a long prompt cost ~8x a step of a 16-id prompt on
 * the 2b shape, so the newcomer waited ~14x its idle time; smaller chunks
 * bound the step but lose the chunk's speed (past 16 rows the matmuls pack
 * their weights, which costs as much as ~60 rows of compute: a 24-row
 * chunk ran at 40% of the speed of a 256-row one). So the chunk keeps its
 * prefill_chunk rows and is cut by layers instead (qvl_split_*, engine.h):
 * each step runs the next few layers of it, as many as fit in
 *     ratio x (the running mean of the steps of at most PACE_REF rows:
 *              decodes and short prompts)
 * from the measured seconds per layer and row of the split's earlier
 * parts; at least one layer. Every layer's weights are still read once for
 * the whole chunk, so the long prompt loses only the per-call overhead
 * (the rows' state copied in and out, a few ms) while the step stays
 * short. Until both means exist, one layer per step. Worker thread only. */
#ifndef QVLD_PACE_H
#define QVLD_PACE_H

#include <stddef.h>

#define PACE_REF 16 /* rows of a short step: prompts up to this run whole */

struct pace {
	double ratio;		 /* the long-prefill part of a step, in short steps; <= 0: off */
	double n_small, t_small; /* short steps seen, their mean seconds */
	double n_split, u;	 /* split parts seen, their mean seconds per layer and row */
	double n_vis, uv;	 /* image encode parts seen, mean seconds per block and patch */
};

void pace_init(struct pace *p, double ratio);
/* A forward of rows rows took seconds. */
void pace_step(struct pace *p, size_t rows, double seconds);
/* A split part of `layers` layers over rows rows took seconds. */
void pace_split(struct pace *p, size_t rows, int layers, double seconds);
/* Layers of a split of rows rows the next step runs (1..n_layers). */
int pace_layers(const struct pace *p, size_t rows, int n_layers);
/* The same for an image's encode cut by tower blocks (sched_encode.c): a
 * part of `blocks` blocks over an image of `patches` patches took seconds;
 * blocks the next step runs (1..n_blocks). A block's cost grows with the
 * patches (its matmuls linearly, attention quadratically: the mean per
 * patch follows the images of the moment). */
void pace_vision(struct pace *p, size_t patches, int blocks, double seconds);
int pace_blocks(const struct pace *p, size_t patches, int n_blocks);

#endif
