/* qvl-http's command line (qvl-http(8)). */
#ifndef QVL_HTTP_OPTIONS_H
#define QVL_HTTP_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct http_opts {
	const char *socket; /* NULL: libqvl's default rule */
	const char *listen; /* as given, for messages */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char *api_key; /* read from --api-key-file (malloc'd), or NULL */
	size_t max_body, max_image;
	unsigned max_conns, timeout_s;
	uint64_t arena_size;
	int rt_priority;  /* SCHED_FIFO priority of the relay threads, 0: off */
	bool rt_explicit; /* given on the command line: failing to get it is an error */
};

/* 0 to run, 1 after --help / --version (exit 0), or 2 after a usage
 * error (printed). */
int http_parse_options(int argc, char **argv, struct http_opts *o);
void http_free_options(struct http_opts *o);

#endif
