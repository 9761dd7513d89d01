/* The tiered pool: a pack opened with placement (budget.c), the layers on
 * the simulated device copied there through its copy engine, the streamed
 * ones served by the window (stream.c), and the engine hook that tells the
 * engine, layer by layer, where the bytes are. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devtier.h"
#include "env.h"
#include "json.h"
#include "nvme.h"
#include "pack.h"
#include "pool_impl.h"
#include "stream.h"
#include "tiers.h"
#include "util.h"

/* ---- the engine hook ---- */

static const uint8_t *hook_home(void *ctx, int l)
{
	struct tier_pool *t = ctx;

	return l >= 0 && l < t->L && t->layer[l].kind != TIER_HOST ? t->layer[l].home : NULL;
}

/* Every layer has its resident copy: the window is not needed any more.
 * Called by compute between layers (it holds no buffer then). */
static void drop_stream(struct tier_pool *t)
{
	struct tier_stream *s = t->stream;

	pthread_mutex_lock(&t->mu);
	tier_stream_stats(s, &t->last_ss);
	t->stream = NULL;
	pthread_mutex_unlock(&t->mu);
	tier_stream_destroy(s);
}

/* The norms read at start-up against the shard's checked bytes at base. */
int tier_check_vecs(const struct tier_pool *t, const struct tier_layer *y, const uint8_t *base,
		    struct qvl_err *err)
{
	const uint8_t *k = y->vkeep;

	for (unsigned i = 0; i < y->nvec; k += y->vec[i++].len)
		if (memcmp(base + y->vec[i].off, k, y->vec[i].len))
			return qvl_errf(err, -EBADMSG,
					"%s: shard '%s': the norms read at start-up (%" PRIu64
					" bytes at offset %" PRIu64
					") differ from the CRC-checked shard: changed since",
					t->path, y->name, y->vec[i].len, y->off + y->vec[i].off);
	return 0;
}

static int hook_begin(void *ctx, int l, const uint8_t **base, struct qvl_err *err)
{
	struct tier_pool *t = ctx;
	struct tier_layer *y = &t->layer[l];
	int rc = 0;

	if (y->kind == TIER_DEV) {
		*base = y->dev;
		return 0;
	}
	/* acquire: pairs with the release in fill_main() after the last layer */
	if (t->stream && atomic_load_explicit(&t->all_resident, memory_order_acquire))
		drop_stream(t);
	y->held = false;
	*base = NULL;
	/* relaxed: a count fill.c polls; nothing is published through it */
	if (t->n_stream && l == t->sl[0].layer)
		atomic_fetch_add_explicit(&t->passes_begun, 1, memory_order_relaxed);
	if (t->stream) {
		/* in order even for a resident layer: the window's reads stay
		 * in step with the pass (a skipped read costs nothing) */
		rc = tier_stream_begin(t->stream, l, base, err);
		y->held = rc == 0;
	}
	/* acquire: pairs with the release in fill_main() once home holds the
	 * checked shard; the window's copy (if any) has the same bytes */
	if (atomic_load_explicit(&y->resident, memory_order_acquire)) {
		*base = y->home;
		return 0;
	}
	if (rc == 0 && !*base) /* a skipped read is only ever a resident layer's */
		rc = qvl_errf(err, -EIO, "%s: shard '%s': no copy to compute from", t->path,
			      y->name);
	/* the norms the engine widened at start-up came from a plain read of
	 * the file (read_vecs): they must be the bytes of the shard just
	 * CRC-checked, or nothing computes on them */
	if (rc == 0)
		rc = tier_check_vecs(t, y, *base, err);
	if (rc < 0 && y->held) {
		tier_stream_end(t->stream, l);
		y->held = false;
	}
	if (rc < 0) /* relaxed: as above; the pass ends here */
		atomic_fetch_add_explicit(&t->passes_ended, 1, memory_order_relaxed);
	return rc;
}

