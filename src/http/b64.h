/* qvl-http: image_url data: URLs (RFC 2397) with base64 bodies. */
#ifndef QVL_HTTP_B64_H
#define QVL_HTTP_B64_H

#include <stddef.h>

/* Decode base64 (RFC 4648 standard alphabet, padding optional) s[0..n) into
 * a fresh buffer of *out_len bytes. -EINVAL on a bad character or length,
 * -E2BIG if the result would exceed max, -ENOMEM. */
int b64_decode(const char *s, size_t n, size_t max, char **out, size_t *out_len);

/* Split "data:MIME;base64,DATA": *mime (not NUL-terminated, *mime_len
 * bytes) and the base64 text after the comma. -EINVAL if url is not a
 * base64 data: URL. */
int data_url_split(const char *url, size_t n, const char **mime, size_t *mime_len, const char **b64,
		   size_t *b64_len);

#endif
