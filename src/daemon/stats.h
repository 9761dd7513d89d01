/* qvld's counters: requests, tokens, latency percentiles, errors by kind,
 * per-client counts, and the JSON that QVL_OP_STATS / QVL_OP_STATUS return
 * (qvlctl stats / status print it, or turn it into Prometheus text).
 * One mutex: updates happen once per request, not per token. */
#ifndef QVLD_STATS_H
#define QVLD_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct qvld_stats;
struct qvl_kv_usage;

int qvld_stats_create(struct qvld_stats **out);
void qvld_stats_destroy(struct qvld_stats *s);

void qvld_stats_client(struct qvld_stats *s, uint32_t id, pid_t pid, uid_t uid, int connected);
void qvld_stats_submit(struct qvld_stats *s, uint32_t client, uint8_t opcode);
/* A request finished: res 0 or -errno; latency from submission. */
void qvld_stats_done(struct qvld_stats *s, uint32_t client, int res, uint32_t n_prompt,
		     uint32_t n_gen, double latency_s, double decode_s);
void qvld_stats_refused(struct qvld_stats *s);
/* Count and log one failed request. */
void qvld_log_request_error(struct qvld_stats *s, uint32_t client, uint64_t user_data, int rc,
			    const char *msg);
void qvld_stats_set_gauges(struct qvld_stats *s, int queued, int active);
/* A step ran some layers of a long prefill's chunk (split_parts). */
void qvld_stats_split_part(struct qvld_stats *s);
/* A step ran some blocks of an image's encode (encode_parts). */
void qvld_stats_encode_part(struct qvld_stats *s);
/* The KV pool after a step, and the scheduler's preemptions so far. */
void qvld_stats_kv(struct qvld_stats *s, const struct qvl_kv_usage *u, uint64_t preemptions);
struct qvl_mm_cache_stats;
/* The engine's image cache (multimodal.h), after a request's admission. */
void qvld_stats_vision(struct qvld_stats *s, const struct qvl_mm_cache_stats *v);
/* One batched forward pass: batch sequences, rows (positions) in it. */
void qvld_stats_step(struct qvld_stats *s, int batch, size_t rows, double seconds);

/* Static facts for STATUS: set once at startup. */
/* The JSON objects other modules add to the replies, by name: "tiers", the
 * tiered pool's report (tier_json(), what `qvlctl tiers` shows), in STATS
 * and STATUS; "vision", the vision tower's state, in STATUS. */
enum qvld_section { QVLD_SECTION_TIERS, QVLD_SECTION_VISION, QVLD_SECTIONS };
/* Section sec is written by fn (NUL-terminated into buf, truncated at cap,
 * returning the length), called under the stats lock. */
void qvld_stats_set_section(struct qvld_stats *s, enum qvld_section sec,
			    size_t (*fn)(void *ctx, char *buf, size_t cap), void *ctx);
void qvld_stats_set_info(struct qvld_stats *s, const char *model, const char *socket,
			 const char *placement, int threads, int ctx, int max_seqs);

/* JSON into buf (NUL-terminated, truncated at cap). Returns the length. */
size_t qvld_stats_json(struct qvld_stats *s, char *buf, size_t cap);
size_t qvld_status_json(struct qvld_stats *s, char *buf, size_t cap);

#endif
