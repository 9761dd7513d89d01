/* A step-wise generation session over the engine: what `qvlctl run` does in
 * one loop, cut at token boundaries so that a scheduler can interleave many
 * sessions, cancel one between two tokens, and (later) batch their forward
 * passes.
 *
 * Life of a session:
 *   gen_create()      builds the prompt (chat messages / raw text / token ids,
 *                     images through the multimodal module) and the sampler;
 *                     nothing has run on the model yet.
 *   gen_step()        = gen_next_chunk() + one forward pass + gen_advance():
 *                     the first step is the prefill, each later one decodes
 *                     the previous token; every step samples one id and
 *                     reports it with the text that became complete UTF-8
 *                     and is known not to be part of a stop string.
 *   gen_cancel()      ends it at the next step boundary.
 * The split next_chunk / advance is the interface the batching scheduler
 * uses: it gathers the chunks of several sessions into one
 * qvl_engine_forward() and hands each its logits.
 *
 * `qvlctl run` runs its generation through a session too, so greedy output
 * through the daemon is identical to `qvlctl run --greedy`. Each step:
 * sample; an end-of-sequence id stops without being emitted (unless
 * ignore_eos); the id is emitted and detokenized; max_tokens reached ->
 * LENGTH; the context full -> CONTEXT; else the id is the next chunk.
 * Owned by the daemon module. */
#ifndef QVL_GENERATE_H
#define QVL_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "err.h"
#include "sample.h"

struct qvl_tokenizer;
struct qvl_mm_src;

enum gen_stop {
	GEN_RUNNING = 0,
	GEN_EOS,
	GEN_LENGTH,
	GEN_STOP_STRING,
	GEN_CANCELLED,
	GEN_CONTEXT,
	GEN_ERROR,
};
const char *gen_stop_name(enum gen_stop s); /* "eos", "length", ... (cmd_run's words) */

/* One chat message; its images go before its text, or where image_at says. */
struct gen_msg {
	const char *role; /* "system", "user", "assistant" */
	const char *text; /* NUL-terminated UTF-8 */
	int n_images;
	/* [n_images] byte offsets into text, non-decreasing, each <= its
	 * length and on a character boundary; NULL: all 0 */
	const uint32_t *image_at;
};

/* Exactly one of: messages (chat format), raw (text as written, special
 * tokens parsed, each <|vision_start|><|image_pad|><|vision_end|> filled by
 * the next image), ids (no tokenizer involved, no images) or chunk (a
 * prompt the caller built, images included, as `qvlctl run` does with its
 * image options; not copied: it must outlive the session). */
struct gen_prompt {
	const struct gen_msg *msgs;
	size_t n_msgs;
	const char *raw;
	const int32_t *ids;
	size_t n_ids;
	const struct qvl_chunk *chunk;
	/* in order of appearance, as the client gave them (multimodal.h: an
	 * image seen before is not decoded again) */
	const struct qvl_mm_src *images;
	int n_images;
	/* images not in the engine's cache: their tower passes left to
	 * gen_encode_step() instead of run by gen_create() (multimodal.h,
	 * qvl_mm_opts.defer_encode) */
	bool defer_encode;
};

#define GEN_MAX_STOPS	 16
#define GEN_MAX_TOP	 20
#define GEN_MAX_STOP_LEN 256

struct gen_params {
	struct qvl_sample_params sp;
	uint32_t max_tokens;
	bool ignore_eos;
	bool logprobs;			  /* report the log-probability of each sampled id */
	int top_logprobs;		  /* with logprobs: 0..GEN_MAX_TOP alternatives */
	int n_ctx;			  /* positions of the sequence's KV cache */
	const char *stops[GEN_MAX_STOPS]; /* UTF-8, 1..GEN_MAX_STOP_LEN bytes each */
	size_t stop_lens[GEN_MAX_STOPS];
	int n_stops;
};

/* What one step produced. */
struct gen_out {
	bool has_id; /* false when the step only ended the session (eos, cancel) */
	int32_t id;
	bool no_text;  /* the tokenizer has no text for id (a padded vocabulary) */
	float logprob; /* log softmax of the raw logits at id (with params.logprobs) */
	int32_t top_ids[GEN_MAX_TOP]; /* params.top_logprobs most likely ids, best first */
	float top_lp[GEN_MAX_TOP];    /* their log softmax, as logprob */
	const char *text;	      /* newly released text (valid until the next call) */
	size_t text_len;
	enum gen_stop stop; /* GEN_RUNNING while more steps follow */
};

struct gen_session;

