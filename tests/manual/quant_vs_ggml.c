/* Manual cross-check of qvl's block codecs against llama.cpp's libggml-base
 * (never built by make check: it needs a llama.cpp build). Two checks:
 *
 *   quant_vs_ggml            synthetic data, every block type: ggml's
 *                            dequantization of random bytes, of blocks ggml
 *                            quantized and of blocks we quantized equals ours
 *                            bit for bit; relative RMS error of both
 *                            quantizers on the same data
 *   quant_vs_ggml FILE.gguf  every tensor of a GGUF (e.g. written by
 *                            llama-quantize) dequantized by both, compared
 *                            bit for bit, counted per type
 *
 * Build (from a build directory, LLAMA = the llama.cpp checkout):
 *   cc -O2 -I../src -I../simd -I. -I$LLAMA/ggml/include \
 *      ../tests/manual/quant_vs_ggml.c libqvlengine.a \
 *      -L$LLAMA/build-native/bin -lggml-base -Wl,-rpath,$LLAMA/build-native/bin \
 *      -lutf8proc -lm -o quant_vs_ggml */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"

static uint64_t rs = 88172645463325252ull;

static uint32_t rnd(void)
{
	rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
	return (uint32_t)(rs >> 32);
}

static double gauss(void)
{
	double u = (rnd() + 1.0) / 4294967297.0, v = rnd() / 4294967296.0;

	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* Elements where a and b differ (two NaNs count as equal). */
static size_t ndiff(const float *a, const float *b, size_t n)
{
	size_t d = 0;

	for (size_t i = 0; i < n; i++)
		d += memcmp(&a[i], &b[i], 4) != 0 && !(isnan(a[i]) && isnan(b[i]));
	return d;
}

static double rel_rms(const float *x, const float *y, size_t n)
{
	double se = 0, sx = 0;

	for (size_t i = 0; i < n; i++)
		se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]), sx += (double)x[i] * x[i];
	return sqrt(se / sx);
}

static int synthetic(void)
{
	size_t n = 256 * 512;
	float *x = malloc(n * 4), *a = malloc(n * 4), *b = malloc(n * 4);
	uint8_t *q = malloc(n * 4);
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		x[i] = (float)gauss() * 0.02f * (i % 4096 < 256 ? 10 : 1);
	for (int t = QVL_DT_Q8_0; t < QVL_DT_COUNT; t++) {
		const struct qvl_dtype_info *di = qvl_dtype_info((enum qvl_dtype)t);
		const struct ggml_type_traits *tr =
		    ggml_get_type_traits((enum ggml_type)di->ggml_type);
		size_t bytes = n / di->blk * di->blk_bytes, d0, d1, d2;
		double e_ggml, e_ours;

		for (size_t i = 0; i < bytes; i++)
			q[i] = (uint8_t)rnd();
		tr->to_float(q, a, (int64_t)n);
		qvl_dequant_row((enum qvl_dtype)t, q, b, n);
		d0 = ndiff(a, b, n);
		tr->from_float_ref(x, q, (int64_t)n);
		tr->to_float(q, a, (int64_t)n);
		qvl_dequant_row((enum qvl_dtype)t, q, b, n);
		d1 = ndiff(a, b, n);
		e_ggml = rel_rms(x, a, n);
		qvl_quantize_row((enum qvl_dtype)t, x, q, n);
		tr->to_float(q, a, (int64_t)n);
		qvl_dequant_row((enum qvl_dtype)t, q, b, n);
		d2 = ndiff(a, b, n);
		e_ours = rel_rms(x, b, n);
		printf("%-7s differing values: random bytes %zu, ggml-quantized %zu, qvl-quantized "
		       "%zu; relative RMS error ggml %.5f, qvl %.5f\n",
		       di->name, d0, d1, d2, e_ggml, e_ours);
		bad += d0 || d1 || d2;
	}
	free(x), free(a), free(b), free(q);
	return bad ? 1 : 0;
}

static int file(const char *path)
{
	struct qvl_err err = {{0}};
	struct gguf_file *f;
	size_t cnt[QVL_DT_COUNT] = {0}, bad = 0;

	if (gguf_open(&f, path, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; i < gguf_n_tensors(f); i++) {
		const struct gguf_tensor_info *t = gguf_tensor(f, i);
		const struct ggml_type_traits *tr =
		    ggml_get_type_traits((enum ggml_type)t->ggml_type);
		float *a = malloc(t->nelem * 4), *b = malloc(t->nelem * 4);
		size_t d;

		if (!a || !b || !tr->to_float) {
			free(a), free(b);
			continue;
		}
		tr->to_float(t->data, a, (int64_t)t->nelem);
		qvl_dequant_row(t->dtype, t->data, b, t->nelem);
		d = ndiff(a, b, t->nelem);
		cnt[t->dtype]++;
		if (d) {
			bad++;
			printf("%s (%s): %zu of %llu values differ\n", t->name,
			       qvl_dtype_name(t->dtype), d, (unsigned long long)t->nelem);
		}
		free(a), free(b);
	}
	for (int t = 0; t < QVL_DT_COUNT; t++)
		if (cnt[t])
			printf("%-7s %zu tensors\n", qvl_dtype_name((enum qvl_dtype)t), cnt[t]);
	printf("%zu tensors differ\n", bad);
	gguf_close(f);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	return argc > 1 ? file(argv[1]) : synthetic();
}
