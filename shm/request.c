/* libqvl's request builder: copies inputs into the arena, lays out the
 * request block and the output region, fills the SQE. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

struct qvl_req {
	struct qvl *q;
	uint8_t opcode;
	struct qvl_gen_req gen;
	struct qvl_part *parts;
	uint32_t cap;
	uint64_t *allocs; /* arena offsets this request owns (inputs, block, output) */
	uint32_t n_allocs, cap_allocs;
	uint64_t text_bytes; /* for TOKENIZE's default output size */
	uint64_t out_off, out_len;
	int prepped;
};

static int own(struct qvl_req *r, uint64_t len, uint64_t *off)
{
	int rc;

	if (r->n_allocs == r->cap_allocs) {
		uint32_t cap = r->cap_allocs ? 2 * r->cap_allocs : 8;
		uint64_t *v = realloc(r->allocs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->allocs = v;
		r->cap_allocs = cap;
	}
	rc = qvl_arena_alloc(r->q, len, off);
	if (!rc)
		r->allocs[r->n_allocs++] = *off;
	return rc;
}

static int add_part(struct qvl_req *r, struct qvl_part pt, const void *data)
{
	int rc;

	if (r->prepped)
		return -EBUSY;
	if (r->gen.n_parts == QVL_MAX_PARTS)
		return -E2BIG;
	if (r->gen.n_parts == r->cap) {
		uint32_t cap = r->cap ? 2 * r->cap : 8;
		struct qvl_part *v = realloc(r->parts, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->parts = v;
		r->cap = cap;
	}
	if (pt.len) {
		if ((rc = own(r, pt.len, &pt.off)))
			return rc;
		memcpy(qvl_arena_ptr(r->q, pt.off), data, pt.len);
	}
	r->parts[r->gen.n_parts++] = pt;
	return 0;
}

int qvl_req_new(struct qvl *q, uint8_t opcode, struct qvl_req **out)
{
	struct qvl_req *r;

	*out = NULL;
	if (opcode > QVL_OP_LAST)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->q = q;
	r->opcode = opcode;
	r->gen.size = sizeof(r->gen);
	if (opcode == QVL_OP_GENERATE) {
		r->gen.flags = QVL_GEN_MODEL_DEFAULTS;
		r->gen.max_tokens = 256;
	}
	*out = r;
	return 0;
}

int qvl_req_add_text(struct qvl_req *r, uint32_t kind, const char *text, size_t len)
{
	if ((kind != QVL_PART_SYSTEM && kind != QVL_PART_USER && kind != QVL_PART_ASSISTANT) ||
	    len > UINT32_MAX)
		return -EINVAL;
	r->text_bytes += len;
	return add_part(r, (struct qvl_part){.kind = kind, .len = (uint32_t)len}, text);
}

int qvl_req_add_tokens(struct qvl_req *r, const int32_t *ids, size_t n)
{
	if (n > UINT32_MAX / 4)
		return -EINVAL;
	r->text_bytes += n;
	return add_part(r, (struct qvl_part){.kind = QVL_PART_TOKENS, .len = (uint32_t)(4 * n)},
			ids);
}

int qvl_req_add_image(struct qvl_req *r, const void *data, size_t len)
{
	if (!len || len > UINT32_MAX)
		return -EINVAL;
	return add_part(r, (struct qvl_part){.kind = QVL_PART_IMAGE, .len = (uint32_t)len}, data);
}

int qvl_req_add_image_rgb(struct qvl_req *r, const void *rgb, uint32_t width, uint32_t height,
			  uint32_t stride)
{
	uint64_t len;

	if (!width || !height || width > QVL_MAX_IMAGE_SIDE || height > QVL_MAX_IMAGE_SIDE ||
	    (uint64_t)stride < 3ull * width)
		return -EINVAL;
	len = (uint64_t)stride * (height - 1) + 3ull * width;
	if (len > UINT32_MAX)
		return -E2BIG;
	return add_part(r,
			(struct qvl_part){.kind = QVL_PART_IMAGE_RGB,
					  .len = (uint32_t)len,
					  .width = width,
					  .height = height,
					  .stride = stride},
			rgb);
}

int qvl_req_add_stop(struct qvl_req *r, const char *s, size_t len)
{
	if (!len || len > QVL_MAX_STOP_LEN)
		return -EINVAL;
	return add_part(r, (struct qvl_part){.kind = QVL_PART_STOP, .len = (uint32_t)len}, s);
}

int qvl_req_set_image_at(struct qvl_req *r, uint32_t text_at)
{
	struct qvl_part *p = r->gen.n_parts ? &r->parts[r->gen.n_parts - 1] : NULL;

	if (r->prepped)
		return -EBUSY;
	if (!p || (p->kind != QVL_PART_IMAGE && p->kind != QVL_PART_IMAGE_RGB))
		return -EINVAL;
	p->text_at = text_at;
	return 0;
}

int qvl_req_set_sampling(struct qvl_req *r, const struct qvl_sampling *s)
{
	r->gen.temperature = s->temperature;
	r->gen.top_p = s->top_p;
	r->gen.min_p = s->min_p;
	r->gen.repeat_penalty = s->repeat_penalty;
	r->gen.presence_penalty = s->presence_penalty;
	r->gen.top_k = s->top_k;
	r->gen.seed = s->seed;
	r->gen.flags &= ~QVL_GEN_MODEL_DEFAULTS;
	return 0;
}

int qvl_req_set_frequency_penalty(struct qvl_req *r, float frequency_penalty)
{
	if (r->opcode != QVL_OP_GENERATE ||
	    !(frequency_penalty >= -100 && frequency_penalty <= 100))
		return -EINVAL;
	r->gen.frequency_penalty = frequency_penalty;
	r->gen.flags &= ~QVL_GEN_MODEL_DEFAULTS;
	return 0;
}

int qvl_req_set_top_logprobs(struct qvl_req *r, uint32_t k)
{
	if (r->opcode != QVL_OP_GENERATE || k > QVL_MAX_TOP_LOGPROBS)
		return -EINVAL;
	r->gen.top_logprobs = k;
	if (k)
		r->gen.flags |= QVL_GEN_TOP_LOGPROBS | QVL_GEN_LOGPROBS;
	else
		r->gen.flags &= ~QVL_GEN_TOP_LOGPROBS;
	return 0;
}

int qvl_req_set_flags(struct qvl_req *r, uint32_t flags)
{
	if (flags & ~QVL_GEN_FLAGS_MASK)
		return -EINVAL;
	r->gen.flags = flags;
	return 0;
}

int qvl_req_set_max_tokens(struct qvl_req *r, uint32_t max_tokens)
{
	if (r->opcode != QVL_OP_GENERATE || !max_tokens || max_tokens > QVL_MAX_TOKENS)
		return -EINVAL;
	r->gen.max_tokens = max_tokens;
	return 0;
}

static uint64_t default_out(const struct qvl_req *r)
{
	switch (r->opcode) {
	case QVL_OP_GENERATE:
		return qvl_gen_text_offset(&r->gen) + 16ull * r->gen.max_tokens;
	case QVL_OP_VOCAB:
		return 8ull << 20;
	case QVL_OP_TOKENIZE:
		return 4 * (r->text_bytes + 64);
	case QVL_OP_EMBED_IMAGE:
		return 64ull << 20;
	case QVL_OP_STATS:
	case QVL_OP_STATUS:
		return 64 << 10;
	default:
		return 0;
	}
}

int qvl_req_prep(struct qvl_req *r, struct qvl_sqe *sqe, uint64_t user_data, uint64_t out_len)
{
	int has_block = r->opcode == QVL_OP_GENERATE || r->opcode == QVL_OP_TOKENIZE ||
			r->opcode == QVL_OP_EMBED_IMAGE;
	uint64_t boff = 0, blen = 0;
	int rc;

	if (r->prepped)
		return -EBUSY;
	if (!out_len)
		out_len = default_out(r);
	if (has_block) {
		blen = sizeof(r->gen) + (uint64_t)r->gen.n_parts * sizeof(struct qvl_part);
		if ((rc = own(r, blen, &boff)))
			return rc;
		memcpy(qvl_arena_ptr(r->q, boff), &r->gen, sizeof(r->gen));
		memcpy(qvl_arena_ptr(r->q, boff + sizeof(r->gen)), r->parts,
		       r->gen.n_parts * sizeof(struct qvl_part));
	}
	if (out_len && (rc = own(r, out_len, &r->out_off)))
		return rc;
	r->out_len = out_len;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = r->opcode;
	sqe->req_off = boff;
	sqe->req_len = (uint32_t)blen;
	sqe->out_off = r->out_off;
	sqe->out_len = out_len;
	sqe->user_data = user_data;
	r->prepped = 1;
	return 0;
}

const void *qvl_req_out(const struct qvl_req *r, uint64_t *len)
{
	if (len)
		*len = r->out_len;
	return r->out_len ? qvl_arena_ptr(r->q, r->out_off) : NULL;
}

const int32_t *qvl_req_ids(const struct qvl_req *r)
{
	return qvl_req_out(r, NULL);
}

const float *qvl_req_logprobs(const struct qvl_req *r)
{
	if (r->opcode != QVL_OP_GENERATE || !(r->gen.flags & QVL_GEN_LOGPROBS) || !r->out_len)
		return NULL;
	return (const float *)((const uint8_t *)qvl_req_out(r, NULL) + 4ull * r->gen.max_tokens);
}

const char *qvl_req_text(const struct qvl_req *r)
{
	uint64_t skip;

	if (!r->out_len)
		return NULL;
	if (r->opcode != QVL_OP_GENERATE)
		return qvl_req_out(r, NULL);
	skip = qvl_gen_text_offset(&r->gen);
	return skip <= r->out_len ? (const char *)qvl_req_out(r, NULL) + skip : NULL;
}

const struct qvl_top_logprob *qvl_req_top_logprobs(const struct qvl_req *r, uint32_t *k)
{
	if (r->opcode != QVL_OP_GENERATE || !(r->gen.flags & QVL_GEN_TOP_LOGPROBS) ||
	    !r->gen.top_logprobs || qvl_gen_text_offset(&r->gen) > r->out_len)
		return NULL;
	if (k)
		*k = r->gen.top_logprobs;
	return (const void *)((const uint8_t *)qvl_req_out(r, NULL) + qvl_gen_top_offset(&r->gen));
}

void qvl_release(struct qvl_req *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n_allocs; i++)
		qvl_arena_free(r->q, r->allocs[i]);
	free(r->allocs);
	free(r->parts);
	free(r);
}
