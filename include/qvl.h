/* libqvl: the client side of qvld's shared-memory rings.
 *
 * A client connects to qvld's UNIX socket (qvl_connect), receives one memfd
 * holding a header, a submission ring (SQ), a completion ring (CQ) and an
 * arena, and talks to the daemon through those: it writes inputs into the
 * arena, fills 64-byte SQEs that name them by (offset, length), and reads
 * 64-byte CQEs whose results the daemon wrote straight into an output region
 * of the arena. qvl-ring(7) documents every byte; qvl(3) the API.
 *
 * The hot path (qvl_sqe_get, qvl_submit's publish step, qvl_cqe_peek,
 * qvl_cqe_seen) is inline here, as liburing does, so these functions freeze
 * the shared layout into client binaries: any change to a struct below or to
 * the ring protocol bumps QVL_LAYOUT_VERSION, which the daemon checks in the
 * hello.
 *
 * Thread safety: one thread may submit (qvl_sqe_get .. qvl_submit) and one
 * other thread may reap completions (qvl_cqe_peek / qvl_wait_cqe /
 * qvl_cqe_seen) at the same time on one connection; more threads on either
 * side need the caller's lock. The arena allocator (qvl_arena_*, qvl_req_*,
 * qvl_release) has its own lock and may be called from any thread.
 *
 * Errors: every function returns 0 (or a count) or a negative errno;
 * qvl_strerror() turns it into text. -ENOTCONN means the daemon is gone.
 */
#ifndef QVL_H
#define QVL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- shared layout (qvl-ring(7)) -------------------------------------- */

#define QVL_MAGIC	   "QVLRING" /* 8 bytes with the NUL */
#define QVL_LAYOUT_VERSION 1u
#define QVL_HDR_SIZE	   4096u
#define QVL_ENTRY_SIZE	   64u

/* Header of the memfd, at offset 0. The first cache line is written by the
 * daemon before the fd is sent and never changes; every other field sits on
 * its own 64-byte line and has exactly one writer, named beside it. */
struct qvl_ring_hdr {
	char magic[8];	     /*   0: "QVLRING\0" */
	uint32_t version;    /*   8: QVL_LAYOUT_VERSION */
	uint32_t hdr_size;   /*  12: 4096 */
	uint32_t sq_entries; /*  16: power of two */
	uint32_t cq_entries; /*  20: power of two, >= 2 * sq_entries */
	uint32_t client_id;  /*  24 */
	uint32_t features;   /*  28: QVL_FEAT_* */
	uint64_t sq_off;     /*  32: byte offset of the SQ in the memfd */
	uint64_t cq_off;     /*  40: byte offset of the CQ */
	uint64_t arena_off;  /*  48: byte offset of the arena */
	uint64_t arena_size; /*  56: arena bytes; memfd size = arena_off + arena_size */
	uint32_t sq_tail;    /*  64: client: SQEs published (free-running) */
	uint8_t pad1[60];
	uint32_t sq_head; /* 128: daemon: SQEs consumed */
	uint8_t pad2[60];
	uint32_t cq_tail; /* 192: daemon: CQEs published */
	uint8_t pad3[60];
	uint32_t cq_head; /* 256: client: CQEs consumed */
	uint8_t pad4[60];
	uint32_t sq_flags; /* 320: daemon: QVL_SQ_NEED_WAKEUP while its poller sleeps */
	uint8_t pad5[60];
	uint32_t cq_flags; /* 384: client: QVL_CQ_NEED_WAKEUP while a waiter sleeps */
	uint8_t pad6[60];
	uint32_t cq_futex; /* 448: daemon: bumped before each FUTEX_WAKE (shared futex) */
	uint8_t pad7[60];
	uint32_t epoch; /* 512: daemon: nonzero while it serves this client, 0 once it is gone */
	uint8_t pad8[60];
	uint8_t rsvd[QVL_HDR_SIZE - 576];
};

#define QVL_SQ_NEED_WAKEUP 1u /* write 1 (u64) to the doorbell eventfd after publishing */
#define QVL_CQ_NEED_WAKEUP 1u /* bump cq_futex and FUTEX_WAKE after publishing */

