/* The vision-output cache: the tower's rows (main and DeepStack) for images
 * already encoded, keyed by a hash of the preprocessed pixels and their
 * grid, bounded in bytes, least recently used evicted first. One per
 * engine (engine option vision_cache_bytes), used by multimodal.c; its
 * counters are in qvl_mm_cache_stats() (multimodal.h). Thread-safe. */
#ifndef QVL_MM_CACHE_H
#define QVL_MM_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct mm_cache;
struct qvl_pixels;
struct qvl_mm_cache_stats;

int mm_cache_create(struct mm_cache **out, size_t max_bytes);
void mm_cache_destroy(struct mm_cache *c);
/* The image's content key: its pixels and grid (never 0). */
uint64_t mm_cache_key(const struct qvl_pixels *px);
/* Copy the cached rows of key into main[n][H] and ds[k] + (k * ds_stride)
 * for k < K. 0 on a hit, -ENOENT on a miss (or a shape mismatch). */
int mm_cache_get(struct mm_cache *c, uint64_t key, const int grid[3], size_t n, size_t H, int K,
		 float *main, float *ds, size_t ds_stride);
/* Keep a copy (nothing when it alone exceeds the bound, or out of memory). */
void mm_cache_put(struct mm_cache *c, uint64_t key, const int grid[3], size_t n, size_t H, int K,
		  const float *main, const float *ds, size_t ds_stride);
void mm_cache_stats(struct mm_cache *c, struct qvl_mm_cache_stats *st);

struct qvl_engine;
/* The engine's cache (src/engine.c), NULL when vision_cache_bytes is 0. */
struct mm_cache *eng_vcache(const struct qvl_engine *e);

#endif
