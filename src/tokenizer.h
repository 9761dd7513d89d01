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
/* The same from memory; `what` names the source in error messages. */
int qvl_tok_load_json_buf(struct qvl_tokenizer **out, const char *text, size_t len,
			  const char *what, struct qvl_err *err);
/* From a parsed GGUF's tokenizer.ggml.* (model gpt2, pre qwen2). GGUF has no
 * "special" flags: CONTROL tokens count as special, USER_DEFINED as not. */
struct gguf_file;
int qvl_tok_load_gguf(struct qvl_tokenizer **out, const struct gguf_file *g, struct qvl_err *err);
void qvl_tok_free(struct qvl_tokenizer *t);

/* Encode UTF-8 text exactly as Hugging Face tokenizers does with this
 * tokenizer.json: added tokens are matched first in the raw text (leftmost,
 * longest), each stretch between them is NFC-normalized and split by the
 * Qwen2 pre-tokenizer, then BPE-merged; no BOS/EOS is added. parse_special
 * false: added tokens flagged "special" (<|im_start|>, <|image_pad|>, ...) are
 * plain text; the others (<think>, <tool_call>, <|fim_prefix|>, ...) still
 * match (HF's split_special_tokens). Invalid UTF-8 (a stray or missing
 * continuation byte, an overlong form, a surrogate, past U+10FFFF, bytes
 * C0 C1 F5..FF) is -EILSEQ with err naming the offset of the first bad byte;
 * nothing is guessed or replaced. *ids is malloc'd (caller frees; also for 0
 * ids). Thread-safe: t is read-only; caches are per thread. */
int qvl_tok_encode(const struct qvl_tokenizer *t, const char *text, size_t len, bool parse_special,
		   int32_t **ids, size_t *n, struct qvl_err *err);

/* Encoding keeps a small per-thread cache of recent words (pre-token ->
 * ids); this empties the calling thread's (benchmarks time a cold start). */
void qvl_tok_cache_clear(void);

/* Bytes of one token (NULL for an id outside the vocabulary). */
const char *qvl_tok_piece(const struct qvl_tokenizer *t, int32_t id, size_t *len);
/* Decode ids to bytes (malloc'd, NUL-terminated); -EINVAL for an unknown id. */
int qvl_tok_decode(const struct qvl_tokenizer *t, const int32_t *ids, size_t n, char **text,
		   size_t *len, struct qvl_err *err);
/* Number of ids the tokenizer knows (base vocabulary + added tokens). */
int qvl_tok_n_vocab(const struct qvl_tokenizer *t);
/* Id of an added/special token spelled exactly `text`, or -1. */
int32_t qvl_tok_special(const struct qvl_tokenizer *t, const char *text);
/* Is id an added token (<|im_start|>, <think>, ...)? *special (may be NULL)
 * tells whether it is flagged "special" (CONTROL in GGUF). */
bool qvl_tok_is_added(const struct qvl_tokenizer *t, int32_t id, bool *special);
/* Length of the longest piece: qvl_detok_push never needs more than
 * 3 * (qvl_tok_max_piece() + 8) bytes of room. */
size_t qvl_tok_max_piece(const struct qvl_tokenizer *t);

/* Streaming detokenizer: push ids one at a time, get back only complete UTF-8
 * sequences; flush at the end emits what is left (invalid tails as U+FFFD).
 * Output is always valid UTF-8: a byte sequence that can never complete is
 * replaced by one U+FFFD per maximal ill-formed subpart, at once; an
 * incomplete but valid tail (at most 3 bytes) is held until the next push
 * completes it, and flush turns a held tail into one U+FFFD. push returns
 * -EINVAL for an unknown id and -ENOBUFS (consuming nothing) when cap is
 * below 3 * (piece length + held bytes). */
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

/* What qvl_chat_encode renders (its defaults are all false/NULL):
 *   <|im_start|>ROLE\n [IMAGES] TEXT <|im_end|>\n    for every message, in order
 *   <|im_start|>assistant\n                          if add_generation_prompt
 * IMAGES: per image [Picture k: ]<|vision_start|> + N x <|image_pad|> +
 * <|vision_end|>[image_sep]. The text between two added tokens is encoded as
 * one stretch, as when Hugging Face tokenizes the rendered template.
 * Supported: roles system, user, assistant (any order; no default system
 * prompt); images in any message; no tools, no video, no reasoning_content
 * handling. */
struct qvl_chat_opts {
	bool add_vision_id;    /* "Picture k: " before the k-th image (1-based, whole chat) */
	bool parse_special;    /* recognise "special" added tokens inside message texts
				* (false: <|im_end|> typed by a user stays text) */
	bool think;	       /* generation prompt ends with "<think>\n" (Thinking models) */
	const char *image_sep; /* text after each image's <|vision_end|> (NULL: none) */
};
int qvl_chat_encode_ex(const struct qvl_tokenizer *t, const struct qvl_chat_msg *msgs, size_t n,
		       const int *image_tokens, bool add_generation_prompt,
		       const struct qvl_chat_opts *opts, int32_t **ids, size_t *n_ids,
		       struct qvl_err *err);
/* Ids that end an assistant turn: <|im_end|>, <|endoftext|> (those present).
 * Returns how many were written (at most cap). */
int qvl_chat_stop_ids(const struct qvl_tokenizer *t, int32_t *out, int cap);

#endif
