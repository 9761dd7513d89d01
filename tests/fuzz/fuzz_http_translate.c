/* libFuzzer target for qvl-http's request-to-ring translation: the input
 * is a request body, the first byte choosing the endpoint (even: chat,
 * odd: completions). Whatever the translator accepts is laid out as a
 * request block the way libqvl does (qvl_req_prep) and must pass the
 * daemon's own validator: the bridge never sends what qvld refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/translate.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARENA (64ull << 20)

static void check(int cond)
{
	if (!cond)
		abort(); /* a translator bug, for the fuzzer to report */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_plan p;
	static uint8_t block[64 + QVL_MAX_PARTS * 32];
	const struct http_limits lim = {.max_image = 1u << 20};
	struct http_error e;
	struct shm_request req;
	struct qvl_gen_req g = {.size = sizeof(g)};
	struct qvl_sqe sqe = {.opcode = QVL_OP_GENERATE};
	struct qvl_err qe;
	uint64_t off = 0;
	int rc;

	if (!size)
		return 0;
	rc = http_translate((const char *)data + 1, size - 1,
			    data[0] & 1 ? HTTP_API_COMPLETIONS : HTTP_API_CHAT, &lim, &p, &e);
	if (rc) {
		check(e.status >= 400 && e.status < 600 && e.msg[0]);
		return 0;
	}
	check(p.n_parts <= QVL_MAX_PARTS && p.n_images <= QVL_MAX_IMAGES &&
	      p.n_stops <= QVL_MAX_STOPS);
	/* what bridge.c's build() sets */
	g.flags = p.flags | QVL_GEN_STREAM;
	g.top_logprobs = p.top_logprobs;
	if (!(g.flags & QVL_GEN_MODEL_DEFAULTS)) {
		g.frequency_penalty = p.frequency_penalty;
		g.temperature = p.s.temperature;
		g.top_p = p.s.top_p;
		g.min_p = p.s.min_p;
		g.repeat_penalty = p.s.repeat_penalty;
		g.presence_penalty = p.s.presence_penalty;
		g.top_k = p.s.top_k;
		g.seed = p.s.seed;
	}
	g.max_tokens = p.max_tokens ? p.max_tokens : 4096;
	g.n_parts = p.n_parts;
	memcpy(block, &g, sizeof(g));
	for (uint32_t i = 0; i < p.n_parts; i++) {
		struct qvl_part pt = {.kind = p.parts[i].kind,
				      .len = p.parts[i].len,
				      .off = off,
				      .text_at = p.parts[i].text_at};
		if (pt.kind == QVL_PART_IMAGE)
			check(pt.len >= 3 && pt.len <= lim.max_image);
		off += (pt.len + 63) & ~63ull;
		memcpy(block + 64 + 32 * i, &pt, sizeof(pt));
	}
	sqe.req_off = off;
	sqe.req_len = 64 + 32 * p.n_parts;
	sqe.out_off = (off + sqe.req_len + 63) & ~63ull;
	sqe.out_len = (uint64_t)g.max_tokens * (40 + 8 * p.top_logprobs) + 4096;
	if (sqe.out_off + sqe.out_len <= ARENA) {
		check(!shm_validate_sqe(&sqe, ARENA, &qe));
		rc = shm_validate_req(&sqe, block, sqe.req_len, ARENA, &req, &qe);
		check(!rc);
	}
	http_plan_free(&p);
	return 0;
}
