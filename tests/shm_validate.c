/* The validator is a pure function: every rejection path, each from a valid
 * SQE + request block changed in one field, with the code and the field
 * named in the message. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tap.h"
#include "validate.h"

#define ARENA  (1u << 20)
#define NPARTS 4

struct blk {
	struct qvl_gen_req g;
	struct qvl_part p[NPARTS];
};

static struct shm_request req;

static void base(struct qvl_sqe *s, struct blk *b)
{
	memset(s, 0, sizeof(*s));
	memset(b, 0, sizeof(*b));
	s->opcode = QVL_OP_GENERATE;
	s->req_off = 0;
	s->req_len = sizeof(*b);
	s->user_data = 99;
	s->out_off = 65536;
	s->out_len = 4 * 16 + 100;
	b->g.size = sizeof(b->g);
	b->g.max_tokens = 16;
	b->g.n_parts = NPARTS;
	b->g.temperature = 0.7f;
	b->g.top_p = 0.8f;
	b->g.top_k = 20;
	b->g.repeat_penalty = 1.0f;
	b->p[0] = (struct qvl_part){.kind = QVL_PART_SYSTEM, .len = 5, .off = 4000};
	b->p[1] = (struct qvl_part){.kind = QVL_PART_IMAGE_RGB,
				    .len = 12,
				    .off = 8192,
				    .width = 2,
				    .height = 2,
				    .stride = 6};
	b->p[2] = (struct qvl_part){.kind = QVL_PART_USER, .len = 10, .off = 4096};
	b->p[3] = (struct qvl_part){.kind = QVL_PART_STOP, .len = 2, .off = 5000};
}

static int run(const struct qvl_sqe *s, const struct blk *b, size_t len, struct qvl_err *e)
{
	int rc;

	e->msg[0] = 0;
	rc = shm_validate_sqe(s, ARENA, e);
	if (rc)
		return rc;
	return shm_validate_req(s, b, len, ARENA, &req, e);
}

/* One case: mutate, expect code with `field` in the message. */
#define CASE(code, field, ...)                                                                     \
	do {                                                                                       \
		struct qvl_sqe s;                                                                  \
		struct blk b;                                                                      \
		struct qvl_err e;                                                                  \
		size_t len = sizeof(b);                                                            \
		int rc;                                                                            \
		base(&s, &b);                                                                      \
		__VA_ARGS__;                                                                       \
		rc = run(&s, &b, len, &e);                                                         \
		if (is_int(rc, code, "%-40s -> %s", #__VA_ARGS__, e.msg) && (code))                \
			ok(strstr(e.msg, field) != NULL, "  message names '%s'", field);           \
	} while (0)

int main(void)
{
	/* valid forms first: each rejection below is a one-field change */
	CASE(0, "", (void)0);
	ok(req.n_text == 2 && req.n_images == 1 && req.n_stops == 1 && req.parts[1].width == 2 &&
	       req.parts[2].off == 4096 && req.user_data == 99 && req.gen.max_tokens == 16,
	   "valid request copied into shm_request (parts, counts, user_data)");
	CASE(0, "", s.opcode = QVL_OP_NOP; s.req_len = 0; s.out_len = 0; s.out_off = 0;
	     s.arg = (uint64_t)-5);
	CASE(0, "", s.opcode = QVL_OP_CANCEL; s.req_len = 0; s.out_len = 0; s.out_off = 0;
	     s.arg = 12345);
	CASE(0, "", s.opcode = QVL_OP_STATS; s.req_len = 0);
	CASE(0, "", s.opcode = QVL_OP_SHUTDOWN; s.req_len = 0; s.out_len = 0; s.out_off = 0);
	CASE(0, "", s.opcode = QVL_OP_TOKENIZE; b.g.max_tokens = 0; b.g.n_parts = 1;
	     len = s.req_len = 96; b.p[0].kind = QVL_PART_TOKENS; b.p[0].len = 8);
	CASE(0, "", s.opcode = QVL_OP_EMBED_IMAGE; b.g.max_tokens = 0; b.g.n_parts = 1;
	     len = s.req_len = 96; b.p[0] = b.p[1]);
	CASE(0, "", s.out_off = ARENA - s.out_len);
	CASE(0, "", b.g.temperature = 0; b.g.top_p = 1; b.g.top_k = 0);

	/* the SQE */
	CASE(-EINVAL, "opcode", s.opcode = QVL_OP_LAST + 1);
	CASE(-EINVAL, "opcode", s.opcode = 255);
	CASE(-EINVAL, "flags", s.flags = 1);
	CASE(-EINVAL, "flags", s.flags = 0x80);
	CASE(-EINVAL, "reserved", s.rsvd = 1);
	CASE(-EINVAL, "reserved", s.rsvd2[0] = 1);
	CASE(-EINVAL, "reserved", s.rsvd2[1] = 1ull << 63);
	CASE(-EINVAL, "req_len", s.req_len = 0);
	CASE(-EINVAL, "req_len", s.req_len = 63);
	CASE(-EINVAL, "req_len", s.req_len = UINT32_MAX);
	CASE(-EINVAL, "outside the arena", s.req_off = ARENA);
	CASE(-EINVAL, "outside the arena", s.req_off = ARENA - 64);
	CASE(-EINVAL, "outside the arena", s.req_off = UINT64_MAX - 8);
	CASE(-EINVAL, "request block", s.opcode = QVL_OP_NOP; s.out_len = 0; s.out_off = 0);
	CASE(-EINVAL, "request block", s.opcode = QVL_OP_STATS; s.req_len = 0; s.req_off = 64);
	CASE(-EINVAL, "output region", s.out_len = 0);
	CASE(-EINVAL, "outside the arena", s.out_off = ARENA);
	CASE(-EINVAL, "outside the arena", s.out_len = UINT64_MAX);
	CASE(-EINVAL, "outside the arena", s.out_off = UINT64_MAX - 3; s.out_len = 8);
	CASE(-EINVAL, "outside the arena", s.out_off = 8; s.out_len = UINT64_MAX - 4);
	CASE(-EINVAL, "aligned", s.out_off = 65537);
	CASE(-EINVAL, "overlaps", s.out_off = 64; s.out_len = 1000);
	CASE(-EINVAL, "no output region", s.opcode = QVL_OP_SHUTDOWN; s.req_len = 0);
	CASE(-EINVAL, "nop status", s.opcode = QVL_OP_NOP; s.req_len = 0; s.out_len = 0;
	     s.out_off = 0; s.arg = 1);
	CASE(-EINVAL, "nop status", s.opcode = QVL_OP_NOP; s.req_len = 0; s.out_len = 0;
	     s.out_off = 0; s.arg = (uint64_t)-4096);
	CASE(-EINVAL, "arg", s.arg = 1);

	/* the request block */
	CASE(-EINVAL, "block of", len = 64);
	CASE(-EINVAL, "size", b.g.size = 65);
	CASE(-EINVAL, "size", b.g.size = 0);
	CASE(-EINVAL, "flags", b.g.flags = 0x80);
	CASE(-EINVAL, "flags", b.g.flags = 0x80000000u);
	CASE(-EINVAL, "reserved", b.g.rsvd[1] = 1);
	CASE(-E2BIG, "n_parts", b.g.n_parts = QVL_MAX_PARTS + 1);
	CASE(-E2BIG, "n_parts", b.g.n_parts = UINT32_MAX);
	CASE(-EINVAL, "n_parts", b.g.n_parts = 3);
	CASE(-EINVAL, "temperature", b.g.temperature = NAN);
	CASE(-EINVAL, "temperature", b.g.temperature = -1);
	CASE(-EINVAL, "temperature", b.g.temperature = INFINITY);
	CASE(-EINVAL, "top_p", b.g.top_p = 1.5f);
	CASE(-EINVAL, "min_p", b.g.min_p = -0.1f);
	CASE(-EINVAL, "repeat_penalty", b.g.repeat_penalty = 1e9f);
	CASE(-EINVAL, "presence_penalty", b.g.presence_penalty = -INFINITY);
	CASE(-EINVAL, "frequency_penalty", b.g.frequency_penalty = 101);
	CASE(-EINVAL, "frequency_penalty", b.g.frequency_penalty = NAN);
	CASE(-EINVAL, "top_logprobs", b.g.top_logprobs = 3);
	CASE(-EINVAL, "top_logprobs", b.g.flags = QVL_GEN_TOP_LOGPROBS; b.g.top_logprobs = 2);
	CASE(-EINVAL, "top_logprobs", b.g.flags = QVL_GEN_TOP_LOGPROBS | QVL_GEN_LOGPROBS);
	CASE(-EINVAL, "top_logprobs", b.g.flags = QVL_GEN_TOP_LOGPROBS | QVL_GEN_LOGPROBS;
	     b.g.top_logprobs = QVL_MAX_TOP_LOGPROBS + 1);
	CASE(-EINVAL, "top_logprobs", b.g.flags = QVL_GEN_TOP_LOGPROBS | QVL_GEN_LOGPROBS;
	     b.g.top_logprobs = UINT32_MAX);
	/* 16 tokens: ids 64 + logprobs 64 + one alternative 128 > 164 bytes */
	CASE(-EINVAL, "output", b.g.flags = QVL_GEN_TOP_LOGPROBS | QVL_GEN_LOGPROBS;
	     b.g.top_logprobs = 1);
	CASE(0, "", b.g.flags = QVL_GEN_TOP_LOGPROBS | QVL_GEN_LOGPROBS; b.g.top_logprobs = 1;
	     b.g.max_tokens = 8);
	CASE(-EINVAL, "top_k", b.g.top_k = -1);
	CASE(-EINVAL, "top_k", b.g.top_k = 2000000);
	CASE(-EINVAL, "max_tokens", b.g.max_tokens = 0);
	CASE(-EINVAL, "max_tokens", b.g.max_tokens = QVL_MAX_TOKENS + 1);
	CASE(-EINVAL, "output", b.g.max_tokens = 100);
	CASE(-EINVAL, "output", b.g.flags = QVL_GEN_LOGPROBS; b.g.max_tokens = 21);

	/* parts */
	CASE(-EINVAL, "kind", b.p[0].kind = 0);
	CASE(-EINVAL, "kind", b.p[2].kind = QVL_PART_LAST + 1);
	CASE(-EINVAL, "text_at", b.p[0].text_at = 1);
	CASE(-EINVAL, "text_at", b.p[3].text_at = 1);
	CASE(0, "", b.p[1].text_at = 10);
	CASE(-EINVAL, "past the 10 bytes", b.p[1].text_at = 11);
	CASE(-EINVAL, "past the 10 bytes", b.p[1].text_at = UINT32_MAX);
	CASE(-EINVAL, "raw prompt", b.p[1].text_at = 1; b.g.flags = QVL_GEN_RAW);
	CASE(-EINVAL, "outside the arena", b.p[0].off = ARENA);
	CASE(-EINVAL, "outside the arena", b.p[0].off = ARENA - 4);
	CASE(-EINVAL, "outside the arena", b.p[2].off = UINT64_MAX - 4);
	CASE(-EINVAL, "outside the arena", b.p[2].off = UINT64_MAX; b.p[2].len = UINT32_MAX);
	CASE(-EINVAL, "overlaps", b.p[2].off = 65530);
	CASE(-EINVAL, "width/height", b.p[0].width = 1);
	CASE(-EINVAL, "multiple of 4", b.p[2].kind = QVL_PART_TOKENS; b.p[2].len = 6);
	CASE(-EINVAL, "stop string", b.p[3].len = 0);
	CASE(-EINVAL, "stop string", b.p[3].len = QVL_MAX_STOP_LEN + 1);
	CASE(-EINVAL, "empty image", b.p[2].kind = QVL_PART_IMAGE; b.p[2].len = 0);
	CASE(-EINVAL, "out of range", b.p[1].width = 0);
	CASE(-EINVAL, "out of range", b.p[1].height = QVL_MAX_IMAGE_SIDE + 1);
	CASE(-EINVAL, "stride", b.p[1].stride = 5);
	CASE(-EINVAL, "bytes <", b.p[1].len = 11);
	CASE(-EINVAL, "bytes <", b.p[1].width = 16384; b.p[1].height = 16384;
	     b.p[1].stride = UINT32_MAX; b.p[1].len = 1 << 19; b.p[1].off = 1 << 18);
	CASE(-EINVAL, "no message", b.p[0].kind = b.p[2].kind = b.p[1].kind = QVL_PART_STOP;
	     b.p[1].width = b.p[1].height = b.p[1].stride = 0);

	/* per-opcode mixes */
	CASE(-EINVAL, "tokenize", s.opcode = QVL_OP_TOKENIZE);
	CASE(-EINVAL, "tokenize", s.opcode = QVL_OP_TOKENIZE; b.g.max_tokens = 0);
	CASE(-EINVAL, "embed-image", s.opcode = QVL_OP_EMBED_IMAGE; b.g.max_tokens = 0);

	/* counted limits need many parts: build them in a bigger block */
	{
		static uint8_t big[64 + QVL_MAX_PARTS * 32];
		struct qvl_sqe s;
		struct blk b;
		struct qvl_err e;
		struct qvl_part *pp = (struct qvl_part *)(big + 64);
		base(&s, &b);
		for (int k = 0; k < 2; k++) {
			uint32_t kind = k ? QVL_PART_IMAGE : QVL_PART_STOP;
			uint32_t lim = k ? QVL_MAX_IMAGES : QVL_MAX_STOPS;
			b.g.n_parts = lim + 2;
			memcpy(big, &b.g, 64);
			pp[0] = b.p[2];
			for (uint32_t i = 1; i < lim + 2; i++)
				pp[i] = (struct qvl_part){.kind = kind, .len = 2, .off = 5000};
			s.req_len = 64 + 32 * b.g.n_parts;
			is_int(shm_validate_req(&s, big, s.req_len, ARENA, &req, &e), -E2BIG,
			       "%u %s parts: -E2BIG (%s)", lim + 1, k ? "image" : "stop", e.msg);
		}
	}
	return done_testing();
}
