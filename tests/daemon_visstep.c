/* An image's encode never stalls the others' decodes (issue 18; run by
 * daemon_visstep.sh on the tiny model, QVL_SOCKET). Three pictures of
 * different sizes in one greedy request, sent as RGB rows; a greedy decode
 * of 20 ids. Prints:
 *   alone_dec ID...     the decode alone
 *   alone_img ID...     the image request alone
 *   beside_dec ID...    the decode, with the image request submitted after
 *   beside_img ID...    its third token, streaming both
 *   gap G               decode tokens streamed between the image request's
 *                       hand-off to the scheduler and its first token, in
 *                       the ring's order (free of this client's lag)
 *   cancel P T E        the image request cancelled while its encode is
 *                       held after N_HELD parts (QVL_ENCODE_HOLD) beside a
 *                       decode: encode parts it ran, its tokens, how it
 *                       ended (cancelled, stopped, no-final)
 *   kill P              the same request of a child process SIGKILLed:
 *                       encode parts it ran
 *   parts N             encode_parts of the daemon at the end
 *   idle A U            active_sequences and kv_pages_used at the end
 * daemon_visstep.sh compares the ids across runs and daemons and checks
 * the numbers. Exit status 0 when every request ended as it should.
 * --encode-at-admission: the daemon runs --prefill-step-pct 0. */
#include "config.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_client.h"
#include "image.h"
#include "picture.h"
#include "util.h"

/* The decode outlasts the image request on any machine: the image waits
 * ~17 steps for its parts after it is submitted at the decode's third
 * token as this client sees it, and this client may see it late (64 tokens,
 * as it was, are 38 ms of decoding on our quiet machine: a client 25 ms
 * late would see the decode end first, and the gap fall under the bound) */
#define N_DEC  400
#define N_IMG  6
#define DEC_UD 1
#define IMG_UD 2
#define NOP_UD 3

static struct qvl_image pics[3];
static struct qvl *q, *qs;

static int submit_img(struct qvl *c, uint64_t ud, struct qvl_req **out)
{
	static const char text[] = "Compare the three pictures.";
	struct qvl_req *r;
	struct qvl_sqe *sqe;
	int rc = qvl_req_new(c, QVL_OP_GENERATE, &r);

	for (int i = 0; i < 3 && rc >= 0; i++)
		rc = qvl_req_add_image_rgb(r, pics[i].rgb, (uint32_t)pics[i].w, (uint32_t)pics[i].h,
					   (uint32_t)pics[i].w * 3);
	if (rc >= 0)
		rc = qvl_req_add_text(r, QVL_PART_USER, text, strlen(text));
	if (rc >= 0)
		rc = qvl_req_set_flags(r, QVL_GEN_GREEDY | QVL_GEN_IGNORE_EOS | QVL_GEN_STREAM);
	if (rc >= 0)
		rc = qvl_req_set_max_tokens(r, N_IMG);
	sqe = rc >= 0 ? qvl_sqe_get(c) : NULL;
	if (!sqe || (rc = qvl_req_prep(r, sqe, ud, 64 << 10)) < 0 || (rc = qvl_submit(c)) < 0) {
		qvl_release(r);
		return rc < 0 ? rc : -EAGAIN;
	}
	*out = r;
	return 0;
}

static int submit_dec(uint32_t max, struct qvl_req **out)
{
	int32_t ids[20];

	dc_ids(ids, 20, 7);
	return dc_submit_ids(q, DEC_UD, ids, 20, max, QVL_GEN_STREAM, out);
}

static void print_ids(const char *what, struct qvl_req *r, const struct qvl_cqe *c)
{
	const int32_t *ids = qvl_req_ids(r);

	printf("%s", what);
	for (uint32_t k = 0; k < c->n_tokens; k++)
		printf(" %d", ids[k]);
	printf("\n");
}

static double stat(const char *key)
{
	char *st = dc_stats(qs, QVL_OP_STATS, 999);
	double v = dc_num(st, key);

	free(st);
	return v;
}

/* Wait (bounded) for the final CQE of ud. */
static int wait_final(uint64_t ud, struct qvl_cqe *out)
{
	struct qvl_cqe c;

	for (;;) {
		if (dc_next(q, &c, 120) < 0)
			return -ETIMEDOUT;
		if (c.user_data == ud && !(c.flags & QVL_CQE_F_MORE)) {
			*out = c;
			return 0;
		}
	}
}

