/* SHA-256 for tests: the library's (src/sha256.c) with the hex digest the
 * tests compare against sha256sum files. */
#ifndef QVL_TEST_SHA256_H
#define QVL_TEST_SHA256_H

#include <stdio.h>

#include "../src/sha256.h"

#define sha256	      qvl_sha256
#define sha256_init   qvl_sha256_init
#define sha256_update qvl_sha256_update

/* Finish and write 64 lowercase hex digits plus NUL into hex[65]. */
static inline void sha256_hex(struct qvl_sha256 *s, char hex[65])
{
	uint8_t d[QVL_SHA256_LEN];

	qvl_sha256_final(s, d);
	for (int i = 0; i < QVL_SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

#endif
