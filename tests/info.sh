#!/bin/sh
# qvlctl info on the tiny model: text form (key: value lines) and --json,
# against testmodel.md §2 (shapes, 115 tensors, 10,136,928 parameters, all
# BF16: 20,273,856 bytes of tensor data = file size 20,287,008 minus 8 minus
# the 13,144-byte header); errors and usage exit codes.
n=0
fail=0
t() { # t DESCRIPTION COMMAND...
	n=$((n + 1)); d=$1; shift
	if "$@" >/dev/null 2>&1; then echo "ok $n - $d"; else echo "not ok $n - $d"; fail=1; fi
}

tiny=
if [ -n "$QVL_TINY" ] && [ -f "$QVL_TINY/model.safetensors" ]; then tiny=$QVL_TINY
elif [ -n "$QVL_SHARED" ] && [ -f "$QVL_SHARED/models/qvl-tiny/model.safetensors" ]; then
	tiny=$QVL_SHARED/models/qvl-tiny
fi
if [ -z "$tiny" ]; then echo "1..0 # SKIP no tiny model"; exit 0; fi
QVLCTL=${QVLCTL:-./qvlctl}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
echo "# tiny model: $tiny"

"$QVLCTL" info "$tiny" >"$tmp/out" 2>"$tmp/err"; rc=$?
t "info exits 0" test $rc -eq 0
has() { grep -qxF "$1" "$tmp/out"; }
t "format: hf" has "format: hf"
t "architecture" has "architecture: Qwen3VLForConditionalGeneration"
t "text.hidden_size: 64" has "text.hidden_size: 64"
t "text.num_layers: 4" has "text.num_layers: 4"
t "text heads 4 / kv 2" sh -c "grep -qx 'text.num_heads: 4' '$tmp/out' && grep -qx 'text.num_kv_heads: 2' '$tmp/out'"
t "text.head_dim: 32" has "text.head_dim: 32"
t "text.intermediate_size: 192" has "text.intermediate_size: 192"
t "text.vocab_size: 151936" has "text.vocab_size: 151936"
t "text.max_position: 8192" has "text.max_position: 8192"
t "text.rope_theta: 5000000" has "text.rope_theta: 5000000"
t "text.mrope_section: [6, 5, 5]" has "text.mrope_section: [6, 5, 5]"
t "vision.depth: 4" has "vision.depth: 4"
t "vision.hidden_size: 32" has "vision.hidden_size: 32"
t "vision.patch_size: 16" has "vision.patch_size: 16"
t "vision.spatial_merge_size: 2" has "vision.spatial_merge_size: 2"
t "vision.out_hidden_size: 64" has "vision.out_hidden_size: 64"
t "vision.deepstack_indexes: [1, 2]" has "vision.deepstack_indexes: [1, 2]"
t "tensors: 115" has "tensors: 115"
t "parameters: 10136928" has "parameters: 10136928"
t "bytes_by_dtype.BF16: 20273856" has "bytes_by_dtype.BF16: 20273856"
t "file line names model.safetensors" sh -c "grep -q '^file: .*/model.safetensors\$' '$tmp/out'"

"$QVLCTL" info --json "$tiny" >"$tmp/json" 2>"$tmp/err"; rc=$?
t "info --json exits 0" test $rc -eq 0
t "--json is one line" test "$(wc -l <"$tmp/json")" -eq 1
if [ -n "$PYTHON3" ]; then
	t "--json parses and matches testmodel.md" "$PYTHON3" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "hf" and d["architecture"] == "Qwen3VLForConditionalGeneration"
assert d["files"][0].endswith("/model.safetensors")
t, v = d["text"], d["vision"]
assert (t["hidden_size"], t["num_layers"], t["num_heads"], t["num_kv_heads"], t["head_dim"],
        t["intermediate_size"], t["vocab_size"], t["max_position"]) == (64, 4, 4, 2, 32, 192, 151936, 8192)
