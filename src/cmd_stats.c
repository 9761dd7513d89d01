/* qvlctl stats: the daemon's counters as key: value lines, the daemon's
 * JSON (--json), or Prometheus text exposition (--prometheus). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl_common.h"
#include "json.h"
#include "prometheus.h"

static void print_stats(const char *json, const struct ctl_args *a)
{
	struct json_doc d;
	struct qvl_err err = {{0}};
	if (!a->prometheus) {
		ctl_print_flat(stdout, json, "stats");
		return;
	}
	if (json_parse(&d, json, strlen(json), "stats", &err) < 0) {
		fprintf(stderr, "qvlctl stats: %s\n", err.msg);
		return;
	}
	stats_prometheus(stdout, &d);
	json_free(&d);
}

int cmd_stats(int argc, char **argv)
{
	return ctl_query("stats", argc, argv, QVL_OP_STATS, true, print_stats);
}
