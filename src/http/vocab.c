/* qvl-http: the token texts (see vocab.h). The region is the daemon's
 * answer in our arena: copied once, then every offset is checked before
 * it is used. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http/vocab.h"

int http_vocab_parse(struct http_vocab *v, const void *out, uint64_t cap, const struct qvl_cqe *c)
{
	const uint8_t *o = out;
	uint32_t n, prev = 0;
	uint64_t head;

	memset(v, 0, sizeof(*v));
	if (c->res < 0 || cap < 4)
		return -EBADMSG;
	memcpy(&n, o, 4);
	head = 4 + 4ull * n;
	if (n != c->n_tokens || head > cap || c->text_len > cap - head)
		return -EBADMSG;
	v->end = malloc((n ? n : 1) * sizeof(uint32_t));
	v->bytes = malloc(c->text_len ? c->text_len : 1);
	if (!v->end || !v->bytes) {
		http_vocab_free(v);
		return -ENOMEM;
	}
	memcpy(v->end, o + 4, 4ull * n);
	memcpy(v->bytes, o + head, c->text_len);
	for (uint32_t i = 0; i < n; prev = v->end[i++])
		if (v->end[i] < prev || v->end[i] > c->text_len) {
			http_vocab_free(v);
			return -EBADMSG;
		}
	v->n = n;
	return 0;
}

const char *http_vocab_piece(const struct http_vocab *v, int32_t id, uint32_t *len)
{
	uint32_t a;

	if (id < 0 || (uint32_t)id >= v->n) {
		*len = 0;
		return "";
	}
	a = id ? v->end[id - 1] : 0;
	*len = v->end[id] - a; /* checked non-decreasing at parse */
	return (const char *)v->bytes + a;
}

void http_vocab_free(struct http_vocab *v)
{
	free(v->end);
	free(v->bytes);
	memset(v, 0, sizeof(*v));
}
