/* A repeated image through a live qvld (QVL_SOCKET; run by daemon_image.sh
 * on the tiny model). One request at a time, greedy, each waited for:
 *   0  A as PNG,  "What is this?"   first sight
 *   1  A as PNG,  "What is this?"   the same request again
 *   2  A as PNG,  "Describe it."    the same image, other text after it
 *   3  A as RGB,  "Describe it."    the same pixels in other bytes
 *   4  B as RGB,  "Describe it."    another picture of the same size
 *   5  A as RGB,  "Describe it."    again
 * Prints one line per request: its ids, then how much each STATS counter
 * grew during it:
 *   i n_prompt N ids ID... | vhit H vmiss M phit P reused R
 * daemon_image.sh compares the ids with a daemon without caches and checks
 * the counters. Exit status 0 when every request completed with its
 * tokens. */
#include "config.h"

#include <stdbool.h>

#include "daemon_client.h"
#include "image.h"
#include "util.h"

#define N_GEN 8

struct req {
	const char *text;
	char which; /* 'P': A's PNG bytes, 'A': A's RGB rows, 'B': B's RGB rows */
};

static const struct req reqs[] = {
    {"What is this?", 'P'}, {"What is this?", 'P'}, {"Describe it.", 'P'},
    {"Describe it.", 'A'},  {"Describe it.", 'B'},  {"Describe it.", 'A'},
};
#define N_REQS (sizeof(reqs) / sizeof(reqs[0]))

static char *png;
static size_t png_len;
static struct qvl_image a, b;

static int run(struct qvl *q, struct qvl *qs, size_t i)
{
	static const char *keys[] = {"vision_cache_hits", "vision_cache_misses", "prefix_hits",
				     "prefix_tokens_reused"};
	const struct req *s = &reqs[i];
	const struct qvl_image *im = s->which == 'B' ? &b : &a;
	double before[4], after[4];
	struct qvl_req *r;
	struct qvl_sqe *sqe;
	struct qvl_cqe c;
	char *st;
	int rc;

	st = dc_stats(qs, QVL_OP_STATS, 1000 + i);
	for (int k = 0; k < 4; k++)
		before[k] = dc_num(st, keys[k]);
	free(st);
	if ((rc = qvl_req_new(q, QVL_OP_GENERATE, &r)) < 0)
		return rc;
	if (s->which == 'P')
		rc = qvl_req_add_image(r, png, png_len);
	else
		rc = qvl_req_add_image_rgb(r, im->rgb, (uint32_t)im->w, (uint32_t)im->h,
					   (uint32_t)im->w * 3);
	if (rc >= 0)
		rc = qvl_req_add_text(r, QVL_PART_USER, s->text, strlen(s->text));
	if (rc >= 0)
		rc = qvl_req_set_flags(r, QVL_GEN_GREEDY | QVL_GEN_IGNORE_EOS);
	if (rc >= 0)
		rc = qvl_req_set_max_tokens(r, N_GEN);
	sqe = rc >= 0 ? qvl_sqe_get(q) : NULL;
	if (!sqe || (rc = qvl_req_prep(r, sqe, i, 0)) < 0 || (rc = qvl_submit(q)) < 0) {
		qvl_release(r);
		return rc < 0 ? rc : -EAGAIN;
	}
	do {
		/* bounded: a sanitizer build on a loaded machine is slow, but
		 * 8 ids of the tiny model never take minutes */
		if ((rc = dc_next(q, &c, 120)) < 0) {
			fprintf(stderr, "daemon_image: request %zu: no completion in 120 s\n", i);
			qvl_release(r);
			return rc;
		}
	} while (c.user_data != i || (c.flags & QVL_CQE_F_MORE));
	st = dc_stats(qs, QVL_OP_STATS, 2000 + i);
	for (int k = 0; k < 4; k++)
		after[k] = dc_num(st, keys[k]);
	free(st);
	const int32_t *ids = qvl_req_ids(r);
	printf("%zu n_prompt %u res %d ids", i, c.n_prompt, c.res);
	for (uint32_t k = 0; k < c.n_tokens; k++)
		printf(" %d", ids[k]);
	printf(" | vhit %.0f vmiss %.0f phit %.0f reused %.0f\n", after[0] - before[0],
	       after[1] - before[1], after[2] - before[2], after[3] - before[3]);
	rc = c.res == 0 && c.n_tokens == N_GEN ? 0 : -EPROTO;
	qvl_release(r);
	return rc;
}

int main(void)
{
	const char *shared = getenv("QVL_SHARED") ? getenv("QVL_SHARED") : "../shared";
	struct qvl_err err = {{0}};
	struct qvl *q, *qs;
	char path[4096];
	int status = 0, rc;

	snprintf(path, sizeof(path), "%s/golden/vision/grad_64x64.png", shared);
	if (qvl_read_file(path, 1 << 20, &png, &png_len, &err) < 0 ||
	    qvl_image_decode(&a, png, png_len, path, NULL, &err) < 0) {
		fprintf(stderr, "daemon_image: %s\n", err.msg);
		return 77;
	}
	/* B: A's size, other pixels */
	b = (struct qvl_image){.w = a.w, .h = a.h, .rgb = malloc((size_t)a.w * (size_t)a.h * 3)};
	if (!b.rgb)
		return 1;
	for (size_t i = 0; i < (size_t)a.w * (size_t)a.h * 3; i++)
		b.rgb[i] = (uint8_t)(255 - a.rgb[i] + (uint8_t)(i % 7));
	if ((rc = qvl_connect(getenv("QVL_SOCKET"), NULL, &q)) < 0 ||
	    (rc = qvl_connect(getenv("QVL_SOCKET"), NULL, &qs)) < 0) {
		fprintf(stderr, "daemon_image: connect %s: %s\n", getenv("QVL_SOCKET"),
			qvl_strerror(rc));
		return 1;
	}
	for (size_t i = 0; i < N_REQS; i++)
		if ((rc = run(q, qs, i)) < 0) {
			fprintf(stderr, "daemon_image: request %zu: %s\n", i, qvl_strerror(rc));
			status = 1;
		}
	qvl_disconnect(qs);
	qvl_disconnect(q);
	qvl_image_free(&a);
	qvl_image_free(&b);
	free(png);
	return status;
}
