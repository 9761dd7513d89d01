/* qvl-http: an OpenAI-compatible HTTP front door for qvld, as an ordinary
 * libqvl client (qvl-http(8)). main: options, the bridge, the server, and
 * a clean stop on SIGTERM / SIGINT. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
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

/* The two threads the first token crosses (the ring reaper, then
 * libmicrohttpd's event loop) are relays: microseconds of work per token,
 * but each must get a CPU at once. On a machine where qvld's compute
 * threads hold every CPU, a normal thread waits for the end of their time
 * slice (EEVDF protects it: 2-12 ms measured on 2 vCPUs); a SCHED_FIFO
 * thread preempts them. Threads created after this call inherit the
 * policy (the kernel copies it at clone()), so it runs before the bridge and
 * the server start (qvl-http starts no other program). Without the right
 * (root, CAP_SYS_NICE or RLIMIT_RTPRIO, which qvl-http.service sets) the
 * default quietly stays normal; an explicit --rt-priority fails. */
static int enter_realtime(const struct http_opts *o)
{
	struct sched_param sp = {.sched_priority = o->rt_priority};

	if (!o->rt_priority)
		return 0;
	if (!sched_setscheduler(0, SCHED_FIFO, &sp))
		return 0;
	if (!o->rt_explicit) {
		fprintf(stderr,
			"qvl-http: note: no real-time priority (%s): the first token may "
			"wait for a CPU (qvl-http(8), --rt-priority)\n",
			strerror(errno));
		return 0;
	}
	fprintf(stderr, "qvl-http: --rt-priority %d: %s (needs root, CAP_SYS_NICE or RLIMIT_RTPRIO)\n",
		o->rt_priority, strerror(errno));
	return -1;
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
	if (enter_realtime(&o) < 0) {
		http_free_options(&o);
		return 1;
	}

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
