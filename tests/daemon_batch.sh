#!/bin/sh
# Continuous batching gives the tokens of one sequence at a time: the same
# greedy requests (tests/daemon_batch.c: prompt lengths 1..700, text, an
# image, joining and leaving mid-run) through a daemon that runs one
# sequence at a time and through one that batches 8 with prefill chunks of
# 16 positions give identical ids, and the batched one did batch
# (batch_size_max >= 2 in stats); with the prefix cache the shared prompt
# prefixes are attached, not recomputed, and the ids stay the same (hits
# counted); a KV budget of 16 pages forces preemptions, ids unchanged, and
# so does a per-client limit (client_kv_pages); long prefills run cut by
# layers (sched_split.c), and the same ids come without that cut. Exact
# precision and an f32 KV cache: at
# the default bf16 precision a product's rounding may depend on how many rows
# share it (docs/precision.md), so a near tie could flip.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..16"
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
	# the message kept when it fails (it went to /dev/null)
	timeout 60 "$QVLCTL" --socket "$SOCK" stats --json >"$TMP/$name.json" 2>"$TMP/$name.serr" ||
		echo "# qvlctl stats: exit $?, $(head -c 300 "$TMP/$name.serr")"
	stop_qvld
	[ "$QSTATUS" = 0 ] && san_clean || rst=1
	return $rst
}

run_set one --max-seqs 1 --prefix-cache false
res $? "one sequence at a time: every request completes ($(wc -l <"$TMP/one") lines; $(head -c 300 "$TMP/one.err"))"

run_set batch --max-seqs 8 --prefill-chunk 16
res $? "batch of 8, prefill chunks of 16: every request completes"

same_as_one() { # same_as_one NAME DESCRIPTION
	cmp -s "$TMP/one" "$TMP/$1"
	sst=$?
	res $sst "$2"
	[ $sst = 0 ] || diff "$TMP/one" "$TMP/$1" | head -10 | sed 's/^/# /'
}
same_as_one batch "the batched ids equal the one-at-a-time ids"

num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$TMP/$2.json"; }
parts=$(num split_parts batch)
[ "${parts:-0}" -ge 1 ]
res $? "the long prefills ran cut by layers ($parts split parts)"
bmax=$(num batch_size_max batch)
[ "${bmax:-0}" -ge 2 ]
res $? "the batched daemon ran batches (batch_size_max $bmax)"
omax=$(num batch_size_max one)
[ "${omax:-0}" = 1 ]
res $? "the other never did (batch_size_max $omax)"
[ "$(num prefix_hits one)" = 0 ]
res $? "without the prefix cache: no prefix hit ($(num prefix_hits one))"
hits=$(num prefix_hits batch)
reused=$(num prefix_tokens_reused batch)
# how much is reused depends on timing: a long prompt admitted while the
# 700-id one is still being prefilled attaches only the pages published so
# far (with the layer split, the 700-id prefill shares each step with the
# decodes); at least one whole page is always there
[ "${hits:-0}" -ge 2 ] && [ "${reused:-0}" -ge 64 ]
res $? "with it, the same ids and prefix hits counted ($hits hits, $reused positions reused)"

# a KV budget of 16 pages (2 MiB of f32 pages of 64 positions on the tiny
# model) holds the 700-id prompt or a few short ones, not the window of 5:
# sequences are preempted and re-prefilled, and nothing changes
# (not cut by layers: a split that finds no pages waits for the decodes
# to free some, so whether one is preempted depends on timing)
run_set tiny --max-seqs 8 --prefill-chunk 16 --kv-mem 2M --prefill-step-pct 0
res $? "KV budget of 16 pages: every request completes"
same_as_one tiny "with preemptions, the ids equal the one-at-a-time ids"
pre=$(num preemptions tiny)
tot=$(num kv_pages_total tiny)
[ "${pre:-0}" -ge 1 ] && [ "${tot:-0}" = 16 ]
res $? "sequences were preempted ($pre) in a pool of 16 pages ($tot)"
# the same through a per-client limit of 12 pages (the longest request
# alone needs 12) in an unbounded pool: the one client preempts itself
run_set client --max-seqs 8 --prefill-chunk 16 --client-kv-pages 12
res $? "client_kv_pages 12: every request completes"
same_as_one client "under the per-client limit, the ids equal the one-at-a-time ids"
pre=$(num preemptions client)
[ "${pre:-0}" -ge 1 ] && [ "${pre:-0}" -lt 20 ]
res $? "the client's own sequences were preempted ($pre), fewer times than there are requests (20): a preempted one comes back only when its pages fit"
# the old way (--prefill-step-pct 0: every prefill chunk in the step's one
# forward, no layer split) gives the same ids too
run_set fixed --max-seqs 8 --prefill-chunk 16 --prefill-step-pct 0
res $? "prefill chunks without the layer split: every request completes"
same_as_one fixed "without the split, the ids equal the one-at-a-time ids"
exit $fail
