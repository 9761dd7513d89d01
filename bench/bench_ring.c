/* Ring benchmark: round trip of a NOP (submit to completion seen) through
 * the real poller, busy-polling and sleeping, against a UNIX-socket
 * ping-pong of the same 64 bytes in the same run; and NOP throughput with
 * batched submission. Client and server are threads pinned to CPUs 0 and 1.
 * One JSON line per figure (median of the repetitions, min and max), then a
 * summary. QVL_BENCH_REPS (default 5) and QVL_BENCH_ITERS (10000) scale it. */
#include "config.h"

#define _GNU_SOURCE 1
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include "ring_impl.h"
#include "shm_testsrv.h"

#define MAX_REPS 20

static int reps = 5, iters = 10000, ncpu;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct stat3 {
	double med, lo, hi;
};

static struct stat3 stat3(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_dbl);
	return (struct stat3){n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v[0], v[n - 1]};
}

static void pin(pthread_t t, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % ncpu, &set);
	pthread_setaffinity_np(t, sizeof(set), &set);
}

static void emit(const char *name, struct stat3 s, const char *unit, const char *peer,
		 double peer_value)
{
	printf("{\"name\":\"%s\",\"value\":%.4g,\"unit\":\"%s\",\"min\":%.4g,\"max\":%.4g,"
	       "\"reps\":%d,\"iters\":%d",
	       name, s.med, unit, s.lo, s.hi, reps, iters);
	if (peer)
		printf(",\"peer\":\"%s\",\"peer_value\":%.4g,\"ratio\":%.3f", peer, peer_value,
		       s.med > 0 ? peer_value / s.med : 0.0);
	printf("}\n");
	fflush(stdout);
}

/* Percentiles of one repetition's round trips, in ns. */
struct pcts {
	double p50, p99, p999;
};

static struct pcts pcts(uint64_t *rt, int n)
{
	qsort(rt, (size_t)n, sizeof(*rt), cmp_u64);
	return (struct pcts){(double)rt[n / 2], (double)rt[(int)(n * 0.99)],
			     (double)rt[(int)(n * 0.999)]};
}

/* ---- ring round trip ---------------------------------------------------- */

static int ring_rt(struct qvl *q, int sleep, uint64_t *rt)
{
	for (int i = 0; i < iters; i++) {
		struct qvl_sqe *sqe = qvl_sqe_get(q);
		struct qvl_cqe *c;
		uint64_t t0;
		if (!sqe)
			return -ENOSPC;
		sqe->opcode = QVL_OP_NOP;
		sqe->user_data = (uint64_t)i;
		t0 = ring_now_ns();
		qvl_submit(q);
		if (sleep) {
			int rc = qvl_wait_cqe(q, &c, 5000000000ll);
			if (rc)
				return rc;
		} else {
			while (!(c = qvl_cqe_peek(q)))
				ring_cpu_relax();
		}
		rt[i] = ring_now_ns() - t0;
		if (c->user_data != (uint64_t)i)
			return -EPROTO;
		qvl_cqe_seen(q);
	}
	return 0;
}

/* ---- socket ping-pong baseline -------------------------------------------- */

static void *echo_thread(void *arg)
{
	int fd = *(int *)arg;
	char b[64];

	for (;;) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_WAITALL);
		if (n != sizeof(b) || send(fd, b, sizeof(b), 0) != sizeof(b))
			break;
	}
	return NULL;
}

static int sock_rt(int fd, uint64_t *rt)
{
	char b[64] = {1};

	for (int i = 0; i < iters; i++) {
		uint64_t t0 = ring_now_ns();
		if (send(fd, b, sizeof(b), 0) != sizeof(b) ||
		    recv(fd, b, sizeof(b), MSG_WAITALL) != sizeof(b))
			return -EIO;
		rt[i] = ring_now_ns() - t0;
	}
	return 0;
}

/* ---- throughput -------------------------------------------------------------- */

