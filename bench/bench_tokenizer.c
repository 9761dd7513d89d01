/* Tokenizer benchmark: load time of tokenizer.json, and encoding speed on one
 * file tokenized as one string with special tokens on, single-threaded (the
 * way js-tokenize.mjs --bench times the JavaScript peer). One JSON line per
 * figure: median and spread over the repetitions.
 *   bench_tokenizer [--tokenizer-json PATH] [--repeat N] [--loads N] FILE */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"
#include "util.h"

/* CPU time of this thread: the machines are shared, and wall time under a
 * neighbour's load says more about the neighbour */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void stats(double *v, int n, double *med, double *lo, double *hi)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	*med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*lo = v[0];
	*hi = v[n - 1];
}

int main(int argc, char **argv)
{
	const char *tj = NULL, *file = NULL;
	int repeat = 5, loads = 5;
	char *deflt = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tokenizer-json") && i + 1 < argc)
			tj = argv[++i];
		else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--loads") && i + 1 < argc)
			loads = atoi(argv[++i]);
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else {
			bool help = !strcmp(argv[i], "--help");
			fprintf(help ? stdout : stderr,
				"usage: bench_tokenizer [--tokenizer-json PATH] [--repeat N] "
				"[--loads N] FILE\n");
			return help ? 0 : 2;
		}
	}
	if (repeat < 1 || repeat > 1000 || loads < 1 || loads > 1000 || !file) {
		fprintf(stderr, "bench_tokenizer: need FILE, --repeat and --loads in 1..1000\n");
		return 2;
	}
	if (!tj) {
		const char *dir = getenv("QVL_TOKENIZER_DIR");
		if (!dir || !*dir) {
			fprintf(stderr,
				"bench_tokenizer: --tokenizer-json or QVL_TOKENIZER_DIR needed\n");
			return 2;
		}
		tj = deflt = qvl_path_join(dir, "tokenizer.json");
	}
	struct qvl_err err;
	struct qvl_tokenizer *t = NULL;
	double *lt = calloc((size_t)loads, sizeof(double));
	double *lc = calloc((size_t)loads, sizeof(double));
	double *et = calloc((size_t)repeat, sizeof(double));
	double *ct = calloc((size_t)repeat, sizeof(double));
	for (int i = 0; i < loads; i++) {
		qvl_tok_free(t);
		double t0 = qvl_now(), c0 = cpu_now();
		if (qvl_tok_load_json(&t, tj, &err)) {
			fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
			return 1;
		}
		lt[i] = (qvl_now() - t0) * 1e3;
		lc[i] = (cpu_now() - c0) * 1e3;
	}
	char *text;
	size_t len;
	if (qvl_read_file(file, (size_t)1 << 31, &text, &len, &err)) {
		fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
		return 1;
	}
	int32_t *ids;
	size_t n = 0;
	/* warm-up on the first 64 KiB, as the JS peer does (cut at a character) */
	size_t w = len < 65536 ? len : 65536;
	while (w < len && ((unsigned char)text[w] & 0xC0) == 0x80)
		w--;
	if (qvl_tok_encode(t, text, w, true, &ids, &n, &err)) {
		fprintf(stderr, "bench_tokenizer: %s: %s\n", file, err.msg);
		return 1;
	}
	free(ids);
	for (int r = 0; r < repeat; r++) {
		qvl_tok_cache_clear(); /* as the JS peer empties its BPE cache */
		double t0 = qvl_now(), c0 = cpu_now();
		if (qvl_tok_encode(t, text, len, true, &ids, &n, &err)) {
			fprintf(stderr, "bench_tokenizer: %s: %s\n", file, err.msg);
			return 1;
		}
		et[r] = qvl_now() - t0;
		ct[r] = cpu_now() - c0;
		free(ids);
	}
	double med, lo, hi;
	stats(lt, loads, &med, &lo, &hi);
	printf("{\"name\":\"tok_load\",\"value\":%.2f,\"unit\":\"ms\",\"min\":%.2f,\"max\":%.2f,"
	       "\"runs\":%d,\"bound\":100}\n",
	       med, lo, hi, loads);
	stats(lc, loads, &med, &lo, &hi);
	printf(
	    "{\"name\":\"tok_load_cpu\",\"value\":%.2f,\"unit\":\"ms\",\"min\":%.2f,\"max\":%.2f,"
	    "\"runs\":%d,\"bound\":100}\n",
	    med, lo, hi, loads);
	stats(et, repeat, &med, &lo, &hi);
	printf("{\"name\":\"tok_encode_qvl\",\"value\":%.3f,\"unit\":\"MB/s\",\"min\":%.3f,"
	       "\"max\":%.3f,\"bytes\":%zu,\"tokens\":%zu,\"seconds\":%.4f,\"runs\":%d}\n",
	       len / 1e6 / med, len / 1e6 / hi, len / 1e6 / lo, len, n, med, repeat);
	double cmed, clo, chi;
	stats(ct, repeat, &cmed, &clo, &chi);
	printf("{\"name\":\"tok_encode_qvl_cpu\",\"value\":%.3f,\"unit\":\"MB/s\",\"min\":%.3f,"
	       "\"max\":%.3f,\"cpu_seconds\":%.4f}\n",
	       len / 1e6 / cmed, len / 1e6 / chi, len / 1e6 / clo, cmed);
	printf("{\"name\":\"tok_encode_qvl_tokens\",\"value\":%.0f,\"unit\":\"tokens/s\","
	       "\"min\":%.0f,\"max\":%.0f}\n",
	       n / med, n / hi, n / lo);
	free(text);
	free(lt);
	free(lc);
	free(et);
	free(ct);
	free(deflt);
	qvl_tok_free(t);
	return 0;
}
