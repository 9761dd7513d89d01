/* The environment's developer knobs (see env.h). */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "util.h"

#define ENV_WARNED_MAX 32

void qvl_env_warn(const char *name, const char *value, const char *want)
{
	/* "NAME=value" of the warnings given; a knob read per tensor or per
	 * engine warns once. Past ENV_WARNED_MAX distinct ones, warn always. */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char *warned[ENV_WARNED_MAX];
	static int nwarned;
	char *key = NULL;
	bool seen = false;

	if (asprintf(&key, "%s=%s", name, value) < 0)
		key = NULL;
	pthread_mutex_lock(&lock);
	for (int i = 0; key && i < nwarned && !seen; i++)
		seen = !strcmp(warned[i], key);
	if (!seen && key && nwarned < ENV_WARNED_MAX) {
		warned[nwarned++] = key;
		key = NULL;
	}
	pthread_mutex_unlock(&lock);
	free(key);
	if (!seen)
		fprintf(stderr, "qvl: %s='%s' ignored: expected %s\n", name, value, want);
}

bool qvl_env_flag(const char *name, bool dflt)
{
	const char *v = getenv(name);

	if (!v || !*v)
		return dflt;
	if ((v[0] == '0' || v[0] == '1') && !v[1])
		return v[0] == '1';
	qvl_env_warn(name, v, dflt ? "0 or 1 (default 1)" : "0 or 1 (default 0)");
	return dflt;
}

bool qvl_env_uint(const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *v = getenv(name);
	int64_t x;
	char want[96];

	if (!v || !*v)
		return false;
	if (hi <= INT64_MAX && !qvl_parse_i64(v, (int64_t)lo, (int64_t)hi, &x)) {
		*out = (uint64_t)x;
		return true;
	}
	snprintf(want, sizeof(want), "an integer in [%" PRIu64 ", %" PRIu64 "]", lo, hi);
	qvl_env_warn(name, v, want);
	return false;
}

bool qvl_env_held(const char *name, long at)
{
	const char *f = getenv(name);
	FILE *fp;
	long n = 0;

	if (!f || !*f || !(fp = fopen(f, "r")))
		return false;
	if (fscanf(fp, "%ld", &n) != 1)
		n = 0;
	fclose(fp);
	return n <= at;
}

void qvl_env_hold(const char *name, long at, const atomic_bool *stop)
{
	for (int k = 0; k < 60000 && qvl_env_held(name, at); k++) {
		/* relaxed: a flag; the caller's join orders the rest */
		if (stop && atomic_load_explicit(stop, memory_order_relaxed))
			return;
		usleep(10000);
	}
}
