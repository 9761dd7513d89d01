/* Command-line helpers shared by the qvlctl commands (see cli.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pool.h"
#include "util.h"

void cli_init(struct cli *c, const char *cmd, int argc, char **argv, const char *shortopts,
	      const struct option *opts)
{
	c->cmd = cmd;
	c->argc = argc;
	c->argv = argv;
	c->shortopts = shortopts ? shortopts : "";
	c->opts = opts;
	optind = 1;
	opterr = 0;
}

int cli_next(struct cli *c)
{
	char spec[64];

	/* the leading ':' makes getopt tell a missing value (':') from an
	 * unknown option ('?') */
	snprintf(spec, sizeof(spec), ":%s", c->shortopts);
	return getopt_long(c->argc, c->argv, spec, c->opts, NULL);
}

int cli_opt_error(const struct cli *c, int ch)
{
	const char *arg = optind > 0 && optind <= c->argc ? c->argv[optind - 1] : "?";
	char shortname[3] = {'-', (char)optopt, 0};

	/* a short option may be in the middle of a cluster: name the letter */
	if (strncmp(arg, "--", 2) && optopt > 0 && optopt < 128)
		arg = shortname;
	if (ch == ':')
		return cli_usage(c->cmd, "option '%s' needs a value", arg);
	return cli_usage(c->cmd, "unknown option '%s'", arg);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "qvlctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'qvlctl %s --help'.\n", cmd);
	return CLI_USAGE;
}

int cli_operand(const char *cmd, int argc, char **argv, const char *what, const char **out)
{
	if (optind >= argc)
		return cli_usage(cmd, "missing %s", what);
	if (optind + 1 < argc)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind + 1]);
	*out = argv[optind];
	return 0;
}

int cli_fail(const char *cmd, int rc, const struct qvl_err *err)
{
	fprintf(stderr, "qvlctl %s: %s\n", cmd,
		err && err->msg[0] ? err->msg : qvl_strerror(rc < 0 ? rc : -EINVAL));
	return 1;
}

int cli_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v;

	if (qvl_parse_i64(s, INT64_MIN, INT64_MAX, &v) < 0)
		return cli_usage(cmd, "bad %s '%s': not an integer (want %lld..%lld)", opt, s,
				 (long long)min, (long long)max);
	if (v < min || v > max)
		return cli_usage(cmd, "bad %s '%s': out of range (%lld..%lld)", opt, s,
				 (long long)min, (long long)max);
	*out = v;
	return 0;
}

int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
	if (qvl_parse_u64(s, out) < 0)
		return cli_usage(
		    cmd, "bad %s '%s': want an unsigned 64-bit integer, decimal or 0x hex", opt, s);
	return 0;
}

int cli_precision(const char *cmd, const char *s, enum qvl_precision *out)
{
	if (qvl_precision_parse(s, out) < 0)
		return cli_usage(cmd, "bad --precision '%s': want bf16 or exact", s);
	return 0;
}

int cli_real(const char *cmd, const char *opt, const char *s, double lo, bool lo_open, double hi,
	     bool hi_open, double *out)
{
	double v;
	char range[96];

	snprintf(range, sizeof(range), "%s%g, %g%s", lo_open ? "(" : "[", lo, hi,
		 hi_open ? ")" : "]");
	if (qvl_parse_double(s, &v) < 0)
		return cli_usage(cmd, "bad %s '%s': not a number (want %s)", opt, s, range);
	if (v < lo || v > hi || (lo_open && v == lo) || (hi_open && v == hi))
		return cli_usage(cmd, "bad %s '%s': out of range %s", opt, s, range);
	*out = v;
	return 0;
}

int cli_threads(const char *cmd, int threads)
{
	char why[192];

	threads = qvl_threads_fit(threads, why, sizeof(why));
	if (why[0])
		fprintf(stderr, "qvlctl %s: %s\n", cmd, why);
	return threads;
}

int cli_threads_cpus(const char *cmd, int *threads, const char *cpus)
{
	if (*threads && cpus)
		return cli_usage(cmd,
				 "--threads %d with --cpus %s: --cpus runs one thread per CPU "
				 "listed; give one of them",
				 *threads, cpus);
	if (*threads)
		*threads = cli_threads(cmd, *threads);
	return 0;
}

static int read_stream(FILE *f, const char *name, size_t max_bytes, char **out, size_t *len,
		       struct qvl_err *err)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);

	if (!buf)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", name);
	for (;;) {
		if (n == cap) {
			char *nb = cap < max_bytes ? realloc(buf, cap * 2 + 1) : NULL;

			if (!nb) {
				free(buf);
				if (cap >= max_bytes)
					return qvl_errf(err, -EFBIG, "%s: longer than %zu bytes",
							name, max_bytes);
				return qvl_errf(err, -ENOMEM, "%s: out of memory", name);
			}
			buf = nb;
			cap *= 2;
		}
		size_t k = fread(buf + n, 1, cap - n, f);

		n += k;
		if (k == 0) {
			if (ferror(f)) {
				int e = errno ? errno : EIO;

				free(buf);
				return qvl_errf(err, -e, "%s: read: %s", name, strerror(e));
			}
			break;
		}
	}
	if (n > max_bytes) {
		free(buf);
		return qvl_errf(err, -EFBIG, "%s: longer than %zu bytes", name, max_bytes);
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

int cli_read_text(const char *path, size_t max_bytes, char **out, size_t *len, struct qvl_err *err)
{
	if (!strcmp(path, "-"))
		return read_stream(stdin, "standard input", max_bytes, out, len, err);
	return qvl_read_file(path, max_bytes, out, len, err);
}

int cli_open_out(FILE **f, const char *opt, const char *path, struct qvl_err *err)
{
	/* not truncated yet: a run that fails before its write leaves the
	 * file as it was (cli_write_close truncates) */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);

	*f = fd < 0 ? NULL : fdopen(fd, "wb");
	if (!*f) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return qvl_errf(err, -e, "%s %s: %s", opt, path, strerror(e));
	}
	return 0;
}

int cli_write_close(FILE *f, const char *opt, const char *path, const void *data, size_t bytes,
		    struct qvl_err *err)
{
	int e = 0;

	/* a regular file opened by cli_open_out still holds its old bytes
	 * (EINVAL: a device or a pipe, nothing to truncate) */
	if (ftruncate(fileno(f), 0) != 0 && errno != EINVAL)
		e = errno;
	errno = 0;
	if (!e && (fwrite(data, 1, bytes, f) != bytes || fflush(f) != 0))
		e = errno ? errno : EIO;
	if (fclose(f) != 0 && !e)
		e = errno ? errno : EIO;
	if (e)
		return qvl_errf(err, -e, "%s %s: write failed: %s", opt, path, strerror(e));
	return 0;
}