/* One request alone, its ids printed. */
static int alone(const char *what, bool img)
{
	struct qvl_req *r;
	struct qvl_cqe c;
	int rc = img ? submit_img(q, IMG_UD, &r) : submit_dec(N_DEC, &r);

	if (rc < 0 || (rc = wait_final(img ? IMG_UD : DEC_UD, &c)) < 0)
		return rc;
	print_ids(what, r, &c);
	qvl_release(r);
	return c.res == 0 && c.n_tokens == (img ? N_IMG : N_DEC) ? 0 : -EPROTO;
}

/* A NOP behind the image request: the poller completes it at once, after
 * handing the SQEs before it to the scheduler (shm/poller.c), so the
 * decode tokens read after its CQE came after the image request reached
 * the scheduler, whenever this client reads them. */
static int submit_nop(void)
{
	struct qvl_sqe *sqe = qvl_sqe_get(q);
	int rc;

	if (!sqe)
		return -EAGAIN;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = QVL_OP_NOP;
	sqe->user_data = NOP_UD;
	rc = qvl_submit(q);
	return rc < 0 ? rc : 0;
}

/* The decode streams; after its third token the image request comes. The
 * gap is counted in the order of the CQ ring, from the NOP behind the
 * image request (the decode tokens already in the ring when this client
 * submits, the more the later it reads, do not count): with the encode at
 * admission it stays small however late this client is. */
