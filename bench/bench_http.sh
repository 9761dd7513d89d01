#!/bin/sh
# qvl-http's overhead (issue 15): decode tokens/s of a streamed chat through
# HTTP (the client's clock, first to last content chunk) against `qvlctl
# generate` through the ring on the same daemon (its client clock), same
# prompt, greedy, EOS ignored, runs alternating; the figure is the median of
# each pair's ratio (HTTP run / the ring run just before it); target >= 0.97x.
# The bridge's own CPU time per token (its /metrics) is printed beside it:
# on a 2-core machine whatever it uses is taken from the daemon. And the
# time to first token the bridge adds (target < 1 ms), as qvl-http measures
# it and reports in the final chunk's "timings" (qvl_http_ttft_ms: body
# complete -> SQE published, plus first CQE -> first byte written); the
# client's TTFT minus the daemon's queue + prefill is printed beside it, an
# upper bound that also holds the daemon's wake-up and the client's own
# reading. Beside llama-server on the same GGUF when LLAMA_CPP_DIR (or
# /work/llama/build-native) has one and QVL_BENCH_GGUF names the GGUF.
#
# Model: QVL_BENCH_2B_DIR (default /work/m2b, the 2b shape from `qvlctl
# mkmodel --shape 2b`). QVL_BENCH_REPS (3) and QVL_BENCH_TOKENS (16) keep it
# near a minute on a shared 2-core machine; for the quiet measurement see
# docs/todo-http.md.
: "${QVLCTL:=./qvlctl}"
: "${QVL_BUILDDIR:=.}"
: "${QVL_SRCDIR:=.}"
QVLD=${QVLD:-$QVL_BUILDDIR/qvld}
HTTPD=${QVL_HTTP:-$QVL_BUILDDIR/qvl-http}
MODEL=${QVL_BENCH_2B_DIR:-/work/m2b}
REPS=${QVL_BENCH_REPS:-3}
NTOK=${QVL_BENCH_TOKENS:-16}
THREADS=${QVL_BENCH_THREADS:-}
PY=${PYTHON3:-python3}
PROMPT="Write a short story about a lighthouse keeper."
CLIENT=$QVL_SRCDIR/bench/bench_http_client.py

[ -x "$HTTPD" ] || { echo "bench_http: qvl-http not built (no libmicrohttpd): skipped"; exit 0; }
[ -f "$MODEL/config.json" ] || { echo "bench_http: no model at $MODEL (QVL_BENCH_2B_DIR): skipped"; exit 0; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-bench-http.XXXXXX")
SOCK=$TMP/qvld.sock
QPID= HPID= LPID=
trap 'for p in $QPID $HPID $LPID; do kill -9 $p 2>/dev/null; done; rm -rf "$TMP"' EXIT INT TERM

"$QVLD" --foreground --model "$MODEL" --socket "$SOCK" ${THREADS:+--threads "$THREADS"} --max-seqs 1 \
	>"$TMP/qvld.log" 2>&1 &
QPID=$!
. "$(dirname "$0")/qvld_wait.sh"
qvld_wait bench_http "$SOCK" "$QPID" "$TMP/qvld.log"
"$HTTPD" --socket "$SOCK" --listen 127.0.0.1:0 >"$TMP/http.log" 2>&1 &
HPID=$!
i=0
until port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$TMP/http.log") && [ -n "$port" ] &&
	grep -q "connected to qvld" "$TMP/http.log"; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "bench_http: qvl-http did not start" >&2; cat "$TMP/http.log" >&2; exit 1; }
	sleep 0.1
done
URL=http://127.0.0.1:$port

