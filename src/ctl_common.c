/* Shared by the qvlctl daemon commands (see ctl_common.h). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"
#include "json.h"
#include "util.h"
#include "daemon/sockpath.h"

int ctl_status_of(int rc)
{
	switch (rc) {
	case -ENOENT:
	case -ECONNREFUSED:
	case -ENOTCONN:
	case -ECONNRESET:
	case -EPIPE:
		return CTL_NO_DAEMON;
	default:
		return CTL_FAIL;
	}
}

int ctl_connect(const char *cmd, const char *socket, struct qvl **q)
{
	char *dflt = NULL;
	int rc;

	if (!socket || !*socket)
		socket = dflt = qvld_default_socket();
	if (!socket) {
		fprintf(stderr, "qvlctl %s: out of memory\n", cmd);
		return CTL_FAIL;
	}
	rc = qvl_connect(socket, NULL, q);
	if (rc < 0) {
		if (rc == -ENOENT || rc == -ECONNREFUSED)
			fprintf(stderr, "qvlctl %s: no daemon at %s (%s): start qvld\n", cmd,
				socket, qvl_strerror(rc));
		else
			fprintf(stderr, "qvlctl %s: %s: %s\n", cmd, socket, qvl_strerror(rc));
		free(dflt);
		return rc == -ENOENT || rc == -ECONNREFUSED ? CTL_NO_DAEMON : CTL_FAIL;
	}
	free(dflt);
	return CTL_OK;
}

int ctl_simple(struct qvl *q, uint8_t opcode, uint64_t out_len, double timeout_s,
	       struct qvl_cqe *cqe, char **out)
{
	struct qvl_req *r = NULL;
	struct qvl_sqe *sqe;
	struct qvl_cqe *c;
	int rc;

	*out = NULL;
	rc = qvl_req_new(q, opcode, &r);
	if (rc < 0)
		return rc;
	sqe = qvl_sqe_get(q);
	if (!sqe) {
		qvl_release(r);
		return -EBUSY;
	}
	rc = qvl_req_prep(r, sqe, 1, out_len);
	if (rc == 0)
		rc = qvl_submit(q);
	if (rc >= 0)
		rc = qvl_wait_cqe(q, &c, (int64_t)(timeout_s * 1e9));
	if (rc < 0) {
		qvl_release(r);
		return rc;
	}
	*cqe = *c;
	qvl_cqe_seen(q);
	if (cqe->res == 0 && out_len) {
		uint64_t len;
		const char *p = qvl_req_out(r, &len);
		size_t n = cqe->text_len < len ? cqe->text_len : (size_t)len;
		*out = malloc(n + 1);
		if (!*out) {
			qvl_release(r);
			return -ENOMEM;
		}
		memcpy(*out, p, n);
		(*out)[n] = 0;
	}
	qvl_release(r);
	return 0;
}

/* key: value lines for every scalar, nested keys joined with '.', arrays
 * of objects as key[i].field. */
static uint32_t flat(FILE *f, const struct json_doc *d, uint32_t t, const char *prefix)
{
	const struct json_tok *k = &d->tok[t];
	char name[256];

	if (k->type == JSON_OBJECT) {
		uint32_t c = t + 1;
		for (uint32_t i = 0; i < k->count; i++) {
			char key[128];
			json_str(d, c, key, sizeof(key));
			snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", key);
			c = flat(f, d, c + 1, name);
		}
		return k->end;
	}
	if (k->type == JSON_ARRAY) {
		uint32_t c = t + 1;
		for (uint32_t i = 0; i < k->count; i++) {
			snprintf(name, sizeof(name), "%s[%u]", prefix, i);
			c = flat(f, d, c, name);
		}
		return k->end;
	}
	if (k->type == JSON_STRING) {
		char *s = json_strdup(d, t, NULL);
		fprintf(f, "%s: %s\n", prefix, s ? s : "");
		free(s);
	} else {
		fprintf(f, "%s: %.*s\n", prefix, (int)k->len, d->text + k->start);
	}
	return k->end;
}

