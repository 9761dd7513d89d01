/* One tokenizer shared by several threads (the engine's use): every thread
 * encodes the same golden texts concurrently, through its own word and pair
 * caches, and must get the single-threaded ids; a second tokenizer loaded
 * meanwhile must not see the first one's cache entries. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "tok_testutil.h"

#define NTHREADS 4
#define NTEXTS	 6

static const char *const texts[NTEXTS] = {
    "The quick brown fox jumps over the lazy dog. It's 2024!",
    "中文分词测试：你好，世界。日本語のテキスト。",
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe.<|im_end|>\n",
    "def f(x):\n    return x ** 2  # square\n\n\n",
    "emoji 😀 👨‍👩‍👧‍👦 café naïve e\xcc\x81",
    "   many    spaces\t\ttabs\r\n\r\nlines   ",
};

static struct qvl_tokenizer *tok;
static int32_t *want[NTEXTS];
static size_t nwant[NTEXTS];
static int failures;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
	int seed = (int)(intptr_t)arg;
	for (int round = 0; round < 300; round++) {
		int k = (round + seed) % NTEXTS;
		int32_t *ids;
		size_t n;
		struct qvl_err err;
		int rc = qvl_tok_encode(tok, texts[k], strlen(texts[k]), true, &ids, &n, &err);
		bool same = !rc && n == nwant[k] && !memcmp(ids, want[k], n * sizeof(*ids));
		if (!rc)
			free(ids);
		if (!same) {
			pthread_mutex_lock(&mu);
			failures++;
			pthread_mutex_unlock(&mu);
		}
	}
	return NULL;
}

int main(void)
{
	tok = tt_load(NULL);
	struct qvl_err err;
	for (int k = 0; k < NTEXTS; k++)
		if (qvl_tok_encode(tok, texts[k], strlen(texts[k]), true, &want[k], &nwant[k],
				   &err))
			return ok(0, "encode text %d: %s", k, err.msg), done_testing();
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	is_int(failures, 0, "%d threads x 300 encodes agree with one thread", NTHREADS);

	/* a fresh tokenizer (maybe at the same address) must not reuse entries
	 * cached for the old one: its texts encode the same, from scratch */
	struct qvl_tokenizer *old = tok;
	qvl_tok_free(old);
	tok = tt_load(NULL);
	int bad = 0;
	for (int k = 0; k < NTEXTS; k++) {
		int32_t *ids;
		size_t n;
		int rc = qvl_tok_encode(tok, texts[k], strlen(texts[k]), true, &ids, &n, &err);
		bad += rc || n != nwant[k] || memcmp(ids, want[k], n * sizeof(*ids));
		if (!rc)
			free(ids);
	}
	is_int(bad, 0, "after free and reload, the same ids");
	for (int k = 0; k < NTEXTS; k++)
		free(want[k]);
	qvl_tok_free(tok);
	return done_testing();
}
