/* Model-level GGUF errors: a minimal qwen3vl text GGUF built here (one layer,
 * every tensor F32) opens, and each way of breaking it - a missing key, a
 * wrong architecture, an unknown tensor, a layer index past block_count, a
 * missing tensor, a wrong shape, a non-block-aligned Q8_0 row - gives an
 * error naming the file and the problem. Then copies of the real mmproj
 * with one name changed (same length, so the file stays valid GGUF). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_writer.h"
#include "model.h"
#include "tap.h"
#include "util.h"

enum { H = 64, NH = 2, NKV = 1, HD = 16, I = 64, V = 8 };

struct mini {
	const char *arch;     /* general.architecture (NULL: qwen3vl) */
	const char *drop_key; /* leave this key out */
	const char *rename;   /* "from=to" for one tensor name */
	const char *drop;     /* leave this tensor out */
	bool bad_shape;	      /* ffn_up with I + 1 columns */
	bool mrope_bad;	      /* sections not summing to hd / 2 */
	bool add_output;      /* untied: output.weight present */
	uint32_t layers;      /* block_count (0: 1) */
	uint32_t nds;
	bool tokens; /* a vocabulary holding the vision tokens */ /* qwen3vl.n_deepstack_layers (0:
								     absent) */
};

struct tdesc {
	const char *name;
	uint64_t ne0, ne1;
};

static const struct tdesc mini_tensors[] = {
    {"token_embd.weight", H, V},
    {"output_norm.weight", H, 0},
    {"blk.0.attn_norm.weight", H, 0},
    {"blk.0.attn_q.weight", H, NH *HD},
    {"blk.0.attn_k.weight", H, NKV *HD},
    {"blk.0.attn_v.weight", H, NKV *HD},
    {"blk.0.attn_output.weight", NH *HD, H},
    {"blk.0.attn_q_norm.weight", HD, 0},
    {"blk.0.attn_k_norm.weight", HD, 0},
    {"blk.0.ffn_norm.weight", H, 0},
    {"blk.0.ffn_gate.weight", H, I},
    {"blk.0.ffn_up.weight", H, I},
    {"blk.0.ffn_down.weight", I, H},
    {"output.weight", H, V},
};

static void mini_kvs(struct gw *w, const struct mini *m, uint64_t *n)
{
	static const char *const u32_keys[] = {
	    "qwen3vl.block_count",	    "qwen3vl.context_length",
	    "qwen3vl.embedding_length",	    "qwen3vl.feed_forward_length",
	    "qwen3vl.attention.head_count", "qwen3vl.attention.head_count_kv",
	    "qwen3vl.attention.key_length",
	};
	const uint32_t u32_vals[] = {m->layers ? m->layers : 1, 128, H, I, NH, NKV, HD};
	const int sec[4] = {4, 2, m->mrope_bad ? 1 : 2, 0};

	*n = 0;
	gw_kv_str(w, "general.architecture", m->arch ? m->arch : "qwen3vl"), ++*n;
	for (size_t i = 0; i < sizeof(u32_vals) / sizeof(u32_vals[0]); i++) {
		if (m->drop_key && !strcmp(m->drop_key, u32_keys[i]))
			continue;
		gw_kv_u32(w, u32_keys[i], u32_vals[i]), ++*n;
	}
	if (!m->drop_key || strcmp(m->drop_key, "qwen3vl.rope.freq_base"))
		gw_key(w, "qwen3vl.rope.freq_base", 6), gw_f32(w, 5e6f), ++*n;
	gw_key(w, "qwen3vl.attention.layer_norm_rms_epsilon", 6), gw_f32(w, 1e-6f), ++*n;
	if (m->tokens) {
		static const char *const v[V] = {"a",
						 "b",
						 "c",
						 "d",
						 "<|vision_start|>",
						 "<|vision_end|>",
						 "<|image_pad|>",
						 "<|video_pad|>"};

		gw_key(w, "tokenizer.ggml.tokens", 9), gw_u32(w, 8), gw_u64(w, V), ++*n;
		for (int i = 0; i < V; i++)
			gw_str(w, v[i]);
	}
	if (m->nds)
		gw_kv_u32(w, "qwen3vl.n_deepstack_layers", m->nds), ++*n;
	if (!m->drop_key || strcmp(m->drop_key, "qwen3vl.rope.dimension_sections")) {
		gw_key(w, "qwen3vl.rope.dimension_sections", 9), gw_u32(w, 5), gw_u64(w, 4);
		for (int i = 0; i < 4; i++)
			gw_u32(w, (uint32_t)sec[i]);
		++*n;
	}
}

