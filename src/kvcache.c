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
	return kv_prefix_attach(e->kv, s, p, n_reused);
}

/* 64-bit FNV-1a over the bytes, then a splitmix64 finaliser so that keys
 * differing in one byte differ in every bit. */
uint64_t qvl_kv_hash(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *b = data;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}