static void hook_end(void *ctx, int l)
{
	struct tier_pool *t = ctx;

	/* relaxed: a count fill.c polls; nothing is published through it */
	if (t->n_stream && l == t->sl[t->n_stream - 1].layer)
		atomic_fetch_add_explicit(&t->passes_ended, 1, memory_order_relaxed);

	if (t->layer[l].held)
		tier_stream_end(t->stream, l);
	t->layer[l].held = false;
}

/* A pass that embeds or computes logits waits for the embeddings' read
 * (embed.c); it counts as begun from here for the fill (fill.c waits for
 * the first pass's end, and this wait is part of that pass). */
static int hook_shared(void *ctx, struct qvl_err *err)
{
	struct tier_pool *t = ctx;
	int rc;

	/* relaxed: counts fill.c polls; nothing is published through them */
	atomic_fetch_add_explicit(&t->passes_begun, 1, memory_order_relaxed);
	rc = tier_embed_wait(t, err);
	if (rc < 0)
		atomic_fetch_add_explicit(&t->passes_ended, 1, memory_order_relaxed);
	return rc;
}

const struct qvl_weight_src *tier_weight_src(struct tier_pool *t)
{
	return t && (t->plan.n_dev || t->plan.n_ssd) ? &t->wsrc : NULL;
}

/* ---- fault injection for tests: QVL_TIER_FAULT=SHARD:N fails the N-th
 * read request of SHARD with -EIO (through the reader's fault hook) ---- */

static struct {
	char shard[64];
	long nth, seen;
} fault;

static int fault_hook(void *ctx, const char *shard, uint64_t off, size_t len)
{
	(void)ctx, (void)off, (void)len;
	if (strcmp(shard, fault.shard))
		return 0;
	/* relaxed: the I/O threads only count; reads of one shard are ordered
	 * by the window (read q + n starts after read q was consumed) */
	return __atomic_add_fetch(&fault.seen, 1, __ATOMIC_RELAXED) == fault.nth ? -EIO : 0;
}

static void fault_from_env(void)
{
	const char *v = getenv("QVL_TIER_FAULT"), *c;
	static bool done;

	int64_t nth;

	if (done || !v || !*v)
		return;
	done = true;
	if (!(c = strrchr(v, ':')) || c == v || (size_t)(c - v) >= sizeof(fault.shard) ||
	    qvl_parse_i64(c + 1, 1, INT32_MAX, &nth)) {
		qvl_env_warn("QVL_TIER_FAULT", v, "SHARD:N, N from 1");
		return;
	}
	memcpy(fault.shard, v, (size_t)(c - v));
	fault.nth = (long)nth;
	nv_set_fault(fault_hook, NULL);
}

/* ---- the norms of the layers not in host memory ----
 * The engine widens each layer's 1-D tensors once, at creation, from their
 * home in the arena (qvl_weight_src.vecs_home). For a streamed layer they
 * are read there from the file, a few KiB per layer instead of the whole
 * shard (no start-up I/O the size of the streamed set), and every pass
 * compares them with the shard's bytes just CRC-checked (hook_begin). For
 * a layer on the device they are kept when its host copy is given back. */

