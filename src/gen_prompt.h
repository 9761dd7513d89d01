/* The prompt of a generation session as one engine chunk (see generate.h
 * for the three prompt kinds). Split from generate.c: building a prompt is
 * tokenizer and vision work; generate.c is the token loop. */
#ifndef QVL_GEN_PROMPT_H
#define QVL_GEN_PROMPT_H

#include <stdint.h>

#include "engine.h"
#include "err.h"

struct gen_prompt;
struct qvl_mm_prompt;
struct qvl_tokenizer;

/* Fills *c; its arrays are owned by *mm (images) or *ids (malloc'd). On
 * error both are freed. */
int gen_prompt_build(struct qvl_engine *e, const struct qvl_tokenizer *tok,
		     const struct gen_prompt *p, struct qvl_mm_prompt *mm, int32_t **ids,
		     struct qvl_chunk *c, struct qvl_err *err);

#endif
