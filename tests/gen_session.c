/* generate.c: the stop-string matcher on its own (matches across pushes,
 * holds back only what could still become a stop string), and sessions on
 * the tiny model: greedy ids equal a plain qvl_seq_forward + argmax loop,
 * a stop string cut out of the free-running text ends the session with the
 * text before it, max_tokens, context full, cancel. */
#include "config.h"

#include <string.h>

#include "engine_common.h"
#include "generate.h"
#include "tokenizer.h"

static struct gen_params params_with(const char **stops, int n)
{
	struct gen_params gp = {.max_tokens = 16, .n_ctx = 256};

	qvl_sample_defaults(&gp.sp, NULL);
	gp.sp.greedy = true;
	for (int i = 0; i < n; i++) {
		gp.stops[i] = stops[i];
		gp.stop_lens[i] = strlen(stops[i]);
	}
	gp.n_stops = n;
	return gp;
}

/* Push pieces; return everything released, and whether it matched. */
static void stopper_run(const char **stops, int ns, const char **pieces, int np, char *out,
			bool *matched)
{
	struct gen_params gp = params_with(stops, ns);
	struct gen_stopper st = {0};

	out[0] = 0;
	for (int i = 0; i < np && !st.matched; i++) {
		gen_stopper_push(&st, &gp, pieces[i], strlen(pieces[i]));
		strncat(out, st.buf, st.release);
		gen_stopper_consume(&st);
	}
	gen_stopper_flush(&st);
	strncat(out, st.buf, st.release);
	*matched = st.matched;
	gen_stopper_free(&st);
}

static void test_stopper(void)
{
	char out[256];
	bool m;
	const char *s1[] = {"END"};
	const char *p1[] = {"abc E", "N", "Dxyz"};
	stopper_run(s1, 1, p1, 3, out, &m);
	ok(m && !strcmp(out, "abc "), "stop string across three pushes: '%s'", out);

	const char *p2[] = {"abc E", "NX", "yz"};
	stopper_run(s1, 1, p2, 3, out, &m);
	ok(!m && !strcmp(out, "abc ENXyz"), "a false start is released: '%s'", out);

	const char *s3[] = {"later", "b"};
	const char *p3[] = {"a", "later b"};
	stopper_run(s3, 2, p3, 2, out, &m);
	ok(m && !strcmp(out, "a"), "the earliest of two stops wins: '%s'", out);

	const char *p4[] = {"no stop", " here", " E"};
	stopper_run(s1, 1, p4, 3, out, &m);
	ok(!m && !strcmp(out, "no stop here E"), "flush releases a held prefix: '%s'", out);

	struct gen_params gp = params_with(s1, 1);
	struct gen_stopper st = {0};
	gen_stopper_push(&st, &gp, "xxEN", 4);
	is_int(st.release, 2, "'EN' held back while it may become 'END'");
	gen_stopper_free(&st);
}

struct run {
	int32_t ids[64];
	size_t n;
	char text[4096];
	size_t tlen;
	enum gen_stop stop;
};

static int run_session(struct qvl_engine *e, const struct qvl_tokenizer *tok,
		       const struct gen_prompt *p, const struct gen_params *gp, int cancel_at,
		       struct run *r)
{
	struct qvl_err err = {{0}};
	struct gen_session *g;
	int rc = gen_create(&g, e, tok, p, gp, &err);

	memset(r, 0, sizeof(*r));
	if (rc < 0) {
		diag("gen_create: %s", err.msg);
		return rc;
	}
	for (int step = 0; !gen_done(g) && step < 100; step++) {
		struct gen_out o;
		if (step == cancel_at)
			gen_cancel(g);
		rc = gen_step(g, &o, &err);
		if (rc < 0) {
			diag("gen_step: %s", err.msg);
			break;
		}
		if (o.has_id && r->n < 64)
			r->ids[r->n++] = o.id;
		if (r->tlen + o.text_len < sizeof(r->text)) {
			memcpy(r->text + r->tlen, o.text, o.text_len);
			r->tlen += o.text_len;
		}
		r->stop = o.stop;
	}
	r->text[r->tlen] = 0;
	gen_destroy(g);
	return rc;
}

