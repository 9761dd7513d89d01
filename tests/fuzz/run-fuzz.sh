#!/bin/sh
# `make fuzz`: build every libFuzzer target with clang in its own build tree
# (build-fuzz/, ASan + UBSan + coverage on the library code too) and run each
# for FUZZ_SECONDS (default 60) on a scratch corpus seeded from
# tests/data/fuzz/NAME/. A crash leaves its input in build-fuzz/findings/NAME/:
# copy it into tests/data/fuzz/NAME/ with the fix, so the replay test keeps it fixed.
set -eu
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-}
bdir=${FUZZ_BUILDDIR:-$srcdir/build-fuzz}
mkdir -p "$bdir"
cd "$bdir"
if [ ! -f Makefile ]; then
	CC=clang "$srcdir/configure" -q --enable-fuzzing
fi
[ -n "$targets" ] || targets=$(make -s print-fuzz-targets)
# The tokenizer and engine targets load the tokenizer and the tiny model
# from where make check's tests find them (tests/tests.am); without them
# they return at once and fuzz nothing, which counts as a failure below.
if [ -z "${QVL_TOKENIZER_JSON:-}${QVL_TOKENIZER_DIR:-}" ]; then
	QVL_TOKENIZER_DIR=$srcdir/deps/tokenizer-qwen3
	export QVL_TOKENIZER_DIR
fi
if [ -z "${QVL_TINY:-}${QVL_SHARED:-}" ]; then
	QVL_SHARED=$srcdir/../shared
	export QVL_SHARED
fi
status=0
for t in $targets; do
	make -s -j2 "tests/fuzz/fuzz_$t"
	mkdir -p "corpus/$t" "findings/$t"
	echo "fuzz: $t for ${secs}s"
	if ! "./tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="findings/$t/" -print_final_stats=1 \
		"corpus/$t" "$srcdir/tests/data/fuzz/$t" >"fuzz-$t.log" 2>&1; then
		echo "fuzz: $t FAILED, see $bdir/fuzz-$t.log and findings/$t/"
		status=1
	fi
	grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "fuzz-$t.log" | tail -2 || true
	# a target without its inputs says "fuzz: no ..." (tok_fuzz_load.h,
	# fuzz_engine_chunk.c): it ran, but fuzzed nothing
	if grep -q "^fuzz: no " "fuzz-$t.log"; then
		echo "fuzz: $t FAILED: it fuzzed nothing: $(grep -m1 "^fuzz: no " "fuzz-$t.log")"
		status=1
	fi
done
exit $status