/* Opcodes (struct qvl_sqe.opcode). */
enum {
	QVL_OP_NOP = 0,		/* completes at once with res = (int32_t)arg (0 or -errno) */
	QVL_OP_GENERATE = 1,	/* request block: qvl_gen_req; output: ids, logprobs, text */
	QVL_OP_TOKENIZE = 2,	/* request block: text parts; output: int32 ids */
	QVL_OP_EMBED_IMAGE = 3, /* request block: one image part; output: f32[n_tokens][dim] */
	QVL_OP_CANCEL = 4,	/* arg = user_data of the request to cancel */
	QVL_OP_STATS = 5,	/* output: JSON text of the daemon's counters */
	QVL_OP_STATUS = 6,	/* output: JSON text of the daemon's state */
	QVL_OP_SHUTDOWN = 7,	/* the daemon drains and exits (its own uid or root only) */
	QVL_OP_VOCAB = 8,	/* output: the token texts (layout below, QVL_VOCAB_*) */
	QVL_OP_LAST = 8,
};

/* SQE flag bits (none defined yet: every set bit is -EINVAL). */
#define QVL_SQE_F_MASK 0u

struct qvl_sqe {
	uint8_t opcode;	    /*  0 */
	uint8_t flags;	    /*  1: QVL_SQE_F_* */
	uint16_t rsvd;	    /*  2: zero */
	uint32_t req_len;   /*  4: request block bytes (0 if the opcode has none) */
	uint64_t req_off;   /*  8: request block offset in the arena */
	uint64_t user_data; /* 16: echoed in every CQE of this request */
	uint64_t out_off;   /* 24: output region offset in the arena (4-byte aligned) */
	uint64_t out_len;   /* 32: output region bytes */
	uint64_t arg;	    /* 40: NOP: status; CANCEL: target user_data; else 0 */
	uint64_t rsvd2[2];  /* 48: zero */
};

/* CQE flag bits. */
#define QVL_CQE_F_MORE 1u /* a streamed chunk: more CQEs follow for this user_data */

/* Why generation stopped (struct qvl_cqe.stop, final CQE). */
enum {
	QVL_STOP_NONE = 0, /* not a generation, or a MORE chunk */
	QVL_STOP_EOS = 1,
	QVL_STOP_LENGTH = 2, /* max_tokens or the output region is full */
	QVL_STOP_STRING = 3,
	QVL_STOP_CANCELLED = 4,
	QVL_STOP_CONTEXT = 5,
	QVL_STOP_ERROR = 6,
};

struct qvl_cqe {
	uint64_t user_data;  /*  0 */
	int32_t res;	     /*  8: 0 or -errno */
	uint32_t flags;	     /* 12: QVL_CQE_F_* */
	uint32_t n_tokens;   /* 16: ids written so far (cumulative) */
	uint32_t text_len;   /* 20: text bytes written so far (cumulative); EMBED_IMAGE: bytes */
	uint32_t n_prompt;   /* 24: prompt tokens */
	uint32_t stop;	     /* 28: QVL_STOP_* */
	uint64_t prefill_ns; /* 32 */
	uint64_t decode_ns;  /* 40 */
	uint64_t queue_ns;   /* 48 */
	uint64_t post_ns;    /* 56: CLOCK_MONOTONIC ns when the daemon posted it */
};

/* Request block flags (struct qvl_gen_req.flags). */
#define QVL_GEN_RAW	       0x01u /* text parts used as written, no chat template */
#define QVL_GEN_STREAM	       0x02u /* a MORE CQE per chunk */
#define QVL_GEN_LOGPROBS       0x04u /* f32 logprobs after the ids in the output */
#define QVL_GEN_IGNORE_EOS     0x08u /* keep going past end-of-sequence */
#define QVL_GEN_GREEDY	       0x10u /* argmax; sampling fields ignored */
#define QVL_GEN_MODEL_DEFAULTS 0x20u /* the model's sampling defaults, fields ignored */
#define QVL_GEN_TOP_LOGPROBS   0x40u /* with LOGPROBS: top_logprobs alternatives per token */
#define QVL_GEN_FLAGS_MASK     0x7fu

