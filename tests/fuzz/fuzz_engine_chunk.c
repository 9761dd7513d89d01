/* Fuzz the engine's input checks: an arbitrary chunk (ids in or out of
 * range, claimed image and DeepStack counts, arbitrary M-RoPE positions) and
 * an arbitrary --tokens string, on the tiny model. The engine must either
 * run the chunk (the sequence grows by its length) or refuse it (the
 * sequence is unchanged), and never read past what the chunk describes.
 *
 * Input: byte 0 flags (bit 0: explicit positions, bit 1: images, bit 2:
 * also parse the rest as a --tokens string), byte 1 n_deepstack (signed),
 * byte 2 claimed image count (0..15), then little-endian int32 ids (at most
 * 40; a sequence has 48 positions), then 3 int32 per id as positions. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "model.h"
#include "run_common.h"

static struct qvl_model *model;
static struct qvl_engine *engine;
static int ready = -1;

static void setup(void)
{
	struct qvl_engine_opts o = {.threads = 1, .kv_dtype = QVL_DT_F32};
	struct qvl_err err;
	const char *t = getenv("QVL_TINY"), *sh = getenv("QVL_SHARED");
	char path[4096], cfg[4200];

	ready = 0;
	snprintf(path, sizeof(path), "%s", t && *t ? t : "");
	snprintf(cfg, sizeof(cfg), "%s/config.json", path);
	if (!*path || access(cfg, R_OK) != 0) {
		snprintf(path, sizeof(path), "%s/models/qvl-tiny", sh && *sh ? sh : "../shared");
		snprintf(cfg, sizeof(cfg), "%s/config.json", path);
		if (access(cfg, R_OK) != 0) {
			/* tests/fuzz/run-fuzz.sh fails a target that says this */
			fprintf(stderr, "fuzz: no tiny model (set QVL_TINY or QVL_SHARED)\n");
			return;
		}
	}
	if (qvl_model_open(&model, path, NULL, &err) < 0 ||
	    qvl_engine_create(&engine, model, &o, &err) < 0) {
		fprintf(stderr, "fuzz: no tiny model: %s: %s\n", path, err.msg);
		return;
	}
	ready = 1;
}

static int32_t rd32(const uint8_t *p)
{
	uint32_t v =
	    (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return (int32_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ready < 0)
		setup();
	if (ready == 0 || size < 3)
		return 0;

	uint8_t flags = data[0];
	int nds = (int8_t)data[1];
	size_t nimg = data[2] & 15, n = (size_t)(size - 3) / 4;
	const struct qvl_model *m = qvl_engine_model(engine);
	size_t H = (size_t)m->config.text.hidden_size;

	if (flags & 4) {
		/* the --tokens parser on the raw bytes as a string */
		char *s = malloc(size + 1), why[160];
		int32_t *ids = NULL;
		size_t cnt = 0;
		memcpy(s, data, size);
		s[size] = 0;
		if (run_parse_ids(s, &ids, &cnt, why, sizeof(why)) == 0)
			free(ids);
		free(s);
	}
	n = n > 40 ? 40 : n;
	int32_t *ids = calloc(n + 1, sizeof(int32_t));
	int32_t(*pos)[3] = calloc(n + 1, sizeof(*pos));
	size_t off = 3 + 4 * n;
	for (size_t i = 0; i < n; i++) {
		ids[i] = rd32(data + 3 + 4 * i);
		/* keep most ids in range so the forward pass itself runs often */
		if (!(flags & 8) && ids[i] < 0)
			ids[i] = -(ids[i] + 1) % m->config.text.vocab_size;
		for (int j = 0; j < 3; j++, off += 4)
			pos[i][j] = off + 4 <= size ? rd32(data + off) : (int32_t)i;
	}
	float *embd = calloc(nimg * H + 1, sizeof(float));
	size_t dsn = nds > 0 ? (size_t)nds : 0;
	float *ds = calloc(dsn * nimg * H + 1, sizeof(float));
	struct qvl_chunk c = {.ids = ids,
			      .n = n,
			      .embd = (flags & 2) ? embd : NULL,
			      .n_img = nimg,
			      .deepstack = ds,
			      .n_deepstack = nds,
			      .pos = (flags & 1) ? (const int32_t(*)[3])pos : NULL,
			      .next_pos = (int32_t)n};
	struct qvl_seq *s;
	struct qvl_err err;
	float *logits = malloc((size_t)m->config.text.vocab_size * sizeof(float));

	if (qvl_seq_create(engine, 48, &s, &err) == 0) {
		/* twice: the second may overflow the 48 positions */
		for (int rep = 0; rep < 2; rep++) {
			int len = qvl_seq_len(s);
			int rc = qvl_seq_forward(engine, s, &c, logits, false, &err);
			if (rc == 0 ? qvl_seq_len(s) != len + (int)n : qvl_seq_len(s) != len)
				abort(); /* the contract: refused input changes nothing */
		}
		qvl_seq_destroy(s);
	}
	free(logits);
	free(ids);
	free(pos);
	free(embd);
	free(ds);
	return 0;
}
