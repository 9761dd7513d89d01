/* A bounded JSON appender for the daemon's replies (stats.c's STATS and
 * STATUS objects, the sections qvld adds to them): output past cap is
 * dropped while the length still counts, so a caller writes without a
 * length check per piece and learns at the end whether it all fitted. */
#ifndef QVLD_JSON_OUT_H
#define QVLD_JSON_OUT_H

#include <stddef.h>

struct json_out {
	char *b;
	size_t cap, n; /* n: what was asked for, may exceed cap */
};

/* printf-style append. */
__attribute__((format(printf, 2, 3))) void json_put(struct json_out *o, const char *fmt, ...);
/* s as a quoted JSON string, escaped by json_escape() (src/json.h), the one
 * escaper of qvl (the daemon's own strings: paths, placement, error messages). */
void json_put_str(struct json_out *o, const char *s);
/* NUL-terminate (truncating at cap) and return the length written. */
size_t json_finish(struct json_out *o);

#endif
