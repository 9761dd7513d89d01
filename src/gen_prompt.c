/* Prompt building for generate.c. The text-only and single-message image
 * paths call exactly what cmd_run.c calls, so the token sequence is the
 * same; a conversation with images and other messages (a system prompt)
 * is rendered to the chat template's text with one placeholder per image
 * and goes through the multimodal module's raw path. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_prompt.h"
#include "generate.h"
#include "multimodal.h"
#include "tokenizer.h"

#define GEN_MAX_MSGS 256

static int copy_ids(const int32_t *src, size_t n, int32_t **ids, struct qvl_chunk *c,
		    struct qvl_err *err)
{
	*ids = malloc((n ? n : 1) * sizeof(int32_t));
	if (!*ids)
		return qvl_errf(err, -ENOMEM, "out of memory");
	memcpy(*ids, src, n * sizeof(int32_t));
	c->ids = *ids;
	c->n = n;
	return 0;
}

/* "<|im_start|>ROLE\n" + image placeholders + TEXT + "<|im_end|>\n" per
 * message, then the generation prompt: what qvl_chat_encode renders. */
static int render_chat(const struct gen_prompt *p, char **out, struct qvl_err *err)
{
	static const char ph[] = "<|vision_start|><|image_pad|><|vision_end|>";
	size_t total = 64;
	char *s, *w;

	for (size_t i = 0; i < p->n_msgs; i++) {
		const struct gen_msg *mg = &p->msgs[i];
		if (strstr(mg->text, "<|"))
			return qvl_errf(err, -EINVAL,
					"message %zu: '<|' in the text of a chat with images "
					"and several messages (use raw text)",
					i + 1);
		total += strlen(mg->role) + strlen(mg->text) + 32 +
			 (size_t)mg->n_images * (sizeof(ph) - 1);
	}
	s = malloc(total);
	if (!s)
		return qvl_errf(err, -ENOMEM, "out of memory");
	w = s;
	for (size_t i = 0; i < p->n_msgs; i++) {
		const struct gen_msg *mg = &p->msgs[i];
		size_t done = 0, len = strlen(mg->text);
		w += sprintf(w, "<|im_start|>%s\n", mg->role);
		for (int k = 0; k < mg->n_images; k++) {
			/* checked by check_msgs: non-decreasing, <= len */
			size_t at = mg->image_at ? mg->image_at[k] : 0;
			memcpy(w, mg->text + done, at - done);
			w += at - done;
			done = at;
			w = stpcpy(w, ph);
		}
		memcpy(w, mg->text + done, len - done);
		w += len - done;
		w += sprintf(w, "<|im_end|>\n");
	}
	strcpy(w, "<|im_start|>assistant\n");
	*out = s;
	return 0;
}

/* Every image of the message before its text (cmd_run's layout). */
static bool images_first(const struct gen_msg *mg)
{
	for (int k = 0; mg->image_at && k < mg->n_images; k++)
		if (mg->image_at[k])
			return false;
	return true;
}

static int check_msgs(const struct gen_prompt *p, struct qvl_err *err)
{
	int imgs = 0;

	if (p->n_msgs > GEN_MAX_MSGS)
		return qvl_errf(err, -EINVAL, "%zu messages (at most %d)", p->n_msgs, GEN_MAX_MSGS);
	for (size_t i = 0; i < p->n_msgs; i++) {
		const char *r = p->msgs[i].role;
		if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant"))
			return qvl_errf(err, -EINVAL, "message %zu: unknown role '%s'", i + 1, r);
		if (p->msgs[i].n_images < 0 || p->msgs[i].n_images > p->n_images - imgs)
			return qvl_errf(err, -EINVAL, "message %zu: %d images, %d left", i + 1,
					p->msgs[i].n_images, p->n_images - imgs);
		for (int k = 0; p->msgs[i].image_at && k < p->msgs[i].n_images; k++) {
			uint32_t at = p->msgs[i].image_at[k];
			if (at > strlen(p->msgs[i].text) || (k && at < p->msgs[i].image_at[k - 1]))
				return qvl_errf(err, -EINVAL, "message %zu: image %d at byte %u",
						i + 1, k + 1, at);
		}
		imgs += p->msgs[i].n_images;
	}
	if (imgs != p->n_images)
		return qvl_errf(err, -EINVAL, "%d images given, the messages hold %d", p->n_images,
				imgs);
	return 0;
}

int gen_prompt_build(struct qvl_engine *e, const struct qvl_tokenizer *tok,
		     const struct gen_prompt *p, struct qvl_mm_prompt *mm, int32_t **ids,
		     struct qvl_chunk *c, struct qvl_err *err)
{
	const struct qvl_mm_opts mo = {.defer_encode = p->defer_encode};
	int kinds = !!p->msgs + !!p->raw + !!p->ids + !!p->chunk;
	size_t n = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	memset(mm, 0, sizeof(*mm));
	*ids = NULL;
	if (kinds != 1)
		return qvl_errf(err, -EINVAL,
				"prompt: need exactly one of messages, raw text, ids, chunk");
	if (p->chunk) {
		*c = *p->chunk;
		return 0;
	}
	if (p->ids) {
		if (p->n_images)
			return qvl_errf(err, -EINVAL, "prompt: images need a text prompt");
		return copy_ids(p->ids, p->n_ids, ids, c, err);
	}
	if (!tok)
		return qvl_errf(err, -ENOENT,
				"prompt: the model has no tokenizer (send token ids)");
	if (p->raw) {
		if (p->n_images) {
			rc = qvl_mm_prompt_build_src(e, tok, p->raw, true, p->images, p->n_images,
						     &mo, mm, err);
			if (rc == 0)
				*c = mm->chunk;
			return rc;
		}
		rc = qvl_tok_encode(tok, p->raw, strlen(p->raw), true, ids, &n, err);
	} else {
		rc = check_msgs(p, err);
		if (rc < 0)
			return rc;
		if (p->n_images && p->n_msgs == 1 && !strcmp(p->msgs[0].role, "user") &&
		    images_first(&p->msgs[0])) {
			/* cmd_run.c's image path */
			rc = qvl_mm_prompt_build_src(e, tok, p->msgs[0].text, false, p->images,
						     p->n_images, &mo, mm, err);
			if (rc == 0)
				*c = mm->chunk;
			return rc;
		}
		if (p->n_images) {
			char *text = NULL;
			rc = render_chat(p, &text, err);
			if (rc < 0)
				return rc;
			rc = qvl_mm_prompt_build_src(e, tok, text, true, p->images, p->n_images,
						     &mo, mm, err);
			free(text);
			if (rc == 0)
				*c = mm->chunk;
			return rc;
		}
		struct qvl_chat_msg cm[GEN_MAX_MSGS];
		for (size_t i = 0; i < p->n_msgs; i++)
			cm[i] =
			    (struct qvl_chat_msg){.role = p->msgs[i].role, .text = p->msgs[i].text};
		rc = qvl_chat_encode(tok, cm, p->n_msgs, NULL, true, ids, &n, err);
	}
	if (rc < 0)
		return rc;
	c->ids = *ids;
	c->n = n;
	return 0;
}
