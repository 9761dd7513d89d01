/* qvl-http: the daemon's token texts (QVL_OP_VOCAB), fetched once per
 * connection, so that logprobs name each token by its own bytes, exactly,
 * however the daemon grouped the text of its streamed chunks. */
#ifndef QVL_HTTP_VOCAB_H
#define QVL_HTTP_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "qvl.h"

struct http_vocab {
	uint32_t n;	/* ids 0..n-1 have bytes; 0: no vocabulary */
	uint32_t *end;	/* [n] */
	uint8_t *bytes; /* [end[n-1]] */
};

/* Copy and check VOCAB's output region (cap bytes, c its final CQE):
 * 0, -EBADMSG when the layout is inconsistent, -ENOMEM. */
int http_vocab_parse(struct http_vocab *v, const void *out, uint64_t cap, const struct qvl_cqe *c);
/* The bytes of id (len 0 and "" for an id the vocabulary lacks). */
const char *http_vocab_piece(const struct http_vocab *v, int32_t id, uint32_t *len);
void http_vocab_free(struct http_vocab *v);

#endif