/* tok may be NULL only for an ids prompt (no text is produced then). The
 * session keeps pointers to e, tok and the model; it copies the prompt. */
int gen_create(struct gen_session **out, struct qvl_engine *e, const struct qvl_tokenizer *tok,
	       const struct gen_prompt *p, const struct gen_params *gp, struct qvl_err *err);
void gen_destroy(struct gen_session *g);

/* Stage the next chunk as one item of a qvl_engine_forward() batch: at most
 * budget positions (0: no limit) of the input the model has not seen yet
 * (the prompt, in chunks when it is longer than the budget, then one id per
 * step). Only a chunk that reaches the end of the input asks for logits (or
 * the argmax alone, for greedy sessions without logprobs). Returns the
 * positions staged, 0 when the session has finished (or is cancelled:
 * gen_advance(-ECANCELED) ends it), -ENOMEM, -EBUSY while image passes
 * are pending (gen_encode_left()). Staging changes nothing that
 * a forward that failed would have to undo: call it again for a retry. */
int gen_next(struct gen_session *g, size_t budget, struct qvl_batch_item *it);
/* gen_next() without a budget, for a caller that runs the chunk itself
 * with qvl_seq_forward() into *logits. NULL once finished. */
const struct qvl_chunk *gen_next_chunk(struct gen_session *g, float **logits);
/* After the forward pass of the staged chunk (rc its result): the chunk
 * becomes part of the sequence; at the end of the input: sample, stop
 * checks, detokenize (a chunk in the middle of a prefill reports nothing,
 * stop GEN_RUNNING). A failed forward ends the session with GEN_ERROR;
 * -ECANCELED ends it with GEN_CANCELLED; -ENOSPC (no room to grow) with
 * GEN_CONTEXT, not an error. */
int gen_advance(struct gen_session *g, int rc, struct gen_out *out, struct qvl_err *err);
/* Preemption: the sequence forgets its KV cache (its pages go back to the
 * pool) and the next steps feed the prompt and the ids generated so far
 * again, in chunks, before the next sample; the output continues as if
 * nothing happened (greedy ids are those of an uninterrupted run). */
void gen_reset(struct gen_session *g);
/* Before the first chunk of a (re-)prefill: attach the cached KV pages of
 * the longest known prefix of the prompt (kvcache.h) so that the prefill
 * starts after them. *reused: positions attached (0 when none, or when the
 * session has fed something already). */
int gen_attach_prefix(struct gen_session *g, size_t *reused, struct qvl_err *err);
/* Positions the next step would still have to feed: 1 while decoding,
 * more while prefilling (or re-prefilling after gen_reset()). */
size_t gen_missing(const struct gen_session *g);
/* Both, with qvl_seq_forward() in between. */
int gen_step(struct gen_session *g, struct gen_out *out, struct qvl_err *err);
/* End at the next step, which then reports GEN_CANCELLED without running
 * the model. */
void gen_cancel(struct gen_session *g);

bool gen_done(const struct gen_session *g);
/* A prompt built with gen_prompt.defer_encode: tower blocks its images
 * still need (0: none, nothing to wait for), the patches of the image that
 * runs next (the cost of one of its blocks), and the next `blocks` of them
 * (qvl_mm_encode_step(): blocks left, or -errno). */
int gen_encode_left(const struct gen_session *g);
size_t gen_encode_patches(const struct gen_session *g);
int gen_encode_step(struct gen_session *g, int blocks, struct qvl_err *err);
struct qvl_seq *gen_seq(struct gen_session *g);
size_t gen_n_prompt(const struct gen_session *g);
/* Seconds spent in the first forward (prefill) and after it (decode). */
void gen_times(const struct gen_session *g, double *prefill_s, double *decode_s);

/* Stop-string matcher, exposed for its unit test: text is appended, and
 * what can no longer be the start of a stop string is released. */
struct gen_stopper {
	char *buf; /* held bytes */
	size_t len, cap;
	size_t release; /* bytes of buf[0..] released by the last push */
	bool matched;
};
/* Append s[0..n) and decide: *rel bytes at the start of buf may go out. On a
 * match, everything before the stop string is released and matched is set
 * (the rest is dropped). -ENOMEM. */
int gen_stopper_push(struct gen_stopper *st, const struct gen_params *gp, const char *s, size_t n);
/* End of text: release everything held (unless a stop matched). */
void gen_stopper_flush(struct gen_stopper *st);
/* Remove the released prefix (call after the caller has used it). */
void gen_stopper_consume(struct gen_stopper *st);
void gen_stopper_free(struct gen_stopper *st);

#endif