/* Part kinds (struct qvl_part.kind). */
enum {
	QVL_PART_SYSTEM = 1,	/* UTF-8 text: a system message */
	QVL_PART_USER = 2,	/* UTF-8 text: a user message */
	QVL_PART_ASSISTANT = 3, /* UTF-8 text: an earlier assistant turn */
	QVL_PART_TOKENS = 4,	/* int32 token ids, len in bytes (multiple of 4) */
	QVL_PART_IMAGE = 5,	/* PNG or JPEG bytes; attaches to the next user message */
	QVL_PART_IMAGE_RGB = 6, /* raw RGB8 rows: width, height, stride (bytes per row) */
	QVL_PART_STOP = 7,	/* a stop string */
	QVL_PART_LAST = 7,
};

/* Limits the daemon enforces on a request block. */
#define QVL_MAX_PARTS	     256u
#define QVL_MAX_STOPS	     16u
#define QVL_MAX_STOP_LEN     256u
#define QVL_MAX_IMAGES	     16u
#define QVL_MAX_IMAGE_SIDE   16384u
#define QVL_MAX_TOKENS	     (1u << 20)
#define QVL_MAX_TOP_LOGPROBS 20u

/* An image attaches to the next user message, at byte text_at of its text
 * (0: before the text; at most its length, on a UTF-8 character boundary;
 * non-decreasing among the images of one message; 0 with QVL_GEN_RAW). */
struct qvl_part {
	uint32_t kind;	  /*  0: QVL_PART_* */
	uint32_t len;	  /*  4: bytes */
	uint64_t off;	  /*  8: arena offset */
	uint32_t width;	  /* 16: IMAGE_RGB only, else 0 */
	uint32_t height;  /* 20 */
	uint32_t stride;  /* 24 */
	uint32_t text_at; /* 28: IMAGE and IMAGE_RGB only, else 0 */
};

/* The request block (GENERATE, TOKENIZE, EMBED_IMAGE): this header then
 * n_parts struct qvl_part; req_len = 64 + 32 * n_parts exactly. Sampling
 * fields: 0 disables top_p (as 1), top_k, min_p, repeat_penalty (as 1),
 * presence_penalty and frequency_penalty. presence_penalty is subtracted
 * once from the logit of every id among the last 64 of the context (prompt
 * included); frequency_penalty (OpenAI's) is subtracted once per occurrence
 * of the id in the generated text so far. top_logprobs is 1..
 * QVL_MAX_TOP_LOGPROBS with QVL_GEN_TOP_LOGPROBS (which needs
 * QVL_GEN_LOGPROBS), else 0. */
struct qvl_gen_req {
	uint32_t size;		 /*  0: sizeof(struct qvl_gen_req) = 64 */
	uint32_t flags;		 /*  4: QVL_GEN_* */
	uint32_t max_tokens;	 /*  8: GENERATE: 1..QVL_MAX_TOKENS; else 0 */
	uint32_t n_parts;	 /* 12: 0..QVL_MAX_PARTS */
	float temperature;	 /* 16: 0..100 (0 = greedy) */
	float top_p;		 /* 20: 0..1 */
	float min_p;		 /* 24: 0..1 */
	float repeat_penalty;	 /* 28: 0..100 */
	float presence_penalty;	 /* 32: -100..100 */
	int32_t top_k;		 /* 36: 0..1000000 */
	uint64_t seed;		 /* 40 */
	float frequency_penalty; /* 48: -100..100 */
	uint32_t top_logprobs;	 /* 52: 0..QVL_MAX_TOP_LOGPROBS */
	uint32_t rsvd[2];	 /* 56: zero */
				 /* struct qvl_part parts[n_parts] follow at byte 64 */
};

