/* The batching scheduler's figures against a live qvld (QVL_SOCKET; run by
 * bench/bench_batch.sh on the 2b shape). Every figure is the median of
 * QVL_BENCH_REPS runs with its min-max spread, and each ratio compares two
 * figures of the same run:
 *   decode   aggregate decode tok/s with 1, 4, 16, 64 concurrent sequences
 *            (16-id prompts, QVL_BENCH_TOKENS greedy ids each), counted from
 *            the moment every sequence has its first token to the next
 *            completion (all n decoding; to the last one: drain_tok_s);
 *            ratio to 1 sequence (target >= 10 at 16)
 *   ttft     time to first token of a short request on an idle daemon and
 *            while a 4096-id prompt (QVL_BENCH_LONG) is being prefilled
 *            (target <= 2x), and that prompt's whole prefill alone and
 *            beside the short one (what the prefill budget costs it)
 *   prefix   time to first token with a 2000-id system prompt seen for the
 *            first time vs seen before (target >= 20x), and the same for a
 *            repeated 448x448 image
 *   image    the image half of prefix alone
 *   visstep  a decode's inter-token gap while an image first seen is
 *            encoded and prefilled (QVL_BENCH_IMAGE, WxH, default 448x448):
 *            the longest gap between the image's submission and its first
 *            token vs the decode's median gap before it (issue 18: the
 *            encode cut by tower blocks; --prefill-step-pct 0 or an older
 *            qvld encodes at admission, stalling the decode), the image's
 *            TTFT and the daemon's CPU seconds over that window
 * One JSON line per figure on stdout, a human summary on stderr.
 *   bench_batch [decode|ttft|prefix|image|visstep]...   (default: the first
 *   three) */
#include "config.h"

#include <stdbool.h>
#include <unistd.h>

#include "../tests/daemon_client.h"
#include "util.h"

#define MAXN 64

static int reps = 3, ntok = 16;
static struct qvl *q;
static uint64_t next_ud = 1;

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct fig {
	double med, lo, hi;
};

static struct fig summarize(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_d);
	return (struct fig){v[n / 2], v[0], v[n - 1]};
}

/* n concurrent decodes: aggregate tok/s from the moment every sequence
 * has its first token to the next completion, the steady state: the
 * prompts' chunked prefill staggers the first tokens, so the sequences end
 * a few steps apart too, and the steps of that ragged end carry fewer rows.
 * *drain gets the rate from the same start to the last completion (what
 * this figure was before). -1: no ids in the window. */
static double decode_once(int n, double *drain)
{
	struct qvl_req *r[MAXN];
	uint32_t count[MAXN] = {0};
	bool first[MAXN] = {0};
	uint64_t base = next_ud;
	int32_t ids[16];
	int n_first = 0, n_fin = 0;
	double t_all = 0, t_first_end = 0, t_end = 0;
	uint64_t snap = 0, total = 0, at_first_end = 0;

	*drain = -1;
	next_ud += (uint64_t)n;
	for (int i = 0; i < n; i++) {
		dc_ids(ids, 16, base + (uint64_t)i);
		if (dc_submit_ids(q, base + (uint64_t)i, ids, 16, (uint32_t)ntok, QVL_GEN_STREAM,
				  &r[i]) < 0)
			return -1;
	}
	while (n_fin < n) {
		struct qvl_cqe c;
		if (dc_next(q, &c, 600) < 0)
			return -1;
		if (c.user_data < base || c.user_data >= base + (uint64_t)n)
			continue;
		int i = (int)(c.user_data - base);
		total += c.n_tokens - count[i];
		count[i] = c.n_tokens;
		if (!first[i] && c.n_tokens > 0) {
			first[i] = true;
			if (++n_first == n) {
				t_all = qvl_now();
				snap = total;
			}
		}
		if (!(c.flags & QVL_CQE_F_MORE)) {
			n_fin++;
			t_end = qvl_now();
			if (n_first == n && at_first_end == 0) {
				t_first_end = t_end;
				at_first_end = total;
			}
		}
	}
	for (int i = 0; i < n; i++)
		qvl_release(r[i]);
	if (t_end > t_all && total > snap)
		*drain = (double)(total - snap) / (t_end - t_all);
	if (t_first_end <= t_all || at_first_end <= snap)
		return -1;
	return (double)(at_first_end - snap) / (t_first_end - t_all);
}

