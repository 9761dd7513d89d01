/* SHA-256 (FIPS 180-4), plain C: the content key of images in the vision
 * and prefix caches (mm_cache.c), where keys come from clients and must
 * not collide by design; the tests' file hashes (tests/sha256.h). */
#ifndef QVL_SHA256_H
#define QVL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define QVL_SHA256_LEN 32

struct qvl_sha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed so far */
	unsigned char buf[64];
	size_t nbuf;
};

void qvl_sha256_init(struct qvl_sha256 *s);
void qvl_sha256_update(struct qvl_sha256 *s, const void *data, size_t n);
/* Finish: the digest, big-endian words as the standard writes them. */
void qvl_sha256_final(struct qvl_sha256 *s, uint8_t out[QVL_SHA256_LEN]);

#endif
