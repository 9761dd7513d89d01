/* Error reporting shared by every module.
 *
 * Functions return 0 or a negative errno and, when they can say more, fill a
 * struct qvl_err whose message names the file, the field and the offending
 * value: "model.safetensors: tensor 'x': data offset 912 past end of file
 * (800 bytes)". */
#ifndef QVL_ERR_H
#define QVL_ERR_H

#include <errno.h>
#include <stddef.h>

struct qvl_err {
	char msg[512];
};

/* Format a message into err (if non-NULL) and return code (a negative errno),
 * so that callers can write `return qvl_errf(err, -EINVAL, "...", ...);`. */
int qvl_errf(struct qvl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "ctx: <old message>". Returns code. */
int qvl_err_prefix(struct qvl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Text for a negative errno, including qvl's own meanings (-EBADMSG: corrupt data). */
const char *qvl_strerror(int code);

#endif
