/* libFuzzer target: the GGUF parser on arbitrary bytes, then every accessor
 * on whatever it accepted (typed getters on every key, every array element,
 * nested arrays, tensor infos checked to lie inside the buffer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void walk_arr(const struct gguf_arr *a, int depth)
{
	for (uint64_t i = 0; i < a->n && i < 4096; i++) {
		const char *s;
		size_t len;
		int64_t iv;
		double dv;
		struct gguf_arr sub;

		if (!gguf_arr_str(a, i, &s, &len) && len)
			sink += (uint8_t)s[0] + (uint8_t)s[len - 1];
		if (!gguf_arr_i64(a, i, &iv))
			sink += (uint64_t)iv;
		if (!gguf_arr_f64(a, i, &dv))
			sink += dv == dv;
		if (!gguf_arr_sub(a, i, &sub)) {
			if (depth > GGUF_MAX_ARRAY_DEPTH)
				abort(); /* the parser bounds nesting */
			walk_arr(&sub, depth + 1);
		}
	}
	if (a->n)
		(void)gguf_arr_i64(a, a->n, &(int64_t){0}); /* out of range: refused */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gguf_file *f;
	struct qvl_err e;

	if (gguf_parse(&f, data, size, "fuzz.gguf", &e))
		return 0;
	for (size_t i = 0; i < gguf_n_kv(f); i++) {
		const char *key = gguf_kv_key(f, i), *s;
		size_t len;
		int64_t iv;
		uint64_t uv;
		int n;
		double dv;
		bool bv;
		char buf[32];
		struct gguf_arr a;

		if (gguf_find_key(f, key) != (long)i)
			abort(); /* keys are unique */
		(void)gguf_get_i64(f, key, &iv, &e);
		(void)gguf_get_u64(f, key, &uv, &e);
		(void)gguf_get_int(f, key, &n, &e);
		(void)gguf_get_f64(f, key, &dv, &e);
		(void)gguf_get_bool(f, key, &bv, &e);
		if (!gguf_get_str(f, key, &s, &len, &e) && len)
			sink += (uint8_t)s[len - 1];
		(void)gguf_get_strz(f, key, buf, sizeof(buf), &e);
		if (!gguf_get_arr(f, key, &a, &e))
			walk_arr(&a, 1);
	}
	for (size_t i = 0; i < gguf_n_tensors(f); i++) {
		const struct gguf_tensor_info *t = gguf_tensor(f, i);
		const uint8_t *p = t->data;

		if (p < data || (size_t)(p - data) > size || t->nbytes > size - (size_t)(p - data))
			abort(); /* tensor data must lie in the buffer */
		if (t->nbytes)
			sink += p[0] + p[t->nbytes - 1];
		if (gguf_find_tensor(f, t->name) != t)
			abort(); /* names are unique */
	}
	gguf_close(f);
	return 0;
}