/* The output region of a GENERATE request, in this order (a block is there
 * only with its flag; the region starts 4-byte aligned):
 *   int32_t ids[max_tokens]
 *   float logprobs[max_tokens]                   QVL_GEN_LOGPROBS: log softmax
 *                                                of the raw logits at the id
 *   struct qvl_top_logprob top[max_tokens][K]    QVL_GEN_TOP_LOGPROBS, K =
 *                                                top_logprobs: the K most
 *                                                likely ids, most likely first
 *   char text[]                                  the rest of the region
 * Entry i of a block is written before the CQE that counts token i. */
struct qvl_top_logprob {
	int32_t id;
	float logprob; /* <= 0, same scale as logprobs[] */
};

/* Byte offset of the text in a GENERATE output region (the bytes before it
 * are the ids and the blocks above). Inline. No overflow once the request
 * is valid (max_tokens <= 2^20, top_logprobs <= 20): the validator checks
 * those before it calls these. */
static inline uint64_t qvl_gen_top_offset(const struct qvl_gen_req *g)
{
	return 4ull * g->max_tokens * ((g->flags & QVL_GEN_LOGPROBS) ? 2 : 1);
}

static inline uint64_t qvl_gen_text_offset(const struct qvl_gen_req *g)
{
	uint64_t k = (g->flags & QVL_GEN_TOP_LOGPROBS) ? g->top_logprobs : 0;

	return qvl_gen_top_offset(g) + k * sizeof(struct qvl_top_logprob) * g->max_tokens;
}

/* QVL_OP_VOCAB's output region: the bytes of every token id the tokenizer
 * knows (added tokens as their text), for clients that show token texts:
 *   uint32_t n                     ids 0..n-1
 *   uint32_t end[n]                end of id i's bytes, counted from bytes[0];
 *                                  non-decreasing; id i is bytes[end[i-1]..end[i])
 *   uint8_t bytes[end[n-1]]
 * The CQE's text_len is the bytes used; a region too small gets -ENOBUFS
 * with text_len the size needed; a daemon without tokenizer -ENOENT. */

/* Handshake, on the UNIX stream socket: the client sends a hello; the
 * daemon answers with a welcome and, if status is 0, SCM_RIGHTS carrying
 * [memfd, doorbell eventfd] on the same message. */
struct qvl_hello {
	char magic[8];	     /*  0: "QVLRING\0" */
	uint32_t version;    /*  8: QVL_LAYOUT_VERSION */
	uint32_t size;	     /* 12: sizeof(struct qvl_hello) = 64 */
	uint32_t sq_entries; /* 16: requested (0 = daemon default) */
	uint32_t cq_entries; /* 20: requested (0 = 2 * sq_entries) */
	uint64_t arena_size; /* 24: requested bytes (0 = daemon default) */
	uint32_t flags;	     /* 32: zero */
	uint32_t rsvd[7];    /* 36: zero */
};

struct qvl_welcome {
	char magic[8];	       /*  0: "QVLRING\0" */
	uint32_t version;      /*  8: the daemon's QVL_LAYOUT_VERSION */
	uint32_t size;	       /* 12: 64 */
	int32_t status;	       /* 16: 0 or -errno (no fds then) */
	uint32_t client_id;    /* 20 */
	uint32_t sq_entries;   /* 24 */
	uint32_t cq_entries;   /* 28 */
	uint64_t arena_size;   /* 32 */
	uint64_t map_size;     /* 40: memfd bytes */
	uint32_t max_inflight; /* 48: requests the daemon accepts at once */
	uint32_t rsvd[3];      /* 52: zero */
};

/* ---- connection -------------------------------------------------------- */

/* A connection. Fields before `priv` are read by the inline helpers and are
 * part of the ABI (QVL_LAYOUT_VERSION); treat them as read-only. */
struct qvl {
	struct qvl_ring_hdr *hdr;
	struct qvl_sqe *sqes;
	struct qvl_cqe *cqes;
	uint8_t *arena;
	uint64_t arena_size;
	uint32_t sq_mask, cq_mask;
	uint32_t sq_local_tail; /* SQEs handed out by qvl_sqe_get, not yet published */
	uint32_t sq_head_cache; /* the daemon's sq_head as last read (submitter thread) */
	uint32_t max_inflight;
	struct qvl_priv *priv;
	/* the completer thread's own line: no false sharing with the submitter */
	uint32_t cq_tail_cache __attribute__((aligned(64))); /* the daemon's cq_tail as last read */
};

