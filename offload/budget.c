/* Budgets and placement: the sizes users write, and which shard of a pack
 * goes on which tier. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pack.h"
#include "tiers.h"

const char *tier_kind_name(enum tier_kind k)
{
	return k == TIER_DEV ? "sim-device" : k == TIER_SSD ? "ssd" : "host";
}

const char *tier_fmt_bytes(uint64_t b, char *buf, size_t cap)
{
	static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4)
		v /= 1024, i++;
	snprintf(buf, cap, i ? "%.2f %s" : "%.0f %s", v, u[i]);
	return buf;
}

static int layer_of(const char *shard)
{
	char *end;
	long l;

	if (strncmp(shard, "text.layer.", 11))
		return -1;
	l = strtol(shard + 11, &end, 10);
	return *end || l < 0 || l > 1000000 ? -1 : (int)l;
}

void tier_plan_free(struct tier_plan *pl)
{
	free(pl->kind);
	free(pl->layer);
	memset(pl, 0, sizeof(*pl));
}

/* A text layer has matrices of a type the engine repacks at load for its
 * fast kernels (src/engine.c eng_repack(), simd/qrepack.c): not with a
 * weight source, so a streamed start would keep the slower layout after
 * the layers are resident. Such a pack starts as before (everything
 * resident). */
static bool repacked_layers(const struct pack_info *p, const struct tier_plan *pl)
{
	for (uint32_t i = 0; i < p->n_tensors; i++) {
		enum qvl_dtype d = p->tensors[i].dtype;

		if (pl->layer[p->tensors[i].shard] >= 0 &&
		    (d == QVL_DT_Q8_0 || d == QVL_DT_Q4_0 || d == QVL_DT_Q4_K || d == QVL_DT_Q6_K))
			return true;
	}
	return false;
}

/* The streamed start: every text layer streams (until fill.c has read its
 * resident copy), 3 buffers (see tier_place) of the largest layer. */
static int place_streamed_start(struct tier_plan *pl, const struct pack_info *p, uint64_t fixed,
				uint64_t lmax, unsigned bufs)
{
	pl->nbuf = bufs ? bufs : 3;
	pl->buf_bytes = lmax;
	pl->host_bytes = fixed + pl->nbuf * lmax;
	for (uint32_t i = 0; i < pl->n; i++) {
		if (pl->layer[i] < 0)
			continue;
		pl->kind[i] = TIER_SSD;
		pl->stream_bytes += p->shards[i].len;
		pl->n_ssd++;
	}
	return 0;
}

/* Which shard goes where. Text layers fill the simulated device first (up to
 * --gpu-mem, in layer order), then host memory; with a host budget, the
 * embeddings and head are resident, the staging buffers are taken, and the
 * text layers that still fit stay resident, the others stream. Buffers: 3
 * (the one computed on, the next, the one after: the device always has a
 * read queued across a layer boundary) when the budget allows, else 2. */
int tier_place(struct tier_plan *pl, const struct pack_info *p, const struct tier_opts *o,
	       const char *path, struct qvl_err *err)
{
	uint64_t fixed = 0, layers = 0, lmax = 0, dev_left = o->gpu_mem, avail;
	char a[32], b[32];

	memset(pl, 0, sizeof(*pl));
	pl->n = p->n_shards;
	pl->kind = calloc(p->n_shards ? p->n_shards : 1, sizeof(*pl->kind));
	pl->layer = calloc(p->n_shards ? p->n_shards : 1, sizeof(*pl->layer));
	if (!pl->kind || !pl->layer) {
		tier_plan_free(pl);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	for (uint32_t i = 0; i < p->n_shards; i++) {
		const struct pack_shard *s = &p->shards[i];
		uint64_t len = (s->len + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;

		pl->kind[i] = TIER_HOST;
		pl->layer[i] = layer_of(s->name);
		if (pl->layer[i] < 0) {
			if (!strncmp(s->name, "vision.", 7))
				pl->vision_bytes += len;
			else
				fixed += len;
			continue;
		}
		if (o->gpu_mem && len <= dev_left) {
			pl->kind[i] = TIER_DEV;
			dev_left -= len;
			pl->dev_bytes += len;
			pl->n_dev++;
			continue;
		}
		layers += len;
		lmax = len > lmax ? len : lmax;
	}
	pl->host_bytes = fixed + layers;
	if (o->stream_start && !o->cpu_mem && !o->gpu_mem && lmax && !repacked_layers(p, pl))
		return place_streamed_start(pl, p, fixed, lmax, o->bufs);
	if (!o->cpu_mem || fixed + layers <= o->cpu_mem) {
		pl->n_host = 0;
		for (uint32_t i = 0; i < pl->n; i++)
			pl->n_host += pl->kind[i] == TIER_HOST && pl->layer[i] >= 0;
		return 0; /* everything fits: nothing streams */
	}
	if (fixed + TIER_MIN_BUFS * lmax > o->cpu_mem) {
		tier_plan_free(pl);
		return qvl_errf(err, -EINVAL,
				"--cpu-mem: %s is below the minimum of %s for %s (embeddings and "
				"head, %s, and %u staging buffers of the largest layer, %s)",
				tier_fmt_bytes(o->cpu_mem, a, sizeof(a)),
				tier_fmt_bytes(fixed + TIER_MIN_BUFS * lmax, b, sizeof(b)), path,
				tier_fmt_bytes(fixed, (char[32]){0}, 32), TIER_MIN_BUFS,
				tier_fmt_bytes(lmax, (char[32]){0}, 32));
	}
	avail = o->cpu_mem - fixed;
	pl->nbuf = o->bufs ? o->bufs : avail >= 3 * lmax ? 3 : TIER_MIN_BUFS;
	if ((uint64_t)pl->nbuf * lmax > avail)
		pl->nbuf = (unsigned)(avail / lmax);
	if (pl->nbuf < TIER_MIN_BUFS) {
		tier_plan_free(pl);
		return qvl_errf(err, -EINVAL, "--cpu-mem: %s leaves room for %u staging buffers",
				tier_fmt_bytes(o->cpu_mem, a, sizeof(a)), pl->nbuf);
	}
	pl->buf_bytes = lmax;
	avail -= pl->nbuf * lmax;
	pl->host_bytes = fixed + pl->nbuf * lmax;
	for (uint32_t i = 0; i < pl->n; i++) {
		uint64_t len = (p->shards[i].len + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;

		if (pl->layer[i] < 0 || pl->kind[i] != TIER_HOST)
			continue;
		if (len <= avail) {
			avail -= len;
			pl->host_bytes += len;
			pl->n_host++;
		} else {
			avail = 0; /* later layers stream too: keep the resident set a prefix */
			pl->kind[i] = TIER_SSD;
			pl->stream_bytes += p->shards[i].len;
			pl->n_ssd++;
		}
	}
	if (!pl->n_ssd) /* the buffers were not needed after all */
		pl->nbuf = 0, pl->buf_bytes = 0;
	return 0;
}
