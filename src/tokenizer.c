/* qvl_tok_load: the tokenizer of an opened model, from wherever that model
 * keeps it (tokenizer.json of a Hugging Face directory, tokenizer.ggml.* of a
 * text GGUF). */
#include "config.h"

#include "model.h"
#include "tok_internal.h"

int qvl_tok_load(struct qvl_tokenizer **out, const struct qvl_model *m, struct qvl_err *err)
{
	*out = NULL;
	if (m->format == QVL_FMT_GGUF || m->gguf_text)
		return tok_load_gguf(out, m, err);
	if (m->tokenizer_json)
		return qvl_tok_load_json_buf(out, m->tokenizer_json, m->tokenizer_json_len, m->path,
					     err);
	if (!m->tokenizer_json_path)
		return qvl_errf(err, -ENOENT, "%s: the model has no tokenizer.json", m->path);
	return qvl_tok_load_json(out, m->tokenizer_json_path, err);
}
