/* Helpers shared by both ends of the rings (daemon side in shm/server.c and
 * shm/poller.c, client side in shm/client.c): the futex and the clock.
 *
 * The ordering protocol, with each pair (qvl-ring(7) has the full picture):
 *   client qvl_submit:   store-release sq_tail      -> poller load-acquire sq_tail
 *   poller consume:      store-release sq_head      -> client load-acquire sq_head (qvl_sqe_get)
 *   daemon shm_cq_post:  store-release cq_tail      -> client load-acquire cq_tail (qvl_cqe_peek)
 *   client qvl_cqe_seen: store-release cq_head      -> daemon load-acquire cq_head (shm_cq_post)
 *   sleep/wake: the sleeper stores its NEED_WAKEUP flag, fences (seq_cst) and
 *   re-checks the ring; the waker publishes its tail, fences (seq_cst) and
 *   tests the flag. One of the two always sees the other's store. */
#ifndef QVL_SHM_RING_IMPL_H
#define QVL_SHM_RING_IMPL_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The futex word lives in a MAP_SHARED memfd: no FUTEX_PRIVATE_FLAG. */
static inline int ring_futex_wait(uint32_t *word, uint32_t val, int64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;

	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tp = &ts;
	}
	if (syscall(SYS_futex, word, FUTEX_WAIT, val, tp, NULL, 0) < 0)
		return errno == EAGAIN ? 0 : -errno;
	return 0;
}

static inline void ring_futex_wake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static inline uint64_t ring_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void ring_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#endif
