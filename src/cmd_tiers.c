/* qvlctl tiers: the daemon's tiered pool (offload/): where each shard of
 * the pack is, the streaming window and what it measured. The same report
 * `qvlctl run --cpu-mem` prints for an in-process run. */
#include "config.h"

#include <stdio.h>

#include "commands.h"
#include "ctl_common.h"

static void print_tiers(const char *json, const struct ctl_args *a)
{
	(void)a;
	ctl_print_flat(stdout, json, "tiers");
}

int cmd_tiers(int argc, char **argv)
{
	return ctl_query_member("tiers", argc, argv, QVL_OP_STATUS, false, "tiers", print_tiers);
}
