/* The copy of a weight matrix from a model file's mapping into memory the
 * engine or the vision tower owns (huge pages: engine.c, mat_own; vision.c,
 * vis_own), shared by both, and the one rule of when it happens.
 *
 * THE WEIGHT-COPY POLICY (qvlctl(8) --copy-weights and QVL_WEIGHT_COPY,
 * qvld(8) say the same):
 * - The text engine and the vision tower copy every weight matrix that
 *   their model file's mapping holds (GGUF, safetensors: a pack's arena is
 *   huge pages already) into huge pages at creation exactly when their
 *   creator asked (struct qvl_engine_opts / qvl_vision_opts copy_weights),
 *   and a tower made beside an engine does as the engine does
 *   (qvl_engine_copies_weights). Asked: an engine that serves or measures
 *   many tokens or images, qvld and `qvlctl bench`; not asked: the one-shot
 *   commands (`run`, `embed-image`) unless given --copy-weights. The copy
 *   pays for itself over many tokens (decode streams 2 MiB pages without a
 *   TLB walk per 4 KiB row, from rows on a 64-byte line: a safetensors
 *   file's tensors are 24-32 bytes past one); over a one-shot command's few
 *   tokens it costs more than it saves, whatever the file's alignment, so
 *   there is no second rule for matrices off a line: the kernels read any
 *   alignment, with the same bits.
 * - QVL_WEIGHT_COPY=0|1 overrides the option either way (the A/B; another
 *   value leaves it): qvl_weight_copy_asked().
 * - Not copied even when asked: rows whose length keeps them off a line
 *   anyway (the engine), and nothing when the huge-page allocation fails
 *   (same results, slower). Repacked matrices (engine.c, mat_repack) and the
 *   tower's bf16 GEMM panels are the engine's / tower's own memory whatever
 *   this says: they are new layouts, not copies. */
#ifndef QVL_WEIGHT_COPY_H
#define QVL_WEIGHT_COPY_H

#include <stdbool.h>
#include <stddef.h>

struct qvl_model;
struct qvl_pool;

/* The bytes [src, src + bytes) of one of r->m's mapped files into dst, by the
 * pool's threads (pool NULL: the caller's), then the mapping's pages of src
 * dropped (qvl_model_drop_pages). Read with pread() from the file: from the
 * page cache, without faulting the mapping's 4 KiB pages in first (2b bf16
 * GGUF, --copy-weights: load 1.2-4.9 s against 9.4-14.3 s copying from the
 * mapping, CPU 0.8-2.6 s against 6.5-7.6 s, on a loaded VM); from the
 * mapping when the file cannot be read so or QVL_WEIGHT_PREAD=0. */
struct qvl_weight_reader {
	const struct qvl_model *m;
	int fd;	      /* the last source's file, or -1 */
	size_t isrc;  /* which of m->sources fd is */
};

/* A reader for a run of copies out of m's files: each file is opened once
 * (not once per matrix) and closed by qvl_weight_reader_close(). */
void qvl_weight_reader_init(struct qvl_weight_reader *r, const struct qvl_model *m);
void qvl_weight_reader_close(struct qvl_weight_reader *r);

void qvl_weight_copy(struct qvl_weight_reader *r, struct qvl_pool *pool, void *dst, const void *src,
		     size_t bytes);

/* Whether to copy (the policy above): the creator's option `asked`, unless
 * QVL_WEIGHT_COPY=0|1 says otherwise. */
bool qvl_weight_copy_asked(bool asked);

#endif
