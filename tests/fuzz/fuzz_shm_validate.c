/* libFuzzer target for the SQE + request-block validator: the first 64
 * bytes are the SQE, the rest the request block (zero-padded up to
 * req_len), against a 1 MiB arena. A request that passes must satisfy what
 * the daemon relies on: every range inside the arena, outside the output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARENA (1ull << 20)

static void check(int cond)
{
	if (!cond)
		abort(); /* a validator bug, for the fuzzer to report */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t block[64 + QVL_MAX_PARTS * 32];
	static struct shm_request req;
	struct qvl_sqe sqe;
	struct qvl_err e;
	size_t n;

	if (size < sizeof(sqe))
		return 0;
	memcpy(&sqe, data, sizeof(sqe));
	if (shm_validate_sqe(&sqe, ARENA, &e))
		return 0;
	check(shm_range_ok(sqe.out_off, sqe.out_len, ARENA));
	check(shm_range_ok(sqe.req_off, sqe.req_len, ARENA));
	check(sqe.req_len <= sizeof(block));
	memset(block, 0, sizeof(block));
	n = size - sizeof(sqe) < sqe.req_len ? size - sizeof(sqe) : sqe.req_len;
	memcpy(block, data + sizeof(sqe), n);
	if (shm_validate_req(&sqe, block, sqe.req_len, ARENA, &req, &e))
		return 0;
	check(req.gen.n_parts <= QVL_MAX_PARTS);
	for (uint32_t i = 0; i < req.gen.n_parts; i++) {
		const struct shm_part *p = &req.parts[i];
		check(shm_range_ok(p->off, p->len, ARENA));
		check(!p->len || !req.out_len || p->off + p->len <= req.out_off ||
		      req.out_off + req.out_len <= p->off);
	}
	return 0;
}