int main(void)
{
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	struct qvl_engine *e = NULL;
	struct qvl_tokenizer *tok = NULL;
	const char *path = tiny_model_path();

	plan(17);
	test_stopper();
	if (!path) {
		for (int i = 0; i < 12; i++)
			ok(1, "# SKIP no tiny model");
		return done_testing();
	}
	if (qvl_kernels_init(&err) < 0 || qvl_model_open(&m, path, NULL, &err) < 0 ||
	    qvl_engine_create(&e, m,
			      &(struct qvl_engine_opts){.threads = 2, .kv_dtype = QVL_DT_BF16},
			      &err) < 0 ||
	    qvl_tok_load(&tok, m, &err) < 0) {
		diag("%s", err.msg);
		return 1;
	}
	const struct gen_msg msg = {.role = "user", .text = "Tell me a story about a cat."};
	struct gen_prompt p = {.msgs = &msg, .n_msgs = 1};
	struct gen_params gp = params_with(NULL, 0);
	gp.ignore_eos = true;
	struct run a, b;
	int rc = run_session(e, tok, &p, &gp, -1, &a);

	ok(rc == 0 && a.n == 16 && a.stop == GEN_LENGTH,
	   "greedy session: 16 ids, stop length (%zu, %s)", a.n, gen_stop_name(a.stop));

	/* the reference loop: prefill, argmax, forward one id */
	{
		struct qvl_chat_msg cm = {.role = "user", .text = msg.text};
		int32_t *ids, want[16];
		size_t n;
		struct qvl_seq *s;
		float *lg = malloc((size_t)m->config.text.vocab_size * sizeof(float));
		qvl_chat_encode(tok, &cm, 1, NULL, true, &ids, &n, &err);
		qvl_seq_create(e, 256, &s, &err);
		struct qvl_chunk c = {.ids = ids, .n = n};
		qvl_seq_forward(e, s, &c, lg, false, &err);
		for (int i = 0; i < 16; i++) {
			want[i] = qvl_argmax(lg, (size_t)m->config.text.vocab_size);
			struct qvl_chunk one = {.ids = &want[i], .n = 1};
			qvl_seq_forward(e, s, &one, lg, false, &err);
		}
		ok(!memcmp(want, a.ids, sizeof(want)), "ids equal the reference loop's");
		char *dec;
		size_t dl;
		qvl_tok_decode(tok, want, 16, &dec, &dl, &err);
		ok(dl == a.tlen && !memcmp(dec, a.text, dl), "text equals the decoded ids");
		free(dec);
		free(ids);
		free(lg);
		qvl_seq_destroy(s);
	}

	/* a stop string taken from the middle of that text */
	if (a.tlen >= 12) {
		char stop[8];
		size_t at0 = a.tlen / 2, k = 4;
		while (((unsigned char)a.text[at0] & 0xC0) == 0x80) /* a character boundary */
			at0++;
		while (k > 1 && ((unsigned char)a.text[at0 + k] & 0xC0) == 0x80)
			k--;
		memcpy(stop, a.text + at0, k);
		stop[k] = 0;
		const char *sp[] = {stop};
		struct gen_params g2 = params_with(sp, 1);
		g2.ignore_eos = true;
		const char *at = strstr(a.text, stop);
		run_session(e, tok, &p, &g2, -1, &b);
		ok(b.stop == GEN_STOP_STRING && b.tlen == (size_t)(at - a.text) &&
		       !memcmp(b.text, a.text, b.tlen),
		   "stop string '%s': text before it (%zu bytes)", stop, b.tlen);
		ok(b.n <= a.n && !memcmp(b.ids, a.ids, b.n * sizeof(int32_t)),
		   "ids up to the one completing the stop string");
	} else {
		ok(0, "free-running text too short for a stop string (%zu bytes)", a.tlen);
		ok(0, "(skipped with the previous)");
	}

	gp.max_tokens = 3;
	run_session(e, tok, &p, &gp, -1, &b);
	ok(b.n == 3 && b.stop == GEN_LENGTH && !memcmp(b.ids, a.ids, 3 * sizeof(int32_t)),
	   "max_tokens 3");
	gp.max_tokens = 16;
	run_session(e, tok, &p, &gp, 5, &b);
	ok(b.n == 5 && b.stop == GEN_CANCELLED, "cancel before step 6: 5 ids (%zu), cancelled",
	   b.n);

	struct gen_prompt pi = {.ids = (const int32_t[]){1, 2, 3, 4}, .n_ids = 4};
	gp.n_ctx = 6;
	run_session(e, tok, &pi, &gp, -1, &b);
	ok(b.n == 3 && b.stop == GEN_CONTEXT,
	   "context of 6, prompt 4: 3 ids then context (%zu, %s)", b.n, gen_stop_name(b.stop));
	gp.n_ctx = 3;
	ok(run_session(e, tok, &pi, &gp, -1, &b) == -ENOSPC, "prompt longer than the context");
	gp.n_ctx = 256;
	struct gen_prompt bad = {.ids = (const int32_t[]){1, 999999}, .n_ids = 2};
	ok(run_session(e, tok, &bad, &gp, -1, &b) == -EINVAL, "id out of range refused");

	const struct gen_msg two[] = {{.role = "system", .text = "Be brief."},
				      {.role = "user", .text = msg.text}};
	struct gen_prompt ps = {.msgs = two, .n_msgs = 2};
	rc = run_session(e, tok, &ps, &gp, -1, &b);
	ok(rc == 0 && b.n == 16, "system + user messages run");
	const struct gen_msg badrole = {.role = "robot", .text = "x"};
	struct gen_prompt pr = {.msgs = &badrole, .n_msgs = 1};
	ok(run_session(e, tok, &pr, &gp, -1, &b) == -EINVAL, "unknown role refused");

	qvl_tok_free(tok);
	qvl_engine_destroy(e);
	qvl_model_close(m);
	return done_testing();
}
