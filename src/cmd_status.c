/* qvlctl status / shutdown: the daemon's state (model, clients, queue,
 * thread placement) and an orderly stop. */
#include "config.h"

#include <getopt.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl_common.h"
#include "util.h"

static void print_status(const char *json, const struct ctl_args *a)
{
	(void)a;
	ctl_print_flat(stdout, json, "status");
}

int cmd_status(int argc, char **argv)
{
	return ctl_query("status", argc, argv, QVL_OP_STATUS, false, print_status);
}

int cmd_shutdown(int argc, char **argv)
{
	struct ctl_args a = {0};
	struct qvl *q;
	struct qvl_cqe cqe;
	char *out;
	int rc = ctl_parse_simple("shutdown", argc, argv, &a, false);

	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = ctl_connect("shutdown", a.socket, &q)) != CTL_OK)
		return rc;
	rc = ctl_simple(q, QVL_OP_SHUTDOWN, 0, a.timeout, &cqe, &out);
	if (rc < 0 || cqe.res < 0) {
		int e = rc < 0 ? rc : cqe.res;
		fprintf(stderr, "qvlctl shutdown: %s\n", qvl_strerror(e));
		qvl_disconnect(q);
		return rc < 0 ? ctl_status_of(rc) : CTL_FAIL;
	}
	/* the daemon drains, then closes our socket: EOF means it is gone */
	if (!a.no_wait) {
		struct pollfd p = {.fd = qvl_fd(q), .events = POLLIN};
		double t_end = qvl_now() + a.timeout;
		for (;;) {
			int ms = (int)((t_end - qvl_now()) * 1000);
			if (ms <= 0) {
				fprintf(stderr, "qvlctl shutdown: still draining after %.0f s\n",
					a.timeout);
				qvl_disconnect(q);
				return CTL_FAIL;
			}
			if (poll(&p, 1, ms) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
				char b;
				if (recv(p.fd, &b, 1, MSG_DONTWAIT) <= 0)
					break;
			}
		}
	}
	qvl_disconnect(q);
	return CTL_OK;
}
