/* What the qvlctl commands that talk to qvld share: the socket path, the
 * connection with script-friendly exit codes, one request/response round
 * trip, and JSON string output. */
#ifndef QVL_CTL_COMMON_H
#define QVL_CTL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qvl.h"

/* Exit statuses of the daemon commands (qvld(8), CLIENT COMMANDS). */
#define CTL_OK	      0
#define CTL_FAIL      1
#define CTL_USAGE     2
#define CTL_NO_DAEMON 3 /* not running, refused us, or went away mid-request */

/* Connect to the socket (NULL: the default rule, qvld(8)). Returns CTL_OK
 * or prints "qvlctl CMD: ..." and returns CTL_NO_DAEMON / CTL_FAIL. */
int ctl_connect(const char *cmd, const char *socket, struct qvl **q);

/* Exit status for an error from the ring (-ENOTCONN & co: CTL_NO_DAEMON). */
int ctl_status_of(int rc);

/* Send a request without inputs (STATUS, STATS, SHUTDOWN) with an output
 * region of out_len bytes, wait up to timeout_s for its CQE; *out (malloc'd,
 * NUL-terminated) receives cqe.text_len bytes of output. */
int ctl_simple(struct qvl *q, uint8_t opcode, uint64_t out_len, double timeout_s,
	       struct qvl_cqe *cqe, char **out);
/* The daemon's JSON (STATUS / STATS) as "key: value" lines. */
int ctl_print_flat(FILE *f, const char *json, const char *what);

/* The options of status / stats / shutdown. */
struct ctl_args {
	const char *socket;
	bool json, prometheus, no_wait;
	double timeout;
};
/* 0, a usage exit status, or -1 after --help. */
int ctl_parse_simple(const char *cmd, int argc, char **argv, struct ctl_args *a, bool stats);
/* Parse the options, send opcode, print the JSON answer with print (or
 * as is with --json). Returns the exit status. */
int ctl_query(const char *cmd, int argc, char **argv, uint8_t opcode, bool stats,
	      void (*print)(const char *json, const struct ctl_args *a));
/* The same showing only the object member of the answer (qvlctl tiers:
 * "tiers" of the status); CTL_FAIL when the answer has none. */
int ctl_query_member(const char *cmd, int argc, char **argv, uint8_t opcode, bool stats,
		     const char *member, void (*print)(const char *json, const struct ctl_args *a));

#endif
