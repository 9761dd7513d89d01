/* qvl-image: ask qvld about an image (PNG or JPEG bytes, decoded by the
 * daemon from the arena) and stream the answer.
 *   qvl-image [-s SOCKET] [-n MAX_TOKENS] IMAGE PROMPT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static int read_all(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) ||
	    !(*buf = malloc((size_t)n)) || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*len = (size_t)n;
	return 0;
}

int main(int argc, char **argv)
{
	const char *sock = NULL;
	uint32_t max = 256;
	struct qvl_req *r;
	struct qvl *q;
	char *img = NULL;
	size_t len = 0;
	int opt, rc;

	while ((opt = getopt(argc, argv, "s:n:")) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'n':
			if (parse_max_tokens(optarg, &max, "qvl-image"))
				return 2;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 2)
		goto usage;
	if ((rc = read_all(argv[optind], &img, &len)) < 0) {
		fprintf(stderr, "qvl-image: %s: %s\n", argv[optind], qvl_strerror(rc));
		return 1;
	}
	if (!(q = connect_or_explain(sock, "qvl-image"))) {
		free(img);
		return 1;
	}
	if ((rc = qvl_req_new(q, QVL_OP_GENERATE, &r)) < 0 ||
	    (rc = qvl_req_add_image(r, img, len)) < 0 ||
	    (rc = qvl_req_add_text(r, QVL_PART_USER, argv[optind + 1], strlen(argv[optind + 1]))) <
		0 ||
	    (rc = qvl_req_set_max_tokens(r, max)) < 0 ||
	    (rc = qvl_req_set_flags(r, QVL_GEN_STREAM | QVL_GEN_MODEL_DEFAULTS)) < 0) {
		fprintf(stderr, "qvl-image: building the request: %s\n", qvl_strerror(rc));
		free(img);
		qvl_disconnect(q);
		return 1;
	}
	free(img);
	rc = run_request(q, r, "qvl-image");
	qvl_release(r);
	qvl_disconnect(q);
	return rc;
usage:
	fprintf(stderr, "usage: qvl-image [-s SOCKET] [-n MAX_TOKENS] IMAGE PROMPT\n");
	return 2;
}