static uint64_t cpu_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* NOPs per second of wall time, and per second of the poller thread's CPU
 * time (*per_cpu): on a shared machine the threads are often descheduled,
 * and the CPU-time figure is what one dedicated poller core would do (a
 * lower bound: it includes the poller's spinning while the client is off CPU). */
static double throughput(struct qvl *q, clockid_t poller, uint32_t total, uint32_t batch,
			 double *per_cpu)
{
	uint32_t sub = 0, seen = 0;
	uint64_t t0 = ring_now_ns(), c0 = cpu_ns(poller);

	while (seen < total) {
		struct qvl_sqe *sqe;
		uint32_t k = 0;
		while (sub < total && k < batch && (sqe = qvl_sqe_get(q))) {
			sqe->opcode = QVL_OP_NOP;
			sqe->user_data = sub++;
			k++;
		}
		if (k)
			qvl_submit(q);
		if ((k = qvl_cq_ready(q))) {
			seen += k;
			qvl_cq_advance(q, k);
		}
	}
	*per_cpu = total / ((cpu_ns(poller) - c0) / 1e9);
	return total / ((ring_now_ns() - t0) / 1e9);
}

struct rtstats {
	double p50[MAX_REPS], p99[MAX_REPS], p999[MAX_REPS];
};

static void record(struct rtstats *s, int r, uint64_t *rt)
{
	struct pcts p = pcts(rt, iters);
	s->p50[r] = p.p50;
	s->p99[r] = p.p99;
	s->p999[r] = p.p999;
}

/* sleep: 0 both sides poll, 1 both sides sleep, 2 the poller polls and the
 * client sleeps (one wakeup per round trip instead of two). */
static int ring_mode(int sleep, struct rtstats *st, uint64_t *rt)
{
	struct shm_policy pol = {.spin_us = sleep == 1 ? 1 : 10000000};
	struct qvl_opts o = {.sq_entries = 64, .wait_spin_ns = sleep ? -1 : 0};
	struct testsrv s;
	struct qvl *q;
	int rc;

	if ((rc = ts_start(&s, &pol)))
		return rc;
	pin(s.thr, 1);
	if ((rc = qvl_connect(s.path, &o, &q))) {
		ts_stop(&s);
		return rc;
	}
	ring_rt(q, sleep, rt); /* warm up */
	for (int r = 0; r < reps && !rc; r++)
		if (!(rc = ring_rt(q, sleep, rt)))
			record(st, r, rt);
	qvl_disconnect(q);
	ts_stop(&s);
	return rc;
}

/* The socket baseline then the ring in both modes, same run, same pinning. */
static int round_trips(struct rtstats *sock, struct rtstats *busy, struct rtstats *slp,
		       struct rtstats *half, uint64_t *rt)
{
	int sv[2], rc;
	pthread_t echo;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    pthread_create(&echo, NULL, echo_thread, &sv[1]))
		return -errno;
	pin(echo, 1);
	sock_rt(sv[0], rt);
	for (int r = 0; r < reps; r++) {
		if (sock_rt(sv[0], rt))
			return -EIO;
		record(sock, r, rt);
	}
	close(sv[0]);
	pthread_join(echo, NULL);
	close(sv[1]);
	if ((rc = ring_mode(0, busy, rt)) || (rc = ring_mode(1, slp, rt)) ||
	    (rc = ring_mode(2, half, rt)))
		fprintf(stderr, "bench_ring: %s\n", qvl_strerror(rc));
	return rc;
}

