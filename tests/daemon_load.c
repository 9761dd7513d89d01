/* Load: C client processes (fork) each send R short greedy requests to a
 * live qvld (QVL_SOCKET), at most 4 in flight each, and check that every
 * request completes exactly once, with res 0 and all its tokens; nothing
 * is lost or duplicated. The spread of the per-client mean latency is the
 * fairness figure: printed as a diag line and as JSON on stderr.
 *   daemon_load [C [R]]      (default 32 x 50; daemon_load.sh runs 32 x 200) */
#include "config.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_client.h"
#include "tap.h"
#include "util.h"

#define INFLIGHT 4

struct client_result {
	int completed, lost, dup, bad;
	double lat_mean, lat_max;
};

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void client(const char *sock, int id, int n, int fd)
{
	struct client_result res = {0};
	struct qvl_req **r = calloc((size_t)n, sizeof(*r));
	double *t = calloc((size_t)n, sizeof(double));
	uint8_t *seen = calloc((size_t)n, 1);
	struct qvl *q;
	int next = 0, done = 0, inflight = 0;

	if (!r || !t || !seen || qvl_connect(sock, NULL, &q) < 0)
		_exit(2);
	while (done < n) {
		while (next < n && inflight < INFLIGHT) {
			int32_t ids[16];
			size_t len = 4 + (size_t)((id + next) % 9);
			uint32_t max = 2 + (uint32_t)((id * 7 + next) % 3);
			dc_ids(ids, len, (uint64_t)id * 100003 + (uint64_t)next);
			t[next] = qvl_now();
			if (dc_submit_ids(q, (uint64_t)next, ids, len, max, 0, &r[next]) < 0)
				_exit(3);
			next++;
			inflight++;
		}
		struct qvl_cqe c;
		if (dc_next(q, &c, 60) < 0)
			break; /* the rest are lost */
		if (c.flags & QVL_CQE_F_MORE)
			continue;
		if (c.user_data >= (uint64_t)n) {
			res.bad++;
			continue;
		}
		if (seen[c.user_data]++) {
			res.dup++;
			continue;
		}
		double lat = qvl_now() - t[c.user_data];
		uint32_t want = 2 + (uint32_t)((id * 7 + (int)c.user_data) % 3);
		if (c.res != 0 || c.n_tokens != want) {
			if (!res.bad)
				fprintf(
				    stderr,
				    "# client %d request %llu: res %d, %u of %u tokens, stop %u\n",
				    id, (unsigned long long)c.user_data, c.res, c.n_tokens, want,
				    c.stop);
			res.bad++;
		}
		res.lat_mean += lat;
		res.lat_max = lat > res.lat_max ? lat : res.lat_max;
		res.completed++;
		qvl_release(r[c.user_data]);
		done++;
		inflight--;
	}
	res.lost = n - res.completed;
	res.lat_mean = res.completed ? res.lat_mean / res.completed : 0;
	if (write(fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(4);
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *sock = getenv("QVL_SOCKET");
	int C = argc > 1 ? atoi(argv[1]) : 32, R = argc > 2 ? atoi(argv[2]) : 50;
	struct client_result *res;
	double *means;
	pid_t *pids;
	int p[2];

	plan(3);
	if (C < 1 || C > 1024 || R < 1 || R > 100000 || !sock || pipe(p) < 0) {
		ok(0, "usage: daemon_load [C [R]] with QVL_SOCKET set");
		return done_testing();
	}
	res = calloc((size_t)C, sizeof(*res));
	means = calloc((size_t)C, sizeof(double));
	pids = calloc((size_t)C, sizeof(pid_t));
	double t0 = qvl_now();
	for (int i = 0; i < C; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(p[0]);
			client(sock, i, R, p[1]);
		}
	}
	close(p[1]);
	int got = 0;
	while (got < C && read(p[0], &res[got], sizeof(res[0])) == (ssize_t)sizeof(res[0]))
		got++;
	for (int i = 0; i < C; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	double wall = qvl_now() - t0;
	int completed = 0, lost = 0, dup = 0, bad = 0;
	double lmax = 0;
	for (int i = 0; i < got; i++) {
		completed += res[i].completed;
		lost += res[i].lost;
		dup += res[i].dup;
		bad += res[i].bad;
		means[i] = res[i].lat_mean;
		lmax = res[i].lat_max > lmax ? res[i].lat_max : lmax;
	}
	lost += (C - got) * R;
	ok(got == C && completed == C * R && lost == 0,
	   "%d clients x %d requests: %d completed, %d lost, in %.2f s", C, R, completed, lost,
	   wall);
	ok(dup == 0 && bad == 0, "none duplicated (%d) or wrong (%d: res != 0 or a short count)",
	   dup, bad);
	qsort(means, (size_t)got, sizeof(double), cmp_d);
	double lo = got ? means[0] : 0, med = got ? means[got / 2] : 0,
	       hi = got ? means[got - 1] : 0;
	diag("per-client mean latency: min %.4f s, median %.4f s, max %.4f s (max/min %.2f); "
	     "slowest request %.4f s",
	     lo, med, hi, lo > 0 ? hi / lo : 0, lmax);
	fprintf(stderr,
		"{\"name\":\"load_%dx%d\",\"clients\":%d,\"requests\":%d,\"wall_s\":%.3f,"
		"\"client_latency_min_s\":%.5f,\"client_latency_median_s\":%.5f,"
		"\"client_latency_max_s\":%.5f,\"spread\":%.3f}\n",
		C, R, C, C * R, wall, lo, med, hi, lo > 0 ? hi / lo : 0);
	/* fairness: no client's mean latency is far from the others' (every
	 * client sends the same mix, so round-robin should even them out) */
	ok(got == C && lo > 0 &&
		   hi / lo<4.0, "fair: per-client mean latencies within 4x (%.2f)", lo> 0
	       ? hi / lo
	       : 0);
	free(res);
	free(means);
	free(pids);
	return done_testing();
}
