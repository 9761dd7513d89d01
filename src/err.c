#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int qvl_errf(struct qvl_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int qvl_err_prefix(struct qvl_err *err, int code, const char *fmt, ...)
{
	char old[sizeof(err->msg)], pre[sizeof(err->msg)];
	size_t n;
	va_list ap;

	if (!err)
		return code;
	memcpy(old, err->msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	/* pre, then ": ", then as much of the old message as fits */
	n = strlen(pre);
	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, pre, n);
	memcpy(err->msg + n, ": ", 2);
	n += 2;
	old[sizeof(old) - 1 - n] = 0; /* truncate what no longer fits */
	memcpy(err->msg + n, old, strlen(old) + 1);
	return code;
}

const char *qvl_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
	case -EBADMSG:
		return "corrupt or malformed data";
	case -E2BIG:
		return "value too large";
	case -EOVERFLOW:
		return "size overflow";
	default:
		return strerror(code < 0 ? -code : code);
	}
}
