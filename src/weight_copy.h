/* The copy of a weight matrix from a model file's mapping into memory the
 * engine or the vision tower owns (huge pages: engine.c, mat_own; vision.c,
 * vis_own), shared by both. */
#ifndef QVL_WEIGHT_COPY_H
#define QVL_WEIGHT_COPY_H

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

#endif
