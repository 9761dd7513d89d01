/* One updating status line on stderr for long work (the vision tower, long
 * prefills, mkmodel, bench): "qvlctl CMD: STAGE done/total unit, rate, ETA".
 * Drawn only when stderr is a terminal and the command was not given
 * --quiet, so logs and pipes see exactly what they saw before. The line is
 * erased when the stage ends, before anything else is printed. Not thread
 * safe: call from the thread that drives the work. */
#ifndef QVL_PROGRESS_H
#define QVL_PROGRESS_H

#include <stdbool.h>

struct progress {
	bool on;	  /* stderr is a terminal and not --quiet */
	bool drawn;	  /* a line is on the screen */
	const char *cmd;  /* "run", for the prefix */
	char stage[48];	  /* "vision", "prefill", ... */
	const char *unit; /* "tokens", "MB" */
	double scale;	  /* shown value = value / scale */
	double total, done;
	double t0, last; /* stage start, last draw (qvl_now) */
};

void progress_init(struct progress *p, const char *cmd, bool quiet);
/* Start a stage of `total` units (values divided by scale when shown);
 * draws the line at once, or at the first update when total is 0 (not yet
 * known: progress_cb sets it). */
void progress_start(struct progress *p, const char *stage, double total, const char *unit,
		    double scale);
/* Work done so far in the stage; redraws at most ten times a second. */
void progress_update(struct progress *p, double done);
/* Erase the line (the stage is over, or a message is about to be printed). */
void progress_end(struct progress *p);

/* Adapters for the engine's and the vision module's progress callbacks:
 * ctx is a struct progress. */
void progress_cb(void *ctx, double done, double total);

#endif
