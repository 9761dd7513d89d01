/* The SQE + request-block validator (see validate.h). Pure: it reads only
 * the copies it is given, so every rejection path is unit-testable and
 * fuzzable without a ring. */
#include "validate.h"

#include <math.h>
#include <string.h>

/* Does [a, a + alen) intersect [b, b + blen)? Both ranges already checked
 * against the arena, so the sums cannot overflow. */
static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static int has_block(uint8_t op)
{
	return op == QVL_OP_GENERATE || op == QVL_OP_TOKENIZE || op == QVL_OP_EMBED_IMAGE;
}

static int has_output(uint8_t op)
{
	return has_block(op) || op == QVL_OP_STATS || op == QVL_OP_STATUS || op == QVL_OP_VOCAB;
}

int shm_validate_sqe(const struct qvl_sqe *s, uint64_t arena_size, struct qvl_err *err)
{
	uint64_t max_block = sizeof(struct qvl_gen_req) + QVL_MAX_PARTS * sizeof(struct qvl_part);

	if (s->opcode > QVL_OP_LAST)
		return qvl_errf(err, -EINVAL, "sqe: opcode %u unknown (0..%u)", s->opcode,
				QVL_OP_LAST);
	if (s->flags & ~QVL_SQE_F_MASK)
		return qvl_errf(err, -EINVAL, "sqe: flags 0x%x: unknown bits", s->flags);
	if (s->rsvd || s->rsvd2[0] || s->rsvd2[1])
		return qvl_errf(err, -EINVAL, "sqe: reserved fields not zero");
	if (has_block(s->opcode)) {
		if (s->req_len < sizeof(struct qvl_gen_req) || s->req_len > max_block)
			return qvl_errf(err, -EINVAL, "sqe: req_len %u out of range (%zu..%llu)",
					s->req_len, sizeof(struct qvl_gen_req),
					(unsigned long long)max_block);
		if (!shm_range_ok(s->req_off, s->req_len, arena_size))
			return qvl_errf(
			    err, -EINVAL,
			    "sqe: request block [%llu, +%u) outside the arena (%llu bytes)",
			    (unsigned long long)s->req_off, s->req_len,
			    (unsigned long long)arena_size);
	} else if (s->req_len || s->req_off) {
		return qvl_errf(err, -EINVAL, "sqe: opcode %u takes no request block", s->opcode);
	}
	if (has_output(s->opcode)) {
		if (!s->out_len)
			return qvl_errf(err, -EINVAL, "sqe: opcode %u needs an output region",
					s->opcode);
		if (!shm_range_ok(s->out_off, s->out_len, arena_size))
			return qvl_errf(err, -EINVAL,
					"sqe: output [%llu, +%llu) outside the arena (%llu bytes)",
					(unsigned long long)s->out_off,
					(unsigned long long)s->out_len,
					(unsigned long long)arena_size);
		if (s->out_off % 4)
			return qvl_errf(err, -EINVAL, "sqe: out_off %llu not 4-byte aligned",
					(unsigned long long)s->out_off);
		if (overlaps(s->req_off, s->req_len, s->out_off, s->out_len))
			return qvl_errf(err, -EINVAL,
					"sqe: request block overlaps the output region");
	} else if (s->out_len || s->out_off) {
		return qvl_errf(err, -EINVAL, "sqe: opcode %u takes no output region", s->opcode);
	}
	if (s->opcode == QVL_OP_NOP) {
		int64_t st = (int64_t)s->arg;
		if (st > 0 || st < -4095)
			return qvl_errf(err, -EINVAL, "sqe: nop status %lld not 0 or -errno",
					(long long)st);
	} else if (s->opcode != QVL_OP_CANCEL && s->arg) {
		return qvl_errf(err, -EINVAL, "sqe: arg must be 0 for opcode %u", s->opcode);
	}
	return 0;
}

static int check_float(const char *name, float v, float lo, float hi, struct qvl_err *err)
{
	if (!isfinite(v) || v < lo || v > hi)
		return qvl_errf(err, -EINVAL, "request: %s %g out of range (%g..%g)", name,
				(double)v, (double)lo, (double)hi);
	return 0;
}

static int check_sampling(const struct qvl_gen_req *g, struct qvl_err *err)
{
	int rc;

	if ((rc = check_float("temperature", g->temperature, 0, 100, err)) ||
	    (rc = check_float("top_p", g->top_p, 0, 1, err)) ||
	    (rc = check_float("min_p", g->min_p, 0, 1, err)) ||
	    (rc = check_float("repeat_penalty", g->repeat_penalty, 0, 100, err)) ||
	    (rc = check_float("presence_penalty", g->presence_penalty, -100, 100, err)) ||
	    (rc = check_float("frequency_penalty", g->frequency_penalty, -100, 100, err)))
		return rc;
	if (g->top_logprobs > QVL_MAX_TOP_LOGPROBS ||
	    !(g->flags & QVL_GEN_TOP_LOGPROBS) != !g->top_logprobs ||
	    ((g->flags & QVL_GEN_TOP_LOGPROBS) && !(g->flags & QVL_GEN_LOGPROBS)))
		return qvl_errf(err, -EINVAL,
				"request: top_logprobs %u (1..%u, with the TOP_LOGPROBS and "
				"LOGPROBS flags; else 0 without them)",
				g->top_logprobs, QVL_MAX_TOP_LOGPROBS);
	if (g->top_k < 0 || g->top_k > 1000000)
		return qvl_errf(err, -EINVAL, "request: top_k %d out of range (0..1000000)",
				g->top_k);
	return 0;
}

