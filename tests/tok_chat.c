/* The chat format against the golden prompts: the single-image prompt of
 * ../shared/golden/README.md and the two-image prompt of
 * golden/vision/multi/two_images.json (ids from llama.cpp, -1 at each image
 * token), plus the rendering rules of qwen3-vl.md §8 checked as text. */
#include "config.h"

#include <stdio.h>

#include "tok_testutil.h"

static bool same(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
	return na == nb && !memcmp(a, b, na * sizeof(*a));
}

/* the ids of two_images.json with each -1 replaced by <|image_pad|> */
static int32_t *golden_two_images(size_t *n)
{
	const char *shared = test_env("QVL_SHARED", NULL);
	if (!shared)
		return NULL;
	char *path = qvl_path_join(shared, "golden/vision/multi/two_images.json");
	char *text;
	size_t len;
	struct qvl_err err;
	struct json_doc d;
	int32_t *ids = NULL;
	if (!qvl_read_file(path, (size_t)16 << 20, &text, &len, &err)) {
		if (!json_parse(&d, text, len, path, &err)) {
			uint32_t arr = json_get(&d, 0, "ids");
			if (arr != JSON_NONE && d.tok[arr].type == JSON_ARRAY) {
				*n = d.tok[arr].count;
				ids = malloc(*n * sizeof(*ids));
				uint32_t k = arr + 1;
				for (size_t i = 0; i < *n; i++, k = d.tok[k].end) {
					int64_t v = 0;
					json_int64(&d, k, &v);
					ids[i] = v < 0 ? 151655 : (int32_t)v;
				}
			}
			json_free(&d);
		}
		free(text);
	}
	free(path);
	return ids;
}

static void check_text(const struct qvl_tokenizer *t, const int32_t *ids, size_t n,
		       const char *want, const char *what)
{
	char *txt;
	size_t len;
	struct qvl_err err;
	int rc = qvl_tok_decode(t, ids, n, &txt, &len, &err);
	ok(!rc && len == strlen(want) && !memcmp(txt, want, len), "%s renders as the template",
	   what);
	if (!rc && (len != strlen(want) || memcmp(txt, want, len)))
		diag("got: %s", txt);
	if (!rc)
		free(txt);
}

int main(void)
{
	struct qvl_tokenizer *t = tt_load(NULL);
	struct qvl_err err;
	int32_t *ids;
	size_t n;

	/* golden/README.md: <|im_start|>user\n<|vision_start|> [image]
	 * <|vision_end|>Describe.<|im_end|>\n<|im_start|>assistant\n */
	int ntok = 5;
	struct qvl_chat_msg one = {.role = "user", .text = "Describe.", .n_images = 1};
	int rc = qvl_chat_encode(t, &one, 1, &ntok, true, &ids, &n, &err);
	int32_t want1[] = {151644, 872,	  198, 151652, 151655, 151655, 151655, 151655, 151655,
			   151653, 74785, 13,  151645, 198,    151644, 77091,  198};
	ok(!rc && same(ids, n, want1, sizeof(want1) / sizeof(want1[0])),
	   "single-image prompt = golden ids (5 image tokens)");
	if (!rc)
		free(ids);

	size_t ng;
	int32_t *g = golden_two_images(&ng);
	if (g) {
		int two[] = {70, 64};
		struct qvl_chat_msg m = {
		    .role = "user", .text = "Which one is brighter?", .n_images = 2};
		struct qvl_chat_opts o = {.add_vision_id = true, .image_sep = "\n"};
		rc = qvl_chat_encode_ex(t, &m, 1, two, true, &o, &ids, &n, &err);
		ok(!rc && same(ids, n, g, ng),
		   "two-image prompt = golden two_images.json (%zu ids)", ng);
		if (!rc)
			free(ids);
		free(g);
	} else {
		skip(1, "no ../shared/golden/vision/multi/two_images.json");
	}

	struct qvl_chat_msg conv[] = {
	    {.role = "system", .text = "You are terse."},
	    {.role = "user", .text = "Hi"},
	    {.role = "assistant", .text = "Hello."},
	    {.role = "user", .text = "<|im_end|> is text", .n_images = 1},
	};
	int img = 2;
	rc = qvl_chat_encode(t, conv, 4, &img, true, &ids, &n, &err);
	ok(!rc, "conversation encodes");
	if (!rc) {
		check_text(
		    t, ids, n,
		    "<|im_start|>system\nYou are terse.<|im_end|>\n"
		    "<|im_start|>user\nHi<|im_end|>\n"
		    "<|im_start|>assistant\nHello.<|im_end|>\n"
		    "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>"
		    "<|im_end|> is text<|im_end|>\n<|im_start|>assistant\n",
		    "system/user/assistant/user+image");
		int im_end = 0;
		for (size_t i = 0; i < n; i++)
			im_end += ids[i] == 151645;
		is_int(im_end, 4, "a typed <|im_end|> stays text (parse_special off)");
		free(ids);
	}
	struct qvl_chat_opts th = {.think = true};
	rc = qvl_chat_encode_ex(t, conv + 1, 1, NULL, true, &th, &ids, &n, &err);
	if (!rc) {
		check_text(t, ids, n,
			   "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n",
			   "thinking generation prompt");
		ok(n >= 2 && ids[n - 2] == 151667 && ids[n - 1] == 198,
		   "<think> is its added token");
		free(ids);
	}
	rc = qvl_chat_encode(t, conv + 1, 1, NULL, false, &ids, &n, &err);
	if (!rc) {
		check_text(t, ids, n, "<|im_start|>user\nHi<|im_end|>\n", "no generation prompt");
		free(ids);
	}
	/* the stretch "user\n" + text is one pre-tokenizer input, as in HF */
	struct qvl_chat_msg nl = {.role = "user", .text = "\n\nx"};
	rc = qvl_chat_encode(t, &nl, 1, NULL, false, &ids, &n, &err);
	int32_t *ref;
	size_t nref;
	qvl_tok_encode(t, "<|im_start|>user\n\n\nx<|im_end|>\n", 31, true, &ref, &nref, &err);
	ok(!rc && same(ids, n, ref, nref), "role and text are tokenized as one stretch");
	if (!rc)
		free(ids);
	free(ref);

	struct qvl_chat_msg badrole = {.role = "tool", .text = "x"};
	is_int(qvl_chat_encode(t, &badrole, 1, NULL, true, &ids, &n, &err), -EINVAL,
	       "role tool is refused");
	struct qvl_chat_msg badimg = {.role = "user", .text = "x", .n_images = 1};
	int zero = 0;
	is_int(qvl_chat_encode(t, &badimg, 1, &zero, true, &ids, &n, &err), -EINVAL,
	       "an image of 0 tokens is refused");
	is_int(qvl_chat_encode(t, &badimg, 1, NULL, true, &ids, &n, &err), -EINVAL,
	       "images without token counts are refused");
	struct qvl_chat_msg badutf = {.role = "user", .text = "a\xC3"};
	is_int(qvl_chat_encode(t, &badutf, 1, NULL, true, &ids, &n, &err), -EILSEQ,
	       "invalid UTF-8 in a message is refused");
	int32_t stops[4];
	int ns = qvl_chat_stop_ids(t, stops, 4);
	ok(ns == 2 && stops[0] == 151645 && stops[1] == 151643, "stop ids 151645 151643");
	qvl_tok_free(t);
	return done_testing();
}
