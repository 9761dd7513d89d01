/* Sizes and bandwidths as users write them ("8G", "512MiB", "25%", "12.5G"),
 * one parser for every option and configuration key that takes one
 * (qvlctl --cpu-mem, qvl.conf, qvl-http --max-body...): the same forms
 * accepted and the same message everywhere. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

/* Strip one of the accepted unit tails ("B/s", "/s", "iB", "B") from the
 * end of s (len n); returns the new length. */
static size_t strip_tail(const char *s, size_t n, bool rate)
{
	static const char *rates[] = {"B/s", "/s"}, *sizes[] = {"iB", "B"};
	const char **t = rate ? rates : sizes;

	for (int i = 0; i < 2; i++) {
		size_t k = strlen(t[i]);
		if (n > k && !strcmp(s + n - k, t[i]))
			return n - k;
	}
	return n;
}

/* "NUMBER[K|M|G|T]" with base 1024 or 1000; fractions allowed ("1.5G"). */
static int parse_scaled(const char *v, size_t n, double base, uint64_t *out)
{
	static const char sfx[] = "KMGT";
	char buf[48], *end;
	double x, mul = 1;
	const char *p;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = 0;
	char u = (char)(buf[n - 1] & ~0x20); /* upper case; 0 for a space */
	if (u && (p = strchr(sfx, u))) {
		for (long i = 0; i <= p - sfx; i++)
			mul *= base;
		buf[--n] = 0;
	}
	if (!n || !(isdigit((unsigned char)buf[0]) || buf[0] == '.'))
		return -EINVAL; /* no sign, no blanks */
	x = strtod(buf, &end);
	if (*end || !isfinite(x) || x < 0 || x * mul >= 1.8e19)
		return -ERANGE;
	*out = (uint64_t)(x * mul);
	return 0;
}

int qvl_parse_size(const char *opt, const char *v, bool pct_ok, uint64_t *out, struct qvl_err *err)
{
	size_t n = v ? strlen(v) : 0;

	if (n > 1 && v[n - 1] == '%') {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		uint64_t pct;

		if (!pct_ok)
			return qvl_errf(err, -EINVAL, "%s: '%s': a size here, not a share of RAM",
					opt, v);
		if (parse_scaled(v, n - 1, 1, &pct) < 0 || pct < 1 || pct > 100 ||
		    strpbrk(v, "KMGTkmgt."))
			return qvl_errf(err, -EINVAL, "%s: '%s': a share of RAM is 1%%..100%%", opt,
					v);
		if (pages <= 0 || psz <= 0)
			return qvl_errf(err, -EINVAL, "%s: '%s': cannot read the RAM size", opt, v);
		*out = (uint64_t)pages * (uint64_t)psz / 100 * pct;
		return 0;
	}
	if (!n || parse_scaled(v, strip_tail(v, n, false), 1024, out) < 0)
		return qvl_errf(err, -EINVAL,
				"%s: '%s': not a size (like 8G, 512M, 64K or bytes%s)", opt,
				v ? v : "", pct_ok ? ", or 25% of RAM" : "");
	return 0;
}

int qvl_parse_bw(const char *opt, const char *v, uint64_t *out, struct qvl_err *err)
{
	size_t n = v ? strlen(v) : 0;

	if (!n || parse_scaled(v, strip_tail(v, n, true), 1000, out) < 0 || *out == 0)
		return qvl_errf(err, -EINVAL,
				"%s: '%s': not a bandwidth (bytes per second, like 25G or 800M)",
				opt, v ? v : "");
	return 0;
}
