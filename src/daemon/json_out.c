/* The bounded JSON appender (see json_out.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "daemon/json_out.h"

void json_put(struct json_out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(o->b + (o->n < o->cap ? o->n : o->cap), o->n < o->cap ? o->cap - o->n : 0,
			  fmt, ap);
	va_end(ap);
	if (r > 0)
		o->n += (size_t)r;
}

void json_put_str(struct json_out *o, const char *s)
{
	json_put(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			json_put(o, "\\%c", c);
		else if (c < 0x20)
			json_put(o, "\\u%04x", c);
		else
			json_put(o, "%c", c);
	}
	json_put(o, "\"");
}

size_t json_finish(struct json_out *o)
{
	if (!o->cap)
		return 0;
	o->b[o->n < o->cap ? o->n : o->cap - 1] = 0;
	return o->n < o->cap ? o->n : o->cap - 1;
}