# one warm-up of each (page cache, first-touch), not counted
"$PY" "$CLIENT" "$URL" "$PROMPT" 2 >/dev/null || exit 1
# the bridge's own CPU seconds, from its /metrics
bridge_cpu() {
	curl -s -m 5 "$URL/metrics" | sed -n 's/^qvl_http_cpu_seconds_total //p'
}
for r in $(seq "$REPS"); do
	timeout 300 "$QVLCTL" --socket "$SOCK" generate --prompt "$PROMPT" --greedy --ignore-eos \
		--max-tokens "$NTOK" --stream --json >"$TMP/gen.$r" 2>/dev/null || exit 1
	bridge_cpu >"$TMP/cpu0.$r"
	timeout 300 "$PY" "$CLIENT" "$URL" "$PROMPT" "$NTOK" >"$TMP/http.$r" || exit 1
	bridge_cpu >"$TMP/cpu1.$r"
done

# llama-server beside it, when there is one and a GGUF of the same model
LDIR=${LLAMA_CPP_DIR:-/work/llama/build-native}
LS=
for c in "$LDIR/llama-server" "$LDIR/bin/llama-server"; do [ -x "$c" ] && LS=$c && break; done
GGUF=${QVL_BENCH_GGUF:-}
if [ -n "$LS" ] && [ -n "$GGUF" ] && [ -f "$GGUF" ]; then
	lport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"$LS" -m "$GGUF" --host 127.0.0.1 --port "$lport" ${THREADS:+-t "$THREADS"} -c 4096 -np 1 \
		>"$TMP/llama.log" 2>&1 &
	LPID=$!
	i=0
	until curl -s -m 2 "http://127.0.0.1:$lport/health" 2>/dev/null | grep -q ok; do
		i=$((i + 1))
		[ $i -lt 600 ] && kill -0 "$LPID" 2>/dev/null || { LS=; break; }
		sleep 0.2
	done
	if [ -n "$LS" ]; then
		"$PY" "$CLIENT" "http://127.0.0.1:$lport" "$PROMPT" 2 >/dev/null
		for r in $(seq "$REPS"); do
			timeout 300 "$PY" "$CLIENT" "http://127.0.0.1:$lport" "$PROMPT" "$NTOK" \
				>"$TMP/llama.$r" || LS=
		done
	fi
	kill -TERM "$LPID" 2>/dev/null
	wait "$LPID" 2>/dev/null
	LPID=
	[ -n "$LS" ] || echo "bench_http: llama-server did not serve: its column skipped"
elif [ -z "$LS" ]; then
	echo "bench_http: no llama-server in $LDIR (LLAMA_CPP_DIR): its column skipped"
else
	echo "bench_http: QVL_BENCH_GGUF names no GGUF of the same model: llama-server skipped"
	LS=
fi
kill -TERM "$HPID" "$QPID"
wait "$HPID" "$QPID" 2>/dev/null
HPID= QPID=

"$PY" - "$TMP" "$REPS" "$NTOK" "${LS:+yes}" <<'PYEOF'
import json, statistics, sys
tmp, reps, ntok, llama = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "yes"
def load(kind):
    return [json.load(open(f"{tmp}/{kind}.{r}")) for r in range(1, reps + 1)]
gen, http = load("gen"), load("http")
def med(v): return statistics.median(v)
def spread(v): return (max(v) - min(v)) / med(v) * 100 if med(v) else 0
g = [x["client_decode_tok_s"] for x in gen]
h = [x["decode_tok_s"] for x in http]
added = [x["bridge_ttft_ms"] for x in http]
outside = [(x["ttft_s"] - x["server_ttft_s"]) * 1e3 for x in http]
# Each HTTP run against the ring run just before it: the pairs share the
# machine's state of that minute, so their median ratio is steadier than the
# ratio of the two medians when the host's speed drifts between runs.
pairs = [b / a for a, b in zip(g, h) if a]
ratio = med(pairs) if pairs else 0
# What the bridge costs the CPU the daemon computes on: its own CPU time per
# streamed token against the daemon's time per token.
def cpu(r):
    try:
        return float(open(f"{tmp}/cpu1.{r}").read()) - float(open(f"{tmp}/cpu0.{r}").read())
    except (OSError, ValueError):
        return None
