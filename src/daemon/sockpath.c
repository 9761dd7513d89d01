/* The default socket path, shared by qvld and qvlctl (see sockpath.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/sockpath.h"

char *qvld_default_socket(void)
{
	const char *s = getenv("QVL_SOCKET"), *rt = getenv("XDG_RUNTIME_DIR");
	char buf[4096];

	if (s && *s)
		return strdup(s);
	if (getuid() == 0)
		return strdup("/run/qvld/qvld.sock");
	if (rt && *rt == '/')
		snprintf(buf, sizeof(buf), "%s/qvld/qvld.sock", rt);
	else
		snprintf(buf, sizeof(buf), "/tmp/qvld-%u/qvld.sock", (unsigned)getuid());
	return strdup(buf);
}