int ctl_print_flat(FILE *f, const char *json, const char *what)
{
	struct json_doc d;
	struct qvl_err err = {{0}};
	int rc = json_parse(&d, json, strlen(json), what, &err);

	if (rc < 0) {
		fprintf(stderr, "qvlctl: %s\n", err.msg);
		return rc;
	}
	flat(f, &d, 0, "");
	json_free(&d);
	return 0;
}

/* Options every simple daemon command takes; returns -1 for --help. */
int ctl_parse_simple(const char *cmd, int argc, char **argv, struct ctl_args *a, bool stats)
{
	static const struct option lo[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"prometheus", no_argument, NULL, 'p'},
	    {"timeout", required_argument, NULL, 't'},
	    {"no-wait", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	a->timeout = 30;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			a->socket = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 'p':
			if (!stats)
				goto bad;
			a->prometheus = true;
			break;
		case 'n':
			a->no_wait = true;
			break;
		case 't':
			if (qvl_parse_double(optarg, &a->timeout) < 0 || !(a->timeout > 0)) {
				fprintf(stderr, "qvlctl %s: --timeout: invalid value '%s'\n", cmd,
					optarg);
				return CTL_USAGE;
			}
			break;
		case 'h':
			printf("Usage: qvlctl [--socket PATH] %s [--json]%s [--timeout S]%s\n", cmd,
			       stats ? " [--prometheus]" : "",
			       strcmp(cmd, "shutdown") ? "" : " [--no-wait]");
			return -1;
		default:
		bad:
			fprintf(stderr, "qvlctl %s: unknown or incomplete option '%s'\n", cmd,
				argv[optind - 1]);
			return CTL_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qvlctl %s: unexpected argument '%s'\n", cmd, argv[optind]);
		return CTL_USAGE;
	}
	return 0;
}

/* The text of the member key of the JSON object text (NUL-terminated in
 * place), or NULL when there is none. */
static char *member_of(char *text, const char *key, const char *cmd)
{
	struct json_doc d;
	struct qvl_err err = {{0}};
	uint32_t t;
	char *r = NULL;

	if (json_parse(&d, text, strlen(text), cmd, &err) < 0)
		return NULL;
	t = json_get(&d, 0, key);
	if (t != JSON_NONE && d.tok[t].type == JSON_OBJECT) {
		r = text + d.tok[t].start;
		r[d.tok[t].len] = 0;
	}
	json_free(&d);
	return r;
}

int ctl_query_member(const char *cmd, int argc, char **argv, uint8_t opcode, bool stats,
		     const char *member, void (*print)(const char *json, const struct ctl_args *a))
{
	struct ctl_args a = {0};
	struct qvl *q;
	struct qvl_cqe cqe;
	char *out, *show;
	int rc = ctl_parse_simple(cmd, argc, argv, &a, stats);

	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = ctl_connect(cmd, a.socket, &q)) != CTL_OK)
		return rc;
	rc = ctl_simple(q, opcode, 64 << 10, a.timeout, &cqe, &out);
	qvl_disconnect(q);
	if (rc < 0 || cqe.res < 0) {
		int e = rc < 0 ? rc : cqe.res;
		fprintf(stderr, "qvlctl %s: %s\n", cmd,
			e == -ENOTCONN ? "the daemon went away" : qvl_strerror(e));
		return rc < 0 ? ctl_status_of(rc) : CTL_FAIL;
	}
	show = member ? member_of(out, member, cmd) : out;
	if (!show) {
		fprintf(stderr, "qvlctl %s: the daemon reports no %s\n", cmd, member);
		free(out);
		return CTL_FAIL;
	}
	if (a.json)
		printf("%s\n", show);
	else
		print(show, &a);
	free(out);
	return CTL_OK;
}

int ctl_query(const char *cmd, int argc, char **argv, uint8_t opcode, bool stats,
	      void (*print)(const char *json, const struct ctl_args *a))
{
	return ctl_query_member(cmd, argc, argv, opcode, stats, NULL, print);
}