struct qvl_opts {
	uint32_t sq_entries;  /* 0: daemon default */
	uint32_t cq_entries;  /* 0: 2 * sq_entries */
	uint64_t arena_size;  /* 0: daemon default */
	int64_t wait_spin_ns; /* qvl_wait_cqe spins this long before sleeping:
				 0 = 20 us, < 0 = sleep at once */
};

/* Socket path when path is NULL: $QVL_SOCKET, else /run/qvld/qvld.sock for root, else
 * $XDG_RUNTIME_DIR/qvld/qvld.sock, else /tmp/qvld-UID/qvld.sock (qvld's own rule). */
#define QVL_DEFAULT_SOCKET "/run/qvld/qvld.sock"

int qvl_connect(const char *path, const struct qvl_opts *opts, struct qvl **out);
void qvl_disconnect(struct qvl *q);
const char *qvl_strerror(int err);

/* ---- arena ------------------------------------------------------------- */

/* Allocate len bytes (64-byte aligned) from the arena; *off is its offset. */
int qvl_arena_alloc(struct qvl *q, uint64_t len, uint64_t *off);
/* Return a block by its offset (from qvl_arena_alloc). */
int qvl_arena_free(struct qvl *q, uint64_t off);

static inline void *qvl_arena_ptr(const struct qvl *q, uint64_t off)
{
	return q->arena + off;
}

/* ---- request builder --------------------------------------------------- */

/* A request under construction: its inputs, request block and output region
 * live in the arena until qvl_release(). */
struct qvl_req;

struct qvl_sampling {
	float temperature, top_p, min_p, repeat_penalty, presence_penalty;
	int32_t top_k;
	uint64_t seed;
};

int qvl_req_new(struct qvl *q, uint8_t opcode, struct qvl_req **out);
int qvl_req_add_text(struct qvl_req *r, uint32_t kind, const char *text, size_t len);
int qvl_req_add_tokens(struct qvl_req *r, const int32_t *ids, size_t n);
int qvl_req_add_image(struct qvl_req *r, const void *data, size_t len);
int qvl_req_add_image_rgb(struct qvl_req *r, const void *rgb, uint32_t width, uint32_t height,
			  uint32_t stride);
int qvl_req_add_stop(struct qvl_req *r, const char *s, size_t len);
/* Place the image added last at byte text_at of the text of the user
 * message it attaches to (the next one) instead of before it. */
int qvl_req_set_image_at(struct qvl_req *r, uint32_t text_at);
int qvl_req_set_sampling(struct qvl_req *r, const struct qvl_sampling *s);
int qvl_req_set_flags(struct qvl_req *r, uint32_t flags);
int qvl_req_set_max_tokens(struct qvl_req *r, uint32_t max_tokens);
/* OpenAI's frequency_penalty (-100..100, 0: off); clears
 * QVL_GEN_MODEL_DEFAULTS as qvl_req_set_sampling does. */
int qvl_req_set_frequency_penalty(struct qvl_req *r, float frequency_penalty);
/* k alternatives per token (0..QVL_MAX_TOP_LOGPROBS): sets or clears
 * QVL_GEN_TOP_LOGPROBS, and QVL_GEN_LOGPROBS when k > 0. */
int qvl_req_set_top_logprobs(struct qvl_req *r, uint32_t k);
/* Lay out the request block and an output region of out_len bytes (0: the
 * minimum for the opcode plus 16 bytes of text per token) and fill *sqe. */
int qvl_req_prep(struct qvl_req *r, struct qvl_sqe *sqe, uint64_t user_data, uint64_t out_len);
/* The output region, valid after qvl_req_prep (read the counts in the CQE). */
const int32_t *qvl_req_ids(const struct qvl_req *r);
const float *qvl_req_logprobs(const struct qvl_req *r);
/* The top alternatives, k per token (NULL without QVL_GEN_TOP_LOGPROBS). */
const struct qvl_top_logprob *qvl_req_top_logprobs(const struct qvl_req *r, uint32_t *k);
const char *qvl_req_text(const struct qvl_req *r);
const void *qvl_req_out(const struct qvl_req *r, uint64_t *len);
/* Free the request and its arena regions: only after its final CQE. */
void qvl_release(struct qvl_req *r);