cpus = [(cpu(r), http[r - 1]) for r in range(1, reps + 1)]
per_tok = [c / max(x["completion_tokens"], 1) * 1e3 for c, x in cpus if c is not None]
share = med(per_tok) * med(h) / 1e3 * 100 if per_tok else None
print(json.dumps({"name": "http_decode_vs_ring", "value": round(ratio, 4), "unit": "x",
                  "bound": 0.97, "pair_ratios": [round(p, 4) for p in pairs],
                  "ratio_of_medians": round(med(h) / med(g), 4) if med(g) else 0,
                  "http_tok_s": round(med(h), 3), "ring_tok_s": round(med(g), 3),
                  "bridge_cpu_ms_per_token": round(med(per_tok), 4) if per_tok else None,
                  "tokens": int(ntok), "reps": reps}))
# The bridge's two halves and the reaper's wake-up (CQE posted -> seen),
# per sample, to tell which handoff an outlier waited in.
halves = {k: [x.get(f"bridge_{k}_ms") for x in http] for k in ("submit", "wake", "write")}
print(json.dumps({"name": "http_ttft_added", "value": round(med(added), 3), "unit": "ms",
                  "bound": 1.0, "samples_ms": [round(a, 3) for a in added],
                  **{f"{k}_ms": [None if v is None else round(v, 3) for v in vs]
                     for k, vs in halves.items()},
                  "client_ttft_minus_daemon_ms": round(med(outside), 3)}))
print(f"bench_http: decode through HTTP {med(h):.2f} tok/s (spread {spread(h):.0f}%) vs qvlctl generate "
      f"{med(g):.2f} tok/s (spread {spread(g):.0f}%): median of the {len(pairs)} run pairs' ratios "
      f"{ratio:.3f}x ({min(pairs):.3f}..{max(pairs):.3f}; target >= 0.97), ratio of medians "
      f"{med(h) / med(g):.3f}x; TTFT added by the bridge {med(added):.3f} ms (target < 1 ms; client TTFT "
      f"minus the daemon's queue + prefill {med(outside):.1f} ms); {ntok} tokens, {reps} alternating runs")
if share is not None:
    print(f"bench_http: the bridge's own CPU: {med(per_tok):.3f} ms per token, {share:.2f}% of a "
          f"decode step's time (an upper bound of what it can take from the daemon's threads)")
if llama:
    l = load("llama")
    lt = [x["decode_tok_s"] for x in l]
    lf = [x["ttft_s"] * 1e3 for x in l]
    qf = [x["ttft_s"] * 1e3 for x in http]
    # each server's own count (timings.predicted_per_second) beside the
    # client's clock: a server that holds chunks back and sends them in a
    # burst looks faster on the client's clock than it decodes
    def own(v): return [x["server_decode_tok_s"] for x in v if x.get("server_decode_tok_s")]
    lo, qo = own(l), own(http)
    print(json.dumps({"name": "http_decode_vs_llama_server", "value": round(med(h) / med(lt), 4),
                      "unit": "x", "qvl_tok_s": round(med(h), 3), "llama_server_tok_s": round(med(lt), 3),
                      "qvl_own_tok_s": round(med(qo), 3) if qo else None,
                      "llama_server_own_tok_s": round(med(lo), 3) if lo else None,
                      "llama_server_chunks": [x["content_chunks"] for x in l],
                      "llama_server_tokens": [x["completion_tokens"] for x in l],
                      "qvl_ttft_ms": round(med(qf), 2), "llama_server_ttft_ms": round(med(lf), 2)}))
    print(f"bench_http: llama-server {med(lt):.2f} tok/s (its own count "
          f"{med(lo) if lo else float('nan'):.2f}), TTFT {med(lf):.1f} ms; qvl-http {med(h):.2f} tok/s "
          f"(qvld's count {med(qo) if qo else float('nan'):.2f}), TTFT {med(qf):.1f} ms")
PYEOF
