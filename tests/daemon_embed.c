/* `daemon_embed IMAGE OUT`: one EMBED_IMAGE of the encoded image file IMAGE
 * through the daemon on $QVL_SOCKET; the output region (f32 rows: the main
 * merger output, then each DeepStack feature) written to OUT as it came,
 * the layout `qvlctl embed-image -o` writes; prints "tokens N bytes B".
 * daemon_embed.sh compares the two files. Exit 0 when the request
 * succeeded. */
#include "config.h"

#include "daemon_client.h"
#include "util.h"

int main(int argc, char **argv)
{
	struct qvl_err err = {{0}};
	struct qvl *q;
	struct qvl_req *r = NULL;
	struct qvl_sqe *sqe;
	struct qvl_cqe c = {0};
	char *png = NULL;
	size_t len = 0;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: daemon_embed IMAGE OUT\n");
		return 2;
	}
	if ((rc = qvl_read_file(argv[1], 16 << 20, &png, &len, &err)) < 0) {
		fprintf(stderr, "daemon_embed: %s\n", err.msg);
		return 1;
	}
	if ((rc = qvl_connect(getenv("QVL_SOCKET"), NULL, &q)) < 0) {
		fprintf(stderr, "daemon_embed: connect: %s\n", qvl_strerror(rc));
		return 1;
	}
	/* 1 MiB: over 1300 rows of the tiny model's 192 floats, more than its
	 * tower gives any test image (and within the connection's arena) */
	uint64_t cap = 1 << 20;
	if ((rc = qvl_req_new(q, QVL_OP_EMBED_IMAGE, &r)) >= 0 &&
	    (rc = qvl_req_add_image(r, png, len)) >= 0) {
		sqe = qvl_sqe_get(q);
		rc = !sqe ? -EAGAIN : qvl_req_prep(r, sqe, 1, cap);
		if (rc >= 0)
			rc = qvl_submit(q);
	}
	while (rc >= 0 && (rc = dc_next(q, &c, 120)) == 0 &&
	       (c.user_data != 1 || (c.flags & QVL_CQE_F_MORE)))
		;
	if (rc >= 0 && c.res < 0)
		rc = c.res;
	if (rc >= 0) {
		FILE *f = fopen(argv[2], "wb");
		size_t n = c.text_len;
		rc = f && fwrite(qvl_req_out(r, NULL), 1, n, f) == n ? 0 : -EIO;
		if (f && fclose(f))
			rc = -EIO;
		printf("tokens %u bytes %u\n", c.n_tokens, c.text_len);
	}
	if (rc < 0)
		fprintf(stderr, "daemon_embed: %s\n", qvl_strerror(rc));
	if (r)
		qvl_release(r);
	qvl_disconnect(q);
	free(png);
	return rc < 0;
}
