/* The fused decode kernels (kernels.h members added for decode at the
 * bandwidth bound) at every SIMD level this CPU has, against _ref, and _ref
 * against its definition. argmax: ragged lengths, many ties, NaN, -inf. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>
#include <time.h>

#include "claim.h"
#include "kern_impl.h"
#include "pool.h"
#include "tap.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* A vector with ties (values from a few levels), NaN and -inf sprinkled in
 * when `special`. */
static void fill(float *x, size_t n, int levels, bool special)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = (float)(rnd() % (uint32_t)levels) - (float)levels / 2;
		if (special && rnd() % 16 == 0)
			x[i] = rnd() % 2 ? NAN : -INFINITY;
	}
}

/* The definition: the first index of the largest non-NaN value. */
static size_t first_max(const float *x, size_t n)
{
	size_t b = 0;
	bool any = false;

	for (size_t i = 0; i < n; i++)
		if (!isnan(x[i]) && x[i] > -INFINITY && (!any || x[i] > x[b])) {
			b = i;
			any = true;
		}
	return b;
}

static void test_argmax_ref(void)
{
	float x[300], m;
	int bad = 0;

	for (int c = 0; c < 2000; c++) {
		size_t n = rnd() % 300;
		fill(x, n, 1 + (int)(rnd() % 8), c % 2);
		size_t i = qvl_argmax_ref(x, n, &m);
		bad += i != first_max(x, n) ||
		       (n && i < n && !isnan(x[i]) && x[i] > -INFINITY && m != x[i]);
	}
	for (size_t i = 0; i < 8; i++)
		x[i] = NAN;
	bad += qvl_argmax_ref(x, 8, &m) != 0 || m != -INFINITY;
	bad += qvl_argmax_ref(x, 0, &m) != 0 || m != -INFINITY;
	ok(!bad, "argmax_ref: first largest value, NaN skipped, 0 and -inf when none");
}

static void test_argmax(const struct qvl_kernels *K, const struct qvl_kernels *R)
{
	size_t big = 151936;
	float *x = malloc(big * sizeof(float)), m0, m1;
	int bad = 0, cases = 0;

	if (!x)
		exit(99);
	for (int c = 0; c < 3000; c++, cases++) {
		size_t n = c < 100 ? (size_t)c : rnd() % 700;
		size_t off = rnd() % 4; /* unaligned starts */
		fill(x + off, n, 1 + (int)(rnd() % 12), c % 3 == 0);
		size_t a = K->argmax(x + off, n, &m0), b = R->argmax(x + off, n, &m1);
		if (a != b || memcmp(&m0, &m1, sizeof(m0))) {
			if (bad++ < 5)
				diag("%s n=%zu: %zu (%g) vs ref %zu (%g)", K->name, n, a,
				     (double)m0, b, (double)m1);
		}
	}
	/* a vocabulary-sized row: the maximum at the very end, then tied early */
	fill(x, big, 1000, false);
	x[big - 1] = 1e6f;
	bad += K->argmax(x, big, &m0) != big - 1 || m0 != 1e6f;
	x[3] = 1e6f;
	bad += K->argmax(x, big, &m0) != 3;
	for (size_t i = 0; i < big; i++)
		x[i] = -INFINITY;
	bad += K->argmax(x, big, &m0) != 0 || m0 != -INFINITY;
	ok(!bad, "%s argmax = ref on %d vectors (ties, NaN, -inf, ragged, 152k)", K->name, cases);
	free(x);
}

/* Work sharing (src/claim.h): every column handed out exactly once, and a
 * thread that starts late finds its range taken by the others. */
struct share {
	struct eng_claim *cl;
	_Atomic unsigned char *seen;
	size_t n, chunk, min, late_got;
	int late;		/* this thread claims only once the others are done */
	_Atomic int others_done; /* seq_cst: read by the late thread below */
};

static void share_task(void *arg, int ith, int nth)
{
	struct share *s = arg;
	size_t a, b, got = 0;

	/* The late thread waits for the others to finish rather than for a
	 * fixed time: on a loaded machine 30 ms may pass before they run at
	 * all. Bounded at 20 s, after which it claims anyway (and the check
	 * below says what it got). */
	for (int i = 0; ith == s->late && i < 20000 && atomic_load(&s->others_done) < nth - 1;
	     i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	while (claim_next(s->cl, ith, nth, s->chunk, s->min, &a, &b)) {
		for (size_t i = a; i < b; i++)
			atomic_fetch_add(&s->seen[i], 1);
		got += b - a;
	}
	if (ith == s->late)
		s->late_got = got;
	else
		atomic_fetch_add(&s->others_done, 1);
}

static void test_claim(void)
{
	struct qvl_err err = {{0}};
	int bad = 0, runs = 0;

	for (int nth = 1; nth <= 3; nth++) {
		struct qvl_pool *p;
		if (qvl_pool_create(&p, nth, NULL, &err) < 0) {
			ok(0, "pool of %d: %s", nth, err.msg);
			return;
		}
		struct eng_claim *cl = aligned_alloc(64, (size_t)nth * sizeof(*cl));
		for (int c = 0; c < 40; c++, runs++) {
			struct share s = {
			    .cl = cl, .n = rnd() % 5000, .chunk = 1 + rnd() % 100, .late = -1};

			s.min = 1 + rnd() % s.chunk; /* halving claims down to min */
			s.seen = calloc(s.n + 1, 1);
			claim_init(cl, nth, s.n, 16);
			qvl_pool_run(p, share_task, &s);
			for (size_t i = 0; i < s.n; i++)
				bad += s.seen[i] != 1;
			free(s.seen);
		}
		if (nth > 1) {
			struct share s = {
			    .cl = cl, .n = 1 << 18, .chunk = 64, .min = 16, .late = nth - 1};
			s.seen = calloc(s.n, 1);
			claim_init(cl, nth, s.n, 16);
			qvl_pool_run(p, share_task, &s);
			bool once = true;
			for (size_t i = 0; i < s.n; i++)
				once &= s.seen[i] == 1;
			ok(s.late_got < s.n / (size_t)nth && once,
			   "%d threads: a thread late until the others were done got %zu of its "
			   "%zu columns (each column once: %s)",
			   nth, s.late_got, s.n / (size_t)nth, once ? "yes" : "no");
			free(s.seen);
		}
		free(cl);
		qvl_pool_destroy(p);
	}
	ok(!bad, "work sharing: every column claimed exactly once (%d runs, 1-3 threads)", runs);
}

int main(void)
{
	struct qvl_kernels R, K;

	qvl_kernels_get(&R, QVL_SIMD_REF);
	test_argmax_ref();
	test_claim();
	for (int l = QVL_SIMD_AVX2; l <= QVL_SIMD_AVX512; l++) {
		if (qvl_kernels_get(&K, (enum qvl_simd_level)l) < 0) {
			skip(1, "level %s not supported here",
			     qvl_simd_name((enum qvl_simd_level)l));
			continue;
		}
		test_argmax(&K, &R);
	}
	return done_testing();
}
