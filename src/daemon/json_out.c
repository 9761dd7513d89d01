/* The bounded JSON appender (see json_out.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon/json_out.h"
#include "json.h"

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

/* json_escape()'s sink: what fits before cap, the whole length counted */
static void out_sink(void *ctx, const char *p, size_t n)
{
	struct json_out *o = ctx;

	if (o->n < o->cap)
		memcpy(o->b + o->n, p, o->cap - o->n < n ? o->cap - o->n : n);
	o->n += n;
}

void json_put_str(struct json_out *o, const char *s)
{
	json_escape(out_sink, o, s, strlen(s));
}

size_t json_finish(struct json_out *o)
{
	if (!o->cap)
		return 0;
	o->b[o->n < o->cap ? o->n : o->cap - 1] = 0;
	return o->n < o->cap ? o->n : o->cap - 1;
}
