/* Minimal TAP helpers for qvl's tests: plan(), ok(), is_int(), diag(), skip_all().
 * Each test program prints "1..N" and one "ok"/"not ok" line per check; the
 * exit status is 1 if any check failed. Header-only on purpose. */
#ifndef QVL_TAP_H
#define QVL_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed, tap_planned;

static inline void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

/* No plan up front: call done_testing() at the end. */
static inline int done_testing(void)
{
	if (!tap_planned)
		printf("1..%d\n", tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

__attribute__((format(printf, 2, 3))) static inline int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

#define is_int(got, want, ...)                                                           \
	({                                                                               \
		long long _g = (long long)(got), _w = (long long)(want);                 \
		int _r = ok(_g == _w, __VA_ARGS__);                                      \
		if (!_r)                                                                 \
			diag("got %lld, want %lld", _g, _w);                             \
		_r;                                                                      \
	})

__attribute__((format(printf, 1, 2), noreturn)) static inline void skip_all(const char *fmt, ...)
{
	va_list ap;
	printf("1..0 # SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(0);
}

__attribute__((format(printf, 2, 3))) static inline void skip(int n, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	for (int i = 0; i < n; i++)
		printf("ok %d # SKIP %s\n", ++tap_n, why);
	fflush(stdout);
}

/* Environment helpers for test data locations (see tests/tests.am). */
static inline const char *test_env(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

#endif
