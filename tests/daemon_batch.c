/* Drives a live qvld (QVL_SOCKET) with a fixed set of greedy requests and
 * prints each one's result, one line per request in user_data order:
 *   ud stop res n_tokens: id id ...
 * daemon_batch.sh runs it against daemons that batch differently (one
 * sequence at a time; a batch of 8 with small prefill chunks; a KV budget
 * small enough to force preemption) and compares the lines: greedy tokens
 * must not depend on the batch.
 *
 * The set mixes prompt lengths (1 to 700 ids), a text prompt and an image
 * prompt; at most WINDOW are in flight and each completion submits the next,
 * so sequences join and leave the batch while others run. The prompts of
 * 300 ids or more share their first 256, the two text prompts are the same,
 * so are the two image prompts: prefix reuse finds pages. Exit status 0
 * when every request completed (whatever its tokens), 1 otherwise. */
#include "config.h"

#include <stdbool.h>
#include <unistd.h>

#include "daemon_client.h"
#include "util.h"

#define WINDOW 5

struct spec {
	size_t n_prompt; /* ids; 0: a text prompt; SIZE_MAX: an image prompt */
	uint32_t max;
};

static const struct spec specs[] = {
    {3, 12},	   {40, 20}, {0, 16}, {700, 8},	 {SIZE_MAX, 10}, {1, 24},  {17, 6},
    {250, 14},	   {64, 3},  {5, 30}, {120, 9},	 {33, 17},	 {0, 11},  {400, 5},
    {SIZE_MAX, 6}, {90, 20}, {2, 1},  {511, 12}, {12, 25},	 {150, 7},
};
#define N_SPECS (sizeof(specs) / sizeof(specs[0]))

static char *image;
static size_t image_len;

static int submit(struct qvl *q, size_t i, struct qvl_req **out)
{
	const struct spec *s = &specs[i];
	int32_t ids[1024];
	struct qvl_req *r;
	struct qvl_sqe *sqe;
	int rc;

	if (s->n_prompt != 0 && s->n_prompt != SIZE_MAX) {
		dc_ids(ids, s->n_prompt, i);
		/* the long prompts start with the same 256 ids (a system prompt):
		 * prefix reuse has something to find */
		if (s->n_prompt >= 300)
			dc_ids(ids, 256, 999);
		return dc_submit_ids(q, i, ids, s->n_prompt, s->max, 0, out);
	}
	if ((rc = qvl_req_new(q, QVL_OP_GENERATE, &r)) < 0)
		return rc;
	if (s->n_prompt == SIZE_MAX && image)
		qvl_req_add_image(r, image, image_len);
	const char *t = s->n_prompt ? "Describe the picture in one word." : "Count to ten, slowly.";
	qvl_req_add_text(r, QVL_PART_USER, t, strlen(t));
	qvl_req_set_flags(r, QVL_GEN_GREEDY | QVL_GEN_IGNORE_EOS);
	qvl_req_set_max_tokens(r, s->max);
	sqe = qvl_sqe_get(q);
	if (!sqe || (rc = qvl_req_prep(r, sqe, i, 0)) < 0 || (rc = qvl_submit(q)) < 0) {
		qvl_release(r);
		return sqe ? rc : -EAGAIN;
	}
	*out = r;
	return 0;
}

int main(void)
{
	struct qvl_req *reqs[N_SPECS] = {0};
	struct qvl_cqe fin[N_SPECS] = {{0}};
	bool done[N_SPECS] = {0};
	struct qvl_err err = {{0}};
	const char *shared = getenv("QVL_SHARED") ? getenv("QVL_SHARED") : "../shared";
	char path[4096];
	struct qvl *q;
	size_t next = 0, n_done = 0;
	int rc, status = 0;

	snprintf(path, sizeof(path), "%s/golden/vision/grad_64x64.png", shared);
	if (qvl_read_file(path, 1 << 20, &image, &image_len, &err) < 0)
		fprintf(stderr, "daemon_batch: no image (%s): image prompts are text only\n",
			err.msg);
	rc = qvl_connect(getenv("QVL_SOCKET"), NULL, &q);
	if (rc < 0) {
		fprintf(stderr, "daemon_batch: connect %s: %s\n", getenv("QVL_SOCKET"),
			qvl_strerror(rc));
		return 1;
	}
	while (n_done < N_SPECS) {
		while (next < N_SPECS && next - n_done < WINDOW) {
			rc = submit(q, next, &reqs[next]);
			if (rc < 0) {
				fprintf(stderr, "daemon_batch: submit %zu: %s\n", next,
					qvl_strerror(rc));
				return 1;
			}
			next++;
		}
		struct qvl_cqe c;
		if ((rc = dc_next(q, &c, 60)) < 0) {
			fprintf(stderr, "daemon_batch: no CQE in 60 s (%zu of %zu done)\n", n_done,
				N_SPECS);
			return 1;
		}
		if ((c.flags & QVL_CQE_F_MORE) || c.user_data >= N_SPECS)
			continue;
		if (done[c.user_data]) {
			fprintf(stderr, "daemon_batch: request %llu completed twice\n",
				(unsigned long long)c.user_data);
			status = 1;
			continue;
		}
		done[c.user_data] = true;
		fin[c.user_data] = c;
		n_done++;
	}
	for (size_t i = 0; i < N_SPECS; i++) {
		const int32_t *ids = qvl_req_ids(reqs[i]);
		printf("%zu stop %u res %d n %u:", i, fin[i].stop, fin[i].res, fin[i].n_tokens);
		for (uint32_t k = 0; k < fin[i].n_tokens; k++)
			printf(" %d", ids[k]);
		printf("\n");
		if (fin[i].res != 0 || fin[i].n_tokens != specs[i].max)
			status = 1;
		qvl_release(reqs[i]);
	}
	qvl_disconnect(q);
	free(image);
	return status;
}
