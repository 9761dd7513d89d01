/* Per-stage CPU time of the vision tower: see vision_prof.h. */
#include "vision_prof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "profile.h"

static const char *const vis_stage_name[VST_N] = {
    "patch embed", "pos + rope tables", "layernorms", "qkv",	 "rope + K/V layout", "attention",
    "attn proj",   "mlp fc1",		"gelu",	      "mlp fc2", "residual adds",     "mergers",
};

struct vis_prof *vis_prof_create(void)
{
	uint64_t rows = 0;

	/* the vision tower's table does not depend on the rows (profile.c) */
	if (!qvl_env_uint("QVL_PROFILE", 0, PROF_MAX_ROWS, &rows) || !rows)
		return NULL;
	return calloc(1, sizeof(struct vis_prof));
}

static uint64_t ns_of(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t vis_prof_thread_ns(void)
{
	return ns_of(CLOCK_THREAD_CPUTIME_ID);
}

uint64_t vis_prof_wall_ns(void)
{
	return ns_of(CLOCK_MONOTONIC);
}

void vis_prof_report(const struct vis_prof *p, int threads)
{
	uint64_t tc = 0, tw = 0;
	if (!p || !p->images)
		return;
	for (int s = 0; s < VST_N; s++)
		tc += p->cpu_ns[s], tw += p->wall_ns[s];
	fprintf(stderr,
		"vision profile: %d image(s), %d thread(s); per image: CPU ms (all threads), "
		"wall ms, share of CPU, busy = CPU / (threads x wall)\n",
		p->images, threads);
	for (int s = 0; s < VST_N; s++) {
		if (!p->calls[s])
			continue;
		double c = (double)p->cpu_ns[s] / 1e6 / p->images,
		       w = (double)p->wall_ns[s] / 1e6 / p->images;
		fprintf(stderr, "  %-18s %9.1f %9.1f %5.1f%%  busy %.2f\n", vis_stage_name[s], c, w,
			tc ? 100.0 * (double)p->cpu_ns[s] / (double)tc : 0.0,
			w > 0 ? c / (threads * w) : 0.0);
	}
	fprintf(stderr, "  %-18s %9.1f %9.1f\n", "total", (double)tc / 1e6 / p->images,
		(double)tw / 1e6 / p->images);
}
