/* qvld through libqvl directly (run by qvld_ring.sh against a live daemon on
 * $QVL_SOCKET, tiny model in $QVL_TINY): QVL_OP_CANCEL ends a streaming
 * generation at a token boundary; an unknown target is -ENOENT; clients are
 * served round-robin (a short request of a second client finishes before
 * three long ones of the first, all admitted); logprobs are written; an
 * output region too small for the text ends with QVL_STOP_LENGTH and whole
 * UTF-8 sequences; TOKENIZE equals the tokenizer; a malformed request fails
 * alone with the daemon's message in the text area; EMBED_IMAGE writes the
 * vision tower's output, the same bytes twice, through the engine's one
 * tower (STATS: vision_towers_built 1); a stop string with a NUL inside is refused; an
 * image placed inside a UTF-8 character is refused; VOCAB's token bytes
 * spell what TOKENIZE cut; greedy top logprobs start with the chosen id. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_common.h"
#include "qvl.h"
#include "tokenizer.h"

static struct qvl_req *gen(struct qvl *q, uint64_t ud, const char *prompt, uint32_t max,
			   uint32_t flags, uint64_t out_len)
{
	struct qvl_req *r;
	struct qvl_sqe *sqe;

	if (qvl_req_new(q, QVL_OP_GENERATE, &r) < 0)
		return NULL;
	qvl_req_add_text(r, QVL_PART_USER, prompt, strlen(prompt));
	qvl_req_set_flags(r, flags | QVL_GEN_GREEDY | QVL_GEN_IGNORE_EOS);
	qvl_req_set_max_tokens(r, max);
	sqe = qvl_sqe_get(q);
	if (!sqe || qvl_req_prep(r, sqe, ud, out_len) < 0 || qvl_submit(q) < 0) {
		qvl_release(r);
		return NULL;
	}
	return r;
}

/* The next CQE (10 s at most), copied out. */
static int next(struct qvl *q, struct qvl_cqe *out)
{
	struct qvl_cqe *c;
	int rc = qvl_wait_cqe(q, &c, 10000000000LL);
	if (rc < 0)
		return rc;
	*out = *c;
	qvl_cqe_seen(q);
	return 0;
}

/* Wait for the final CQE of ud (MORE ones skipped). */
static int final(struct qvl *q, uint64_t ud, struct qvl_cqe *out)
{
	for (int i = 0; i < 100000; i++) {
		int rc = next(q, out);
		if (rc < 0)
			return rc;
		if (out->user_data == ud && !(out->flags & QVL_CQE_F_MORE))
			return 0;
	}
	return -ETIMEDOUT;
}

