/* Placement of the scheduler and poller threads (see placement.h). */
#include "config.h"

#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/placement.h"

static hwloc_bitmap_t usable(hwloc_topology_t t)
{
	hwloc_bitmap_t set = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(t));
	hwloc_bitmap_t bound = hwloc_bitmap_alloc();

	if (set && bound && hwloc_get_cpubind(t, bound, HWLOC_CPUBIND_PROCESS) == 0 &&
	    hwloc_bitmap_intersects(set, bound))
		hwloc_bitmap_and(set, set, bound);
	hwloc_bitmap_free(bound);
	return set;
}

static int first_pu(hwloc_topology_t t, hwloc_obj_t core, hwloc_const_bitmap_t ok, int skip)
{
	for (hwloc_obj_t pu = NULL;
	     (pu = hwloc_get_next_obj_inside_cpuset_by_type(t, core->cpuset, HWLOC_OBJ_PU, pu));)
		if (hwloc_bitmap_isset(ok, pu->os_index) && (int)pu->os_index != skip)
			return (int)pu->os_index;
	return -1;
}

int qvld_place(int threads, const char *cpus, struct qvld_placement *pl)
{
	hwloc_topology_t t;
	hwloc_bitmap_t ok = NULL, used = NULL;
	int rc = 0;

	pl->sched_pu = pl->poller_pu = -1;
	snprintf(pl->poller_why, sizeof(pl->poller_why), "not pinned (hwloc unavailable)");
	if (hwloc_topology_init(&t) < 0)
		return -ENODEV;
	if (hwloc_topology_load(t) < 0 || !(ok = usable(t)) || !(used = hwloc_bitmap_alloc())) {
		rc = -ENODEV;
		goto out;
	}
	/* the cores the compute threads occupy */
	if (cpus && *cpus) {
		hwloc_bitmap_t list = hwloc_bitmap_alloc();
		if (list && hwloc_bitmap_list_sscanf(list, cpus) == 0) {
			pl->sched_pu = hwloc_bitmap_first(list);
			for (int c = hwloc_bitmap_first(list); c >= 0;
			     c = hwloc_bitmap_next(list, c)) {
				hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t, (unsigned)c);
				hwloc_obj_t core =
				    pu ? hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_CORE, pu)
				       : NULL;
				if (core)
					hwloc_bitmap_or(used, used, core->cpuset);
			}
		}
		hwloc_bitmap_free(list);
	} else {
		int n = 0;
		for (hwloc_obj_t c = NULL;
		     (c = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_CORE, c));) {
			if (!hwloc_bitmap_intersects(c->cpuset, ok))
				continue;
			if (threads > 0 && n >= threads)
				break;
			if (n++ == 0)
				pl->sched_pu = first_pu(t, c, ok, -1);
			hwloc_bitmap_or(used, used, c->cpuset);
		}
	}
	/* 1: an idle core */
	for (hwloc_obj_t c = NULL; (c = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_CORE, c));)
		if (hwloc_bitmap_intersects(c->cpuset, ok) &&
		    !hwloc_bitmap_intersects(c->cpuset, used)) {
			pl->poller_pu = first_pu(t, c, ok, -1);
			snprintf(pl->poller_why, sizeof(pl->poller_why),
				 "core %u has no compute thread", c->logical_index);
			goto out;
		}
	/* 2: the SMT sibling of the scheduler's core */
	hwloc_obj_t spu =
	    pl->sched_pu >= 0 ? hwloc_get_pu_obj_by_os_index(t, (unsigned)pl->sched_pu) : NULL;
	hwloc_obj_t score = spu ? hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_CORE, spu) : NULL;
	if (score) {
		int sib = first_pu(t, score, ok, pl->sched_pu);
		if (sib >= 0) {
			pl->poller_pu = sib;
			snprintf(pl->poller_why, sizeof(pl->poller_why),
				 "SMT sibling of the scheduler's core %u", score->logical_index);
			goto out;
		}
	}
	/* 3: share the scheduler's PU */
	pl->poller_pu = pl->sched_pu;
	snprintf(pl->poller_why, sizeof(pl->poller_why),
		 "the scheduler's PU: every core computes and there is no SMT sibling");
out:
	hwloc_bitmap_free(ok);
	hwloc_bitmap_free(used);
	hwloc_topology_destroy(t);
	return rc;
}

int qvld_pin_self(int pu)
{
	hwloc_topology_t t;
	int rc = 0;

	if (pu < 0)
		return 0;
	if (hwloc_topology_init(&t) < 0)
		return -ENODEV;
	if (hwloc_topology_load(t) == 0) {
		hwloc_bitmap_t set = hwloc_bitmap_alloc();
		if (set) {
			hwloc_bitmap_only(set, (unsigned)pu);
			if (hwloc_set_cpubind(t, set, HWLOC_CPUBIND_THREAD) < 0)
				rc = -errno;
			hwloc_bitmap_free(set);
		}
	}
	hwloc_topology_destroy(t);
	return rc;
}
