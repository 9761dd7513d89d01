/* qvl-text: ask qvld one chat question and stream the answer.
 *   qvl-text [-s SOCKET] [-S SYSTEM] [-n MAX_TOKENS] PROMPT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
	const char *sock = NULL, *sys = NULL;
	uint32_t max = 256;
	struct qvl_req *r;
	struct qvl *q;
	int opt, rc;

	while ((opt = getopt(argc, argv, "s:S:n:")) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'S':
			sys = optarg;
			break;
		case 'n':
			if (parse_max_tokens(optarg, &max, "qvl-text"))
				return 2;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	if (!(q = connect_or_explain(sock, "qvl-text")))
		return 1;
	if ((rc = qvl_req_new(q, QVL_OP_GENERATE, &r)) < 0 ||
	    (sys && (rc = qvl_req_add_text(r, QVL_PART_SYSTEM, sys, strlen(sys))) < 0) ||
	    (rc = qvl_req_add_text(r, QVL_PART_USER, argv[optind], strlen(argv[optind]))) < 0 ||
	    (rc = qvl_req_set_max_tokens(r, max)) < 0 ||
	    (rc = qvl_req_set_flags(r, QVL_GEN_STREAM | QVL_GEN_MODEL_DEFAULTS)) < 0) {
		fprintf(stderr, "qvl-text: building the request: %s\n", qvl_strerror(rc));
		qvl_disconnect(q);
		return 1;
	}
	rc = run_request(q, r, "qvl-text");
	qvl_release(r);
	qvl_disconnect(q);
	return rc;
usage:
	fprintf(stderr, "usage: qvl-text [-s SOCKET] [-S SYSTEM] [-n MAX_TOKENS] PROMPT\n");
	return 2;
}
