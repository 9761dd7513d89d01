/* The daemon's bounded JSON appender (src/daemon/json_out.c): what the
 * STATS and STATUS replies and qvld's sections are written with. Escapes,
 * and truncation at every capacity: always NUL-terminated inside the
 * buffer, never a byte past it, the full length still counted. */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "daemon/json_out.h"
#include "tap.h"

/* {"state":"failed","error":"a \"b\"\\c<TAB>d"} written into cap bytes */
static size_t write_obj(char *buf, size_t cap, struct json_out *o)
{
	*o = (struct json_out){buf, cap, 0};
	json_put(o, "{\"state\":\"%s\"", "failed");
	json_put(o, ",\"error\":");
	json_put_str(o, "a \"b\"\\c\td");
	json_put(o, "}");
	return json_finish(o);
}

int main(void)
{
	static const char want[] = "{\"state\":\"failed\",\"error\":\"a \\\"b\\\"\\\\c\\u0009d\"}";
	const size_t len = sizeof(want) - 1;
	char buf[128];
	struct json_out o;
	bool trunc_ok = true;

	plan(4);
	memset(buf, 'x', sizeof(buf));
	ok(write_obj(buf, sizeof(buf), &o) == len && !strcmp(buf, want),
	   "quotes, backslash and a control character escaped: %s", buf);
	ok(o.n == len, "length counted: %zu", o.n);
	for (size_t cap = 1; cap <= len + 1; cap++) {
		size_t r;
		memset(buf, 'x', sizeof(buf));
		r = write_obj(buf, cap, &o);
		trunc_ok = trunc_ok && r == (cap <= len ? cap - 1 : len) && buf[r] == 0 &&
			   !memcmp(buf, want, r) && buf[cap] == 'x' && o.n == len;
	}
	ok(trunc_ok,
	   "caps 1..%zu: a NUL-terminated prefix, nothing past cap, the full length "
	   "still counted",
	   len + 1);
	o = (struct json_out){buf, 0, 0};
	json_put_str(&o, "abc");
	ok(json_finish(&o) == 0 && o.n == 5, "cap 0: nothing written, 5 bytes counted");
	return done_testing();
}
