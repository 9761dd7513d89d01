/* The streaming window (stream.c): streamed layers read ahead of compute,
 * in the cyclic order of the passes, into a ring of staging buffers. */
#ifndef QVL_TIER_STREAM_H
#define QVL_TIER_STREAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct tier_stream;

struct tier_stream_layer {
	int layer;	  /* text layer, increasing */
	const char *name; /* the shard's, kept by the caller */
	uint64_t off, len, crc;
	/* NULL, or raised (for good) once the layer has a resident copy: its
	 * reads are then skipped, and begin() hands out NULL for it */
	const atomic_bool *resident;
};

struct tier_stream_stats {
	uint64_t bytes, reads, failed; /* shards read, and of them failed */
	double busy_s;		       /* time spent reading, summed over the I/O threads */
	uint64_t served;	       /* layers handed to compute (begin() calls that succeeded) */
	uint64_t stalls;	       /* begin() found its layer not ready */
	double stall_s;		       /* time compute waited */
	uint64_t resets;	       /* the window restarted (after a failure) */
	int direct;		       /* O_DIRECT in use */
};

/* n layers (in layer order) of the file at path, nbuf buffers of buf_bytes
 * (a multiple of 4096) each; starts the I/O threads, which set up their
 * readers and begin reading the first layers at once, without the caller
 * waiting for them (a reader that cannot open fails begin()). */
int tier_stream_create(struct tier_stream **out, const char *path,
		       const struct tier_stream_layer *ly, int n, unsigned nbuf, uint64_t buf_bytes,
		       struct qvl_err *err);
void tier_stream_destroy(struct tier_stream *s);
/* Layer l's bytes (its shard, CRC checked) for compute: waits for its read
 * if needed; *base NULL when the read was skipped (the layer's resident
 * flag was up: its resident copy is the one to use). A failed read (-EIO,
 * -EBADMSG) is returned with err naming the shard; the window restarts
 * from the first layer. */
int tier_stream_begin(struct tier_stream *s, int l, const uint8_t **base, struct qvl_err *err);
/* Compute is done with layer l: its buffer takes the next read. */
void tier_stream_end(struct tier_stream *s, int l);
void tier_stream_stats(struct tier_stream *s, struct tier_stream_stats *st);

#endif
