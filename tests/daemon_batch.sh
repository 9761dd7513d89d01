#!/bin/sh
# Continuous batching gives the tokens of one sequence at a time: the same
# greedy requests (tests/daemon_batch.c: prompt lengths 1..700, text, an
# image, joining and leaving mid-run) through a daemon that runs one
# sequence at a time and through one that batches 8 with prefill chunks of
# 16 positions give identical ids, and the batched one did batch
# (batch_size_max >= 2 in stats). Exact precision and an f32 KV cache: at
# the default bf16 precision a product's rounding may depend on how many rows
# share it (docs/precision.md), so a near tie could flip.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..8"
B=${QVL_BUILDDIR:-.}/tests/daemon_batch
COMMON="--precision exact --kv-type f32 --ctx 2048"

run_set() { # run_set NAME ARGS...: start, run the set into $TMP/NAME, stats into $TMP/NAME.json
	name=$1
	shift
	if ! start_qvld $COMMON "$@"; then
		echo "# qvld $* did not start"
		return 1
	fi
	QVL_SOCKET=$SOCK timeout 120 "$B" >"$TMP/$name" 2>"$TMP/$name.err"
	rst=$? # not st: stop_qvld sets that
	"$QVLCTL" --socket "$SOCK" stats --json >"$TMP/$name.json" 2>/dev/null
	stop_qvld
	[ "$QSTATUS" = 0 ] && san_clean || rst=1
	return $rst
}

run_set one --max-seqs 1
res $? "one sequence at a time: every request completes ($(wc -l <"$TMP/one") lines; $(head -c 300 "$TMP/one.err"))"

run_set batch --max-seqs 8 --prefill-chunk 16
res $? "batch of 8, prefill chunks of 16: every request completes"

cmp -s "$TMP/one" "$TMP/batch"
st=$?
res $st "the batched ids equal the one-at-a-time ids"
[ $st = 0 ] || diff "$TMP/one" "$TMP/batch" | head -10 | sed 's/^/# /'

bmax=$(sed -n 's/.*"batch_size_max":\([0-9]*\).*/\1/p' "$TMP/batch.json")
[ "${bmax:-0}" -ge 2 ]
res $? "the batched daemon ran batches (batch_size_max $bmax)"
omax=$(sed -n 's/.*"batch_size_max":\([0-9]*\).*/\1/p' "$TMP/one.json")
[ "${omax:-0}" = 1 ]
res $? "the other never did (batch_size_max $omax)"
# a KV budget of 16 pages (2 MiB of f32 pages of 64 positions on the tiny
# model) holds the 700-id prompt or a few short ones, not the window of 5:
# sequences are preempted and re-prefilled, and nothing changes
run_set tiny --max-seqs 8 --prefill-chunk 16 --kv-mem 2M
res $? "KV budget of 16 pages: every request completes"
cmp -s "$TMP/one" "$TMP/tiny"
st=$?
res $st "with preemptions, the ids equal the one-at-a-time ids"
[ $st = 0 ] || diff "$TMP/one" "$TMP/tiny" | head -10 | sed 's/^/# /'
pre=$(sed -n 's/.*"preemptions":\([0-9]*\).*/\1/p' "$TMP/tiny.json")
tot=$(sed -n 's/.*"kv_pages_total":\([0-9]*\).*/\1/p' "$TMP/tiny.json")
[ "${pre:-0}" -ge 1 ] && [ "${tot:-0}" = 16 ]
res $? "sequences were preempted ($pre) in a pool of 16 pages ($tot)"
exit $fail