/* The last request that ended while ttft() waited for another one, and
 * when (until_done() looks here first). */
static uint64_t ended_ud;
static double ended_at;

/* Seconds from t0 (just before the submission of ud) to its first token;
 * waits for its end. */
static double ttft(uint64_t ud, double t0)
{
	double t1 = -1;
	struct qvl_cqe c;

	while (dc_next(q, &c, 600) == 0) {
		if (c.user_data != ud) {
			if (!(c.flags & QVL_CQE_F_MORE)) {
				ended_ud = c.user_data;
				ended_at = qvl_now();
			}
			continue;
		}
		if (t1 < 0 && c.n_tokens > 0)
			t1 = qvl_now() - t0;
		if (!(c.flags & QVL_CQE_F_MORE))
			return t1;
	}
	return -1;
}

static double short_ttft(uint64_t seed)
{
	int32_t ids[16];
	struct qvl_req *r;
	uint64_t ud = next_ud++;

	dc_ids(ids, 16, seed);
	double t0 = qvl_now();
	if (dc_submit_ids(q, ud, ids, 16, 2, QVL_GEN_STREAM, &r) < 0)
		return -1;
	double t = ttft(ud, t0);
	qvl_release(r);
	return t;
}

static void print_fig(const char *name, const char *unit, struct fig f, const char *extra)
{
	printf("{\"name\":\"%s\",\"value\":%.4f,\"min\":%.4f,\"max\":%.4f,\"unit\":\"%s\","
	       "\"reps\":%d%s%s}\n",
	       name, f.med, f.lo, f.hi, unit, reps, extra ? "," : "", extra ? extra : "");
	fflush(stdout);
}

/* The sequence counts of `decode`: 1, 4, 16 and 64, or QVL_BENCH_SEQS (a
 * comma-separated list: bench_tiers.sh asks for 8 alone). */
static size_t decode_counts(int *ns, size_t cap)
{
	const char *v = getenv("QVL_BENCH_SEQS");
	size_t n = 0;

	if (!v || !*v) {
		static const int def[] = {1, 4, 16, 64};
		memcpy(ns, def, sizeof(def));
		return 4;
	}
	while (*v && n < cap) {
		char *end;
		long x = strtol(v, &end, 10);
		if (end == v || x < 1 || x > MAXN) {
			fprintf(stderr, "bench_batch: QVL_BENCH_SEQS: counts 1..%d\n", MAXN);
			return 0;
		}
		ns[n++] = (int)x;
		v = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return 0;
	}
	return n;
}

static void bench_decode(void)
{
	int ns[8];
	size_t nn = decode_counts(ns, 8);
	double one = 0;

	for (size_t k = 0; k < nn; k++) {
		double v[16], dr[16];
		for (int i = 0; i < reps; i++)
			v[i] = decode_once(ns[k], &dr[i]);
		struct fig f = summarize(v, reps), fd = summarize(dr, reps);
		char name[64], extra[200];
		if (ns[k] == 1)
			one = f.med;
		snprintf(name, sizeof(name), "batch_decode_tok_s_%d", ns[k]);
		snprintf(extra, sizeof(extra),
			 "\"seqs\":%d,\"ratio_to_1\":%.2f,\"drain_tok_s\":%.2f%s", ns[k],
			 one > 0 ? f.med / one : 0, fd.med,
			 ns[k] == 16 ? ",\"target_ratio\":10" : "");
		print_fig(name, "tok/s", f, extra);
		fprintf(stderr,
			"decode, %2d sequences: %8.2f tok/s (%.2f..%.2f), %.2fx one; to the last "
			"end %.2f\n",
			ns[k], f.med, f.lo, f.hi, one > 0 ? f.med / one : 0, fd.med);
		if (f.lo < 0)
			fprintf(stderr,
				"decode, %2d sequences: a run had no ids between the "
				"last first token and the next end (-1): raise "
				"QVL_BENCH_TOKENS (%d)\n",
				ns[k], ntok);
	}
}

