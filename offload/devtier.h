/* The device tier's interface: what placement and the engine hook need
 * from an accelerator's memory. A CUDA tier implements it with
 * cudaMalloc / cudaMemcpyAsync on a stream / cudaEventSynchronize; the one
 * here is a simulation (simdev.c) so that placement, transfer scheduling
 * and overlap are real code under test on machines without a GPU. */
#ifndef QVL_DEVTIER_H
#define QVL_DEVTIER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct dev_tier;

struct dev_tier_ops {
	/* len bytes of device memory within the budget: -ENOMEM past it */
	int (*alloc)(struct dev_tier *d, size_t len, void **out);
	void (*free)(struct dev_tier *d, void *p, size_t len);
	/* Queue a host-to-device copy; *ticket identifies it for wait(). */
	int (*copy_async)(struct dev_tier *d, void *dst, const void *src, size_t len,
			  uint64_t *ticket);
	/* Wait until the copy of ticket (and every earlier one) is done. */
	int (*wait)(struct dev_tier *d, uint64_t ticket);
	void (*destroy)(struct dev_tier *d);
};

struct dev_tier_stats {
	uint64_t budget, used;
	uint64_t copies, copied;
	double copy_s; /* time the copy engine was busy */
	uint64_t bw;   /* its configured bandwidth, bytes/s (0: not throttled) */
};

struct dev_tier {
	const struct dev_tier_ops *ops;
	const char *name; /* shown everywhere the tier shows */
	void (*stats)(struct dev_tier *d, struct dev_tier_stats *st);
};

/* The simulated device: budget bytes of host memory standing for device
 * memory, filled by a copy-engine thread that moves at most bw bytes/s. */
int simdev_create(struct dev_tier **out, uint64_t budget, uint64_t bw, struct qvl_err *err);

#endif