static int collect_vecs(struct tier_pool *t)
{
	for (uint32_t i = 0; i < t->p.n_tensors; i++) {
		const struct pack_tensor *x = &t->p.tensors[i];
		int l = t->plan.layer[x->shard];
		struct tier_layer *y;

		if (x->ndim != 1 || l < 0 || l >= t->L || t->layer[l].kind == TIER_HOST)
			continue;
		y = &t->layer[l];
		struct tier_vec *v = realloc(y->vec, (y->nvec + 1) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		y->vec = v;
		y->vec[y->nvec++] = (struct tier_vec){.off = x->off, .len = x->nbytes};
	}
	return 0;
}

/* y's norms, copied from home one after the other (malloc'd; NULL: out of
 * memory). */
static uint8_t *vecs_copy(const struct tier_layer *y)
{
	uint64_t vb = 0;
	uint8_t *keep, *k;

	for (unsigned i = 0; i < y->nvec; i++)
		vb += y->vec[i].len;
	if (!(keep = k = malloc(vb ? vb : 1)))
		return NULL;
	for (unsigned i = 0; i < y->nvec; k += y->vec[i++].len)
		memcpy(k, y->home + y->vec[i].off, y->vec[i].len);
	return keep;
}

static int read_vecs(struct tier_pool *t, struct qvl_err *err)
{
	int fd = open(t->path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return qvl_errf(err, -errno, "%s: %s", t->path, strerror(errno));
	/* a few KiB here and there: no readahead into the page cache */
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	for (int l = 0; l < t->L && !rc; l++) {
		const struct tier_layer *y = &t->layer[l];

		for (unsigned i = 0; y->kind == TIER_SSD && i < y->nvec && !rc; i++) {
			/* the table is checked: the tensor lies inside its shard */
			uint8_t *dst = (uint8_t *)y->home + y->vec[i].off;
			uint64_t got = 0, len = y->vec[i].len;

			while (got < len) {
				ssize_t n = pread(fd, dst + got, len - got,
						  (off_t)(y->off + y->vec[i].off + got));

				if (n <= 0) {
					rc = qvl_errf(err, n < 0 ? -errno : -EBADMSG,
						      "%s: shard '%s': cannot read its norms: %s",
						      t->path, y->name,
						      n < 0 ? strerror(errno) : "truncated");
					break;
				}
				got += (uint64_t)n;
			}
		}
	}
	close(fd);
	/* the copies every checked shard is compared with */
	for (int l = 0; l < t->L && !rc; l++)
		if (t->layer[l].kind == TIER_SSD && !(t->layer[l].vkeep = vecs_copy(&t->layer[l])))
			return qvl_errf(err, -ENOMEM, "%s: out of memory", t->path);
	return rc;
}

/* ---- opening ---- */

static int place_device(struct tier_pool *t, const struct qvl_model *m, struct qvl_err *err)
{
	uint64_t last = 0;
	double t0 = qvl_now();
	int rc = simdev_create(&t->dev, t->o.gpu_mem,
			       t->o.sim_bw ? t->o.sim_bw : TIER_SIM_BW_DEFAULT, err);

	if (rc < 0)
		return rc;
	for (int l = 0; l < t->L; l++) {
		struct tier_layer *y = &t->layer[l];

		if (y->kind != TIER_DEV)
			continue;
		if ((rc = t->dev->ops->alloc(t->dev, y->dev_len, &y->dev)) < 0 ||
		    (rc = t->dev->ops->copy_async(t->dev, y->dev, y->home, y->dev_len, &last)) < 0)
			return qvl_errf(err, rc, "%s: %s: cannot place layer %d", t->path,
					t->dev->name, l);
	}
	if (last)
		t->dev->ops->wait(t->dev, last);
	/* the host copies were only the way in: give their pages back (the
	 * arena is anonymous memory; what is left reads as zeros), but for the
	 * norms, which the engine widens from there */
	for (int l = 0; l < t->L; l++) {
		struct tier_layer *y = &t->layer[l];

		if (y->kind != TIER_DEV)
			continue;
		uint8_t *keep = vecs_copy(y), *k;

		if (!keep)
			return qvl_errf(err, -ENOMEM, "%s: out of memory", t->path);
		madvise((void *)y->home, y->dev_len, MADV_DONTNEED);
		k = keep;
		for (unsigned i = 0; i < y->nvec; k += y->vec[i++].len)
			memcpy((uint8_t *)y->home + y->vec[i].off, k, y->vec[i].len);
		free(keep);
	}
	t->load_dev_s = qvl_now() - t0;
	(void)m;
	return 0;
}

static int build(struct tier_pool *t, struct qvl_model **mp, struct qvl_err *err)
{
	struct qvl_model *m;
	bool *want = calloc(t->p.n_shards ? t->p.n_shards : 1, sizeof(*want));
	double t0 = qvl_now();
	int rc;

	if (!want || !(m = calloc(1, sizeof(*m))) || !(m->path = strdup(t->path))) {
		free(want);
		if (want && m)
			free(m);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", t->path);
	}
	/* the streamed start reads the token embeddings behind the open too
	 * (embed.c): nothing before the first pass reads them */
	int embed = -1;
	for (uint32_t i = 0; i < t->p.n_shards; i++) {
		want[i] = t->plan.kind[i] != TIER_SSD;
		if (t->o.stream_start && t->plan.n_ssd &&
		    !strcmp(t->p.shards[i].name, "text.embed"))
			want[i] = false, embed = (int)i;
	}
	/* the streamed start reads the vision tower after the text layers'
	 * resident copies (fill.c) */
	rc = qvl_pack_open_some(m, t->path, want, t->p.n_shards,
				t->o.stream_start && t->o.vision_late, err);
	free(want);
	*mp = m;
	t->m = m;
	if (rc < 0)
		return rc;
	if (m->nsources < 1 || !m->sources[0].map)
		return qvl_errf(err, -EINVAL, "%s: no weights", t->path);
	t->L = m->config.text.num_layers;
	t->layer = calloc((size_t)t->L, sizeof(*t->layer));
	t->sl = calloc((size_t)t->L, sizeof(*t->sl));
	if (!t->layer || !t->sl)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", t->path);
	for (uint32_t i = 0; i < t->p.n_shards; i++) {
		const struct pack_shard *s = &t->p.shards[i];
		int l = t->plan.layer[i];

		if (l < 0)
			continue;
		if (l >= t->L)
			return qvl_errf(err, -EINVAL, "%s: shard %s: layer %d of %d", t->path,
					s->name, l, t->L);
		t->layer[l] = (struct tier_layer){
		    .kind = t->plan.kind[i],
		    .home = (const uint8_t *)m->sources[0].map + (s->off - t->p.data_off),
		    .dev_len = (s->len + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN,
		    .name = s->name,
		    .off = s->off,
		    .len = s->len,
		    .crc = s->crc};
		if (t->plan.kind[i] == TIER_SSD)
			t->sl[t->n_stream++] = (struct tier_stream_layer){
			    .layer = l,
			    .name = s->name,
			    .off = s->off,
			    .len = s->len,
			    .crc = s->crc,
			    .resident = &t->layer[l].resident};
	}
	if (collect_vecs(t) < 0)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", t->path);
	if (embed >= 0) {
		const struct pack_shard *s = &t->p.shards[embed];
		struct nv_shard sh = {.name = s->name,
				      .off = s->off,
				      .len = s->len,
				      .crc = s->crc,
				      .dst = (uint8_t *)m->sources[0].map + (s->off - t->p.data_off)};

		if ((rc = tier_embed_start(t, &sh, err)) < 0)
			return rc;
	}
	if (t->plan.n_dev && (rc = place_device(t, m, err)) < 0)
		return rc;
	double t1 = qvl_now();
	if (t->plan.n_ssd && (rc = read_vecs(t, err)) < 0)
		return rc;
	double t2 = qvl_now();
	if (t->n_stream) {
		fault_from_env();
		/* layer order: the shard table is in file order, which is layer order */
		rc = tier_stream_create(&t->stream, t->path, t->sl, t->n_stream, t->plan.nbuf,
					t->plan.buf_bytes, err);
	}
	if (getenv("QVL_LOAD_TRACE"))
		fprintf(stderr,
			"qvl: %s: tiers: resident shards read in %.3f s, norms of %d streamed "
			"layers %.3f s, window (%u buffers of %" PRIu64 " bytes) %.3f s\n",
			t->path, t1 - t0, t->n_stream, t2 - t1, t->plan.nbuf, t->plan.buf_bytes,
			qvl_now() - t2);
	return rc;
}

int tier_open(struct tier_pool **out, struct qvl_model **mp, const char *path,
	      const struct tier_opts *o, struct qvl_err *err)
{
	struct tier_pool *t = calloc(1, sizeof(*t));
	uint64_t fsize;
	int rc;

	*out = NULL;
	*mp = NULL;
	if (!t || !(t->path = strdup(path))) {
		free(t);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	t->o = *o;
	/* budgets place the layers themselves: no fill behind them */
	t->o.stream_start = o->stream_start && !o->cpu_mem && !o->gpu_mem;
	pthread_mutex_init(&t->mu, NULL);
	atomic_init(&t->all_resident, false);
	atomic_init(&t->fill.stop, false);
	atomic_init(&t->passes_begun, 0);
	atomic_init(&t->passes_ended, 0);
	pthread_cond_init(&t->embed.cv, NULL);
	atomic_init(&t->embed.ready, false);
	atomic_init(&t->embed.stop, false);
	t->wsrc = (struct qvl_weight_src){.ctx = t,
					  .home = hook_home,
					  .begin = hook_begin,
					  .end = hook_end,
					  .shared = hook_shared,
					  .vecs_home = true};
	rc = pack_read_head(path, &t->p, &t->head, &fsize, err);
	if (rc < 0) {
		pthread_mutex_destroy(&t->mu);
		pthread_cond_destroy(&t->embed.cv);
		free(t->path);
		free(t);
		return rc;
	}
	rc = tier_place(&t->plan, &t->p, o, path, err);
	if (rc >= 0)
		rc = build(t, mp, err);
	if (rc < 0) {
		tier_close(t);
		if (*mp)
			qvl_model_close(*mp);
		*mp = NULL;
		return rc;
	}
	*out = t;
	return 0;
}

/* A pack with its vision tower read later (the text model now). */
static int open_late(struct qvl_model **out, const char *path, struct qvl_err *err)
{
	struct qvl_model *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	rc = qvl_pack_open_late(m, path, err);
	if (rc < 0) {
		qvl_model_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

int tier_model_open(struct qvl_model **m, struct tier_pool **pool, const char *path,
		    const char *mmproj, const struct tier_opts *o, struct qvl_err *err)
{
	size_t n = strlen(path);

	*pool = NULL;
	bool pack = n > 4 && !strcmp(path + n - 4, ".qvl");

	if (o && !o->cpu_mem && !o->gpu_mem && o->stream_start && !mmproj && pack)
		return tier_open(pool, m, path, o, err);
	if (o && !o->cpu_mem && !o->gpu_mem && o->vision_late && !mmproj && pack)
		return open_late(m, path, err);
	if (!o || (!o->cpu_mem && !o->gpu_mem))
		return qvl_model_open(m, path, mmproj, err);
	*m = NULL;
	if (n < 4 || strcmp(path + n - 4, ".qvl"))
		return qvl_errf(err, -EINVAL,
				"%s: --cpu-mem and --gpu-mem apply to a .qvl pack (make one with "
				"qvlctl pack)",
				path);
	if (mmproj)
		return qvl_errf(err, -EINVAL, "%s: --mmproj does not apply to a pack", path);
	return tier_open(pool, m, path, o, err);
}

void tier_close(struct tier_pool *t)
{
	if (!t)
		return;
	/* first: they write into the model's arena */
	tier_embed_stop(t);
	tier_fill_stop(t);
	tier_stream_destroy(t->stream);
	if (t->dev) {
		for (int l = 0; l < t->L; l++)
			if (t->layer[l].dev)
				t->dev->ops->free(t->dev, t->layer[l].dev, t->layer[l].dev_len);
		t->dev->ops->destroy(t->dev);
	}
	for (int l = 0; t->layer && l < t->L; l++) {
		free(t->layer[l].vec);
		free(t->layer[l].vkeep);
	}
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->embed.cv);
	free(t->layer);
	free(t->sl);
	tier_plan_free(&t->plan);
	pack_free(&t->p);
	free(t->head);
	free(t->path);
	free(t);
}

/* ---- the report ---- */

struct out {
	char *p;
	size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len >= o->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	o->len += n < 0 ? 0 : (size_t)n;
	if (o->len >= o->cap)
		o->len = o->cap - 1;
}

/* json_escape()'s sink: like put(), what fits before the NUL is kept */
static void out_sink(void *ctx, const char *p, size_t n)
{
	struct out *o = ctx;

	if (o->len + 1 >= o->cap)
		return;
	if (n > o->cap - 1 - o->len)
		n = o->cap - 1 - o->len;
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len] = 0;
}

size_t tier_json(struct tier_pool *t, char *buf, size_t cap)
{
	struct out o = {buf, cap, 0};
	struct tier_stream_stats ss = {0};
	struct dev_tier_stats ds = {0};
	const struct tier_plan *pl = &t->plan;

	if (!cap)
		return 0;
	buf[0] = 0;
	pthread_mutex_lock(&t->mu);
	if (t->stream)
		tier_stream_stats(t->stream, &ss);
	else
		ss = t->last_ss;
	pthread_mutex_unlock(&t->mu);
	if (t->dev)
		t->dev->stats(t->dev, &ds);
	put(&o,
	    "{\"cpu_mem\":%" PRIu64 ",\"host_bytes\":%" PRIu64
	    ",\"vision_bytes_outside_budget\":%" PRIu64
	    ",\"layers_host\":%u,\"layers_sim_device\":%u,\"layers_streamed\":%u",
	    t->o.cpu_mem, pl->host_bytes, pl->vision_bytes, pl->n_host, pl->n_dev, pl->n_ssd);
	put(&o,
	    ",\"device\":\"%s\",\"gpu_mem\":%" PRIu64 ",\"sim_device_used\":%" PRIu64
	    ",\"sim_device_bw_gbs\":%.1f,\"sim_device_copied\":%" PRIu64
	    ",\"sim_device_copy_s\":%.3f",
	    t->dev ? t->dev->name : "none", t->o.gpu_mem, ds.used, (double)ds.bw / 1e9, ds.copied,
	    ds.copy_s);
	put(&o,
	    ",\"streamed_bytes_per_pass\":%" PRIu64 ",\"window_depth\":%u,\"buffers\":%u"
	    ",\"buffer_bytes\":%" PRIu64 ",\"o_direct\":%s,\"stream_reads\":%" PRIu64
	    ",\"stream_bytes\":%" PRIu64 ",\"stream_rate_mbs\":%.1f,\"stream_failed\":%" PRIu64
	    ",\"layers_served\":%" PRIu64 ",\"stalls\":%" PRIu64 ",\"stall_s\":%.3f"
	    ",\"window_resets\":%" PRIu64,
	    pl->stream_bytes, pl->nbuf ? pl->nbuf - 1 : 0, pl->nbuf, pl->buf_bytes,
	    ss.direct ? "true" : "false", ss.reads, ss.bytes,
	    ss.busy_s > 0 ? (double)ss.bytes / ss.busy_s / 1e6 : 0.0, ss.failed, ss.served,
	    ss.stalls, ss.stall_s, ss.resets);
	/* the file range the window reads (bench_tiers measures the device
	 * there, as the stream reads it); 0, 0 when nothing streams */
	uint64_t s0 = t->n_stream ? t->sl[0].off : 0;
	uint64_t s1 = t->n_stream ? t->sl[t->n_stream - 1].off + t->sl[t->n_stream - 1].len : 0;
	put(&o, ",\"stream_file_off\":%" PRIu64 ",\"stream_file_end\":%" PRIu64, s0, s1);
	struct tier_fill_status fs;
	if (tier_fill_status(t, &fs))
		put(&o,
		    ",\"streamed_start\":true,\"resident_fill\":\"%s\",\"layers_filled\":%u"
		    ",\"fill_bytes\":%" PRIu64 ",\"fill_s\":%.3f,\"fill_readers\":%u",
		    !fs.started	 ? "waiting"
		    : fs.pending ? "filling"
		    : fs.rc < 0	 ? "failed"
				 : "done",
		    fs.filled, fs.bytes, fs.seconds, fs.readers);
	int es;
	double esec;
	if (tier_embed_status(t, &es, &esec))
		put(&o, ",\"embed_read\":\"%s\",\"embed_s\":%.3f",
		    es > 0 ? "reading" : es < 0 ? "failed" : "done", esec);
	put(&o, ",\"placement\":{");
	/* the shard names come from the pack's name pool: any byte but NUL */
	for (uint32_t i = 0; i < pl->n; i++) {
		if (i)
			put(&o, ",");
		json_escape(out_sink, &o, t->p.shards[i].name, strlen(t->p.shards[i].name));
		put(&o, ":\"%s\"", tier_kind_name(pl->kind[i]));
	}
	put(&o, "}}");
	return o.len;
}