/* The whole file; returns its length in *len. */
static uint8_t *mini_build(const struct mini *m, size_t *len)
{
	struct gw kv = {0}, w = {0};
	uint64_t nkv, nt = 0, off = 0;
	size_t n = sizeof(mini_tensors) / sizeof(mini_tensors[0]);
	char from[64] = "", to[64] = "", name[64];
	const uint32_t L = m->layers ? m->layers : 1;

	if (m->rename)
		sscanf(m->rename, "%63[^=]=%63s", from, to);
	mini_kvs(&kv, m, &nkv);
	for (size_t i = 0; i < n; i++)
		nt += (!(m->drop && !strcmp(m->drop, mini_tensors[i].name)) &&
		       (m->add_output || strcmp(mini_tensors[i].name, "output.weight"))) *
		      (strncmp(mini_tensors[i].name, "blk.0.", 6) ? 1 : L);
	gw_header(&w, 3, nt, nkv);
	gw_bytes(&w, kv.buf, kv.len);
	for (size_t i = 0; i < n; i++) {
		const struct tdesc *t = &mini_tensors[i];
		uint64_t ne[2] = {t->ne0, t->ne1};

		if ((m->drop && !strcmp(m->drop, t->name)) ||
		    (!m->add_output && !strcmp(t->name, "output.weight")))
			continue;
		if (m->bad_shape && !strcmp(t->name, "blk.0.ffn_up.weight"))
			ne[1]++;
		for (uint32_t l = 0; l < (strncmp(t->name, "blk.0.", 6) ? 1 : L); l++) {
			if (l)
				snprintf(name, sizeof(name), "blk.%u.%s", l, t->name + 6);
			else
				snprintf(name, sizeof(name), "%s", t->name);
			gw_tensor(&w, !strcmp(name, from) ? to : name, t->ne1 ? 2 : 1, ne, 0, off);
			off += (ne[0] * (ne[1] ? ne[1] : 1) * 4 + 31) / 32 * 32;
		}
	}
	gw_pad(&w, 32);
	for (uint64_t i = 0; i < off; i++)
		gw_u8(&w, 0);
	free(kv.buf);
	*len = w.len;
	return w.buf;
}

