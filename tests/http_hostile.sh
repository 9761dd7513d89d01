#!/bin/sh
# Hostile HTTP against qvl-http (tests/http_hostile.py): malformed JSON, huge
# bodies, a slow client, half-closed connections, a client that resets
# mid-stream (cancelled in the daemon), QVL_HTTP_CONNS connections at once
# (default 1000) while qvld serves a ring client, the in-flight limit (429),
# and the daemon going away (503) and coming back. Loopback only, bounded.
. "$QVL_SRCDIR/tests/qvld_lib.sh"
. "$QVL_SRCDIR/tests/http_lib.sh"
need_model
need_http
[ -n "${PYTHON3:-}" ] || { echo "1..0 # SKIP python3 not found"; exit 0; }
command -v curl >/dev/null || { echo "1..0 # SKIP curl not found"; exit 0; }
printf '[qvld]\nmax_inflight = 4\n' >"$TMP/qvl.conf"
start_qvld --config "$TMP/qvl.conf" || { echo "1..0 # SKIP qvld did not start"; exit 0; }
if ! start_http --max-body 1M; then
	echo "1..1"
	echo "not ok 1 - qvl-http starts"
	sed 's/^/# /' "$HLOG"
	exit 1
fi
port=${BASE##*:}
timeout 170 "$PYTHON3" "$QVL_SRCDIR/tests/http_hostile.py" 127.0.0.1 "$port" "$QVLCTL" "$SOCK" \
	"${QVL_HTTP_CONNS:-1000}" >"$TMP/py.out" 2>&1
st=$?
awk '/^(not )?ok - / { n++; sub(/ - /, " " n " - "); print; next } { print "# " $0 }' \
	"$TMP/py.out" >"$TMP/tap"
m=$(grep -c '^\(not \)\?ok ' "$TMP/tap")
echo "1..$((m + 15))"
cat "$TMP/tap"
n=$m
res "$st" "the hostile client ran to the end (status $st)"

# a client that leaves a non-streamed request: once qvld runs it, the curl
# is killed (its socket closes); the bridge notices the hang-up of the
# suspended connection and qvld logs the request as cancelled (stop 4),
# long before max_tokens or the context would end it
ncancel() { grep -c 'generated tokens, stop 4,' "$LOG"; }
active() { curl -s -m 5 "$BASE/health" | sed -n 's/.*"active_sequences":\([0-9]*\).*/\1/p'; }
c0=$(ncancel)
curl -s -m 120 -o /dev/null -d '{"messages":[{"role":"user","content":"Count to a million."}],
	"max_tokens":100000,"ignore_eos":true,"temperature":0}' "$BASE/v1/chat/completions" &
cpid=$!
i=0
while [ "$(active)" != 1 ] && [ $i -lt 200 ]; do # bounded: ~10 s and more under load
	sleep 0.05
	i=$((i + 1))
