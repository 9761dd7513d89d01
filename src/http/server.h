/* qvl-http: the HTTP side (libmicrohttpd): routing, bounded bodies, the
 * API key, and the answers of the bridge's jobs. */
#ifndef QVL_HTTP_SERVER_H
#define QVL_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/bridge.h"

struct server_opts {
	const struct sockaddr *addr;
	socklen_t addr_len;
	const char *api_key; /* NULL: no key needed */
	size_t max_body;
	size_t max_image;
	unsigned max_conns;
	unsigned timeout_s; /* idle connection timeout */
};

struct server;

/* Start listening; *port receives the port bound (useful with port 0). */
int server_start(const struct server_opts *o, struct bridge *b, struct server **out,
		 uint16_t *port);
/* Stop accepting new connections (before bridge_stop). */
void server_quiesce(struct server *s);
void server_stop(struct server *s);

#endif