/* Seconds from t0 to the end of ud. */
static double until_done(uint64_t ud, double t0)
{
	struct qvl_cqe c;

	if (ended_ud == ud)
		return ended_at - t0;
	while (dc_next(q, &c, 600) == 0)
		if (c.user_data == ud && !(c.flags & QVL_CQE_F_MORE))
			return qvl_now() - t0;
	return -1;
}

static void bench_ttft(void)
{
	static int32_t big[8192];
	double idle[16], busy[16], lone[16], beside[16];
	int n_long = getenv("QVL_BENCH_LONG") ? atoi(getenv("QVL_BENCH_LONG")) : 4096;
	const char *chunk = getenv("QVL_BENCH_CHUNK") ? getenv("QVL_BENCH_CHUNK") : "?";
	const char *pct = getenv("QVL_BENCH_STEP_PCT") ? getenv("QVL_BENCH_STEP_PCT") : "?";

	if (n_long < 64 || n_long > 8192) {
		fprintf(stderr, "bench_batch: QVL_BENCH_LONG 64..8192\n");
		return;
	}
	for (int i = 0; i < reps; i++) {
		struct qvl_req *r;
		uint64_t ud;

		idle[i] = short_ttft(100 + (uint64_t)i);
		/* the long prompt alone: its whole prefill */
		ud = next_ud++;
		dc_ids(big, (size_t)n_long, 9000 + (uint64_t)i);
		double t0 = qvl_now();
		if (dc_submit_ids(q, ud, big, (size_t)n_long, 1, 0, &r) < 0)
			return;
		lone[i] = until_done(ud, t0);
		qvl_release(r);
		/* again (other ids: no prefix reuse), with the short one arriving
		 * while its prefill is under way */
		ud = next_ud++;
		dc_ids(big, (size_t)n_long, 5000 + (uint64_t)i);
		t0 = qvl_now();
		if (dc_submit_ids(q, ud, big, (size_t)n_long, 1, 0, &r) < 0)
			return;
		usleep(300000);
		busy[i] = short_ttft(200 + (uint64_t)i);
		beside[i] = until_done(ud, t0);
		qvl_release(r);
	}
	struct fig fi = summarize(idle, reps), fb = summarize(busy, reps);
	struct fig fl = summarize(lone, reps), fs = summarize(beside, reps);
	char extra[256];
	print_fig("ttft_idle_s", "s", fi, NULL);
	snprintf(extra, sizeof(extra),
		 "\"ratio_to_idle\":%.2f,\"target_ratio\":2,\"prefill_chunk\":\"%s\","
		 "\"prefill_step_pct\":\"%s\",\"long_prompt\":%d",
		 fi.med > 0 ? fb.med / fi.med : 0, chunk, pct, n_long);
	print_fig("ttft_beside_long_prefill_s", "s", fb, extra);
	snprintf(extra, sizeof(extra), "\"long_prompt\":%d,\"tok_s\":%.2f", n_long,
		 fl.med > 0 ? n_long / fl.med : 0);
	print_fig("long_prefill_alone_s", "s", fl, extra);
	print_fig("long_prefill_beside_short_s", "s", fs, extra);
	fprintf(stderr,
		"TTFT of a 16-id request: idle %.3f s (%.3f..%.3f), beside a %d-id prefill "
		"%.3f s (%.3f..%.3f): %.2fx (prefill chunk %s, step %s%%)\n",
		fi.med, fi.lo, fi.hi, n_long, fb.med, fb.lo, fb.hi,
		fi.med > 0 ? fb.med / fi.med : 0, chunk, pct);
	fprintf(stderr,
		"%d-id prefill: alone %.3f s (%.3f..%.3f, %.1f tok/s), with the short one "
		"%.3f s (%.3f..%.3f)\n",
		n_long, fl.med, fl.lo, fl.hi, fl.med > 0 ? n_long / fl.med : 0, fs.med, fs.lo,
		fs.hi);
}

