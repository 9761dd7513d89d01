/* The SQE + request-block validator: a pure function over copies. The
 * poller copies the SQE and then the request block out of shared memory and
 * hands both here; nothing here reads shared memory. */
#ifndef QVL_SHM_VALIDATE_H
#define QVL_SHM_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "qvl.h"
#include "shm.h"

/* First step: the SQE alone. Checks opcode, flags, reserved fields, the
 * request-block and output ranges against arena_size (overflow-safe) and
 * their per-opcode presence. 0 or -EINVAL (err says which field). */
int shm_validate_sqe(const struct qvl_sqe *sqe, uint64_t arena_size, struct qvl_err *err);

/* Second step: the request block copied from (sqe->req_off, sqe->req_len)
 * (block, len == sqe->req_len). Fills *req (opcode, user_data, out, gen,
 * parts) from the copies. 0 or -EINVAL / -E2BIG. */
int shm_validate_req(const struct qvl_sqe *sqe, const void *block, size_t len, uint64_t arena_size,
		     struct shm_request *req, struct qvl_err *err);

/* Is [off, off + len) inside [0, size)? Overflow-safe. */
static inline int shm_range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

#endif
