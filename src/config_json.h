/* Hugging Face side files of a Qwen3-VL model: config.json,
 * generation_config.json, preprocessor_config.json (qwen3-vl.md §1.2-§1.4).
 * Each parser takes the file's text and the name to put in error messages,
 * fills its struct completely and checks every dimension against sane
 * bounds ("config.json: text_config.num_hidden_layers: 0 out of range
 * [1, 1024]"). */
#ifndef QVL_CONFIG_JSON_H
#define QVL_CONFIG_JSON_H

#include <stddef.h>

#include "err.h"
#include "model.h"

int qvl_config_parse(struct qvl_config *c, const char *text, size_t len, const char *what,
		     struct qvl_err *err);

/* Defaults when generation_config.json is absent: eos from text_config,
 * the Hugging Face GenerationConfig defaults otherwise. */
void qvl_gen_config_default(struct qvl_gen_config *g, const struct qvl_config *c);
int qvl_gen_config_parse(struct qvl_gen_config *g, const struct qvl_config *c, const char *text,
			 size_t len, const char *what, struct qvl_err *err);

/* Defaults when preprocessor_config.json is absent: the Qwen3-VL values. */
void qvl_preproc_config_default(struct qvl_preproc_config *p, const struct qvl_config *c);
int qvl_preproc_config_parse(struct qvl_preproc_config *p, const struct qvl_config *c,
			     const char *text, size_t len, const char *what, struct qvl_err *err);

/* Cross-field checks shared with the GGUF reader (dimensions, divisibility,
 * mrope sections, deepstack indexes). `what` names the source. */
int qvl_config_validate(const struct qvl_config *c, const char *what, struct qvl_err *err);

#endif
