/* The in-process engine: the Qwen3-VL language model on the CPU.
 *
 * One engine per loaded model (weights, kernels, thread pool); requests become
 * sequences (struct qvl_seq, owning their KV cache and position state) that a
 * caller — `qvlctl run` today, the daemon's scheduler later — drives chunk by
 * chunk. The engine never knows who the caller is. Owned by the engine
 * module; other modules use only this header. */
#ifndef QVL_ENGINE_H
#define QVL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "kernels.h" /* enum qvl_precision */
#include "kvcache.h"
#include "model.h"

struct qvl_pool;

/* Where a layer's weights are when they are not resident (the tiered pool,
 * offload/tiers.h). home(l): the address the model's tensors of layer l are
 * relative to (the start of its pack shard), or NULL for a resident layer,
 * which is never asked for. Every pass calls begin(l) before layer l
 * computes (*base: where the shard's bytes are now; a negative errno fails
 * the pass with err set, the sequences unchanged) and end(l) after, in
 * layer order, so that a batch reads each layer once per pass. */
struct qvl_weight_src {
	void *ctx;
	const uint8_t *(*home)(void *ctx, int l);
	int (*begin)(void *ctx, int l, const uint8_t **base, struct qvl_err *err);
	void (*end)(void *ctx, int l);
	/* the layers' 1-D tensors (norms) are at home even for a layer not
	 * resident: the engine widens them from there at creation, without
	 * begin() (which would read every such layer once at start-up) */
	bool vecs_home;
	/* NULL, or: wait until the weights outside the layers (the embeddings
	 * and the output head) are in place and checked; a negative errno
	 * (err naming the shard) fails the pass before it starts, the
	 * sequences unchanged. Called by every pass that embeds tokens or
	 * computes logits, before it reads them. */
	int (*shared)(void *ctx, struct qvl_err *err);
};

struct qvl_engine_opts {
	int threads;			/* <= 0: one per physical core */
	const char *cpus;		/* explicit CPU list, or NULL */
	enum qvl_dtype kv_dtype;	/* QVL_DT_F16 (default with opts == NULL), QVL_DT_BF16 or
					 * QVL_DT_F32 (= 0: what a zeroed struct asks for) */
	const struct qvl_kernels *kern; /* kernel table to use; NULL: qvl_kern (tests pick
					 * a SIMD level per engine this way) */
	enum qvl_precision precision;	/* of the weight products: QVL_PREC_BF16 (= 0, and the
					 * default with opts == NULL) or QVL_PREC_EXACT (what
					 * the golden tests compare); docs/precision.md */
	/* KV pool (kvcache.h): its size in pages, or 0 for the pages that fit
	 * kv_bytes; both 0: no budget (the pool may grow to the machine's
	 * memory, as per-sequence caches did). */
	size_t kv_pages;
	size_t kv_bytes;
	int kv_page_tokens; /* positions per page, a multiple of QVL_KV_PAGE_ALIGN;
			     * 0: QVL_KV_PAGE_TOKENS */
	/* Bytes of vision-tower output kept for images seen again
	 * (multimodal.h); 0: no cache. */
	size_t vision_cache_bytes;
	/* Layers not resident (NULL: all are): see struct qvl_weight_src. */
	const struct qvl_weight_src *wsrc;
	/* Copy every weight matrix read from a file's mapping into huge pages
	 * at creation, for an engine that serves or measures many tokens (qvld,
	 * qvlctl bench); false (one-shot commands): none, the kernels read the
	 * mapping. The policy, with QVL_WEIGHT_COPY's override: weight_copy.h. */
	bool copy_weights;
};

struct qvl_engine;
struct qvl_seq;

int qvl_engine_create(struct qvl_engine **out, const struct qvl_model *m,
		      const struct qvl_engine_opts *opts, struct qvl_err *err);
void qvl_engine_destroy(struct qvl_engine *e);
const struct qvl_model *qvl_engine_model(const struct qvl_engine *e);
struct qvl_pool *qvl_engine_pool(struct qvl_engine *e);
int qvl_engine_threads(const struct qvl_engine *e);
/* The precision the engine was created with (a vision tower sharing the
 * engine's pool takes the same, see multimodal.c). */
enum qvl_precision qvl_engine_precision(const struct qvl_engine *e);
/* Whether the engine copied its weights (opts.copy_weights after the
 * QVL_WEIGHT_COPY override): a vision tower made beside it does the same. */
bool qvl_engine_copies_weights(const struct qvl_engine *e);

/* A sequence of at most n_ctx positions. Its KV cache is a list of pages of
 * the engine's pool (kvcache.h), taken as positions are written; creating a
 * sequence takes none. Any number of sequences may exist at once. */
int qvl_seq_create(struct qvl_engine *e, int n_ctx, struct qvl_seq **out, struct qvl_err *err);
void qvl_seq_destroy(struct qvl_seq *s);
int qvl_seq_len(const struct qvl_seq *s); /* positions in the KV cache */
int qvl_seq_ctx(const struct qvl_seq *s); /* n_ctx it was created with */

