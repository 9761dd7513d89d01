/* qvl-http: command-line options (see options.h and qvl-http(8)). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/options.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: qvl-http [OPTIONS]\n"
		   "An OpenAI-compatible HTTP server in front of qvld (qvl-http(8)).\n"
		   "\n"
		   "  --socket PATH          qvld's socket (default: qvld's own rule)\n"
		   "  --listen ADDR:PORT     address to serve (default 127.0.0.1:8080;\n"
		   "                         [::1]:PORT for IPv6, port 0 picks one)\n"
		   "  --api-key-file FILE    require \"Authorization: Bearer KEY\" (first line)\n"
		   "  --max-body SIZE        largest request body (default 32M)\n"
		   "  --max-image SIZE       largest decoded image (default 16M)\n"
		   "  --max-connections N    connections at once (default 4096)\n"
		   "  --timeout S            idle connection timeout (default 60)\n"
		   "  --arena-mb N           ring arena to ask qvld for (default 256)\n"
		   "  --rt-priority N        SCHED_FIFO priority of the two relay threads\n"
		   "                         (default 1 where allowed; 0: normal scheduling)\n"
		   "  --help, --version\n");
}

static int bad(const char *opt, const char *v, const char *why)
{
	fprintf(stderr, "qvl-http: %s: invalid value '%s'%s%s\n", opt, v, why ? ": " : "",
		why ? why : "");
	return 2;
}

/* A size option of 1 byte to 1 GiB: the forms and messages of
 * qvl_parse_size (util.h), like qvlctl's and qvld's. */
static int size_opt(const char *opt, const char *v, size_t *out)
{
	struct qvl_err err = {{0}};
	uint64_t x;

	if (qvl_parse_size(opt, v, false, &x, &err) < 0) {
		fprintf(stderr, "qvl-http: %s\n", err.msg);
		return 2;
	}
	if (x < 1 || x > (1ull << 30)) {
		fprintf(stderr, "qvl-http: %s: '%s': not 1 byte to 1G\n", opt, v);
		return 2;
	}
	*out = (size_t)x;
	return 0;
}

static int parse_listen(const char *s, struct http_opts *o)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	int64_t port;
	size_t hl;

	if (!colon || qvl_parse_i64(colon + 1, 0, 65535, &port) < 0)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	memset(&o->addr, 0, sizeof(o->addr));
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&o->addr;
		host[hl - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		o->addr_len = sizeof(*a);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)&o->addr;
	if (inet_pton(AF_INET, hl ? host : "127.0.0.1", &a->sin_addr) != 1)
		return -EINVAL;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	o->addr_len = sizeof(*a);
	return 0;
}

static int read_key(const char *path, struct http_opts *o)
{
	struct qvl_err e = {{0}};
	char *buf;
	size_t len;

	if (qvl_read_file(path, 4096, &buf, &len, &e) < 0) {
		fprintf(stderr, "qvl-http: --api-key-file: %s\n", e.msg);
		return 2;
	}
	buf[strcspn(buf, "\r\n")] = 0;
	if (!*buf || strlen(buf) != strcspn(buf, " \t")) {
		fprintf(stderr,
			"qvl-http: --api-key-file: %s: the first line must be the key "
			"(no spaces)\n",
			path);
		free(buf);
		return 2;
	}
	o->api_key = buf;
	return 0;
}

int http_parse_options(int argc, char **argv, struct http_opts *o)
{
	enum { SOCK = 256, LISTEN, KEY, BODY, IMAGE, CONNS, TMO, ARENA, RTPRIO, HELP, OPT_VERSION };
	static const struct option lo[] = {
	    {"socket", 1, NULL, SOCK},
	    {"listen", 1, NULL, LISTEN},
	    {"api-key-file", 1, NULL, KEY},
	    {"max-body", 1, NULL, BODY},
	    {"max-image", 1, NULL, IMAGE},
	    {"max-connections", 1, NULL, CONNS},
	    {"timeout", 1, NULL, TMO},
	    {"arena-mb", 1, NULL, ARENA},
	    {"rt-priority", 1, NULL, RTPRIO},
	    {"help", 0, NULL, HELP},
	    {"version", 0, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	int64_t v;
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->listen = "127.0.0.1:8080";
	o->max_body = 32u << 20;
	o->max_image = 16u << 20;
	o->max_conns = 4096;
	o->timeout_s = 60;
	o->arena_size = 256ull << 20;
	o->rt_priority = 1;
	o->rt_explicit = false;
	parse_listen(o->listen, o);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case SOCK:
			o->socket = optarg;
			break;
		case LISTEN:
			if (parse_listen(optarg, o) < 0)
				return bad("--listen", optarg, "want ADDR:PORT or [IPV6]:PORT");
			o->listen = optarg;
			break;
		case KEY:
			free(o->api_key);
			o->api_key = NULL;
			if ((rc = read_key(optarg, o)))
				return rc;
			break;
		case BODY:
			if ((rc = size_opt("--max-body", optarg, &o->max_body)))
				return rc;
			break;
		case IMAGE:
			if ((rc = size_opt("--max-image", optarg, &o->max_image)))
				return rc;
			break;
		case CONNS:
			if (qvl_parse_i64(optarg, 1, 1000000, &v) < 0)
				return bad("--max-connections", optarg, "1..1000000");
			o->max_conns = (unsigned)v;
			break;
		case TMO:
			if (qvl_parse_i64(optarg, 1, 86400, &v) < 0)
				return bad("--timeout", optarg, "1..86400 seconds");
			o->timeout_s = (unsigned)v;
			break;
		case ARENA:
			if (qvl_parse_i64(optarg, 1, 65536, &v) < 0)
				return bad("--arena-mb", optarg, "1..65536");
			o->arena_size = (uint64_t)v << 20;
			break;
		case RTPRIO:
			if (qvl_parse_i64(optarg, 0, 99, &v) < 0)
				return bad("--rt-priority", optarg, "0..99 (0: normal scheduling)");
			o->rt_priority = (int)v;
			o->rt_explicit = true;
			break;
		case HELP:
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("qvl-http %s\n", PACKAGE_VERSION);
			return 1;
		default:
			fprintf(stderr, "qvl-http: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qvl-http: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

void http_free_options(struct http_opts *o)
{
	free(o->api_key);
	o->api_key = NULL;
}
