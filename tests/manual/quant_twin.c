/* Manual check (not in make check: it wants a real quantized GGUF, e.g. one
 * llama-quantize wrote): the engine's logits for FILE.gguf against the same
 * file with the block-type weights of its first NL layers dequantized to F32
 * (NL layers run; the memory a whole 2b twin needs is ~8 GB). Prefill of 5
 * tokens, then one decode step; prints the largest logit difference.
 *
 * Build from a build directory:
 *   cc -O2 -I../src -I../simd -I. ../tests/manual/quant_twin.c libqvlengine.a \
 *      -lutf8proc -lm -lpthread $(pkg-config --libs hwloc numa liburing) -o quant_twin
 * Run: ./quant_twin FILE.gguf NL */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "model.h"
#include "quant.h"

static int run(const struct qvl_model *m, float *out, int V, struct qvl_err *err)
{
	static const int32_t ids[6] = {785, 3974, 13876, 38835, 916, 279};
	struct qvl_engine_opts o = {.threads = 2, .kv_dtype = QVL_DT_F32};
	struct qvl_chunk c = {.ids = ids, .n = 5}, c2 = {.ids = ids + 5, .n = 1};
	struct qvl_engine *e = NULL;
	struct qvl_seq *s = NULL;
	int rc = qvl_engine_create(&e, m, &o, err);

	rc = rc ? rc : qvl_seq_create(e, 64, &s, err);
	rc = rc ? rc : qvl_seq_forward(e, s, &c, out, false, err);
	rc = rc ? rc : qvl_seq_forward(e, s, &c2, out + V, false, err);
	qvl_seq_destroy(s);
	qvl_engine_destroy(e);
	return rc;
}

int main(int argc, char **argv)
{
	struct qvl_err err = {{0}};
	struct qvl_model *q, *f;
	size_t nd = 0;

	if (argc != 3)
		return fprintf(stderr, "usage: quant_twin FILE.gguf NL\n"), 2;
	if (qvl_model_open(&q, argv[1], NULL, &err) || qvl_model_open(&f, argv[1], NULL, &err))
		return fprintf(stderr, "%s\n", err.msg), 1;
	int nl = atoi(argv[2]);

	if (nl < 1 || nl > q->config.text.num_layers)
		return fprintf(stderr, "NL: 1..%d\n", q->config.text.num_layers), 2;
	q->config.text.num_layers = f->config.text.num_layers = nl;
	for (size_t i = 0; i < f->ntensors; i++) {
		struct qvl_tensor *t = &f->tensors[i];
		int l = -1;
		float *b;

		if (!qvl_dtype_is_block(t->dtype) ||
		    sscanf(t->name, "model.language_model.layers.%d.", &l) != 1 || l >= nl)
			continue;
		if (!(b = malloc(t->nelem * 4)) || qvl_tensor_to_f32(t, 0, t->nelem, b))
			return fprintf(stderr, "%s: cannot dequantize\n", t->name), 1;
		t->data = b; /* leaked on purpose: the process ends */
		t->dtype = QVL_DT_F32;
		t->nbytes = t->nelem * 4;
		nd++;
	}
	printf("%zu block tensors of layers 0..%d dequantized to F32\n", nd, nl - 1);
	int V = q->config.text.vocab_size;
	float *lq = malloc(2 * (size_t)V * 4), *lf = malloc(2 * (size_t)V * 4);

	if (!lq || !lf || run(q, lq, V, &err) || run(f, lf, V, &err))
		return fprintf(stderr, "%s\n", err.msg), 1;
	for (int k = 0; k < 2; k++) {
		double md = 0, am = 0;
		int aq = 0, af = 0;

		for (int i = 0; i < V; i++) {
			float a = lq[k * V + i], b = lf[k * V + i];

			md = fmax(md, fabs(a - b));
			am = fmax(am, fabs(b));
			aq = a > lq[k * V + aq] ? i : aq;
			af = b > lf[k * V + af] ? i : af;
		}
		printf("%s: max |diff| %.3g, max |logit| %.3g, argmax %d vs %d\n",
		       k ? "decode" : "prefill", md, am, aq, af);
	}
	return 0;
}