int main(int argc, char **argv)
{
	struct rtstats busy, slp, half, sock;
	double tput[MAX_REPS], tcpu[MAX_REPS];
	struct stat3 b50, s50, k50, t, tc;
	clockid_t pclk;
	uint64_t *rt;
	const char *e;
	int tput_only = getenv("QVL_BENCH_TPUT_ONLY") != NULL; /* for tuning the batch path */

	if (argc > 1) { /* everything comes from the environment */
		bool help = !strcmp(argv[1], "--help");
		fprintf(help ? stdout : stderr, "usage: bench_ring   (QVL_BENCH_REPS, QVL_BENCH_ITERS, "
						"QVL_BENCH_TPUT_ONLY)\n");
		return help ? 0 : 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((e = getenv("QVL_BENCH_REPS")) && atoi(e) > 0)
		reps = atoi(e) > MAX_REPS ? MAX_REPS : atoi(e);
	if ((e = getenv("QVL_BENCH_ITERS")) && atoi(e) > 100)
		iters = atoi(e);
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	rt = malloc(sizeof(*rt) * (size_t)iters);
	pin(pthread_self(), 0);

	if (!tput_only && round_trips(&sock, &busy, &slp, &half, rt))
		return 1;
	{
		struct shm_policy pol = {.spin_us = 10000000};
		struct qvl_opts o = {.sq_entries = 256};
		struct testsrv s;
		struct qvl *q;
		if (ts_start(&s, &pol) || qvl_connect(s.path, &o, &q))
			return 1;
		pin(s.thr, 1);
		pthread_getcpuclockid(s.thr, &pclk);
		throughput(q, pclk, 200000, 32, &tcpu[0]);
		for (int r = 0; r < reps; r++) {
			tput[r] = throughput(q, pclk, 1000000, 32, &tcpu[r]) / 1e6;
			tcpu[r] /= 1e6;
		}
		qvl_disconnect(q);
		ts_stop(&s);
	}

	t = stat3(tput, reps);
	tc = stat3(tcpu, reps);
	if (tput_only) {
		emit("ring_nop_throughput_batch32", t, "Mreq/s", NULL, 0);
		emit("ring_nop_throughput_batch32_per_poller_cpu_s", tc, "Mreq/s", NULL, 0);
		return 0;
	}
	k50 = stat3(sock.p50, reps);
	b50 = stat3(busy.p50, reps);
	s50 = stat3(slp.p50, reps);
	emit("socket_rt_p50", k50, "ns", NULL, 0);
	emit("socket_rt_p99", stat3(sock.p99, reps), "ns", NULL, 0);
	emit("socket_rt_p99.9", stat3(sock.p999, reps), "ns", NULL, 0);
	emit("ring_busy_rt_p50", b50, "ns", "socket_rt_p50", k50.med);
	emit("ring_busy_rt_p99", stat3(busy.p99, reps), "ns", NULL, 0);
	emit("ring_busy_rt_p99.9", stat3(busy.p999, reps), "ns", NULL, 0);
	emit("ring_sleep_rt_p50", s50, "ns", "socket_rt_p50", k50.med);
	emit("ring_sleep_rt_p99", stat3(slp.p99, reps), "ns", NULL, 0);
	emit("ring_sleep_rt_p99.9", stat3(slp.p999, reps), "ns", NULL, 0);
	emit("ring_client_sleep_rt_p50", stat3(half.p50, reps), "ns", "socket_rt_p50", k50.med);
	emit("ring_client_sleep_rt_p99", stat3(half.p99, reps), "ns", NULL, 0);
	emit("ring_nop_throughput_batch32", t, "Mreq/s", NULL, 0);
	emit("ring_nop_throughput_batch32_per_poller_cpu_s", tc, "Mreq/s", NULL, 0);
	printf("ring round trip p50: busy %.0f ns (%.1fx below the socket's %.0f ns; target < 1000 "
	       "ns and >= 20x), "
	       "sleeping %.0f ns (%.2fx the socket; target <= 1x)\n",
	       b50.med, k50.med / b50.med, k50.med, s50.med, s50.med / k50.med);
	printf("NOP throughput, batches of 32: %.1f M/s wall (min %.1f, max %.1f; target >= 5), "
	       "%.1f M per second of poller CPU\n",
	       t.med, t.lo, t.hi, tc.med);
	free(rt);
	return 0;
}