/* One part: kind, its per-kind fields and its range (in the arena, outside the output). */
static int check_part(const struct qvl_sqe *s, uint32_t i, const struct qvl_part *pt,
		      uint64_t arena_size, struct qvl_err *err)
{
	if (pt->kind < QVL_PART_SYSTEM || pt->kind > QVL_PART_LAST)
		return qvl_errf(err, -EINVAL, "request: part %u: kind %u unknown", i, pt->kind);
	if (pt->text_at && pt->kind != QVL_PART_IMAGE && pt->kind != QVL_PART_IMAGE_RGB)
		return qvl_errf(err, -EINVAL, "request: part %u: text_at set on kind %u", i,
				pt->kind);
	if (!shm_range_ok(pt->off, pt->len, arena_size))
		return qvl_errf(
		    err, -EINVAL, "request: part %u: [%llu, +%u) outside the arena (%llu bytes)", i,
		    (unsigned long long)pt->off, pt->len, (unsigned long long)arena_size);
	if (overlaps(pt->off, pt->len, s->out_off, s->out_len))
		return qvl_errf(err, -EINVAL, "request: part %u overlaps the output region", i);
	if (pt->kind != QVL_PART_IMAGE_RGB && (pt->width || pt->height || pt->stride))
		return qvl_errf(err, -EINVAL,
				"request: part %u: width/height/stride set on kind %u", i,
				pt->kind);
	switch (pt->kind) {
	case QVL_PART_TOKENS:
		if (pt->len % 4)
			return qvl_errf(err, -EINVAL,
					"request: part %u: token bytes %u not a multiple of 4", i,
					pt->len);
		break;
	case QVL_PART_STOP:
		if (!pt->len || pt->len > QVL_MAX_STOP_LEN)
			return qvl_errf(err, -EINVAL,
					"request: part %u: stop string length %u (1..%u)", i,
					pt->len, QVL_MAX_STOP_LEN);
		break;
	case QVL_PART_IMAGE:
		if (!pt->len)
			return qvl_errf(err, -EINVAL, "request: part %u: empty image", i);
		break;
	case QVL_PART_IMAGE_RGB: {
		uint64_t need;
		if (!pt->width || !pt->height || pt->width > QVL_MAX_IMAGE_SIDE ||
		    pt->height > QVL_MAX_IMAGE_SIDE)
			return qvl_errf(err, -EINVAL,
					"request: part %u: image %ux%u out of range (1..%u)", i,
					pt->width, pt->height, QVL_MAX_IMAGE_SIDE);
		/* sides <= 16384: no u64 product below can overflow */
		if ((uint64_t)pt->stride < 3ull * pt->width)
			return qvl_errf(err, -EINVAL, "request: part %u: stride %u < 3 * width %u",
					i, pt->stride, pt->width);
		need = (uint64_t)pt->stride * (pt->height - 1) + 3ull * pt->width;
		if (pt->len < need)
			return qvl_errf(err, -EINVAL,
					"request: part %u: %u bytes < %llu for %ux%u stride %u", i,
					pt->len, (unsigned long long)need, pt->width, pt->height,
					pt->stride);
		break;
	}
	default:
		break;
	}
	return 0;
}

/* Images' places in the next user message: non-decreasing, within its
 * text (*at: the largest text_at pending), none in a raw prompt. The
 * UTF-8 boundary is the daemon's to check, once it has copied the text. */
static int check_image_at(const struct qvl_gen_req *g, uint32_t i, const struct qvl_part *pt,
			  uint32_t *at, struct qvl_err *err)
{
	if (pt->kind == QVL_PART_IMAGE || pt->kind == QVL_PART_IMAGE_RGB) {
		if (pt->text_at && (g->flags & QVL_GEN_RAW))
			return qvl_errf(err, -EINVAL,
					"request: part %u: text_at %u in a raw prompt (its "
					"placeholders place the images)",
					i, pt->text_at);
		if (pt->text_at < *at)
			return qvl_errf(
			    err, -EINVAL,
			    "request: part %u: text_at %u before the previous image's %u", i,
			    pt->text_at, *at);
		*at = pt->text_at;
	} else if (pt->kind == QVL_PART_USER) {
		if (*at > pt->len)
			return qvl_errf(err, -EINVAL,
					"request: part %u: an image's text_at %u past the %u bytes "
					"of this user message",
					i, *at, pt->len);
		*at = 0;
	}
	return 0;
}

