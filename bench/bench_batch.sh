#!/bin/sh
# The batching scheduler on the 2b shape (issue 18): bench/bench_batch
# against a qvld started here on QVL_BENCH_2B_DIR (default /work/m2b, an HF
# directory with vision, from `qvlctl mkmodel --shape 2b`; read only):
# aggregate decode tok/s with 1, 4, 16, 64 sequences and the ratio to one,
# the time to first token of a short request beside a 4096-id prefill vs
# idle, prefix reuse (2000-id system prompt, a repeated image) cold vs
# reused. Medians of QVL_BENCH_REPS (3) with min-max spread, one JSON line
# per figure.
#
# With a llama.cpp build (LLAMA_CPP_DIR: the directory holding
# llama-server, or its bin/) and a GGUF of the same shape (QVL_BENCH_GGUF,
# default /work/bench/qvl-2b-bf16.gguf), the same decode mix runs against
# `llama-server -np 16` (continuous batching, 16 slots) through
# bench/bench_batch_llama.py, and both aggregates are printed side by side.
# Without them that part says so and is skipped.
#
# Knobs: QVL_BENCH_REPS (3), QVL_BENCH_TOKENS (16 decoded ids per sequence),
# QVL_BENCH_CHUNK (--prefill-chunk, 256), QVL_BENCH_STEP_PCT
# (--prefill-step-pct, 100; 0: chunks not cut by layers, images encoded at
# admission), QVL_BENCH_IMAGE (visstep: WxH, 448x448), QVL_BENCH_LONG (the long
# prompt of the TTFT figure, 4096 ids), QVL_BENCH_THREADS (2),
# QVL_BENCH_KV_MEM (4G).
: "${QVLCTL:=./qvlctl}"
: "${QVL_BUILDDIR:=.}"
: "${QVL_SRCDIR:=.}"
QVLD=${QVLD:-$QVL_BUILDDIR/qvld}
MODEL=${QVL_BENCH_2B_DIR:-/work/m2b}
CHUNK=${QVL_BENCH_CHUNK:-256}
STEP=${QVL_BENCH_STEP_PCT:-100}
TH=${QVL_BENCH_THREADS:-2}
GGUF=${QVL_BENCH_GGUF:-/work/bench/qvl-2b-bf16.gguf}
PY=${PYTHON3:-python3}
export QVL_BENCH_CHUNK=$CHUNK QVL_BENCH_STEP_PCT=$STEP

if [ ! -f "$MODEL/config.json" ]; then
	echo "bench_batch: SKIP: no 2b model at $MODEL (set QVL_BENCH_2B_DIR)"
	exit 0
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-bench-batch.XXXXXX")
SOCK=$TMP/qvld.sock
QPID=
LPID=
trap '[ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null; [ -n "$LPID" ] && kill -9 "$LPID" 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM

printf '[qvld]\nmax_inflight = 256\n' >"$TMP/qvl.conf"
"$QVLD" --foreground --config "$TMP/qvl.conf" --model "$MODEL" --socket "$SOCK" --threads "$TH" \
	--max-seqs 64 --ctx 4608 --prefill-chunk "$CHUNK" --prefill-step-pct "$STEP" --kv-mem "${QVL_BENCH_KV_MEM:-4G}" \
	>"$TMP/qvld.log" 2>&1 &
QPID=$!
. "$(dirname "$0")/qvld_wait.sh"
qvld_wait bench_batch "$SOCK" "$QPID" "$TMP/qvld.log"
QVL_BENCH_QVLD_PID=$QPID QVL_SOCKET=$SOCK timeout 1800 "$QVL_BUILDDIR/bench/bench_batch" "$@" >"$TMP/qvl.json"
st=$?
cat "$TMP/qvl.json"
"$QVLCTL" --socket "$SOCK" stats | grep -E "^(batch_size|preemptions|prefix_|kv_pages)" >&2
kill -TERM "$QPID"
wait "$QPID"
QPID=
[ $st = 0 ] || exit $st

# llama-server beside it
LS=
for d in "${LLAMA_CPP_DIR:-}" "${LLAMA_CPP_DIR:-}/bin"; do
	[ -n "${LLAMA_CPP_DIR:-}" ] && [ -x "$d/llama-server" ] && LS=$d/llama-server
done
if [ -z "$LS" ] || [ ! -f "$GGUF" ]; then
	echo "bench_batch: llama-server comparison skipped (set LLAMA_CPP_DIR to a llama.cpp build and QVL_BENCH_GGUF to the 2b GGUF)" >&2
	exit 0
fi
PORT=$((20000 + $$ % 20000))
"$LS" -m "$GGUF" -np 16 -c $((16 * 512)) -t "$TH" --port "$PORT" --host 127.0.0.1 \
	>"$TMP/llama.log" 2>&1 &
LPID=$!
"$PY" "$QVL_SRCDIR/bench/bench_batch_llama.py" "$PORT" "$TMP/qvl.json" || st=1
kill -TERM "$LPID"
wait "$LPID" 2>/dev/null
LPID=
exit $st
