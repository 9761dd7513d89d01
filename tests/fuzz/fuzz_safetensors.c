/* libFuzzer target: the safetensors header parser on arbitrary bytes (the
 * whole input is the file image), then the tensor table built from what it
 * accepted: add, sort, duplicate check and the config check against a small
 * fixed config, reading every accepted tensor's bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_config(struct qvl_config *c)
{
	/* 1 layer, H 8, 2 heads of 4, 1 kv head, I 8, V 16 (13 tensors) */
	c->text.hidden_size = 8;
	c->text.num_layers = 1;
	c->text.num_heads = 2;
	c->text.num_kv_heads = 1;
	c->text.head_dim = 4;
	c->text.intermediate_size = 8;
	c->text.vocab_size = 16;
	c->text.tie_word_embeddings = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qvl_st_header h;
	struct qvl_model *m;
	struct qvl_err e;
	unsigned sum = 0;
	int src, rc;

	if (qvl_st_parse(&h, data, size, "fuzz.safetensors", &e))
		return 0;
	if (h.data_start + h.data_size != size)
		abort();
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup("fuzz"))) {
		free(m);
		qvl_st_free(&h);
		return 0;
	}
	fuzz_config(&m->config);
	src = qvl_model_add_source(m, "fuzz.safetensors", NULL, 0, &e);
	rc = src < 0;
	for (size_t i = 0; i < h.n && !rc; i++) {
		const struct qvl_st_entry *en = &h.entries[i];
		struct qvl_tensor t = {.name = en->name,
				       .dtype = en->dtype,
				       .ndim = en->ndim,
				       .nelem = en->nelem,
				       .data = data + h.data_start + en->begin,
				       .nbytes = en->end - en->begin,
				       .source = src};

		if (!en->name[0] || en->begin > en->end || en->end > h.data_size)
			abort(); /* the parser promised these */
		memcpy(t.shape, en->shape, sizeof(t.shape));
		for (uint64_t b = 0; b < t.nbytes; b++)
			sum += ((const uint8_t *)t.data)[b];
		rc = qvl_model_add_tensor(m, &t, &e);
	}
	if (!rc && !qvl_model_finish(m, &e) && m->ntensors) {
		float f[4];

		(void)qvl_model_check_tensors(m, &e);
		(void)qvl_model_find(m, m->tensors[m->ntensors - 1].name);
		if (m->tensors[0].nelem >= 4 && m->tensors[0].dtype != QVL_DT_Q8_0 &&
		    m->tensors[0].dtype != QVL_DT_Q4_0)
			(void)qvl_tensor_to_f32(&m->tensors[0], m->tensors[0].nelem - 4, 4, f);
	}
	qvl_model_close(m);
	qvl_st_free(&h);
	return (int)(sum & 0); /* keep the reads */
}
