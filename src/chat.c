/* The Qwen3-VL chat format (docs qwen3-vl.md §8), rendered natively to ids.
 *
 * Hugging Face renders the Jinja template to a string and tokenizes it, so
 * the text between two added tokens is one stretch for the pre-tokenizer
 * ("user\\n" and the start of the message text are split together). This
 * builder keeps that property: template text and message text are appended
 * to a pending buffer, which is encoded whenever an added token is emitted.
 * What is supported is in tokenizer.h above qvl_chat_opts. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

struct chat_b {
	const struct qvl_tokenizer *t;
	bool parse_special;
	struct tok_ids ids;
	struct tok_buf text, scratch;
	int rc;
};

static void put_text(struct chat_b *b, const char *s)
{
	if (!b->rc)
		b->rc = tok_buf_put(&b->text, s, strlen(s));
}

static void put_id(struct chat_b *b, int32_t id)
{
	if (b->rc)
		return;
	if (b->text.n) {
		b->rc = tok_encode_append(b->t, b->text.p, b->text.n, b->parse_special, &b->ids,
					  &b->scratch);
		b->text.n = 0;
	}
	if (!b->rc)
		b->rc = tok_ids_push(&b->ids, id);
}

int qvl_chat_stop_ids(const struct qvl_tokenizer *t, int32_t *out, int cap)
{
	static const char *const stops[] = {"<|im_end|>", "<|endoftext|>"};
	int n = 0;
	for (int i = 0; i < 2 && n < cap; i++) {
		int32_t id = qvl_tok_special(t, stops[i]);
		if (id >= 0)
			out[n++] = id;
	}
	return n;
}

int qvl_chat_encode_ex(const struct qvl_tokenizer *t, const struct qvl_chat_msg *msgs, size_t n,
		       const int *image_tokens, bool add_generation_prompt,
		       const struct qvl_chat_opts *opts, int32_t **ids, size_t *n_ids,
		       struct qvl_err *err)
{
	static const struct qvl_chat_opts none;
	if (!opts)
		opts = &none;
	*ids = NULL;
	*n_ids = 0;
	int32_t im_start = qvl_tok_special(t, "<|im_start|>"),
		im_end = qvl_tok_special(t, "<|im_end|>");
	int32_t v_start = qvl_tok_special(t, "<|vision_start|>");
	int32_t v_end = qvl_tok_special(t, "<|vision_end|>");
	int32_t pad = qvl_tok_special(t, "<|image_pad|>");
	if (im_start < 0 || im_end < 0)
		return qvl_errf(err, -ENOTSUP,
				"chat format: the tokenizer has no <|im_start|>/<|im_end|>");
	int image = 0;
	for (size_t i = 0; i < n; i++) {
		const char *r = msgs[i].role;
		if (!r || (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")))
			return qvl_errf(err, -EINVAL,
					"chat format: message %zu: role '%s' (supported: system, "
					"user, assistant)",
					i, r ? r : "(null)");
		const char *tx = msgs[i].text ? msgs[i].text : "";
		size_t len = strlen(tx), bad = tok_utf8_invalid_at((const uint8_t *)tx, len);
		if (bad != len)
			return qvl_errf(
			    err, -EILSEQ,
			    "chat format: message %zu: invalid UTF-8 at byte offset %zu", i, bad);
		if (msgs[i].n_images < 0 || msgs[i].n_images > 4096)
			return qvl_errf(err, -EINVAL, "chat format: message %zu: %d images", i,
					msgs[i].n_images);
		if (msgs[i].n_images && (v_start < 0 || v_end < 0 || pad < 0))
			return qvl_errf(err, -ENOTSUP,
					"chat format: the tokenizer has no vision tokens");
		for (int k = 0; k < msgs[i].n_images; k++, image++)
			if (!image_tokens || image_tokens[image] < 1 ||
			    image_tokens[image] > (1 << 20))
				return qvl_errf(err, -EINVAL,
						"chat format: image %d: token count %d (must be "
						"1..%d)",
						image, image_tokens ? image_tokens[image] : 0,
						1 << 20);
	}

	struct chat_b b = {.t = t, .parse_special = opts->parse_special};
	image = 0;
	for (size_t i = 0; i < n; i++) {
		put_id(&b, im_start);
		put_text(&b, msgs[i].role);
		put_text(&b, "\n");
		for (int k = 0; k < msgs[i].n_images; k++, image++) {
			if (opts->add_vision_id) {
				char pic[32];
				snprintf(pic, sizeof(pic), "Picture %d: ", image + 1);
				put_text(&b, pic);
			}
			put_id(&b, v_start);
			for (int p = 0; p < image_tokens[image]; p++)
				put_id(&b, pad);
			put_id(&b, v_end);
			if (opts->image_sep)
				put_text(&b, opts->image_sep);
		}
		put_text(&b, msgs[i].text ? msgs[i].text : "");
		put_id(&b, im_end);
		put_text(&b, "\n");
	}
	if (add_generation_prompt) {
		put_id(&b, im_start);
		put_text(&b, "assistant\n");
		if (opts->think)
			put_text(&b, "<think>\n");
	}
	/* flush the trailing text ("\n" after the last <|im_end|>, or the prompt) */
	if (!b.rc && b.text.n)
		b.rc =
		    tok_encode_append(t, b.text.p, b.text.n, b.parse_special, &b.ids, &b.scratch);
	free(b.text.p);
	free(b.scratch.p);
	if (b.rc) {
		free(b.ids.v);
		return qvl_errf(err, b.rc, "chat format: out of memory");
	}
	if (!b.ids.v && !(b.ids.v = malloc(sizeof(int32_t))))
		return qvl_errf(err, -ENOMEM, "chat format: out of memory");
	*ids = b.ids.v;
	*n_ids = b.ids.n;
	return 0;
}

int qvl_chat_encode(const struct qvl_tokenizer *t, const struct qvl_chat_msg *msgs, size_t n,
		    const int *image_tokens, bool add_generation_prompt, int32_t **ids,
		    size_t *n_ids, struct qvl_err *err)
{
	return qvl_chat_encode_ex(t, msgs, n, image_tokens, add_generation_prompt, NULL, ids, n_ids,
				  err);
}
