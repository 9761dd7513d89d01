#!/bin/sh
# `make fuzz`: build every libFuzzer target with clang in its own build tree
# (build-fuzz/, ASan + UBSan + coverage on the library code too) and run each
# for FUZZ_SECONDS (default 60) on a scratch corpus seeded from
# tests/data/fuzz/NAME/. A crash leaves its input in build-fuzz/findings/NAME/:
# copy it into tests/data/fuzz/NAME/ with the fix, so the replay test keeps it fixed.
# FUZZ_JOBS (default 2): how many targets fuzz at once.
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
# The tokenizer and engine targets load the tokenizer and the tiny model;
# make fuzz passes configure's places, and run directly this falls back to
# its defaults (deps/, ../shared beside the checkout). Without them
# they return at once and fuzz nothing, which counts as a failure below.
if [ -z "${QVL_TOKENIZER_JSON:-}${QVL_TOKENIZER_DIR:-}" ]; then
	QVL_TOKENIZER_DIR=$srcdir/deps/tokenizer-qwen3
	export QVL_TOKENIZER_DIR
fi
if [ -z "${QVL_TINY:-}${QVL_SHARED:-}" ]; then
	QVL_SHARED=$srcdir/../shared
	export QVL_SHARED
fi
# every target built in one make (its -j2 spans them all), then the fuzzers
# run FUZZ_JOBS (default 2) at a time: each is one process on one core
jobs=${FUZZ_JOBS:-2}
bins=
for t in $targets; do
	bins="$bins tests/fuzz/fuzz_$t"
done
make -s -j2 $bins

# fuzz_one T: run target T; its summary goes to fuzz-T.out, and fuzz-T.fail
# exists when it failed
fuzz_one() {
	t=$1
	rm -f "fuzz-$t.fail"
	mkdir -p "corpus/$t" "findings/$t"
	{
		echo "fuzz: $t for ${secs}s"
		if ! "./tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix="findings/$t/" -print_final_stats=1 \
			"corpus/$t" "$srcdir/tests/data/fuzz/$t" >"fuzz-$t.log" 2>&1; then
			echo "fuzz: $t FAILED, see $bdir/fuzz-$t.log and findings/$t/"
			: >"fuzz-$t.fail"
		fi
		grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "fuzz-$t.log" | tail -2 || true
		# a target without its inputs says "fuzz: no ..." (tok_fuzz_load.h,
		# fuzz_engine_chunk.c): it ran, but fuzzed nothing
		if grep -q "^fuzz: no " "fuzz-$t.log"; then
			echo "fuzz: $t FAILED: it fuzzed nothing: $(grep -m1 "^fuzz: no " "fuzz-$t.log")"
			: >"fuzz-$t.fail"
		fi
	} >"fuzz-$t.out"
}

status=0
set -- $targets
while [ $# -gt 0 ]; do
	batch=
	n=0
	while [ $# -gt 0 ] && [ $n -lt "$jobs" ]; do
		fuzz_one "$1" &
		batch="$batch $1"
		n=$((n + 1))
		shift
	done
	wait
	for t in $batch; do
		cat "fuzz-$t.out"
		[ ! -e "fuzz-$t.fail" ] || status=1
	done
done
exit $status
