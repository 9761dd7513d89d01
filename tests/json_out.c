/* The daemon's bounded JSON appender (src/daemon/json_out.c): what the
 * STATS and STATUS replies and qvld's sections are written with. Escapes,
 * and truncation at every capacity: always NUL-terminated inside the
 * buffer, never a byte past it, the full length still counted. Its strings
 * and json_write_string()'s (a FILE) come from the one escaper of src/json.h:
 * the same bytes for every byte value. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/json_out.h"
#include "json.h"
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

	plan(6);
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

	/* every byte value 1..255 (a NUL ends json_put_str's C string), with
	 * runs between the escapes: the bounded buffer and the FILE agree */
	char all[2 * 255 + 1], big[4096], *mem = NULL;
	size_t memlen = 0, n = 0;
	for (int c = 1; c < 256; c++) {
		all[n++] = (char)c;
		all[n++] = 'a';
	}
	all[n] = 0;
	FILE *f = open_memstream(&mem, &memlen);
	if (f) {
		json_write_string(f, all, n);
		fclose(f);
	}
	o = (struct json_out){big, sizeof(big), 0};
	json_put_str(&o, all);
	size_t bl = json_finish(&o);
	ok(mem && bl == memlen && !memcmp(big, mem, bl),
	   "bytes 1..255: json_put_str and json_write_string write the same %zu bytes", bl);
	static const char nl_want[] = "\"a\\nb\\u001f\\\\\\\"\"";
	o = (struct json_out){big, sizeof(big), 0};
	json_put_str(&o, "a\nb\x1f\\\"");
	json_finish(&o);
	ok(!strcmp(big, nl_want), "newline as \\n, 0x1f as \\u001f: %s", big);
	free(mem);
	return done_testing();
}
