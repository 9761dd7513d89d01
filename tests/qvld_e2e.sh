#!/bin/sh
# qvld end to end on the tiny model: greedy text and image requests through
# the daemon equal `qvlctl run --greedy` (ids and text), with a system
# prompt, streaming, stop strings, several concurrent clients, status /
# stats / Prometheus output, and a clean SIGTERM.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
[ -n "$PYTHON3" ] || { echo "1..0 # SKIP python3 not found (JSON comparison)"; exit 0; }
echo "1..19"
P="Describe a quiet morning by the sea."

# exact precision on both sides: under bf16 a product's rounding depends on
# how many rows it has (one decode row takes the exact kernel, a batch of
# clients the bf16 one), so only the exact path is equal whatever the batch
start_qvld --precision exact
res $? "qvld starts and answers status"

timeout 60 "$QVLCTL" run --model "$MODEL" --threads 2 --prompt "$P" --greedy --max-tokens 24 \
	--precision exact --json >"$TMP/run.json" 2>/dev/null
gen --prompt "$P" --greedy --max-tokens 24 --json >"$TMP/gen.json" 2>"$TMP/err"
st=$?
[ $st = 0 ] && [ "$(jfield "$TMP/run.json" ids)" = "$(jfield "$TMP/gen.json" ids)" ] &&
	[ "$(jfield "$TMP/run.json" text)" = "$(jfield "$TMP/gen.json" text)" ]
res $? "greedy text: ids and text equal qvlctl run's (exit $st)"

# client_decode_tok_s is the client's own clock from the first streamed
# chunk to the final CQE: 0 without streaming (one CQE, nothing to time),
# a finite rate no higher than tokens / wall time allows with it
gen --prompt "$P" --greedy --max-tokens 24 --ignore-eos --stream --json >"$TMP/sj.json" 2>/dev/null
"$PYTHON3" - "$TMP/gen.json" "$TMP/sj.json" <<'PY'
import json, sys
ns, st = (json.load(open(f)) for f in sys.argv[1:3])
bound = st["n_gen"] / st["decode_s"] * 20 if st["decode_s"] > 0 else 0
sys.exit(0 if ns["client_decode_tok_s"] == 0 and 0 < st["client_decode_tok_s"] <= bound else 1)
PY
res $? "client_decode_tok_s: 0 without --stream, a plausible rate with it ($(jfield "$TMP/gen.json" client_decode_tok_s), $(jfield "$TMP/sj.json" client_decode_tok_s))"
# ttft_ms: submit -> the first CQE with a token on the client's clock; null
# without streaming, with it positive and within the request's wall time
"$PYTHON3" - "$TMP/gen.json" "$TMP/sj.json" <<'PY'
import json, sys
ns, st = (json.load(open(f)) for f in sys.argv[1:3])
t = st["ttft_ms"]
sys.exit(0 if ns["ttft_ms"] is None and t is not None and 0 < t <= st["wall_s"] * 1e3 else 1)
PY
res $? "ttft_ms: null without --stream, within the wall time with it ($(jfield "$TMP/sj.json" ttft_ms) ms of $(jfield "$TMP/sj.json" wall_s) s)"

# --timeout: exit 1 and the message says the timeout as given
gen --prompt "$P" --max-tokens 5000 --ignore-eos --no-stream --timeout 0.05 >/dev/null 2>"$TMP/to.err"
st=$?
[ $st = 1 ] && grep -q "no answer within 0.05 s" "$TMP/to.err"
res $? "--timeout 0.05: exit $st, $(cat "$TMP/to.err")"

gen --prompt "$P" --greedy --max-tokens 24 --stream >"$TMP/stream.txt" 2>/dev/null
"$PYTHON3" -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["text"] + "\n")' \
	"$TMP/run.json" >"$TMP/want.txt"
cmp -s "$TMP/stream.txt" "$TMP/want.txt"
res $? "streamed output equals run's text"

timeout 60 "$QVLCTL" run --model "$MODEL" --threads 2 --tokens "1 2 3 4 5" --greedy \
	--max-tokens 8 --ignore-eos --print-ids --precision exact >"$TMP/run.ids" 2>/dev/null
gen --tokens "1 2 3 4 5" --greedy --max-tokens 8 --ignore-eos --print-ids >"$TMP/gen.ids" 2>/dev/null
cmp -s "$TMP/run.ids" "$TMP/gen.ids"
res $? "token-id prompt: ids equal run's"

