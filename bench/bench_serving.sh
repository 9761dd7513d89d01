#!/bin/sh
# Serving overhead: decode tokens/s of `qvlctl generate` through qvld (the
# client's own clock: first streamed token to the final completion) against
# `qvlctl run` in-process, on the 2b shape (`qvlctl mkmodel --shape 2b
# --no-vision`, ~4 GB, written to $QVL_BENCH_2B or /tmp/qvl-2b once and
# reused), same prompt, same threads, greedy, EOS ignored. Runs alternate
# (run, generate, run, ...) so that drift on a shared machine hits both; the
# figure is the ratio of the medians, with the spread of each side.
# Target: >= 0.98.
: "${QVLCTL:=./qvlctl}"
: "${QVL_BUILDDIR:=.}"
QVLD=${QVLD:-$QVL_BUILDDIR/qvld}
MODEL=${QVL_BENCH_2B:-/tmp/qvl-2b}
REPS=${QVL_BENCH_REPS:-3}
NTOK=${QVL_BENCH_TOKENS:-16} # ~2.5 tok/s on 2 cores: the whole bench stays near a minute
THREADS=${QVL_BENCH_THREADS:-} # empty: one per physical core on both sides
PY=${PYTHON3:-python3}

if [ ! -f "$MODEL/model.safetensors" ]; then
	echo "bench_serving: writing the 2b test model to $MODEL (once)" >&2
	"$QVLCTL" mkmodel --shape 2b --no-vision ${QVL_TOKENIZER_DIR:+--tokenizer-dir "$QVL_TOKENIZER_DIR"} \
		-o "$MODEL" >&2 || exit 1
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-bench-serving.XXXXXX")
SOCK=$TMP/qvld.sock
QPID=
trap '[ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM

"$QVLD" --foreground --model "$MODEL" --socket "$SOCK" ${THREADS:+--threads "$THREADS"} --max-seqs 1 \
	>"$TMP/qvld.log" 2>&1 &
QPID=$!
. "$(dirname "$0")/qvld_wait.sh"
qvld_wait bench_serving "$SOCK" "$QPID" "$TMP/qvld.log"

IDS="1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"
for r in $(seq "$REPS"); do
	timeout 300 "$QVLCTL" run --model "$MODEL" ${THREADS:+--threads "$THREADS"} --tokens "$IDS" --greedy \
		--ignore-eos --max-tokens "$NTOK" --json >"$TMP/run.$r" 2>/dev/null || exit 1
	timeout 300 "$QVLCTL" --socket "$SOCK" generate --tokens "$IDS" --greedy --ignore-eos \
		--max-tokens "$NTOK" --stream --json >"$TMP/gen.$r" 2>/dev/null || exit 1
done
kill -TERM "$QPID"
wait "$QPID"
QPID=

"$PY" - "$TMP" "$REPS" "$NTOK" <<'PY'
import json, statistics, sys
d, reps, ntok = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
run = [json.load(open(f"{d}/run.{r}"))["decode_tok_s"] for r in range(1, reps + 1)]
gen = [json.load(open(f"{d}/gen.{r}"))["client_decode_tok_s"] for r in range(1, reps + 1)]
dmn = [json.load(open(f"{d}/gen.{r}"))["decode_tok_s"] for r in range(1, reps + 1)]
mr, mg, md = statistics.median(run), statistics.median(gen), statistics.median(dmn)
ratio = mg / mr if mr > 0 else 0.0
spread = lambda v: (max(v) - min(v)) / statistics.median(v) if statistics.median(v) else 0.0
print(json.dumps({"name": "serving_decode_ratio", "value": round(ratio, 4), "unit": "x",
                  "peer": "qvlctl run (in-process)", "bound": 0.98,
                  "daemon_client_tok_s": round(mg, 2), "daemon_internal_tok_s": round(md, 2),
                  "run_tok_s": round(mr, 2), "spread_daemon": round(spread(gen), 3),
                  "spread_run": round(spread(run), 3), "reps": reps, "tokens": ntok,
                  "model": "2b (no vision)"}))
print(f"serving overhead: qvlctl generate {mg:.2f} tok/s (client clock; daemon's own {md:.2f}) "
      f"vs qvlctl run {mr:.2f} tok/s = {ratio:.3f}x (target >= 0.98), "
      f"median of {reps}, spread {spread(gen):.1%} / {spread(run):.1%}")
PY