/* ---- submission and completion ------------------------------------------ */

/* The next free SQE (zeroed), or NULL when the SQ is full. Inline. */
static inline struct qvl_sqe *qvl_sqe_get(struct qvl *q)
{
	struct qvl_sqe *sqe;

	if (q->sq_local_tail - q->sq_head_cache > q->sq_mask) {
		/* acquire: pairs with the poller's store-release of sq_head in
		 * serve(): the slots up to it have been copied out */
		q->sq_head_cache = __atomic_load_n(&q->hdr->sq_head, __ATOMIC_ACQUIRE);
		if (q->sq_local_tail - q->sq_head_cache > q->sq_mask)
			return NULL;
	}
	sqe = &q->sqes[q->sq_local_tail & q->sq_mask];
	q->sq_local_tail++;
	__builtin_memset(sqe, 0, sizeof(*sqe));
	return sqe;
}

/* Publish every SQE taken since the last call: one store-release of the
 * tail, then a doorbell write only if the daemon sleeps. Returns the number
 * published or -errno. */
int qvl_submit(struct qvl *q);

/* The oldest unseen CQE or NULL. Inline, no syscall. */
static inline struct qvl_cqe *qvl_cqe_peek(struct qvl *q)
{
	/* the client is the only writer of cq_head: a relaxed load suffices */
	uint32_t head = __atomic_load_n(&q->hdr->cq_head, __ATOMIC_RELAXED);

	if (head == q->cq_tail_cache) {
		/* acquire: pairs with the store-release of cq_tail in
		 * shm_cq_post(): the CQEs before it are complete */
		q->cq_tail_cache = __atomic_load_n(&q->hdr->cq_tail, __ATOMIC_ACQUIRE);
		if (head == q->cq_tail_cache)
			return NULL;
	}
	return &q->cqes[head & q->cq_mask];
}

/* How many CQEs are ready; they are q->cqes[(head + i) & q->cq_mask] for
 * i < n, head being hdr->cq_head. Inline, no syscall. */
static inline uint32_t qvl_cq_ready(struct qvl *q)
{
	uint32_t head = __atomic_load_n(&q->hdr->cq_head, __ATOMIC_RELAXED);

	/* acquire: pairs with the store-release of cq_tail in shm_cq_post() */
	q->cq_tail_cache = __atomic_load_n(&q->hdr->cq_tail, __ATOMIC_ACQUIRE);
	return q->cq_tail_cache - head;
}

/* Mark n CQEs consumed (after peeking them). Inline, no syscall. */
static inline void qvl_cq_advance(struct qvl *q, uint32_t n)
{
	uint32_t head = __atomic_load_n(&q->hdr->cq_head, __ATOMIC_RELAXED);

	/* release: pairs with the daemon's load-acquire of cq_head in
	 * shm_cq_post(): our reads of the slots finish before they are reused */
	__atomic_store_n(&q->hdr->cq_head, head + n, __ATOMIC_RELEASE);
}

/* Mark the CQE from qvl_cqe_peek consumed. Inline, no syscall. */
static inline void qvl_cqe_seen(struct qvl *q)
{
	qvl_cq_advance(q, 1);
}

/* Wait for a CQE: timeout_ns < 0 waits for ever, 0 does not sleep. Spins
 * briefly, then sleeps on the header futex. 0 with *cqe set, -ETIMEDOUT,
 * -ENOTCONN when the daemon is gone (socket EOF or epoch 0), -EINTR. */
int qvl_wait_cqe(struct qvl *q, struct qvl_cqe **cqe, int64_t timeout_ns);

/* The socket fd (for poll: readable with EOF when the daemon dies). */
int qvl_fd(const struct qvl *q);

#ifdef __cplusplus
}
#endif
#endif
