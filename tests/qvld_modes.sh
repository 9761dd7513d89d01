#!/bin/sh
# qvld's ways to start: without a model it refuses (exit 1); --demo writes
# the tiny model into the cache directory once and serves it (a second start
# reuses it); daemonized (no --foreground) the command returns 0 only once
# the daemon serves, a pid file holds its pid, and shutdown removes both.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
if [ -z "$QVL_TOKENIZER_DIR" ] || [ ! -d "$QVL_TOKENIZER_DIR" ]; then
	echo "1..0 # SKIP no tokenizer files for --demo (QVL_TOKENIZER_DIR)"
	exit 0
fi
echo "1..11"
CACHE=$TMP/cache

timeout 30 "$QVLD" --foreground --socket "$SOCK" >"$TMP/out" 2>&1
st=$?
[ $st = 1 ] && grep -q "no model: give --model" "$TMP/out"
res $? "no model and no --demo: exit 1 saying what to give ($st)"

for k in 1 2; do
	"$QVLD" --demo --foreground --cache-dir "$CACHE" --socket "$SOCK" >"$TMP/demo$k.log" 2>&1 &
	QPID=$!
	i=0
	until timeout 5 "$QVLCTL" --socket "$SOCK" status >/dev/null 2>&1 || [ $i -gt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	gen --prompt "hi" --max-tokens 3 --print-ids >"$TMP/ids$k" 2>/dev/null
	res $? "--demo start $k serves a generation"
	stop_qvld
done
[ -f "$CACHE/qvl-tiny/model.safetensors" ] && grep -q "writing the tiny test model" "$TMP/demo1.log" &&
	! grep -q "writing the tiny test model" "$TMP/demo2.log" && cmp -s "$TMP/ids1" "$TMP/ids2"
res $? "the demo model is written once and reused"

timeout 120 "$QVLD" --model "$MODEL" --socket "$SOCK" --threads 2 --log-file "$TMP/d.log"
st=$?
pid=$(cat "$TMP/qvld.pid" 2>/dev/null)
[ $st = 0 ] && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
	timeout 5 "$QVLCTL" --socket "$SOCK" status >/dev/null 2>&1
res $? "daemonized: exits 0 once serving, pid file beside the socket ($st, pid $pid)"
timeout 60 "$QVLCTL" --socket "$SOCK" shutdown
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
! kill -0 "$pid" 2>/dev/null && [ ! -e "$TMP/qvld.pid" ] && [ ! -e "$SOCK" ]
res $? "shutdown stops it and removes the pid file and the socket"

timeout 60 "$QVLD" --model "$TMP/no-such-model" --socket "$SOCK" >"$TMP/out" 2>&1
st=$?
[ $st = 1 ] && grep -q "no-such-model" "$TMP/out"
res $? "daemonized with a bad model: the parent exits 1 with the daemon's message ($st)"
# systemd readiness: READY=1 only once serving, STOPPING=1 when the drain starts
if [ -n "$PYTHON3" ]; then
	"$PYTHON3" - "$TMP/notify.sock" "$TMP/notify.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a") as f:
    try:
        while True:
            m = s.recv(4096).decode()
            f.write(m.replace("\n", " ") + "\n")
            f.flush()
            if "STOPPING=1" in m:
                break
    except socket.timeout:
        pass
PY
	LPID=$!
	i=0
	while [ ! -S "$TMP/notify.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	NOTIFY_SOCKET=$TMP/notify.sock "$QVLD" --foreground --model "$MODEL" --socket "$SOCK" \
		--threads 2 >"$TMP/n.log" 2>&1 &
	QPID=$!
	i=0
	until grep -q "READY=1" "$TMP/notify.txt" 2>/dev/null || [ $i -gt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q "READY=1" "$TMP/notify.txt" && grep -q "serving" "$TMP/n.log"
	res $? "NOTIFY_SOCKET: READY=1 sent, after the model is loaded and checked"
	stop_qvld
	wait "$LPID"
	grep -q "STOPPING=1" "$TMP/notify.txt" && [ "$QSTATUS" = 0 ]
	res $? "STOPPING=1 when the drain starts ($(tr '\n' '|' <"$TMP/notify.txt"))"
else
	echo "ok $((n + 1)) # SKIP python3 not found"
	echo "ok $((n + 2)) # SKIP python3 not found"
	n=$((n + 2))
fi

# placement: with one compute thread on a machine of 2+ cores the poller
# gets a core of its own
if [ "$(nproc)" -ge 2 ]; then
	start_qvld --threads 1 >/dev/null
	timeout 10 "$QVLCTL" --socket "$SOCK" status >"$TMP/st" 2>&1
	grep -q "^placement: compute: thread 0 -> PU [0-9]* (core 0, caller, not pinned); scheduler: PU [0-9]* (thread 0); poller: PU [0-9]* (core [0-9]* has no compute thread)" "$TMP/st"
	res $? "--threads 1: the poller goes to a core without compute ($(grep placement "$TMP/st"))"
	stop_qvld
else
	n=$((n + 1))
	echo "ok $n # SKIP one CPU"
fi

! grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$TMP"/*.log
res $? "no sanitizer report in the daemons' logs"
[ $fail = 0 ] || sed 's/^/# /' "$TMP/d.log" | tail
exit $fail
