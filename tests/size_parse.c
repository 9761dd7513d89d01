/* qvl_parse_size / qvl_parse_bw (src/size.c): the one parser behind qvlctl's
 * --cpu-mem, qvl.conf's sizes and qvl-http's --max-body: every form it
 * accepts, and a message naming the option and the value for the rest. */
#include <errno.h>
#include <string.h>

#include "tap.h"
#include "util.h"

static int size_is(const char *v, bool pct, uint64_t want)
{
	struct qvl_err e = {{0}};
	uint64_t x = 0;
	int rc = qvl_parse_size("--opt", v, pct, &x, &e);

	return ok(rc == 0 && x == want, "size '%s' = %llu (got %llu, rc %d %s)", v,
		  (unsigned long long)want, (unsigned long long)x, rc, e.msg);
}

static int size_bad(const char *v, bool pct, const char *msg)
{
	struct qvl_err e = {{0}};
	uint64_t x = 12345;
	int rc = qvl_parse_size("--opt", v, pct, &x, &e);

	return ok(rc == -EINVAL && x == 12345 && strstr(e.msg, msg) != NULL,
		  "size '%s' refused: \"%s\"", v, e.msg);
}

int main(void)
{
	struct qvl_err e = {{0}};
	uint64_t x = 0;

	size_is("4096", false, 4096);
	size_is("64K", false, 64ull << 10);
	size_is("64k", false, 64ull << 10);
	size_is("32M", false, 32ull << 20);
	size_is("512MiB", false, 512ull << 20);
	size_is("1G", false, 1ull << 30);
	size_is("1.5M", false, 3ull << 19);
	size_is("2T", false, 2ull << 40);
	size_is("100B", false, 100);
	size_bad("", false, "--opt: '': not a size (like 8G, 512M, 64K or bytes)");
	size_bad("5x", false, "--opt: '5x': not a size (like 8G, 512M, 64K or bytes)");
	size_bad("-1", false, "--opt: '-1': not a size");
	size_bad(" 1M", false, "--opt: ' 1M': not a size");
	size_bad("1M ", false, "not a size");
	size_bad("M", false, "not a size");
	size_bad("99999999999T", false, "not a size");
	size_bad("5x", true,
		 "--opt: '5x': not a size (like 8G, 512M, 64K or bytes, or 25% of RAM)");
	/* a share of RAM only where the option takes one */
	size_bad("25%", false, "--opt: '25%': a size here, not a share of RAM");
	ok(qvl_parse_size("--opt", "25%", true, &x, &e) == 0 && x > 0, "25%% of RAM: %llu",
	   (unsigned long long)x);
	size_bad("0%", true, "a share of RAM is 1%..100%");
	size_bad("101%", true, "a share of RAM is 1%..100%");
	size_bad("1.5%", true, "a share of RAM is 1%..100%");
	/* bandwidths: powers of 1000, a rate tail */
	ok(qvl_parse_bw("--bw", "12.5G", &x, &e) == 0 && x == 12500000000ull, "bw 12.5G");
	ok(qvl_parse_bw("--bw", "800MB/s", &x, &e) == 0 && x == 800000000ull, "bw 800MB/s");
	ok(qvl_parse_bw("--bw", "0", &x, &e) == -EINVAL &&
	       strstr(e.msg, "--bw: '0': not a bandwidth") != NULL,
	   "bw 0 refused: \"%s\"", e.msg);
	return done_testing();
}
