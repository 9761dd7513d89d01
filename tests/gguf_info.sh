#!/bin/sh
# qvlctl info on the shared tiny GGUF model (directory, and text file with
# --mmproj): same dimensions and tensor count as the Hugging Face model, and
# a malformed GGUF refused with a message naming the file.
G="$QVL_SHARED/models/qvl-tiny-gguf"
if [ ! -d "$G" ]; then echo "1..0 # SKIP no $G"; exit 0; fi
HF="$QVL_TINY"; [ -f "$HF/config.json" ] || HF="$QVL_SHARED/models/qvl-tiny"
T="$QVL_BUILDDIR/tests/tmp/gguf-info.$$"
mkdir -p "$T" || exit 1
trap 'rm -rf "$T"' EXIT
echo 1..6
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }

"$QVLCTL" info "$HF" >"$T/hf" 2>&1
"$QVLCTL" info "$G" >"$T/dir" 2>&1; rc_dir=$?
"$QVLCTL" info "$G/qvl-tiny-bf16.gguf" --mmproj "$G/mmproj-qvl-tiny-f32.gguf" >"$T/file" 2>&1
rc_file=$?
"$QVLCTL" info "$G/qvl-tiny-bf16.gguf" >"$T/text" 2>&1
# the lines that describe the model, not its files/bytes
pick() { grep -E '^(architecture|text\.|vision|tensors:|parameters:)' "$1"; }
check "info on the GGUF directory (exit $rc_dir)" '[ $rc_dir = 0 ] && grep -q "^format: gguf" "$T/dir"'
check "directory: same model description as the HF model" 'pick "$T/hf" >"$T/a" && pick "$T/dir" >"$T/b" && [ -s "$T/a" ] && cmp -s "$T/a" "$T/b" || { diff "$T/a" "$T/b" | sed "s/^/# /"; false; }'
check "info on the text file with --mmproj (exit $rc_file)" '[ $rc_file = 0 ] && pick "$T/file" >"$T/c" && cmp -s "$T/a" "$T/c"'
check "text file alone: no vision" 'grep -q "^vision: none" "$T/text"'
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377\000\000\000\000\000\000\000\000' >"$T/bad.gguf"
"$QVLCTL" info "$T/bad.gguf" >"$T/bad" 2>&1; rc_bad=$?
check "malformed GGUF: exit 1 (got $rc_bad)" '[ $rc_bad = 1 ]'
check "malformed GGUF: message names the file and the problem" 'grep -q "bad.gguf: tensor count .* absurd" "$T/bad" || { sed "s/^/# /" "$T/bad"; false; }'