static char tmpdir[2048];

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	if (fwrite(buf, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

/* Write the variant and open it; returns rc, message in e. */
static int mini_open(const struct mini *m, const char *mmproj, struct qvl_model **out,
		     struct qvl_err *e)
{
	char path[4096];
	size_t len;
	uint8_t *buf = mini_build(m, &len);
	int rc;

	snprintf(path, sizeof(path), "%s/mini.gguf", tmpdir);
	if (write_file(path, buf, len)) {
		free(buf);
		return qvl_errf(e, -EIO, "cannot write %s", path);
	}
	free(buf);
	*out = NULL;
	rc = qvl_model_open(out, path, mmproj, e);
	unlink(path);
	return rc;
}

static void mini_bad(const char *what, const struct mini *m, const char *want)
{
	struct qvl_model *q;
	struct qvl_err e = {{0}};
	int rc = mini_open(m, NULL, &q, &e);

	ok(rc < 0 && strstr(e.msg, "mini.gguf") && strstr(e.msg, want), "%s: refused (%s)", what,
	   e.msg);
	if (!rc)
		qvl_model_close(q);
}

static void test_mini(void)
{
	struct qvl_model *q;
	struct qvl_err e = {{0}};
	int rc = mini_open(&(struct mini){0}, NULL, &q, &e);

	if (ok(rc == 0, "minimal text GGUF opens (%s)", rc ? e.msg : "ok")) {
		ok(q->ntensors == 13 && q->config.text.vocab_size == V &&
		       q->config.text.tie_word_embeddings && q->config.text.head_dim == HD &&
		       q->config.text.mrope_section[0] == 4 && !q->config.vision.present &&
		       q->config.image_token_id == 151655 &&
		       qvl_model_find(q, "model.language_model.layers.0.self_attn.o_proj.weight")
			       ->shape[1] == NH * HD,
		   "config and table: tied, 13 tensors, Qwen default token ids, o_proj [H, nh*hd]");
		qvl_model_close(q);
	}
	rc = mini_open(&(struct mini){.add_output = true}, NULL, &q, &e);
	if (ok(rc == 0 && !q->config.text.tie_word_embeddings &&
		   qvl_model_find(q, "lm_head.weight"),
	       "output.weight: untied, lm_head.weight (%s)", rc ? e.msg : "ok"))
		qvl_model_close(q);
	mini_bad("architecture llama", &(struct mini){.arch = "llama"},
		 "general.architecture is 'llama'");
	mini_bad("missing block_count", &(struct mini){.drop_key = "qwen3vl.block_count"},
		 "missing required key qwen3vl.block_count");
	mini_bad("missing freq_base", &(struct mini){.drop_key = "qwen3vl.rope.freq_base"},
		 "qwen3vl.rope.freq_base");
	mini_bad("missing dimension_sections",
		 &(struct mini){.drop_key = "qwen3vl.rope.dimension_sections"},
		 "qwen3vl.rope.dimension_sections");
	mini_bad("sections not summing to head_dim / 2", &(struct mini){.mrope_bad = true},
		 "mrope_section");
	mini_bad("unknown tensor",
		 &(struct mini){.rename = "blk.0.ffn_up.weight=blk.0.ffn_upx.weight"},
		 "unknown tensor 'blk.0.ffn_upx.weight'");
	mini_bad("layer index past block_count",
		 &(struct mini){.rename = "blk.0.ffn_up.weight=blk.1.ffn_up.weight"},
		 "unknown tensor 'blk.1.ffn_up.weight' (layer index");
	mini_bad("layer index with a leading zero",
		 &(struct mini){.rename = "blk.0.ffn_up.weight=blk.00.ffn_up.weight"},
		 "unknown tensor 'blk.00.ffn_up.weight'");
	mini_bad("missing tensor", &(struct mini){.drop = "blk.0.attn_k_norm.weight"}, "k_norm");
	mini_bad("missing token_embd", &(struct mini){.drop = "token_embd.weight"},
		 "token_embd.weight");
	mini_bad("wrong shape", &(struct mini){.bad_shape = true}, "up_proj");
}

/* The mini text model (H = 64) with the real tiny mmproj (projection_dim 64,
 * DeepStack blocks 1 and 2): n_deepstack_layers must agree. */
static void test_mini_vision(void)
{
	char proj[4096];
	struct qvl_model *q;
	struct qvl_err e = {{0}};
	int rc;

	snprintf(proj, sizeof(proj), "%.2000s/models/qvl-tiny-gguf/mmproj-qvl-tiny-f32.gguf",
		 test_env("QVL_SHARED", "../shared"));
	if (access(proj, R_OK)) {
		skip(2, "no %s", proj);
		return;
	}
	rc = mini_open(&(struct mini){.nds = 2, .layers = 2, .tokens = true}, proj, &q, &e);
	if (ok(rc == 0 && q->config.vision.present && q->config.vision.n_deepstack == 2 &&
		   q->config.image_token_id == 6 && q->config.video_token_id == 7 &&
		   q->config.vision_start_token_id == 4 && q->config.vision_end_token_id == 5,
	       "mini text + real mmproj opens, vision token ids from the vocabulary (%s)",
	       rc ? e.msg : "ok"))
		qvl_model_close(q);
	rc = mini_open(&(struct mini){.nds = 1, .layers = 2, .tokens = true}, proj, &q, &e);
	ok(rc < 0 && strstr(e.msg, "n_deepstack_layers = 1") && strstr(e.msg, "mmproj-qvl-tiny"),
	   "n_deepstack_layers 1 vs 2 mergers refused (%s)", e.msg);
	if (!rc)
		qvl_model_close(q);
}

/* Copy of the real mmproj with every `from` replaced by `to` (same length). */
static void mmproj_bad(const char *what, const char *from, const char *to, const char *want)
{
	char src[4096], dst[4096], text[4096];
	char *buf;
	size_t len, n = 0;
	struct qvl_model *q = NULL;
	struct qvl_err e = {{0}};
	int rc;

	snprintf(src, sizeof(src), "%.2000s/models/qvl-tiny-gguf/mmproj-qvl-tiny-f32.gguf",
		 test_env("QVL_SHARED", "../shared"));
	snprintf(text, sizeof(text), "%.2000s/models/qvl-tiny-gguf/qvl-tiny-bf16.gguf",
		 test_env("QVL_SHARED", "../shared"));
	snprintf(dst, sizeof(dst), "%s/mmproj-bad.gguf", tmpdir);
	if (qvl_read_file(src, 16 << 20, &buf, &len, &e)) {
		skip(1, "no %s", src);
		return;
	}
	for (char *p = buf; (p = memmem(p, len - (size_t)(p - buf), from, strlen(from))); n++)
		memcpy(p, to, strlen(to));
	if (n == 0 || write_file(dst, buf, len)) {
		free(buf);
		ok(0, "%s: could not build the file", what);
		return;
	}
	free(buf);
	rc = qvl_model_open(&q, text, dst, &e);
	ok(rc < 0 && strstr(e.msg, "mmproj-bad.gguf") && strstr(e.msg, want), "%s: refused (%s)",
	   what, e.msg);
	if (!rc)
		qvl_model_close(q);
	unlink(dst);
}

int main(void)
{
	char d[2048];

	snprintf(d, sizeof(d), "%.1000s/tests", test_env("QVL_BUILDDIR", "."));
	mkdir(d, 0755);
	snprintf(tmpdir, sizeof(tmpdir), "%.1000s/tests/tmp", test_env("QVL_BUILDDIR", "."));
	mkdir(tmpdir, 0755);
	test_mini();
	mmproj_bad("unknown mmproj tensor", "mm.2.weight", "mm.3.weight",
		   "unknown tensor 'mm.3.weight'");
	mmproj_bad("missing second patch-embedding half", "v.patch_embd.weight.1",
		   "v.patch_embd.weight.2", "v.patch_embd.weight.1");
	mmproj_bad("other projector", "qwen3vl_merger", "qwen2vl_merger", "projector_type");
	mmproj_bad("deepstack block past block_count", "v.deepstack.2.", "v.deepstack.7.",
		   "v.deepstack.7.");
	test_mini_vision();
	return done_testing();
}
