/* qvl-http: an OpenAI-compatible HTTP front door for qvld, as an ordinary
 * libqvl client (qvl-http(8)). main: options, the bridge, the server, and
 * a clean stop on SIGTERM / SIGINT. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "http/bridge.h"
#include "http/options.h"
#include "http/server.h"
#include "qvl.h"

/* Every connection is a descriptor: raise the soft limit to the hard one. */
static void raise_nofile(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= (rlim_t)want + 64)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
	struct http_opts o;
	struct bridge *b = NULL;
	struct server *s = NULL;
	sigset_t set;
	uint16_t port = 0;
	int rc, sig;

	rc = http_parse_options(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	/* the signals go to sigwait below, never to the threads */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(o.max_conns);

	struct bridge_opts bo = {.socket = o.socket, .arena_size = o.arena_size};
	if ((rc = bridge_create(&bo, &b)) < 0) {
		fprintf(stderr, "qvl-http: %s\n", qvl_strerror(rc));
		http_free_options(&o);
		return 1;
	}
	struct server_opts so = {.addr = (const struct sockaddr *)&o.addr,
				 .addr_len = o.addr_len,
				 .api_key = o.api_key,
				 .max_body = o.max_body,
				 .max_image = o.max_image,
				 .max_conns = o.max_conns,
				 .timeout_s = o.timeout_s};
	if ((rc = server_start(&so, b, &s, &port)) < 0) {
		fprintf(stderr,
			"qvl-http: --listen %s: cannot listen there (in use, or not "
			"an address of this host)\n",
			o.listen);
		bridge_destroy(b);
		http_free_options(&o);
		return 1;
	}
	fprintf(stderr, "qvl-http: listening on %s (port %u)%s\n", o.listen, port,
		o.api_key ? ", API key required" : "");
	while (sigwait(&set, &sig))
		;
	fprintf(stderr, "qvl-http: signal %d: stopping\n", sig);
	server_quiesce(s);
	bridge_stop(b);
	server_stop(s);
	bridge_destroy(b);
	http_free_options(&o);
	return 0;
}
