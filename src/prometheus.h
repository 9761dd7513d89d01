/* qvld's STATS JSON (QVL_OP_STATS) as Prometheus text exposition: shared
 * by `qvlctl stats --prometheus` and qvl-http's GET /metrics. */
#ifndef QVL_PROMETHEUS_H
#define QVL_PROMETHEUS_H

#include <stdio.h>

#include "json.h"

/* qvl_<key> for top-level numbers (counters end in _total), labelled
 * families for the maps and the per-client array. */
void stats_prometheus(FILE *f, const struct json_doc *d);

#endif
