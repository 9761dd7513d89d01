#!/bin/sh
# qvlctl mkmodel side files (testmodel.md §8): config.json,
# generation_config.json and preprocessor_config.json equal the reference
# ones of ../shared/models/qvl-tiny (copied to tests/data/qvl-tiny) as parsed
# JSON; the tokenizer files are byte-for-byte copies; --no-vision drops
# vision_config and preprocessor_config.json and nothing else.
set -u
[ -n "${PYTHON3:-}" ] && [ -x "$PYTHON3" ] || { echo "1..0 # SKIP python3 not found"; exit 0; }
[ -x "${QVLCTL:-}" ] || { echo "1..0 # SKIP QVLCTL not set"; exit 0; }
tokdir=${QVL_TOKENIZER_DIR:-}
[ -f "$tokdir/tokenizer.json" ] || { echo "1..0 # SKIP no tokenizer in '$tokdir'"; exit 0; }
ref="$QVL_TESTDATA/qvl-tiny"
mkdir -p "$QVL_BUILDDIR/tests/tmp"
dir=$(mktemp -d "$QVL_BUILDDIR/tests/tmp/mkmodel-side.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT

echo "1..16"
i=0
t() { # t DESCRIPTION COMMAND...
	i=$((i + 1)); d=$1; shift
	if "$@"; then echo "ok $i - $d"; else echo "not ok $i - $d"; fi
}
quiet() { "$@" >/dev/null; }
to_json() { "$@" >"$dir/out.json"; }
same_json() { # same_json GOT WANT [drop-key]
	"$PYTHON3" - "$@" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))
if len(sys.argv) > 3:
    want.pop(sys.argv[3])
if got != want:
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            print("# %s: got %r, want %r" % (k, got.get(k), want.get(k)))
    sys.exit(1)
PY
}

t "mkmodel --shape tiny" quiet "$QVLCTL" mkmodel --shape tiny --tokenizer-dir "$tokdir" -o "$dir"
for f in config generation_config preprocessor_config; do
	t "$f.json equals the reference" same_json "$dir/$f.json" "$ref/$f.json"
done
t "tokenizer.json copied byte for byte" cmp -s "$dir/tokenizer.json" "$tokdir/tokenizer.json"
t "tokenizer_config.json copied byte for byte" cmp -s "$dir/tokenizer_config.json" "$tokdir/tokenizer_config.json"
t "no temporary files left" test -z "$(ls -A "$dir" | grep '\.tmp\.')"

t "mkmodel --no-vision over the same directory" quiet "$QVLCTL" mkmodel --shape tiny --no-vision --tokenizer-dir "$tokdir" -o "$dir"
t "--no-vision: config.json is the reference without vision_config" same_json "$dir/config.json" "$ref/config.json" vision_config
t "--no-vision: generation_config.json unchanged" same_json "$dir/generation_config.json" "$ref/generation_config.json"
t "--no-vision: no preprocessor_config.json" test ! -e "$dir/preprocessor_config.json"
# -o creates missing parents; QVL_TOKENIZER_DIR is the default tokenizer dir
t "QVL_TOKENIZER_DIR default, nested -o created, --json" \
	to_json env QVL_TOKENIZER_DIR="$tokdir" "$QVLCTL" mkmodel --shape tiny --json -o "$dir/a/b"
t "--json prints one JSON object with the file size" "$PYTHON3" -c '
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(0 if o["file_bytes"] == 20287008 and o["tensors"] == 115 and o["seed"] == 0 else 1)' "$dir/out.json"
# a temporary file of a run that was killed (its PID is gone) is removed
dead=$(sh -c 'echo $$')
: >"$dir/a/b/.model.safetensors.tmp.$dead"
quiet "$QVLCTL" mkmodel --shape tiny --no-vision --tokenizer-dir "$tokdir" -o "$dir/a/b"
t "a dead run's temporary file was removed" test ! -e "$dir/a/b/.model.safetensors.tmp.$dead"
t "the second run replaced model.safetensors (--no-vision size)" \
	test "$(wc -c <"$dir/a/b/model.safetensors")" -eq 19946656
t "-o below a regular file fails with status 1" sh -c '"$0" mkmodel --shape tiny --tokenizer-dir "$1" -o "$2/out.json/x" 2>/dev/null; test $? -eq 1' "$QVLCTL" "$tokdir" "$dir"
