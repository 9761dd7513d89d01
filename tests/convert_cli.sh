#!/bin/sh
# qvlctl convert on the command line: usage errors (exit 2), bad inputs
# (missing directory, truncated safetensors, a NaN weight found while
# quantizing, an unwritable output, --mmproj without a vision tower: exit 1
# with a message naming the file, tensor or value) leave no output and no
# .tmp file and an existing output untouched; a converted file is read by
# qvlctl info and run by qvlctl run; --json prints the summary.
HF="$QVL_TINY"; [ -f "$HF/config.json" ] || HF="$QVL_SHARED/models/qvl-tiny"
G="$QVL_SHARED/models/qvl-tiny-gguf"
if [ ! -f "$HF/model.safetensors" ] || [ ! -d "$G" ]; then
	echo "1..0 # SKIP no tiny model ($HF) or $G"
	exit 0
fi
T="$QVL_BUILDDIR/tests/tmp/convert-cli.$$"
mkdir -p "$T" || exit 1
trap 'rm -rf "$T"' EXIT
echo 1..22
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; sed 's/^/# /' "$T/err" 2>/dev/null; fi; }
run() { "$QVLCTL" convert "$@" >"$T/out" 2>"$T/err"; rc=$?; }
none() { ! ls "$T"/o.gguf* "$T"/m.gguf* >/dev/null 2>&1; }

run --help
check "--help: exit 0, lists --type" '[ $rc = 0 ] && grep -q -- "--type" "$T/out"'
run "$HF"
check "no -o: usage error, exit 2 (got $rc)" '[ $rc = 2 ] && grep -q -- "-o" "$T/err"'
run "$HF" -o "$T/o.gguf" --type q3_k
check "unknown --type: exit 2 naming the value (got $rc)" '[ $rc = 2 ] && grep -q "q3_k" "$T/err" && none'
run "$T/nothere" -o "$T/o.gguf"
check "missing model directory: exit 1 naming it (got $rc)" '[ $rc = 1 ] && grep -q "nothere" "$T/err"'
check "... and no output, no .tmp" 'none'
run "$HF" -o "$T/no/such/dir/o.gguf"
check "unwritable output: exit 1 naming the file (got $rc)" '[ $rc = 1 ] && grep -q "no/such/dir/o.gguf" "$T/err"'

# a truncated safetensors file
mkdir "$T/trunc" && cp "$HF"/*.json "$T/trunc/" &&
	head -c 1000000 "$HF/model.safetensors" >"$T/trunc/model.safetensors"
echo keep >"$T/o.gguf"
run "$T/trunc" -o "$T/o.gguf"
check "truncated safetensors: exit 1 naming the file (got $rc)" '[ $rc = 1 ] && grep -q "model.safetensors" "$T/err"'
check "... the existing output is untouched, no .tmp" '[ "$(cat "$T/o.gguf")" = keep ] && ! [ -e "$T/o.gguf.tmp" ]'
rm -f "$T/o.gguf"

# a NaN in the first weight (token embeddings, the first data): found while
# writing, after the header is out
mkdir "$T/nan" && cp "$HF"/*.json "$T/nan/" && cp "$HF/model.safetensors" "$T/nan/"
hlen=$(od -An -tu8 -N8 "$HF/model.safetensors" | tr -d ' ')
printf '\377\177' | dd of="$T/nan/model.safetensors" bs=1 seek=$((8 + hlen)) conv=notrunc 2>/dev/null
run "$T/nan" -o "$T/o.gguf" --type q8_0
check "NaN weight while quantizing: exit 1 naming the tensor (got $rc)" '[ $rc = 1 ] && grep -q "token_embd.weight" "$T/err"'
check "... and no output, no .tmp" 'none'
run "$T/nan" -o "$T/o.gguf" --type f32
check "the same NaN is carried by f32 (exit $rc)" '[ $rc = 0 ] && [ -s "$T/o.gguf" ]'
rm -f "$T/o.gguf"

run "$G/qvl-tiny-bf16.gguf" -o "$T/o.gguf" --mmproj "$T/m.gguf"
check "--mmproj for a text .gguf without --in-mmproj: exit 1 (got $rc)" '[ $rc = 1 ] && grep -q "in-mmproj" "$T/err" && none'
run "$HF" -o "$T/o.gguf" --mmproj "$T/o.gguf"
check "-o and --mmproj the same file: exit 2 (got $rc)" '[ $rc = 2 ]'

# successful conversions
run "$HF" -o "$T/o.gguf" --type q8_0 --mmproj "$T/m.gguf" --json --quiet
check "HF -> q8_0 + mmproj (exit $rc)" '[ $rc = 0 ] && [ -s "$T/o.gguf" ] && [ -s "$T/m.gguf" ]'
check "--json: one object with both files and their types" 'grep -q "^{\"type\":\"q8_0\",\"text\":{\"path\":.*\"Q8_0\":.*\"mmproj\":{.*\"F16\":" "$T/out"'
check "no .tmp left after success" '! ls "$T"/*.tmp >/dev/null 2>&1'
"$QVLCTL" info "$T/o.gguf" --mmproj "$T/m.gguf" >"$T/info" 2>"$T/err"; rc=$?
check "qvlctl info reads the converted files (exit $rc)" '[ $rc = 0 ] && grep -q "^vision.depth: 4" "$T/info" && grep -q "Q8_0" "$T/info"'
"$QVLCTL" run --model "$T/o.gguf" --tokens "9707 11 1879" --greedy --max-tokens 2 --quiet >"$T/run" 2>"$T/err"
rc=$?
check "qvlctl run generates from the converted file (exit $rc)" '[ $rc = 0 ]'
run "$T/o.gguf" --in-mmproj "$T/m.gguf" -o "$T/o2.gguf" --mmproj "$T/m2.gguf" --type f16 --quiet
check "GGUF text + --in-mmproj -> f16 (exit $rc)" '[ $rc = 0 ] && grep -q "^mmproj.types: F32 [0-9]*, F16" "$T/out"'
run "$G" -o "$T/o3.gguf" --type q4_k_m --quiet
check "GGUF directory -> q4_k_m (exit $rc)" '[ $rc = 0 ] && grep -q "^text.file_type: 15" "$T/out"'
check "... the tiny rows (64) fall back: Q5_0 and Q8_0, no Q4_K" 'grep -q "Q5_0" "$T/out" && ! grep -q "Q4_K" "$T/out"'
echo keep >"$T/o4.gguf"
run "$HF" -o "$T/o4.gguf" --type f32 --quiet
check "an existing output is replaced once complete (exit $rc)" '[ $rc = 0 ] && [ "$(head -c 4 "$T/o4.gguf")" = GGUF ]'
