/* qvld's STATS JSON as Prometheus text exposition (see prometheus.h). */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "prometheus.h"

/* Prometheus: qvl_<key> for top-level numbers, labelled families for the
 * maps and the per-client array. Counters end in _total. */
void stats_prometheus(FILE *f, const struct json_doc *d)
{
	static const char *counters[] = {"requests",
					 "completed",
					 "failed",
					 "refused_connections",
					 "prompt_tokens",
					 "generated_tokens",
					 "steps",
					 "step_rows",
					 "preemptions",
					 "prefix_hits",
					 "prefix_tokens_reused",
					 "kv_evictions",
					 "split_parts",
					 "vision_cache_hits",
					 "vision_cache_misses"};
	uint32_t c = 1;

	for (uint32_t i = 0; i < d->tok[0].count; i++) {
		char key[64];
		uint32_t v = c + 1;
		const struct json_tok *t = &d->tok[v];
		json_str(d, c, key, sizeof(key));
		if (t->type == JSON_NUMBER) {
			bool ctr = false;
			for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++)
				ctr |= !strcmp(key, counters[k]);
			fprintf(f, "# TYPE qvl_%s%s %s\nqvl_%s%s %.*s\n", key, ctr ? "_total" : "",
				ctr ? "counter" : "gauge", key, ctr ? "_total" : "", (int)t->len,
				d->text + t->start);
		} else if (t->type == JSON_OBJECT) {
			const char *fam = !strcmp(key, "errors") ? "errors" : "requests_by_opcode";
			const char *lab = !strcmp(key, "errors") ? "kind" : "opcode";
			fprintf(f, "# TYPE qvl_%s_total counter\n", fam);
			uint32_t k = v + 1;
			for (uint32_t j = 0; j < t->count; j++, k = d->tok[k + 1].end) {
				char name[64];
				json_str(d, k, name, sizeof(name));
				fprintf(f, "qvl_%s_total{%s=\"%s\"} %.*s\n", fam, lab, name,
					(int)d->tok[k + 1].len, d->text + d->tok[k + 1].start);
			}
		} else if (t->type == JSON_ARRAY && !strcmp(key, "clients")) {
			static const char *fld[] = {"requests", "tokens", "errors"};
			for (size_t n = 0; n < 3; n++) {
				fprintf(f, "# TYPE qvl_client_%s_total counter\n", fld[n]);
				for (uint32_t j = 0; j < t->count; j++) {
					uint32_t o = json_at(d, v, j);
					int64_t id = 0, pid = 0, x = 0;
					json_int64(d, json_get(d, o, "id"), &id);
					json_int64(d, json_get(d, o, "pid"), &pid);
					json_int64(d, json_get(d, o, fld[n]), &x);
					fprintf(f,
						"qvl_client_%s_total{client=\"%lld\",pid=\"%lld\"} "
						"%lld\n",
						fld[n], (long long)id, (long long)pid,
						(long long)x);
				}
			}
		}
		c = t->end;
	}
}
