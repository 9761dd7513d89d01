/* The progress line (see progress.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

#define PROGRESS_PERIOD 0.1 /* seconds between redraws */

void progress_init(struct progress *p, const char *cmd, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->cmd = cmd;
	p->on = !quiet && isatty(STDERR_FILENO);
}

static void fmt_secs(char *buf, size_t cap, double s)
{
	if (!(s >= 0) || s > 359999)
		snprintf(buf, cap, "--");
	else if (s >= 3600)
		snprintf(buf, cap, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(buf, cap, "%ds", (int)(s + 0.5));
}

static void draw(struct progress *p, double now)
{
	double el = now - p->t0, rate = el > 0 ? p->done / el : 0;
	char eta[16];

	fmt_secs(eta, sizeof(eta), rate > 0 ? (p->total - p->done) / rate : -1);
	/* \r and erase-to-end-of-line: the line is rewritten in place */
	fprintf(stderr, "\rqvlctl %s: %s %.0f/%.0f %s, %.1f %s/s, ETA %s\033[K", p->cmd, p->stage,
		p->done / p->scale, p->total / p->scale, p->unit, rate / p->scale, p->unit, eta);
	fflush(stderr);
	p->drawn = true;
	p->last = now;
}

void progress_start(struct progress *p, const char *stage, double total, const char *unit,
		    double scale)
{
	if (!p->on)
		return;
	snprintf(p->stage, sizeof(p->stage), "%s", stage);
	p->unit = unit;
	p->scale = scale > 0 ? scale : 1;
	p->total = total;
	p->done = 0;
	p->t0 = qvl_now();
	if (total > 0)
		draw(p, p->t0);
}

void progress_update(struct progress *p, double done)
{
	double now;

	if (!p->on || !p->unit || !(p->total > 0))
		return;
	p->done = done < p->total ? done : p->total;
	now = qvl_now();
	if (now - p->last >= PROGRESS_PERIOD || p->done >= p->total)
		draw(p, now);
}

void progress_end(struct progress *p)
{
	if (p->on && p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = false;
	p->unit = NULL;
}

void progress_cb(void *ctx, double done, double total)
{
	struct progress *p = ctx;

	if (p->unit && total > 0 && total != p->total)
		p->total = total;
	progress_update(p, done);
}
