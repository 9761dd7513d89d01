/* qvld --demo (see demo.c). */
#ifndef QVLD_DEMO_H
#define QVLD_DEMO_H

#include "err.h"

/* The tiny model's directory under cache_dir, generated on first use. */
int qvld_demo_model(const char *cache_dir, char **path, struct qvl_err *err);

#endif
