/* The KV cache API of kvcache.h over the engine's pool (kvpool.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"
#include "kvpool.h"

void qvl_engine_kv_usage(const struct qvl_engine *e, struct qvl_kv_usage *u)
{
	kv_pool_usage(e->kv, u);
}

size_t qvl_seq_pages_needed(const struct qvl_seq *s, size_t n)
{
	return kv_seq_pages_needed(s, n);
}

void qvl_seq_reset(struct qvl_seq *s)
{
	kv_seq_release(s);
	s->len = 0;
	s->next_pos = 0;
}

int qvl_seq_attach_prefix(struct qvl_engine *e, struct qvl_seq *s, const struct qvl_prefix *p,
			  size_t *n_reused, struct qvl_err *err)
{
	*n_reused = 0;
	if (!s || s->e != e)
		return qvl_errf(err, -EINVAL, "attach prefix: no sequence of this engine");
	if (s->len)
		return qvl_errf(err, -EINVAL,
				"attach prefix: sequence holds %d positions (reset it first)",
				s->len);
	if (!p || (p->n && !p->ids))
		return qvl_errf(err, -EINVAL, "attach prefix: no prompt");
	/* pages a refused forward may have left behind hold nothing yet */
	kv_seq_release(s);
	s->next_pos = 0;
	return kv_prefix_attach(e->kv, s, p, n_reused);
}

/* 8 bytes at a time (a tower input is megabytes): each word mixed in with
 * a multiply-xorshift, the tail bytes as one word, the length last; then a
 * splitmix64 finaliser so that keys differing in one byte differ in every
 * bit. Not cryptographic: keys come from the engine's own callers. */
static uint64_t mix64(uint64_t h, uint64_t v)
{
	h ^= v * 0x9e3779b97f4a7c15ull;
	h = (h << 27 | h >> 37) * 0xff51afd7ed558ccdull;
	return h;
}

uint64_t qvl_kv_hash(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *b = data;
	uint64_t h = 0xcbf29ce484222325ull ^ seed, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, b + i, 8);
		h = mix64(h, w);
	}
	if (i < len) {
		w = 0;
		memcpy(&w, b + i, len - i);
		h = mix64(h, w);
	}
	h = mix64(h, (uint64_t)len);
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}
