/* What every qvlctl command shares on its command line: one style for option
 * errors ("qvlctl CMD: message", then "Try 'qvlctl CMD --help'.", exit 2),
 * number options checked against their valid range, text read from a file
 * or standard input, output files opened before the work that fills them,
 * and the thread count checked against the CPUs this process may use. */
#ifndef QVL_CLI_H
#define QVL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "kernels.h" /* enum qvl_precision */

#define CLI_USAGE 2 /* exit status of a usage error (1: bad input or failure) */

/* One command's option parser: getopt_long with getopt's own messages off. */
struct cli {
	const char *cmd; /* "run", for messages */
	int argc;
	char **argv;
	const char *shortopts; /* without the leading ':' (may be "") */
	const struct option *opts;
};

/* Start parsing (resets getopt). */
void cli_init(struct cli *c, const char *cmd, int argc, char **argv, const char *shortopts,
	      const struct option *opts);
/* The next option as getopt_long returns it, -1 at the end; '?' for an
 * unknown option and ':' for a missing value, which cli_opt_error reports. */
int cli_next(struct cli *c);
/* Report the unknown or incomplete option cli_next just returned; returns 2. */
int cli_opt_error(const struct cli *c, int ch);

/* "qvlctl CMD: <message>" and the --help hint on stderr; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The command's one operand after the options (argv[optind]) in *out:
 * 0, or "missing WHAT" / "unexpected argument" reported as cli_usage does
 * (returns 2). */
int cli_operand(const char *cmd, int argc, char **argv, const char *what, const char **out);
/* "qvlctl CMD: <err or errno text>" on stderr; returns 1. */
int cli_fail(const char *cmd, int rc, const struct qvl_err *err);

/* Strict numbers: the whole value must parse and lie in the range, else the
 * message names the option, the value and the range, and they return 2. */
int cli_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t max,
	    int64_t *out);
int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
/* --precision: bf16 or exact, else the usage error (2). */
int cli_precision(const char *cmd, const char *s, enum qvl_precision *out);
/* A finite real in [lo, hi] (open ends when lo_open / hi_open). */
int cli_real(const char *cmd, const char *opt, const char *s, double lo, bool lo_open, double hi,
	     bool hi_open, double *out);

/* --threads N above the usable CPUs: warn and return the CPU count (more
 * threads than CPUs only time-share them); otherwise N. */
int cli_threads(const char *cmd, int threads);
/* run and bench: --threads (0: not given) with --cpus is a usage error
 * (--cpus runs one thread per CPU listed); else *threads via cli_threads.
 * Returns 0 or 2. */
int cli_threads_cpus(const char *cmd, int *threads, const char *cpus);

/* The whole of a file, or of standard input when path is "-", as a
 * malloc'd NUL-terminated buffer (at most max_bytes). */
int cli_read_text(const char *path, size_t max_bytes, char **out, size_t *len, struct qvl_err *err);

/* Output files: opened before the work that fills them, so a bad path fails
 * first, but truncated only by cli_write_close, so a run that fails in
 * between leaves an existing file as it was; cli_write_close reports why a
 * write failed (errno text). */
int cli_open_out(FILE **f, const char *opt, const char *path, struct qvl_err *err);
int cli_write_close(FILE *f, const char *opt, const char *path, const void *data, size_t bytes,
		    struct qvl_err *err);

#endif
