/* libqvl's private state (shm/client.c, shm/arena.c, shm/request.c). */
#ifndef QVL_SHM_CLIENT_IMPL_H
#define QVL_SHM_CLIENT_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "qvl.h"

struct qvl_ext {
	uint64_t off, len;
};

/* A sorted array of extents. */
struct qvl_extents {
	struct qvl_ext *v;
	size_t n, cap;
};

struct qvl_priv {
	int sock, doorbell;
	void *map;
	size_t map_size;
	uint32_t epoch;	      /* the daemon's epoch at connect */
	int64_t spin_ns;      /* qvl_wait_cqe spins this long before sleeping */
	pthread_mutex_t lock; /* the allocator */
	struct qvl_extents free, used;
};

int cl_arena_init(struct qvl *q);
void cl_arena_fini(struct qvl *q);

#endif
