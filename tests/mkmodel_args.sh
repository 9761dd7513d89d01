#!/bin/sh
# qvlctl mkmodel command line (testmodel.md §1): usage errors exit 2 with a
# message naming the problem; a missing tokenizer directory exits 1 naming it
# and scripts/install-deps. Seeds: decimal or 0x hex, u64, nothing else; a
# leading zero is decimal ("012" is twelve, checked in mkmodel_prng).
set -u
[ -x "${QVLCTL:-}" ] || { echo "1..0 # SKIP QVLCTL not set"; exit 0; }
mkdir -p "$QVL_BUILDDIR/tests/tmp"
dir=$(mktemp -d "$QVL_BUILDDIR/tests/tmp/mkmodel-args.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT

echo "1..17"
i=0
# expect STATUS PATTERN ARGS...: exit status and a stderr line matching PATTERN
expect() {
	want=$1 pat=$2; shift 2
	i=$((i + 1))
	"$QVLCTL" mkmodel "$@" >"$dir/out" 2>"$dir/err"
	got=$?
	if [ "$got" -eq "$want" ] && grep -q -- "$pat" "$dir/err"; then
		echo "ok $i - mkmodel $* -> $want ($(head -n1 "$dir/err"))"
	else
		echo "not ok $i - mkmodel $* -> $got, want $want and /$pat/"
		sed 's/^/# /' "$dir/err"
	fi
}
for s in -1 +1 1_0 0x 0x-1 " 7" 1e3 0b101 18446744073709551616 0x10000000000000000 ""; do
	expect 2 "bad seed '$s'" --shape tiny --seed "$s" -o "$dir/m"
done
expect 2 "unknown shape '7b'" --shape 7b -o "$dir/m"
expect 2 "-o DIR is required" --shape tiny
expect 2 "--shape tiny|2b is required" -o "$dir/m"
expect 2 "unknown option '--bogus'" --shape tiny --bogus -o "$dir/m"
expect 2 "bad --threads '0'" --shape tiny --threads 0 -o "$dir/m"
expect 1 "tokenizer directory '$dir/none' not found.*scripts/install-deps" \
	--shape tiny --tokenizer-dir "$dir/none" -o "$dir/m"