# a stop string cut from the middle of the free-running text
stop=$("$PYTHON3" -c 'import json,sys; t=json.load(open(sys.argv[1]))["text"]; w=t.split(); print(w[len(w)//2] if len(w) > 2 else "")' "$TMP/run.json")
if [ -n "$stop" ]; then
	gen --prompt "$P" --greedy --max-tokens 24 --stop "$stop" --json >"$TMP/stop.json" 2>/dev/null
	"$PYTHON3" - "$TMP/run.json" "$TMP/stop.json" "$stop" <<'PY'
import json, sys
full = json.load(open(sys.argv[1]))["text"]
got = json.load(open(sys.argv[2]))
want = full[:full.index(sys.argv[3])]
sys.exit(0 if got["text"] == want and got["stop"] == "stop" else 1)
PY
	res $? "stop string '$stop': the text before it, stop=stop"
else
	res 1 "free-running text too short to cut a stop string from"
fi

gen --system "You are terse." --prompt "$P" --greedy --max-tokens 8 --json >"$TMP/sys.json" 2>/dev/null &&
	! cmp -s "$TMP/sys.json" "$TMP/gen.json"
res $? "a system prompt is accepted and changes the prompt"

# several clients at once: each result equals run's
pids=
for k in 1 2 3 4; do
	gen --prompt "$P" --greedy --max-tokens 24 --json >"$TMP/c$k.json" 2>"$TMP/c$k.err" &
	pids="$pids $!"
done
ok=0
for p in $pids; do wait "$p" || ok=1; done
for k in 1 2 3 4; do
	[ "$(jfield "$TMP/c$k.json" ids 2>/dev/null)" = "$(jfield "$TMP/run.json" ids)" ] || ok=1
done
res $ok "4 concurrent clients: every result equals run's"

# an image, when the shared golden data is there
IMG=$QVL_SHARED/golden/vision/grad_64x64.png
if [ -f "$IMG" ]; then
	timeout 120 "$QVLCTL" run --model "$MODEL" --threads 2 --image "$IMG" --prompt "What is this?" \
		--greedy --max-tokens 12 --precision exact --json >"$TMP/runi.json" 2>/dev/null
	gen --image "$IMG" --prompt "What is this?" --greedy --max-tokens 12 --json \
		>"$TMP/geni.json" 2>"$TMP/erri"
	[ "$(jfield "$TMP/runi.json" ids)" = "$(jfield "$TMP/geni.json" ids)" ] &&
		[ "$(jfield "$TMP/runi.json" text)" = "$(jfield "$TMP/geni.json" text)" ]
	res $? "image request: ids and text equal run --image's"
else
	echo "ok $((n + 1)) # SKIP no $IMG"
	n=$((n + 1))
fi

gen --prompt "x" --max-tokens 4 --image "$TMP/nonexistent.png" >/dev/null 2>"$TMP/err"
st=$?
[ $st = 1 ] && grep -q "nonexistent.png" "$TMP/err"
res $? "a missing image file: exit 1 naming it"

printf 'not an image' >"$TMP/bad.png"
gen --prompt "x" --max-tokens 4 --image "$TMP/bad.png" >/dev/null 2>"$TMP/err"
st=$?
[ $st = 1 ] && grep -q "image 1" "$TMP/err"
res $? "an undecodable image: the daemon's message, exit 1 ($(head -c 120 "$TMP/err"))"

timeout 10 "$QVLCTL" --socket "$SOCK" status >"$TMP/status" 2>&1
grep -q "^placement: compute: thread 0" "$TMP/status" && grep -q "poller: PU" "$TMP/status"
res $? "status prints the thread placement"

timeout 10 "$QVLCTL" stats --socket "$SOCK" >"$TMP/stats" 2>&1
grep -q "^generated_tokens: [1-9]" "$TMP/stats" && grep -q "^latency_p99_s: " "$TMP/stats" &&
	grep -q "^clients\[0\].requests: " "$TMP/stats"
res $? "stats: tokens, latency percentiles, per-client counts"

timeout 10 "$QVLCTL" --socket "$SOCK" stats --prometheus >"$TMP/prom" 2>&1
grep -q '^qvl_requests_total [1-9]' "$TMP/prom" &&
	grep -q '^qvl_requests_by_opcode_total{opcode="generate"} [1-9]' "$TMP/prom"
res $? "stats --prometheus: counters in the exposition format"

timeout 10 "$QVLCTL" --socket "$TMP/none.sock" status >/dev/null 2>"$TMP/err"
res $(( $? != 3 )) "no daemon on the socket: exit 3"

stop_qvld
res $(( QSTATUS != 0 )) "SIGTERM: qvld exits 0 (got $QSTATUS)"
san_clean
res $? "no sanitizer report in the daemon log"
[ $fail = 0 ] || sed 's/^/# /' "$LOG" | tail -20
exit $fail