static bool utf8_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
		if (!k || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if (((unsigned char)s[i + j] & 0xC0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

int main(void)
{
	struct qvl *a = NULL, *b = NULL;
	struct qvl_cqe c;
	int rc;

	plan(19);
	rc = qvl_connect(getenv("QVL_SOCKET"), NULL, &a);
	if (rc == 0)
		rc = qvl_connect(getenv("QVL_SOCKET"), NULL, &b);
	if (!ok(rc == 0, "two connections to %s", getenv("QVL_SOCKET"))) {
		diag("%s", qvl_strerror(rc));
		return done_testing();
	}

	/* cancel at a token boundary: 4000 tokens are seconds of decoding, so
	 * the cancel comes first however late this client is scheduled */
	struct qvl_req *r = gen(a, 7, "Tell a long story.", 4000, QVL_GEN_STREAM, 0);
	rc = r ? next(a, &c) : -EIO;
	ok(rc == 0 && c.user_data == 7 && (c.flags & QVL_CQE_F_MORE), "first streamed chunk");
	struct qvl_sqe *sqe = qvl_sqe_get(a);
	sqe->opcode = QVL_OP_CANCEL;
	sqe->user_data = 8;
	sqe->arg = 7;
	qvl_submit(a);
	bool got_cancel = false, got_final = false;
	struct qvl_cqe fin = {0};
	for (int i = 0; i < 1000 && !(got_cancel && got_final); i++) {
		if (next(a, &c) < 0)
			break;
		if (c.user_data == 8) {
			got_cancel = c.res == 0;
		} else if (!(c.flags & QVL_CQE_F_MORE)) {
			fin = c;
			got_final = true;
		}
	}
	ok(got_cancel, "CANCEL completes with 0");
	ok(got_final && fin.stop == QVL_STOP_CANCELLED && fin.res == 0 && fin.n_tokens < 4000,
	   "the generation ends CANCELLED after %u of 4000 tokens", fin.n_tokens);
	qvl_release(r);

	sqe = qvl_sqe_get(a);
	sqe->opcode = QVL_OP_CANCEL;
	sqe->user_data = 9;
	sqe->arg = 12345;
	qvl_submit(a);
	ok(next(a, &c) == 0 && c.user_data == 9 && c.res == -ENOENT, "cancel of nothing: -ENOENT");

	/* round-robin: b's short request overtakes a's three long ones. 2000
	 * tokens, not 40: a's must still run when b's is submitted and done,
	 * whatever this process's scheduling (40 took 25 ms); they are
	 * cancelled once b's is done */
	struct qvl_req *la[3];
	for (int i = 0; i < 3; i++)
		la[i] = gen(a, 100 + (uint64_t)i, "Long one.", 2000, 0, 0);
	struct qvl_req *sb = gen(b, 200, "Short one.", 8, 0, 0);
	rc = final(b, 200, &c);
	uint32_t b_tok = c.n_tokens;
	int a_done = 0;
	/* whatever a has completed by now */
	struct qvl_cqe *pc;
	while ((pc = qvl_cqe_peek(a))) {
		if (!(pc->flags & QVL_CQE_F_MORE))
			a_done++;
		qvl_cqe_seen(a);
	}
	ok(rc == 0 && b_tok == 8 && a_done == 0,
	   "client b's 8 tokens finish before any of client a's three 2000-token requests (%d)",
	   a_done);
	for (int i = 0; i < 3; i++)
		if ((sqe = qvl_sqe_get(a))) {
			sqe->opcode = QVL_OP_CANCEL;
			sqe->user_data = 110 + (uint64_t)i;
			sqe->arg = 100 + (uint64_t)i;
			qvl_submit(a);
		}
	/* the three finals and the cancels' CQEs, in whatever order */
	for (int i = 0; a_done < 3 && i < 100000 && next(a, &c) == 0; i++)
		a_done += c.user_data >= 100 && c.user_data < 103 && !(c.flags & QVL_CQE_F_MORE);
	for (int i = 0; i < 3; i++)
		qvl_release(la[i]);
	qvl_release(sb);

	/* logprobs */
	r = gen(a, 300, "Hi", 6, QVL_GEN_LOGPROBS, 0);
	rc = final(a, 300, &c);
	const float *lp = qvl_req_logprobs(r);
	bool lp_ok = rc == 0 && c.n_tokens == 6;
	for (uint32_t i = 0; lp_ok && i < c.n_tokens; i++)
		lp_ok = isfinite(lp[i]) && lp[i] <= 0;
	ok(lp_ok, "6 logprobs written, finite and <= 0");
	qvl_release(r);

	/* a text area of 5 bytes */
	r = gen(a, 301, "Hi", 32, 0, 32 * 4 + 5);
	rc = final(a, 301, &c);
	ok(rc == 0 && c.stop == QVL_STOP_LENGTH && c.text_len <= 5 && c.n_tokens < 32 &&
	       utf8_ok(qvl_req_text(r), c.text_len),
	   "small output region: stop LENGTH, %u text bytes of whole UTF-8, %u ids", c.text_len,
	   c.n_tokens);
	qvl_release(r);

	/* TOKENIZE against the tokenizer itself */
	struct qvl_err err = {{0}};
	struct qvl_model *m = NULL;
	struct qvl_tokenizer *tok = NULL;
	int32_t *want = NULL;
	size_t nw = 0;
	const char *text = "Hello, world: ünïcode!";
	const char *path = tiny_model_path();
	if (path && qvl_model_open(&m, path, NULL, &err) == 0 && qvl_tok_load(&tok, m, &err) == 0)
		qvl_tok_encode(tok, text, strlen(text), false, &want, &nw, &err);
	qvl_req_new(a, QVL_OP_TOKENIZE, &r);
	qvl_req_add_text(r, QVL_PART_USER, text, strlen(text));
	sqe = qvl_sqe_get(a);
	qvl_req_prep(r, sqe, 400, 4096);
	qvl_submit(a);
	rc = final(a, 400, &c);
	ok(rc == 0 && c.res == 0 && nw > 0 && c.n_tokens == nw &&
	       !memcmp(qvl_req_ids(r), want, nw * 4),
	   "TOKENIZE: %u ids, equal to the tokenizer's %zu", c.n_tokens, nw);
	qvl_release(r);
	free(want);
	qvl_tok_free(tok);
	if (m)
		qvl_model_close(m);

	/* an image after the last user message: this request fails, alone */
	static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	qvl_req_new(a, QVL_OP_GENERATE, &r);
	qvl_req_add_text(r, QVL_PART_USER, "x", 1);
	qvl_req_add_image(r, png_sig, sizeof(png_sig));
	qvl_req_set_max_tokens(r, 4);
	sqe = qvl_sqe_get(a);
	qvl_req_prep(r, sqe, 500, 0);
	qvl_submit(a);
	rc = final(a, 500, &c);
	ok(rc == 0 && c.res == -EINVAL && c.text_len > 0 &&
	       strstr(qvl_req_text(r), "after the last user message"),
	   "image after the last user message: -EINVAL with the reason (%.*s)", (int)c.text_len,
	   qvl_req_text(r));
	qvl_release(r);

	/* the connection still works after it */
	r = gen(a, 501, "Hi", 2, 0, 0);
	ok(r && final(a, 501, &c) == 0 && c.res == 0 && c.n_tokens == 2,
	   "the next request on the same connection succeeds");
	qvl_release(r);

	/* a stop string with a NUL inside is refused like a text part with
	 * one, not cut at the NUL ("a\0b" must not become the stop "a") */
	qvl_req_new(a, QVL_OP_GENERATE, &r);
	qvl_req_add_text(r, QVL_PART_USER, "Hi", 2);
	qvl_req_add_stop(r, "a\0b", 3);
	qvl_req_set_max_tokens(r, 16);
	sqe = qvl_sqe_get(a);
	qvl_req_prep(r, sqe, 502, 0);
	qvl_submit(a);
	rc = final(a, 502, &c);
	ok(rc == 0 && c.res == -EINVAL && c.text_len > 0 && strstr(qvl_req_text(r), "NUL"),
	   "stop string with a NUL byte: -EINVAL with the reason (res %d: %.*s)", c.res,
	   (int)c.text_len, qvl_req_text(r));
	qvl_release(r);

	/* an image placed inside a UTF-8 character ("\xc3\xa9" is one) */
	static const uint8_t rgb[12] = {0};
	qvl_req_new(a, QVL_OP_GENERATE, &r);
	qvl_req_add_image_rgb(r, rgb, 2, 2, 6);
	rc = qvl_req_set_image_at(r, 1);
	qvl_req_add_text(r, QVL_PART_USER, "\xc3\xa9!", 3);
	qvl_req_set_max_tokens(r, 2);
	sqe = qvl_sqe_get(a);
	qvl_req_prep(r, sqe, 503, 4096); /* room for the message */
	qvl_submit(a);
	rc = rc ? rc : final(a, 503, &c);
	ok(rc == 0 && c.res == -EINVAL && c.text_len > 0 &&
	       memmem(qvl_req_text(r), c.text_len, "inside a UTF-8", 14),
	   "image text_at inside a UTF-8 character: -EINVAL with the reason (rc %d res %d: %.*s)",
	   rc, c.res, (int)c.text_len, qvl_req_text(r));
	qvl_release(r);

	/* VOCAB: the bytes of the ids TOKENIZE gives spell its text */
	static const char spell[] = "Hello, world! 3.14";
	struct qvl_req *v = NULL;
	uint64_t vcap = 0;
	qvl_req_new(a, QVL_OP_VOCAB, &v);
	sqe = qvl_sqe_get(a);
	qvl_req_prep(v, sqe, 504, 0);
	qvl_submit(a);
	rc = final(a, 504, &c);
	const uint8_t *vo = qvl_req_out(v, &vcap);
	uint32_t vn = 0;
	if (vo)
		memcpy(&vn, vo, 4);
	bool vocab_ok = rc == 0 && c.res == 0 && vn > 1000 && vn == c.n_tokens &&
			4 + 4ull * vn + c.text_len <= vcap;
	qvl_req_new(a, QVL_OP_TOKENIZE, &r);
	qvl_req_add_text(r, QVL_PART_USER, spell, strlen(spell));
	sqe = qvl_sqe_get(a);
	qvl_req_prep(r, sqe, 505, 0);
	qvl_submit(a);
	rc = final(a, 505, &c);
	char back[64] = "";
	size_t bn = 0;
	for (uint32_t i = 0; vocab_ok && rc == 0 && i < c.n_tokens; i++) {
		int32_t id = qvl_req_ids(r)[i];
		uint32_t e0 = 0, e1;
		vocab_ok = id >= 0 && (uint32_t)id < vn;
		if (!vocab_ok)
			break;
		if (id)
			memcpy(&e0, vo + 4 + 4ull * (id - 1), 4);
		memcpy(&e1, vo + 4 + 4ull * id, 4);
		vocab_ok = e1 >= e0 && bn + (e1 - e0) < sizeof(back);
		if (vocab_ok)
			memcpy(back + bn, vo + 4 + 4ull * vn + e0, e1 - e0);
		bn += e1 - e0;
	}
	ok(vocab_ok && rc == 0 && bn == strlen(spell) && !memcmp(back, spell, bn),
	   "VOCAB: %u token texts; the pieces of TOKENIZE's ids spell '%s' ('%.*s')", vn, spell,
	   (int)bn, back);
	qvl_release(r);
	qvl_release(v);

	/* greedy with 3 alternatives: the chosen id leads, same logprob */
	qvl_req_new(a, QVL_OP_GENERATE, &r);
	qvl_req_add_text(r, QVL_PART_USER, "Hi", 2);
	qvl_req_set_flags(r, QVL_GEN_GREEDY | QVL_GEN_IGNORE_EOS);
	qvl_req_set_top_logprobs(r, 3);
	qvl_req_set_max_tokens(r, 6);
	sqe = qvl_sqe_get(a);
	qvl_req_prep(r, sqe, 506, 0);
	qvl_submit(a);
	rc = final(a, 506, &c);
	uint32_t k = 0;
	const struct qvl_top_logprob *top = qvl_req_top_logprobs(r, &k);
	bool top_ok = rc == 0 && c.res == 0 && c.n_tokens == 6 && top && k == 3;
	for (uint32_t i = 0; top_ok && i < c.n_tokens; i++)
		top_ok = top[i * k].id == qvl_req_ids(r)[i] &&
			 top[i * k].logprob == qvl_req_logprobs(r)[i] &&
			 top[i * k].logprob >= top[i * k + 1].logprob &&
			 top[i * k + 1].logprob >= top[i * k + 2].logprob &&
			 top[i * k + 2].logprob <= 0;
	ok(top_ok, "top logprobs: 3 per token, sorted, the greedy id first (res %d, %u tokens)",
	   c.res, c.n_tokens);
	qvl_release(r);

	/* STATS through the ring */
	qvl_req_new(b, QVL_OP_STATS, &r);
	sqe = qvl_sqe_get(b);
	qvl_req_prep(r, sqe, 600, 0);
	qvl_submit(b);
	rc = final(b, 600, &c);
	ok(rc == 0 && c.res == 0 && c.text_len > 0 &&
	       strstr(qvl_req_text(r), "\"generated_tokens\""),
	   "STATS: JSON in the output region (%u bytes)", c.text_len);
	qvl_release(r);

	/* EMBED_IMAGE: the golden 64x64 gradient is 64 tokens of 64 + 2 x 64 */
	char img[4096];
	char *data = NULL;
	size_t len = 0;
	snprintf(img, sizeof(img), "%s/golden/vision/grad_64x64.png",
		 test_env("QVL_SHARED", "../shared"));
	if (qvl_read_file(img, 1 << 20, &data, &len, &err) == 0) {
		const size_t eb = 64 * 192 * sizeof(float);
		float *first = malloc(eb);
		bool same = first != NULL;
		for (int rep = 0; rep < 2; rep++) {
			qvl_req_new(b, QVL_OP_EMBED_IMAGE, &r);
			qvl_req_add_image(r, data, len);
			sqe = qvl_sqe_get(b);
			qvl_req_prep(r, sqe, 700 + (uint64_t)rep, eb);
			qvl_submit(b);
			rc = final(b, 700 + (uint64_t)rep, &c);
			const float *e = qvl_req_out(r, NULL);
			bool fin_ok = rc == 0 && c.res == 0 && c.text_len == eb;
			for (uint32_t i = 0; fin_ok && i < 64 * 192; i++)
				fin_ok = isfinite(e[i]);
			if (rep == 0) {
				ok(fin_ok && c.n_tokens == 64,
				   "EMBED_IMAGE: %u tokens, %u bytes, all finite (res %d)",
				   c.n_tokens, c.text_len, c.res);
				if (fin_ok && first)
					memcpy(first, e, eb);
				else
					same = false;
			} else {
				same = same && fin_ok && !memcmp(first, e, eb);
			}
			qvl_release(r);
		}
		/* the engine's tower served both (before: a tower per request,
		 * none in the engine's cache) */
		unsigned long long towers = ~0ull;
		qvl_req_new(b, QVL_OP_STATS, &r);
		sqe = qvl_sqe_get(b);
		qvl_req_prep(r, sqe, 702, 0);
		qvl_submit(b);
		if (final(b, 702, &c) == 0 && c.res == 0) {
			const char *t = strstr(qvl_req_text(r), "\"vision_towers_built\":");
			if (t)
				towers = strtoull(t + strlen("\"vision_towers_built\":"), NULL, 10);
		}
		qvl_release(r);
		ok(same && towers == 1,
		   "a second EMBED_IMAGE: the same %zu bytes (%d), one tower built (%llu)", eb,
		   same, towers);
		free(first);
		free(data);
	} else {
		ok(1, "# SKIP no %s", img);
		ok(1, "# SKIP no %s", img);
	}

	/* a long TOKENIZE is engine-side work, queued like GENERATE: the
	 * poller keeps serving, so another client's NOP completes while the
	 * tokenization is still running */
	size_t tn = 4u << 20;
	char *tt = malloc(tn);
	for (size_t i = 0; tt && i < tn; i++)
		tt[i] = i % 2 ? ' ' : 'x';
	if (tt && qvl_req_new(a, QVL_OP_TOKENIZE, &r) == 0) {
		qvl_req_add_text(r, QVL_PART_USER, tt, tn);
		sqe = qvl_sqe_get(a);
		rc = qvl_req_prep(r, sqe, 800, (uint64_t)tn * 2 + 64);
		if (rc == 0)
			rc = qvl_submit(a) < 0;
		usleep(20000);
		sqe = qvl_sqe_get(b);
		sqe->opcode = QVL_OP_NOP;
		sqe->user_data = 801;
		qvl_submit(b);
		bool nop = next(b, &c) == 0 && c.user_data == 801 && c.res == 0;
		bool pending = qvl_cqe_peek(a) == NULL;
		rc = rc ? rc : final(a, 800, &c);
		ok(nop && pending && rc == 0 && c.res == 0 && c.n_tokens > tn / 4,
		   "a NOP of another client completes during a 4 MiB TOKENIZE (nop %d, "
		   "pending %d, res %d, %u ids)",
		   nop, pending, c.res, c.n_tokens);
		qvl_release(r);
	} else {
		ok(0, "TOKENIZE request");
	}
	free(tt);

	qvl_disconnect(a);
	qvl_disconnect(b);
	return done_testing();
}
