/* The Qwen3 byte-level BPE tokenizer (tokenizer.json or GGUF tokenizer.ggml.*)
 * and the Qwen3-VL chat format (qwen3-vl.md §8). Owned by the tokenizer module;
 * other modules use only this header. */
#ifndef QVL_TOKENIZER_H
#define QVL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct qvl_model;
struct qvl_tokenizer;

/* From the model's own source: tokenizer.json of an HF directory, or the text
 * GGUF's tokenizer.ggml.* metadata. */
int qvl_tok_load(struct qvl_tokenizer **out, const struct qvl_model *m, struct qvl_err *err);
int qvl_tok_load_json(struct qvl_tokenizer **out, const char *path, struct qvl_err *err);
void qvl_tok_free(struct qvl_tokenizer *t);

/* Encode UTF-8 text. parse_special: added tokens in the text are recognised
 * (false: those flagged "special" are encoded as plain text). Invalid UTF-8 is
 * -EILSEQ with err naming the byte offset. *ids is malloc'd (caller frees). */
int qvl_tok_encode(const struct qvl_tokenizer *t, const char *text, size_t len,
		   bool parse_special, int32_t **ids, size_t *n, struct qvl_err *err);

/* Bytes of one token (NULL for an id outside the vocabulary). */
const char *qvl_tok_piece(const struct qvl_tokenizer *t, int32_t id, size_t *len);
/* Decode ids to bytes (malloc'd, NUL-terminated); -EINVAL for an unknown id. */
int qvl_tok_decode(const struct qvl_tokenizer *t, const int32_t *ids, size_t n, char **text,
		   size_t *len, struct qvl_err *err);
/* Number of ids the tokenizer knows (base vocabulary + added tokens). */
int qvl_tok_n_vocab(const struct qvl_tokenizer *t);
/* Id of an added/special token spelled exactly `text`, or -1. */
int32_t qvl_tok_special(const struct qvl_tokenizer *t, const char *text);

/* Streaming detokenizer: push ids one at a time, get back only complete UTF-8
 * sequences; flush at the end emits what is left (invalid tails as U+FFFD). */
struct qvl_detok {
	const struct qvl_tokenizer *tok;
	char pending[8];
	size_t npending;
};
void qvl_detok_init(struct qvl_detok *d, const struct qvl_tokenizer *t);
/* Appends to out (cap bytes); returns bytes written or a negative errno. */
long qvl_detok_push(struct qvl_detok *d, int32_t id, char *out, size_t cap);
long qvl_detok_flush(struct qvl_detok *d, char *out, size_t cap);

/* Chat format. A message's images come first in its content, then its text
 * (what `qvlctl run --image ... --prompt ...` builds). image_tokens[i] is the
 * merged token count of the i-th image of the whole conversation, in order:
 * each image renders <|vision_start|> + image_tokens[i] x <|image_pad|> +
 * <|vision_end|>. */
struct qvl_chat_msg {
	const char *role; /* "system", "user", "assistant" */
	const char *text;
	int n_images;
};
int qvl_chat_encode(const struct qvl_tokenizer *t, const struct qvl_chat_msg *msgs, size_t n,
		    const int *image_tokens, bool add_generation_prompt, int32_t **ids,
		    size_t *n_ids, struct qvl_err *err);

#endif
