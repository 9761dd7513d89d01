/* qvl-http: base64 and data: URLs (see b64.h). */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/b64.h"

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int b64_decode(const char *s, size_t n, size_t max, char **out, size_t *out_len)
{
	size_t full, rem, len, o = 0;
	uint8_t *b;

	*out = NULL;
	*out_len = 0;
	/* up to two '=' of padding, only at the end */
	if (n && s[n - 1] == '=')
		n--;
	if (n && s[n - 1] == '=')
		n--;
	full = n / 4;
	rem = n % 4;
	if (rem == 1)
		return -EINVAL;
	len = 3 * full + (rem ? rem - 1 : 0); /* n <= SIZE_MAX: no overflow */
	if (len > max)
		return -E2BIG;
	if (!len)
		return -EINVAL;
	b = malloc(len);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		size_t k = n - i < 4 ? n - i : 4;
		for (size_t j = 0; j < 4; j++) {
			int d = j < k ? b64_val((unsigned char)s[i + j]) : 0;
			if (d < 0) {
				free(b);
				return -EINVAL;
			}
			v = v << 6 | (uint32_t)d;
		}
		b[o++] = (uint8_t)(v >> 16);
		if (k > 2)
			b[o++] = (uint8_t)(v >> 8);
		if (k > 3)
			b[o++] = (uint8_t)v;
	}
	*out = (char *)b;
	*out_len = len;
	return 0;
}

int data_url_split(const char *url, size_t n, const char **mime, size_t *mime_len, const char **b64,
		   size_t *b64_len)
{
	const char *comma, *semi;

	if (n < 5 || strncasecmp(url, "data:", 5))
		return -EINVAL;
	comma = memchr(url, ',', n);
	if (!comma || comma - url < 12) /* "data:" + ";base64" at least */
		return -EINVAL;
	if (strncasecmp(comma - 7, ";base64", 7))
		return -EINVAL;
	*mime = url + 5;
	semi = memchr(*mime, ';', (size_t)(comma - *mime));
	*mime_len = (size_t)(semi - *mime); /* semi is found: comma - 7 is one */
	*b64 = comma + 1;
	*b64_len = n - (size_t)(comma + 1 - url);
	return 0;
}
