/* Shared by the pack tests: the tiny model (QVL_TINY) packed into a fresh
 * temporary directory. */
#ifndef QVL_TESTS_PACK_TINY_H
#define QVL_TESTS_PACK_TINY_H

#include <stdio.h>
#include <stdlib.h>

#include "pack.h"

/* dir is a mkdtemp template, path gets dir/t.qvl; 0 or -errno (err says). */
static inline int pack_tiny(const char *tiny, char *dir, char *path, size_t cap,
			    struct qvl_err *err)
{
	struct pack_opts po = {.type = -1, .model = tiny, .out = path};
	struct pack_result pr;

	if (!mkdtemp(dir))
		return qvl_errf(err, -errno, "mkdtemp %s failed", dir);
	snprintf(path, cap, "%s/t.qvl", dir);
	return pack_write(&po, &pr, err);
}

#endif