static int beside(void)
{
	struct qvl_req *rd, *ri = NULL;
	struct qvl_cqe c, cd = {0}, ci = {0};
	uint32_t dec = 0, at = 0;
	bool got_d = false, got_i = false, got_nop = false;
	int gap = -1, rc = submit_dec(N_DEC, &rd);

	while (rc == 0 && (!got_d || !got_i)) {
		if (dc_next(q, &c, 120) < 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (c.user_data == DEC_UD) {
			dec = c.n_tokens > dec ? c.n_tokens : dec;
			if (!(c.flags & QVL_CQE_F_MORE)) {
				cd = c;
				got_d = true;
			}
			if (!ri && (dec >= 3 || got_d) && (rc = submit_img(q, IMG_UD, &ri)) == 0)
				rc = submit_nop();
		} else if (c.user_data == NOP_UD) {
			at = dec;
			got_nop = c.res == 0;
		} else if (c.user_data == IMG_UD) {
			/* (no NOP yet: the image's token came first, no gap) */
			if (gap < 0 && c.n_tokens >= 1)
				gap = got_nop ? (int)(dec - at) : 0;
			if (!(c.flags & QVL_CQE_F_MORE)) {
				ci = c;
				got_i = true;
			}
		}
	}
	if (rc == 0) {
		print_ids("beside_dec", rd, &cd);
		print_ids("beside_img", ri, &ci);
		printf("gap %d\n", gap);
		rc = cd.res == 0 && ci.res == 0 && cd.n_tokens == N_DEC && ci.n_tokens == N_IMG
			 ? 0
			 : -EPROTO;
	}
	qvl_release(rd);
	if (ri)
		qvl_release(ri);
	return rc;
}

/* The encode parts a cut request runs before its cancel or its client's
 * kill: the daemon holds the encode there (QVL_ENCODE_HOLD, the decodes go
 * on), so the cancel or kill lands mid-encode however late this client
 * reads, and exactly this many parts ran (of 12). */
#define N_HELD 3

/* QVL_ENCODE_HOLD's file: no encode part once `parts` ran in this daemon. */
static int hold_at(double parts)
{
	const char *f = getenv("QVL_ENCODE_HOLD");
	FILE *fp = f && *f ? fopen(f, "w") : NULL;
	int rc = fp && fprintf(fp, "%.0f\n", parts) > 0 ? 0 : -EIO;

	if (fp && fclose(fp) != 0)
		rc = -EIO;
	return rc;
}

/* Set by --encode-at-admission (the daemon runs --prefill-step-pct 0): no
 * encode part will come, so there is none to wait for. */
static bool at_admission;

/* Wait (3 s at most) for encode_parts to reach p0 + N_HELD, where the hold
 * stops it. Not with the encode at admission: the decode beside it would
 * run into the context's end (--ctx 2048) in those 3 s on a fast machine,
 * and end before its cancel. */
static double parts_held(double p0)
{
	double p = p0, t0 = qvl_now();

	while (!at_admission && p < p0 + N_HELD && qvl_now() - t0 < 3)
		p = stat("encode_parts");
	return p;
}

/* The image request cancelled (or its client killed) during its encode,
 * held after N_HELD parts, beside a decode; then the decode is cancelled
 * too. The hold stays (main lifts it), so the killed client's request,
 * reaped later, runs no part past it either. */
static int cut_short(bool kill_it)
{
	struct qvl_req *rd, *ri = NULL;
	struct qvl_cqe c = {0};
	double p0 = stat("encode_parts"), p;
	int rc = hold_at(p0 + N_HELD), pfd[2];
	const char *ended = "no-final"; /* how the cancelled request ended */
	pid_t pid = -1;

	if (rc < 0 || (rc = submit_dec(100000, &rd)) < 0)
		return rc;
	if (!kill_it) {
		rc = submit_img(q, IMG_UD, &ri);
	} else if (pipe(pfd) == 0 && (pid = fork()) == 0) {
		struct qvl *k;
		struct qvl_req *r;
		char b = 1;
		if (qvl_connect(getenv("QVL_SOCKET"), NULL, &k) < 0 || submit_img(k, 1, &r) < 0 ||
		    write(pfd[1], &b, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	} else {
		char b = 0;
		close(pfd[1]);
		rc = pid > 0 && read(pfd[0], &b, 1) == 1 ? 0 : -EPROTO;
		close(pfd[0]);
	}
	p = rc == 0 ? parts_held(p0) : p0;
	if (kill_it && pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	} else if (rc == 0) {
		dc_cancel(q, 10, IMG_UD);
		/* without encode parts (the encode at admission) the request
		 * may have ended before the cancel */
		if ((rc = wait_final(IMG_UD, &c)) == 0) {
			rc = c.res == 0 && (c.stop == QVL_STOP_CANCELLED || p == p0) ? 0 : -EPROTO;
			ended = c.stop == QVL_STOP_CANCELLED ? "cancelled" : "stopped";
		}
	}
	/* the decode goes on: two more tokens, then it is cancelled */
	uint32_t first = 0, img_tokens = c.n_tokens;
	bool cancelled = false;
	while (rc == 0) {
		if (dc_next(q, &c, 120) < 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (c.user_data != DEC_UD)
			continue;
		if (!(c.flags & QVL_CQE_F_MORE)) {
			rc = c.res == 0 && c.stop == QVL_STOP_CANCELLED ? 0 : -EPROTO;
			break;
		}
		if (!first) {
			first = c.n_tokens;
		} else if (!cancelled && c.n_tokens >= first + 2) {
			dc_cancel(q, 11, DEC_UD);
			cancelled = true;
		}
	}
	p = stat("encode_parts") - p0;
	if (kill_it)
		printf("kill %.0f\n", p);
	else
		printf("cancel %.0f %u %s\n", p, img_tokens, ended);
	qvl_release(rd);
	if (ri)
		qvl_release(ri);
	return rc;
}

int main(int argc, char **argv)
{
	static const int sizes[3][2] = {{64, 64}, {160, 96}, {96, 224}};
	int rc, status = 0;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--encode-at-admission") != 0)) {
		fprintf(stderr, "usage: daemon_visstep [--encode-at-admission]\n");
		return 1;
	}
	at_admission = argc == 2;

	for (int i = 0; i < 3; i++)
		if (!(pics[i] = picture(sizes[i][0], sizes[i][1], 3 + i)).rgb)
			return 1;
	if (!getenv("QVL_ENCODE_HOLD") || !*getenv("QVL_ENCODE_HOLD")) {
		fprintf(stderr, "daemon_visstep: QVL_ENCODE_HOLD (a file the daemon and this "
				"client share) is not set\n");
		return 1;
	}
	if ((rc = qvl_connect(getenv("QVL_SOCKET"), NULL, &q)) < 0 ||
	    (rc = qvl_connect(getenv("QVL_SOCKET"), NULL, &qs)) < 0) {
		fprintf(stderr, "daemon_visstep: connect %s: %s\n", getenv("QVL_SOCKET"),
			qvl_strerror(rc));
		return 1;
	}
	if ((rc = alone("alone_dec", false)) < 0 || (rc = alone("alone_img", true)) < 0 ||
	    (rc = beside()) < 0 || (rc = cut_short(false)) < 0 || (rc = cut_short(true)) < 0) {
		fprintf(stderr, "daemon_visstep: %s\n", qvl_strerror(rc));
		status = 1;
	}
	/* the killed client's request is reaped by the poller: bounded wait */
	double a = -1, u = -1;
	for (int i = 0; i < 500 && (a != 0 || u != 0); i++) {
		a = stat("active_sequences");
		u = stat("kv_pages_used");
		if (a || u)
			usleep(10000);
	}
	printf("parts %.0f\nidle %.0f %.0f\n", stat("encode_parts"), a, u);
	if (unlink(getenv("QVL_ENCODE_HOLD")) < 0)
		status = 1;
	qvl_disconnect(qs);
	qvl_disconnect(q);
	for (int i = 0; i < 3; i++)
		qvl_image_free(&pics[i]);
	return status;
}