/* One chunk of input appended to a sequence: a prompt (or part of one, for
 * chunked prefill) or one generated token.
 *
 * Images: every position whose id is the model's image_token_id takes, in
 * order, the next row of `embd` ([n_img][H], the vision tower's main output)
 * instead of its embedding, and after decoder layer k < n_deepstack the row
 * deepstack[k][rank][H] is added at that position (qwen3-vl.md §5.1, §7).
 * With n_img == 0 that id is embedded like any other token.
 * Positions: pos == NULL gives text positions continuing the sequence
 * (t = h = w = next); otherwise pos[i] = {t, h, w} for each of the n tokens
 * and the sequence continues with text at next_pos (get_rope_index, §6.2). */
struct qvl_chunk {
	const int32_t *ids;
	size_t n;
	const float *embd;
	size_t n_img;
	const float *deepstack;
	int n_deepstack;
	const int32_t (*pos)[3];
	int32_t next_pos;
	/* May be NULL. One content key per image row ([n_img], see
	 * qvl_prefix.img_keys): pages holding image rows are published for
	 * prefix reuse only when their images have keys. */
	const uint64_t *img_keys;
};

/* Run the chunk through the model, appending its K/V. logits (may be NULL):
 * the last position's logits [vocab], or, with all_logits, [n][vocab].
 * Errors (ids out of range, context full, image count mismatch) leave the
 * sequence unchanged. -ENOSPC: the context is full (len + n > n_ctx) or the
 * KV pool cannot supply the pages the chunk needs (qvl_seq_pages_needed());
 * nothing has run and the sequence is unchanged. */
int qvl_seq_forward(struct qvl_engine *e, struct qvl_seq *s, const struct qvl_chunk *c,
		    float *logits, bool all_logits, struct qvl_err *err);

/* Several sequences in one pass (a decode batch, or prefill chunks of
 * different sequences side by side): each slice of up to 512 rows reads
 * every weight once for all of them. Each item is checked as
 * qvl_seq_forward() checks its chunk, and a sequence may appear only once;
 * any error leaves every sequence unchanged. logits / all_logits per item
 * as in qvl_seq_forward(). One caller at a time per engine (the engine's
 * scratch and pool are shared by its sequences). */
struct qvl_batch_item {
	struct qvl_seq *seq;
	struct qvl_chunk chunk;
	float *logits;
	bool all_logits;
	/* May be NULL. Receives the id of the largest logit of the chunk's last
	 * position (the first on ties, NaN never chosen: the argmax kernel of
	 * simd/kernels.h). Without logits this is greedy decoding fused into
	 * the output projection: each thread keeps the maximum of its slice of
	 * the vocabulary and the logits are never written. The values compared
	 * are those the logits would have had (same kernel, same rows). */
	int32_t *argmax;
};
/* qvl_seq_forward() for greedy decoding: *id = the argmax of the last
 * position's logits, which are not written (see qvl_batch_item.argmax). */
int qvl_seq_forward_argmax(struct qvl_engine *e, struct qvl_seq *s, const struct qvl_chunk *c,
			   int32_t *id, struct qvl_err *err);

int qvl_engine_forward(struct qvl_engine *e, const struct qvl_batch_item *items, size_t n,
		       struct qvl_err *err);

/* A batch run through the model a few layers per call: qvl_engine_forward()
 * cut between layers instead of between rows, so that a long prefill chunk
 * keeps all its rows in each matmul (its speed) while each call is short
 * (a scheduler runs other forwards, e.g. a newcomer's prompt, in between).
 * begin checks the items and takes their KV pages as qvl_engine_forward()
 * does (on error nothing changed); each run does the next `layers` layers
 * and returns 1 after the last one, when the chunks are in their sequences
 * and the logits / argmax written, as qvl_engine_forward() would have
 * written them (the same kernels on the same rows). Until then the items'
 * sequences must not be in any other forward, and the items' chunks and
 * output buffers must stay valid. Destroying an unfinished split leaves
 * the sequences as before begin (the K/V written past their length is
 * unused; the pages stay theirs until they grow or are reset). At most
 * QVL_SPLIT_MAX_ROWS rows in all (-E2BIG). A layer whose weights cannot be
 * read (a streamed shard, offload/) fails the run (< 0, err says why): only
 * destroying the split is left. */
#define QVL_SPLIT_MAX_ROWS 512
struct qvl_split;
int qvl_split_begin(struct qvl_engine *e, const struct qvl_batch_item *items, size_t n,
		    struct qvl_split **out, struct qvl_err *err);
int qvl_split_run(struct qvl_split *sp, int layers, struct qvl_err *err);
/* Layers still to run, and rows per layer. */
int qvl_split_layers_left(const struct qvl_split *sp);
size_t qvl_split_rows(const struct qvl_split *sp);
void qvl_split_destroy(struct qvl_split *sp);

/* Progress of long forwards (a prefill of many slices): fn(ctx, rows done,
 * rows in the call) after each slice, on the calling thread. fn NULL: none. */
typedef void (*qvl_progress_fn)(void *ctx, double done, double total);
void qvl_engine_set_progress(struct qvl_engine *e, qvl_progress_fn fn, void *ctx);

#endif
