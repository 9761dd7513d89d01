/* The streamed start's embeddings, read behind the open. The token
 * embeddings (the output head too, when tied: 0.62 GB of the 2b pack) were
 * the one large read into fresh memory before qvld's socket; on a VM where
 * every fresh page is a host fault they cost about half of the start to the
 * socket (docs/todo-coldfirst2.md). Nothing before the socket needs them:
 * the engine keeps only their address, and the first pass to embed a token
 * or compute logits asks for them (qvl_weight_src.shared). So tier_open()
 * starts this read on a thread of its own and returns: it lands while the
 * engine is set up, the tokenizer parses and the window reads its first
 * layers.
 *
 * The shard is read into its home in the arena through the same io_uring
 * reader as a load (huge pages faulted in ahead, its CRC-64 checked as the
 * bytes land), and only then is `ready` raised: every pass waits for that
 * (tier_embed_wait), so no compute reads a byte of it before the whole
 * shard's CRC has passed. A bad shard fails each request that needs it
 * with the shard's name; qvld keeps serving (nothing else needs it). */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "env.h"
#include "nvme.h"
#include "pool_impl.h"
#include "util.h"

static void *embed_main(void *arg)
{
	struct tier_pool *t = arg;
	struct tier_embed *b = &t->embed;
	struct nv_opts o = {.fill = true};
	struct nv_stats st = {0};
	struct qvl_err err = {{0}};
	int rc;

	/* the open left the range without huge pages (pack_arena: a shard
	 * not read there); it takes them again, as a load's arena */
	(void)madvise(b->sh.dst, (b->sh.len + NV_ALIGN - 1) / NV_ALIGN * NV_ALIGN, MADV_HUGEPAGE);
	/* tests: QVL_EMBED_HOLD=FILE holds the read back while FILE exists */
	qvl_env_hold("QVL_EMBED_HOLD", LONG_MAX, &b->stop);
	nv_opts_from_env(&o);
	o.stop = &b->stop;
	rc = nv_read_threads(t->path, &o, &b->sh, 1, false, &st, &err);
	if (rc == 0)
		/* release: the shard's checked bytes (written by the readers,
		 * joined in nv_read_threads) before the flag; pairs with the
		 * acquire in tier_embed_wait() */
		atomic_store_explicit(&b->ready, true, memory_order_release);
	pthread_mutex_lock(&t->mu);
	b->state = rc < 0 ? rc : 0;
	b->err = err;
	if (rc < 0 && !b->err.msg[0])
		qvl_errf(&b->err, rc, "%s: shard '%s': %s", t->path, b->sh.name, qvl_strerror(rc));
	b->st = st;
	b->seconds = qvl_now() - b->t0;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&t->mu);
	if (qvl_env_flag("QVL_LOAD_TRACE", false))
		fprintf(stderr,
			"qvl: %s: tiers: shard '%s' (%" PRIu64 " bytes) read behind the open in "
			"%.3f s (read %.3f s, CRC %.3f s, memory %.3f s)%s\n",
			t->path, b->sh.name, b->sh.len, b->seconds, st.seconds, st.crc_seconds,
			st.fill_seconds, rc < 0 ? ": failed" : "");
	return NULL;
}

int tier_embed_start(struct tier_pool *t, const struct nv_shard *sh, struct qvl_err *err)
{
	struct tier_embed *b = &t->embed;
	int rc;

	b->sh = *sh;
	b->state = 1;
	b->t0 = qvl_now();
	rc = pthread_create(&b->th, NULL, embed_main, t);
	if (rc) {
		b->state = -rc;
		return qvl_errf(err, -rc, "%s: cannot start the read of shard '%s': %s", t->path,
				sh->name, strerror(rc));
	}
	b->started = true;
	return 0;
}

int tier_embed_wait(void *ctx, struct qvl_err *err)
{
	struct tier_pool *t = ctx;
	struct tier_embed *b = &t->embed;
	int rc;

	/* acquire: pairs with the release in embed_main(); once up, every
	 * later pass goes on without the lock */
	if (!b->started || atomic_load_explicit(&b->ready, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&t->mu);
	while (b->state > 0)
		pthread_cond_wait(&b->cv, &t->mu);
	rc = b->state;
	if (rc < 0 && err)
		*err = b->err;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void tier_embed_stop(struct tier_pool *t)
{
	/* relaxed: the readers and the hold poll it; the join orders the rest */
	atomic_store_explicit(&t->embed.stop, true, memory_order_relaxed);
	if (t->embed.started)
		pthread_join(t->embed.th, NULL);
}

bool tier_embed_status(struct tier_pool *t, int *state, double *seconds)
{
	if (!t->embed.started && !t->embed.state)
		return false;
	pthread_mutex_lock(&t->mu);
	*state = t->embed.state;
	*seconds = t->embed.state > 0 ? 0 : t->embed.seconds;
	pthread_mutex_unlock(&t->mu);
	return true;
}