/* Per-opcode rules on the part mix and the output size. */
static int check_mix(const struct qvl_sqe *s, struct shm_request *r, struct qvl_err *err)
{
	const struct qvl_gen_req *g = &r->gen;
	uint32_t content = r->n_text + r->n_images;

	switch (s->opcode) {
	case QVL_OP_GENERATE: {
		uint64_t need = qvl_gen_text_offset(g); /* top_logprobs checked, u64 */
		if (!g->max_tokens || g->max_tokens > QVL_MAX_TOKENS)
			return qvl_errf(err, -EINVAL, "request: max_tokens %u out of range (1..%u)",
					g->max_tokens, QVL_MAX_TOKENS);
		if (!content)
			return qvl_errf(err, -EINVAL, "request: no message, token or image part");
		if (s->out_len < need)
			return qvl_errf(err, -EINVAL,
					"request: output %llu bytes < %llu for max_tokens %u",
					(unsigned long long)s->out_len, (unsigned long long)need,
					g->max_tokens);
		return 0;
	}
	case QVL_OP_TOKENIZE:
		if (g->max_tokens || r->n_images || r->n_stops || !r->n_text)
			return qvl_errf(
			    err, -EINVAL,
			    "request: tokenize takes text/token parts only, max_tokens 0");
		return 0;
	case QVL_OP_EMBED_IMAGE:
		if (g->max_tokens || r->n_images != 1 || g->n_parts != 1)
			return qvl_errf(err, -EINVAL,
					"request: embed-image takes exactly one image part");
		return 0;
	default:
		return 0;
	}
}

int shm_validate_req(const struct qvl_sqe *s, const void *block, size_t len, uint64_t arena_size,
		     struct shm_request *r, struct qvl_err *err)
{
	const uint8_t *b = block;
	const struct qvl_part *pts;
	int rc;

	memset(r, 0, offsetof(struct shm_request, parts));
	r->opcode = s->opcode;
	r->user_data = s->user_data;
	r->arg = s->arg;
	r->out_off = s->out_off;
	r->out_len = s->out_len;
	if (!has_block(s->opcode))
		return 0;
	if (len != s->req_len || len < sizeof(r->gen))
		return qvl_errf(err, -EINVAL, "request: block of %zu bytes, sqe says %u", len,
				s->req_len);
	memcpy(&r->gen, b, sizeof(r->gen));
	if (r->gen.size != sizeof(r->gen))
		return qvl_errf(err, -EINVAL, "request: size %u, this daemon knows %zu",
				r->gen.size, sizeof(r->gen));
	if (r->gen.flags & ~QVL_GEN_FLAGS_MASK)
		return qvl_errf(err, -EINVAL, "request: flags 0x%x: unknown bits", r->gen.flags);
	if (r->gen.rsvd[0] || r->gen.rsvd[1])
		return qvl_errf(err, -EINVAL, "request: reserved fields not zero");
	if (r->gen.n_parts > QVL_MAX_PARTS)
		return qvl_errf(err, -E2BIG, "request: n_parts %u > %u", r->gen.n_parts,
				QVL_MAX_PARTS);
	if (len != sizeof(r->gen) + (size_t)r->gen.n_parts * sizeof(struct qvl_part))
		return qvl_errf(err, -EINVAL, "request: req_len %zu != 64 + 32 * n_parts %u", len,
				r->gen.n_parts);
	if ((rc = check_sampling(&r->gen, err)))
		return rc;
	pts = (const struct qvl_part *)(b + sizeof(r->gen));
	for (uint32_t i = 0, at = 0; i < r->gen.n_parts; i++) {
		struct qvl_part pt;
		memcpy(&pt, &pts[i], sizeof(pt));
		if ((rc = check_part(s, i, &pt, arena_size, err)))
			return rc;
		if ((rc = check_image_at(&r->gen, i, &pt, &at, err)))
			return rc;
		if (pt.kind == QVL_PART_STOP && ++r->n_stops > QVL_MAX_STOPS)
			return qvl_errf(err, -E2BIG, "request: more than %u stop strings",
					QVL_MAX_STOPS);
		if ((pt.kind == QVL_PART_IMAGE || pt.kind == QVL_PART_IMAGE_RGB) &&
		    ++r->n_images > QVL_MAX_IMAGES)
			return qvl_errf(err, -E2BIG, "request: more than %u images",
					QVL_MAX_IMAGES);
		if (pt.kind <= QVL_PART_TOKENS)
			r->n_text++;
		r->parts[i] = (struct shm_part){pt.kind, pt.width, pt.height, pt.stride,
						pt.off,	 pt.len,   pt.text_at};
	}
	return check_mix(s, r, err);
}