done
running=$(active)
kill "$cpid" 2>/dev/null
wait "$cpid" 2>/dev/null
t0=$(date +%s%N)
i=0
while [ "$(ncancel)" -le "$c0" ] && [ $i -lt 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
ms=$((($(date +%s%N) - t0) / 1000000))
hup=$(curl -s -m 5 "$BASE/metrics" | sed -n 's/^qvl_http_hangups_total //p')
[ "$running" = 1 ] && [ "$(ncancel)" -gt "$c0" ] && [ "${hup:-0}" -ge 1 ] && [ $ms -le 5000 ]
res $? "a client leaving a non-streamed request: cancelled in qvld ${ms} ms after it left (running: ${running:-?}, hang-ups ${hup:-none})"

# usage errors exit 2 naming the option; an address it cannot bind exits 1
"$QVL_HTTP" --listen nope >"$TMP/o" 2>&1
[ $? = 2 ] && grep -q -- "--listen: invalid value 'nope'" "$TMP/o"
res $? "--listen nope: exit 2 naming the option"
"$QVL_HTTP" --max-body 2G >"$TMP/o" 2>&1
[ $? = 2 ] && grep -q -- "--max-body" "$TMP/o"
res $? "--max-body 2G: exit 2 naming the option"
# the sizes qvlctl and qvl.conf take (qvl_parse_size), messages included
"$QVL_HTTP" --max-body 1.5MiB --max-image 512k --help >"$TMP/o" 2>&1
res $? "--max-body 1.5MiB --max-image 512k accepted"
"$QVL_HTTP" --max-image 5x >"$TMP/o" 2>&1
[ $? = 2 ] && grep -q -- "--max-image: '5x': not a size (like 8G, 512M, 64K or bytes)" "$TMP/o"
res $? "--max-image 5x: exit 2, the size parser's message"
"$QVL_HTTP" --rt-priority 100 >"$TMP/o" 2>&1
[ $? = 2 ] && grep -q -- "--rt-priority: invalid value '100'" "$TMP/o"
res $? "--rt-priority 100: exit 2 naming the option"

# the relay threads run SCHED_FIFO 1 where allowed (root here, or
# RLIMIT_RTPRIO), else normally with a note; --rt-priority 0 never asks
classes() { ps -L -o cls= -p "$1" | sort -u | tr -d ' \n'; }
if [ "$(id -u)" = 0 ] || [ "$(ulimit -r 2>/dev/null || echo 0)" != 0 ]; then
	[ "$(classes "$HPID")" = FF ] && [ "$(ps -L -o rtprio= -p "$HPID" | sort -u | tr -d ' \n')" = 1 ]
	res $? "qvl-http's threads are SCHED_FIFO 1 (classes: $(classes "$HPID"))"
else
	[ "$(classes "$HPID")" = TS ] && grep -q "no real-time priority" "$HLOG"
	res $? "no right to real-time: normal scheduling and a note (classes: $(classes "$HPID"))"
fi
"$QVL_HTTP" --socket "$SOCK" --listen 127.0.0.1:0 --rt-priority 0 >"$TMP/o0" 2>&1 &
p0=$!
i=0
until grep -q "listening on" "$TMP/o0" || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
c0=$(classes $p0)
kill -TERM $p0 2>/dev/null
wait $p0 2>/dev/null
[ "$c0" = TS ] && ! grep -q "real-time" "$TMP/o0"
res $? "--rt-priority 0: normal scheduling, no note (classes: ${c0:-none})"

timeout 10 "$QVL_HTTP" --socket "$SOCK" --listen 192.0.2.1:0 >"$TMP/o" 2>&1
[ $? = 1 ] && grep -q "cannot listen there" "$TMP/o"
res $? "--listen on an address of another host: exit 1"

# the daemon goes away: 503; it comes back: served again
stop_qvld
code=$(curl -s -m 10 -o "$TMP/body" -w '%{http_code}' -d '{"messages":[{"role":"user","content":"x"}]}' \
	"$BASE/v1/chat/completions")
[ "$code" = 503 ] && grep -q '"error"' "$TMP/body"
res $? "qvld stopped: 503 with an error object (got $code)"
start_qvld --config "$TMP/qvl.conf"
i=0
until curl -s -m 5 -o /dev/null -w '%{http_code}' "$BASE/health" | grep -q 200; do
	i=$((i + 1))
	[ $i -lt 100 ] || break
	sleep 0.1
done
code=$(curl -s -m 30 -o "$TMP/body" -w '%{http_code}' \
	-d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}' "$BASE/v1/chat/completions")
[ "$code" = 200 ]
res $? "qvld restarted: qvl-http reconnects and serves (got $code)"
kill -0 "$HPID" 2>/dev/null
res $? "qvl-http is still running"
stop_http
[ "$HSTATUS" = 0 ]
res $? "qvl-http stops cleanly on SIGTERM (status $HSTATUS)"
http_san_clean && san_clean
res $? "no sanitizer report in qvl-http's or qvld's log"
exit $fail