/* TTFT of [system ids | 8 suffix ids]. */
static double sys_ttft(uint64_t sys_seed, uint64_t suffix_seed)
{
	static int32_t ids[2008];
	struct qvl_req *r;
	uint64_t ud = next_ud++;

	dc_ids(ids, 2000, sys_seed);
	dc_ids(ids + 2000, 8, suffix_seed);
	double t0 = qvl_now();
	if (dc_submit_ids(q, ud, ids, 2008, 1, QVL_GEN_STREAM, &r) < 0)
		return -1;
	double t = ttft(ud, t0);
	qvl_release(r);
	return t;
}

/* CPU seconds qvld has used (user + system, all threads), from
 * /proc/PID/stat with PID in QVL_BENCH_QVLD_PID; -1 without it. A figure
 * the other processes of a loaded machine disturb less than wall time. */
static double daemon_cpu(void)
{
	const char *pid = getenv("QVL_BENCH_QVLD_PID");
	unsigned long long ut, st;
	char path[64], buf[1024];
	const char *p;
	FILE *f;
	size_t n;

	if (!pid)
		return -1;
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double image_cpu; /* daemon CPU seconds of the last image_ttft() */

/* TTFT of a chat request with a 448x448 RGB image (seeded pixels). */
static double image_ttft(uint64_t seed, const char *text)
{
	static uint8_t px[448 * 448 * 3];
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	struct qvl_req *r;
	struct qvl_sqe *sqe;
	uint64_t ud = next_ud++;

	for (size_t i = 0; i < sizeof(px); i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		px[i] = (uint8_t)(x >> 56);
	}
	double t0 = qvl_now();
	if (qvl_req_new(q, QVL_OP_GENERATE, &r) < 0)
		return -1;
	double c0 = daemon_cpu();
	qvl_req_add_image_rgb(r, px, 448, 448, 448 * 3);
	qvl_req_add_text(r, QVL_PART_USER, text, strlen(text));
	qvl_req_set_flags(r, QVL_GEN_GREEDY | QVL_GEN_IGNORE_EOS | QVL_GEN_STREAM);
	qvl_req_set_max_tokens(r, 1);
	sqe = qvl_sqe_get(q);
	if (!sqe || qvl_req_prep(r, sqe, ud, 4096) < 0 || qvl_submit(q) < 0) {
		qvl_release(r);
		return -1;
	}
	double t = ttft(ud, t0);
	image_cpu = c0 >= 0 ? daemon_cpu() - c0 : -1;
	qvl_release(r);
	return t;
}

/* A cold / reused pair of figures and their ratio (target 20x). */
static void print_reuse(const char *cold_name, const char *warm_name, const char *what,
			const char *words, double *cold, double *warm)
{
	struct fig c = summarize(cold, reps), w = summarize(warm, reps);
	char extra[96];

	print_fig(cold_name, "s", c, NULL);
	snprintf(extra, sizeof(extra), "\"speedup\":%.2f,\"target\":20",
		 w.med > 0 ? c.med / w.med : 0);
	print_fig(warm_name, "s", w, extra);
	fprintf(stderr, "%s: TTFT %s %.3f s (%.3f..%.3f) vs %.3f s (%.3f..%.3f): %.1fx\n", what,
		words, c.med, c.lo, c.hi, w.med, w.lo, w.hi, w.med > 0 ? c.med / w.med : 0);
}

/* The image half of `prefix`: a 448x448 image first seen, then again with
 * other text after it (cold and repeated interleaved, rep by rep). */
static void bench_image(void)
{
	double cold[16], warm[16], ccpu[16], wcpu[16];

	for (int i = 0; i < reps; i++) {
		uint64_t s = 7000 + (uint64_t)i + (uint64_t)getpid() * 100;
		cold[i] = image_ttft(s, "What is this?");
		ccpu[i] = image_cpu;
		warm[i] = image_ttft(s, "Describe it.");
		wcpu[i] = image_cpu;
	}
	print_reuse("image_ttft_cold_s", "image_ttft_repeated_s", "448x448 image",
		    "first, repeated", cold, warm);
	if (ccpu[0] >= 0) /* with QVL_BENCH_QVLD_PID */
		print_reuse("image_cpu_cold_s", "image_cpu_repeated_s", "448x448 image, qvld CPU",
			    "first, repeated", ccpu, wcpu);
}

/* One rep of visstep: a streaming decode; after its 8th token an image
 * request of w x h seeded pixels; the decode's gaps until the image's first
 * token, then the decode is cancelled. */
static int visstep_once(int w, int h, uint64_t seed, double *gap_max, double *gap_base,
			double *img_ttft, double *cpu)
{
	uint8_t *px = malloc((size_t)w * (size_t)h * 3);
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1, dud = next_ud++, iud = next_ud++;
	double t_tok[64], t_last = 0, t_sub = 0, c0 = -1;
	int n_tok = 0, rc = -1;
	uint32_t dec = 0;
	bool img_done = false, dec_done = false, first = false;
	struct qvl_req *rd = NULL, *ri = NULL;
	struct qvl_sqe *sqe;
	int32_t ids[16];

	*gap_max = 0;
	if (!px)
		return -1;
	for (size_t i = 0; i < (size_t)w * (size_t)h * 3; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		px[i] = (uint8_t)(x >> 56);
	}
	dc_ids(ids, 16, seed);
	if (dc_submit_ids(q, dud, ids, 16, 4000, QVL_GEN_STREAM, &rd) < 0)
		goto out;
	while (!img_done || !dec_done) {
		struct qvl_cqe c;
		if (dc_next(q, &c, 600) < 0)
			goto out;
		double now = qvl_now();
		if (c.user_data == dud) {
			dec_done = !(c.flags & QVL_CQE_F_MORE);
			if (c.n_tokens <= dec)
				continue;
			dec = c.n_tokens;
			if (!t_sub && n_tok < 64)
				t_tok[n_tok++] = now;
			if (t_sub && !first && t_last && now - t_last > *gap_max)
				*gap_max = now - t_last;
			t_last = now;
			if (!ri && dec >= 8) {
				if (qvl_req_new(q, QVL_OP_GENERATE, &ri) < 0)
					goto out;
				qvl_req_add_image_rgb(ri, px, (uint32_t)w, (uint32_t)h,
						      (uint32_t)w * 3);
				qvl_req_add_text(ri, QVL_PART_USER, "What is this?", 13);
				qvl_req_set_flags(ri, QVL_GEN_GREEDY | QVL_GEN_IGNORE_EOS |
							  QVL_GEN_STREAM);
				qvl_req_set_max_tokens(ri, 1);
				sqe = qvl_sqe_get(q);
				c0 = daemon_cpu();
				t_sub = qvl_now();
				if (!sqe || qvl_req_prep(ri, sqe, iud, 4096) < 0 ||
				    qvl_submit(q) < 0)
					goto out;
			}
		} else if (c.user_data == iud) {
			if (!first && c.n_tokens > 0) {
				first = true;
				*img_ttft = now - t_sub;
				*cpu = c0 >= 0 ? daemon_cpu() - c0 : -1;
				/* the gap in progress counts too */
				if (now - t_last > *gap_max)
					*gap_max = now - t_last;
				dc_cancel(q, next_ud++, dud);
			}
			img_done = !(c.flags & QVL_CQE_F_MORE);
		}
	}
	/* the decode's median gap before the image came (tokens 2..8) */
	double g[64];
	int ng = 0;
	for (int i = 2; i < n_tok; i++)
		g[ng++] = t_tok[i] - t_tok[i - 1];
	*gap_base = ng ? summarize(g, ng).med : -1;
	rc = first ? 0 : -1;
out:
	if (rd)
		qvl_release(rd);
	if (ri)
		qvl_release(ri);
	free(px);
	return rc;
}

static void bench_visstep(void)
{
	const char *sz = getenv("QVL_BENCH_IMAGE");
	double mx[16], base[16], tt[16], cpu[16], ratio[16];
	int w = 448, h = 448, n = 0;
	char what[64];

	if (sz && (sscanf(sz, "%dx%d", &w, &h) != 2 || w < 16 || h < 16 || w > 4096 || h > 4096)) {
		fprintf(stderr, "bench_batch: QVL_BENCH_IMAGE %s: WxH, 16..4096\n", sz);
		return;
	}
	for (int i = 0; i < reps; i++) {
		uint64_t s = 9000 + (uint64_t)i + (uint64_t)getpid() * 100;
		if (visstep_once(w, h, s, &mx[n], &base[n], &tt[n], &cpu[n]) == 0) {
			ratio[n] = base[n] > 0 ? mx[n] / base[n] : -1;
			n++;
		}
	}
	if (!n) {
		fprintf(stderr, "bench_batch: visstep: no run completed\n");
		return;
	}
	snprintf(what, sizeof(what), "%dx%d", w, h);
	struct fig fm = summarize(mx, n), fb = summarize(base, n), fr = summarize(ratio, n),
		   ft = summarize(tt, n), fc = summarize(cpu, n);
	print_fig("visstep_decode_gap_max_s", "s", fm, NULL);
	print_fig("visstep_decode_gap_base_s", "s", fb, NULL);
	print_fig("visstep_gap_ratio", "x", fr, NULL);
	print_fig("visstep_image_ttft_s", "s", ft, NULL);
	print_fig("visstep_qvld_cpu_s", "s", fc, NULL);
	fprintf(stderr,
		"%s image beside a decode: its longest gap %.3f s (%.3f..%.3f) vs %.3f s "
		"before: %.1fx; image TTFT %.3f s, qvld CPU %.2f s\n",
		what, fm.med, fm.lo, fm.hi, fb.med, fr.med, ft.med, fc.med);
}

static void bench_prefix(void)
{
	double cold[16], warm[16];

	for (int i = 0; i < reps; i++) {
		uint64_t s = 7000 + (uint64_t)i + (uint64_t)getpid() * 100;
		cold[i] = sys_ttft(s, 1);
		warm[i] = sys_ttft(s, 2);
	}
	print_reuse("prefix_ttft_cold_2000_s", "prefix_ttft_reused_2000_s",
		    "2000-id system prompt", "cold, reused", cold, warm);
	bench_image();
}

int main(int argc, char **argv)
{
	struct qvl_opts o = {.sq_entries = 128, .cq_entries = 1024};
	int rc;

	if (getenv("QVL_BENCH_REPS"))
		reps = atoi(getenv("QVL_BENCH_REPS"));
	if (getenv("QVL_BENCH_TOKENS"))
		ntok = atoi(getenv("QVL_BENCH_TOKENS"));
	if (reps < 1 || reps > 16 || ntok < 2 || ntok > 4096) {
		fprintf(stderr, "bench_batch: QVL_BENCH_REPS 1..16, QVL_BENCH_TOKENS 2..4096\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		static const char *const whats[] = {"all",   "decode", "ttft",
						    "prefix", "image", "visstep"};
		bool known = false;
		for (size_t w = 0; w < sizeof(whats) / sizeof(whats[0]); w++)
			known |= !strcmp(argv[i], whats[w]);
		if (!known) {
			bool help = !strcmp(argv[i], "--help");
			fprintf(help ? stdout : stderr,
				"usage: bench_batch [all|decode|ttft|prefix|image|visstep]...  "
				"(QVL_SOCKET, QVL_BENCH_REPS, QVL_BENCH_TOKENS)\n");
			return help ? 0 : 2;
		}
	}
	rc = qvl_connect(getenv("QVL_SOCKET"), &o, &q);
	if (rc < 0) {
		fprintf(stderr, "bench_batch: connect: %s\n", qvl_strerror(rc));
		return 1;
	}
	for (int i = argc > 1 ? 1 : 0; i < (argc > 1 ? argc : 1); i++) {
		const char *what = argc > 1 ? argv[i] : "all";
		bool all = !strcmp(what, "all");
		if (all || !strcmp(what, "decode"))
			bench_decode();
		if (all || !strcmp(what, "ttft"))
			bench_ttft();
		if (all || !strcmp(what, "prefix"))
			bench_prefix();
		if (!strcmp(what, "image"))
			bench_image();
		if (!strcmp(what, "visstep"))
			bench_visstep();
	}
	qvl_disconnect(q);
	return 0;
}
