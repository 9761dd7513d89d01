/* Small helpers used across modules: whole-file mapping and reading, strict
 * number parsing for command lines, monotonic time. */
#ifndef QVL_UTIL_H
#define QVL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Read-only mmap of a whole file (an empty file maps to a non-NULL dummy). */
struct qvl_map {
	void *data;
	size_t size;
};
int qvl_map_file(struct qvl_map *m, const char *path, struct qvl_err *err);
void qvl_unmap(struct qvl_map *m);

/* Memory for a copy of weights: 2 MiB-aligned, rounded up to whole huge
 * pages, which the kernel is asked for (MADV_HUGEPAGE: the copies' page
 * faults, not the copying, were the time, and a weight stream from 4 KiB
 * pages pays a TLB walk per page); free() it. NULL without memory. */
void *qvl_huge_alloc(size_t bytes);

/* Read a whole file into a malloc'd buffer with a NUL appended; max_bytes
 * bounds what a hostile file may make us allocate. */
int qvl_read_file(const char *path, size_t max_bytes, char **out, size_t *len,
		  struct qvl_err *err);

/* Strict parsers for option values: the whole string must be a number in
 * [min, max]. Return 0 or -EINVAL. */
int qvl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int qvl_parse_u64(const char *s, uint64_t *out); /* decimal or 0x hex */
int qvl_parse_double(const char *s, double *out);
/* "8G", "512M", "64K", "4096" (powers of 1024; a trailing B or iB is
 * accepted), or with pct_ok "25%" of the machine's RAM. err names the
 * option and the value. */
int qvl_parse_size(const char *opt, const char *v, bool pct_ok, uint64_t *out, struct qvl_err *err);
/* A bandwidth: "25G", "12.5G", "800M" (bytes per second, powers of 1000; a
 * trailing "B/s" or "/s" is accepted). */
int qvl_parse_bw(const char *opt, const char *v, uint64_t *out, struct qvl_err *err);

/* Seconds from CLOCK_MONOTONIC. */
double qvl_now(void);

/* Peak resident set size of this process in bytes (from getrusage). */
uint64_t qvl_peak_rss(void);

/* join a directory and a file name into a malloc'd path */
char *qvl_path_join(const char *dir, const char *name);

#endif
