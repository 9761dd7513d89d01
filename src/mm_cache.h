/* The image cache of an engine, used by multimodal.c:
 *  - every image source (the encoded file as the client sent it, or its RGB
 *    rows) is known by a key: the SHA-256 of the bytes, their kind and size
 *    and the preprocessing parameters, plus the byte count, compared too.
 *    It is computed before anything decodes the image; a key seen before
 *    gives the decoded size (so the prompt's grid) without decoding;
 *  - each key gets a serial number, the image's content key in the prompt's
 *    img_keys (prefix reuse of KV pages, kvcache.h): distinct images never
 *    share one, whatever their bytes, since serials are never reused;
 *  - the tower's rows (main and DeepStack) of the images encoded last,
 *    bounded in bytes (engine option vision_cache_bytes; 0: none kept),
 *    least recently used dropped first; a hit skips decode, preprocessing
 *    and the tower;
 *  - the vision tower itself, built once per engine on first use.
 * Keys are remembered (without rows) for the last MM_MAX_KEYS images.
 * Thread-safe; the tower is lent to one caller at a time. */
#ifndef QVL_MM_CACHE_H
#define QVL_MM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "kernels.h" /* enum qvl_precision */
#include "sha256.h"

#define MM_MAX_KEYS 1024

struct mm_cache;
struct qvl_mm_cache_stats;
struct qvl_pp_params;
struct qvl_model;
struct qvl_pool;
struct qvl_vision;
struct qvl_vision_opts;

struct mm_key {
	uint8_t digest[QVL_SHA256_LEN];
	uint64_t len; /* bytes hashed from the source */
};

int mm_cache_create(struct mm_cache **out, size_t max_bytes);
void mm_cache_destroy(struct mm_cache *c);

/* The key of an image source: an encoded file (w == 0) of len bytes, or RGB8
 * rows (w x h, stride bytes apart: the w * 3 bytes of each row are hashed),
 * for the preprocessing parameters pp. */
void mm_key_make(struct mm_key *k, const void *data, size_t len, int w, int h, size_t stride,
		 const struct qvl_pp_params *pp);

/* A key seen before: its decoded size and serial (marks it recently used). */
bool mm_cache_known(struct mm_cache *c, const struct mm_key *k, int *w, int *h, uint64_t *serial);
/* Remember key k of an image decoded to w x h; returns its serial (the
 * existing one when known). 0 only when out of memory (no key then). */
uint64_t mm_cache_intern(struct mm_cache *c, const struct mm_key *k, int w, int h);

/* Copy the cached rows of k into main[n][H] and ds[k] + (k * ds_stride) for
 * k < K. 0 on a hit, -ENOENT on a miss (or a shape mismatch). Hits and
 * misses are counted only when rows are kept at all (max_bytes > 0). */
int mm_cache_get(struct mm_cache *c, const struct mm_key *k, const int grid[3], size_t n, size_t H,
		 int K, float *main, float *ds, size_t ds_stride);
/* Keep a copy of the rows of interned key k (nothing when they alone
 * exceed the bound, or out of memory, or k was forgotten meanwhile). */
void mm_cache_put(struct mm_cache *c, const struct mm_key *k, const int grid[3], size_t n, size_t H,
		  int K, const float *main, const float *ds, size_t ds_stride);
void mm_cache_stats(struct mm_cache *c, struct qvl_mm_cache_stats *st);

/* Borrow the engine's vision tower (built on the first call, for model m
 * with options vo over pool); give it back with mm_cache_vision_put(). */
int mm_cache_vision_get(struct mm_cache *c, const struct qvl_model *m, struct qvl_pool *pool,
			const struct qvl_vision_opts *vo, struct qvl_vision **v,
			struct qvl_err *err);
void mm_cache_vision_put(struct mm_cache *c);

struct qvl_engine;
/* The engine's cache (src/engine.c): every engine has one. */
struct mm_cache *eng_vcache(const struct qvl_engine *e);

#endif