assert t["rope_theta"] == 5000000 and t["mrope_section"] == [6, 5, 5] and t["rms_norm_eps"] == 1e-6
assert t["tie_word_embeddings"] is True
assert (v["depth"], v["hidden_size"], v["num_heads"], v["patch_size"], v["spatial_merge_size"],
        v["out_hidden_size"], v["num_position_embeddings"], v["deepstack_indexes"]) == (4, 32, 2, 16, 2, 64, 256, [1, 2])
assert d["tensors"] == 115 and d["parameters"] == 10136928
assert d["bytes_by_dtype"] == {"BF16": 20287008 - 8 - 13144} and d["bytes"] == 20273856
' "$tmp/json"
else
	echo "# PYTHON3 not set: --json checked with grep only"
	t "--json has tensors 115" grep -q '"tensors":115' "$tmp/json"
fi

# --no-vision model from mkmodel: testmodel.md §2 counts
if "$QVLCTL" mkmodel --shape tiny --no-vision ${QVL_TOKENIZER_DIR:+--tokenizer-dir "$QVL_TOKENIZER_DIR"} \
	-o "$tmp/nv" >/dev/null 2>&1; then
	"$QVLCTL" info "$tmp/nv" >"$tmp/out" 2>&1
	t "no-vision: vision: none" has "vision: none"
	t "no-vision: tensors: 46" has "tensors: 46"
	t "no-vision: parameters: 9970496" has "parameters: 9970496"
else
	echo "# mkmodel unavailable: no-vision info not checked"
fi

# GGUF dispatch: a directory (text + mmproj), a file with --mmproj, ambiguity
gg=${QVL_SHARED:-/nonexistent}/models/qvl-tiny-gguf
if [ -f "$gg/qvl-tiny-bf16.gguf" ] && [ -f "$gg/mmproj-qvl-tiny-f32.gguf" ]; then
	"$QVLCTL" info "$gg" >"$tmp/out" 2>&1
	t "gguf dir: format: gguf" has "format: gguf"
	t "gguf dir: tensors: 115" has "tensors: 115"
	t "gguf dir: parameters: 10136928" has "parameters: 10136928"
	"$QVLCTL" info --mmproj "$gg/mmproj-qvl-tiny-f32.gguf" "$gg/qvl-tiny-bf16.gguf" >"$tmp/out" 2>&1
	t "gguf file + --mmproj: tensors: 115" has "tensors: 115"
	"$QVLCTL" info "$gg/qvl-tiny-bf16.gguf" >"$tmp/out" 2>&1
	t "gguf file alone: text only, 46 tensors" sh -c "grep -qx 'tensors: 46' '$tmp/out' && grep -qx 'vision: none' '$tmp/out'"
	mkdir "$tmp/two"
	ln -s "$gg/qvl-tiny-bf16.gguf" "$tmp/two/a.gguf"
	ln -s "$gg/qvl-tiny-bf16.gguf" "$tmp/two/b.gguf"
	"$QVLCTL" info "$tmp/two" >/dev/null 2>"$tmp/err"; rc=$?
	t "two text GGUFs: exit 1, ambiguous" sh -c "test $rc -eq 1 && grep -q 'ambiguous' '$tmp/err'"
else
	echo "# $gg absent: GGUF dispatch not checked"
fi

"$QVLCTL" info "$tmp/nonexistent" >/dev/null 2>"$tmp/err"; rc=$?
t "missing model exits 1" test $rc -eq 1
t "error names the path" grep -q "^qvlctl info: .*nonexistent" "$tmp/err"
"$QVLCTL" info >/dev/null 2>&1; rc=$?
t "no MODEL exits 2" test $rc -eq 2
"$QVLCTL" info --bogus "$tiny" >/dev/null 2>&1; rc=$?
t "unknown option exits 2" test $rc -eq 2
"$QVLCTL" info --help >"$tmp/help" 2>&1; rc=$?
t "--help exits 0 with usage" sh -c "test $rc -eq 0 && grep -q 'Usage: qvlctl info' '$tmp/help'"
echo "1..$n"
exit $fail
