#!/bin/sh
# qvld under faults, every wait bounded: a second daemon on the same socket
# refuses; clients killed with SIGKILL mid-stream have their requests
# cancelled and their memory reclaimed (the daemon's fd and memfd counts
# return to where they were); SIGTERM lets requests in flight complete;
# SIGHUP reopens the log; SIGKILL of the daemon gives its clients an error,
# not a hang; the stale socket it leaves is replaced; qvlctl shutdown drains.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..13"
FLOG=$TMP/file.log

fds() { ls "/proc/$QPID/fd" 2>/dev/null | wc -l; }
memfds() { grep -c "memfd:" "/proc/$QPID/maps" 2>/dev/null; }
# wait_for CMD...: retry a condition for up to 10 s
wait_for() {
	i=0
	while [ $i -lt 100 ]; do
		"$@" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# stats_has PATTERN: a line of the daemon's stats matches (bounded)
stats_has() { timeout 5 "$QVLCTL" --socket "$SOCK" stats | grep -q "$1"; }
# a streaming client that has produced output. Not under timeout(1): the
# kill must reach qvlctl itself (it exits on its own when the daemon goes).
# 4000 tokens, seconds at any speed (each is killed long before its end):
# the 400 it was are 0.25 s on our quiet machine, and a client must still
# stream when this script, polling at 0.1 s, gets to kill it
stream_client() { # stream_client OUTFILE
	"$QVLCTL" --socket "$SOCK" generate --prompt "Count slowly." --max-tokens 4000 --ignore-eos --greedy --stream >"$1" 2>&1 &
	CPID=$!
	wait_for test -s "$1"
}

start_qvld --log-file "$FLOG"
res $? "qvld starts"

"$QVLD" --foreground --model "$MODEL" --socket "$SOCK" >"$TMP/second.out" 2>&1 &
p2=$!
wait_for sh -c "! kill -0 $p2 2>/dev/null"
wait "$p2"
st=$?
[ $st = 1 ] && grep -q "another qvld (pid $QPID)" "$TMP/second.out"
res $? "a second daemon on the same socket refuses (exit $st)"

gen --prompt "warm up" --max-tokens 4 >/dev/null 2>&1
# the daemon maps memfds only for clients, and frees a client when its last
# request lets go, after the disconnect: wait until none is left (the warm-up
# and start_qvld's status probes) so the base counts no client
no_client() { [ "$(memfds)" = 0 ]; }
wait_for no_client
base_fd=$(fds)
base_mem=$(memfds)
# the inode of a client's memfd, as the client maps it (the daemon maps the
# same file): a count alone could see another client's memory come and go
client_ino() { awk '/memfd:qvl-client/ { print $5; exit }' "/proc/$1/maps" 2>/dev/null; }
daemon_maps() { awk -v i="$1" '$5 == i && /memfd:/ { f = 1 } END { exit !f }' "/proc/$QPID/maps"; }
has_memfd() { [ -n "$(client_ino "$1")" ]; }
unmapped() { ! daemon_maps "$1"; }
ok=0
seen=0
inos=
for k in 1 2 3 4 5; do
	stream_client "$TMP/k$k.out" || ok=1
	# the measure sees a live client's memory (else "returns" proves nothing)
	ino=$(client_ino "$CPID")
	[ -n "$ino" ] && daemon_maps "$ino" && seen=$((seen + 1)) && inos="$inos $ino"
	kill -9 "$CPID" 2>/dev/null
	wait "$CPID" 2>/dev/null
done
[ $seen = 5 ] || ok=1
res $ok "5 clients killed with SIGKILL mid-stream (their memfd was mapped in the daemon: $seen/5)"
gone() {
	[ "$(fds)" -le "$base_fd" ] && [ "$(memfds)" -le "$base_mem" ] || return 1
	for i in $inos; do daemon_maps "$i" && return 1; done
	return 0
}
wait_for gone
res $? "their memory is reclaimed: fds $(fds) (were $base_fd), memfd maps $(memfds) (were $base_mem)"
gen --prompt "still there?" --max-tokens 4 >/dev/null 2>&1
res $? "the daemon still serves after the killed clients"

mv "$FLOG" "$FLOG.1"
kill -HUP "$QPID"
wait_for test -s "$FLOG"
res $? "SIGHUP reopens the log file"

# SIGTERM with two requests in flight: both complete in full. Both must be
# running when the signal comes (a request submitted after it is refused),
# so they are long enough for the wait (polling at 0.1 s, a qvlctl each
# time) to see two active sequences on a machine several times as fast as
# ours: 1000 tokens, 0.6 s on our quiet machine (the 300 they were, 0.2 s).
# ASan on a loaded machine can make it 30x that, hence the long waits.
gen --prompt "one" --max-tokens 1000 --ignore-eos --greedy --json >"$TMP/t1.json" 2>&1 &
c1=$!
gen --prompt "two" --max-tokens 1000 --ignore-eos --greedy --json >"$TMP/t2.json" 2>&1 &
c2=$!
wait_for stats_has '^active_sequences: 2'
[ $? = 0 ] && both=yes || both=no
STOP_WAIT=1800 stop_qvld
wait "$c1"
s1=$?
wait "$c2"
s2=$?
[ $both = yes ] && [ $s1 = 0 ] && [ $s2 = 0 ] && grep -q '"n_gen":1000' "$TMP/t1.json" && grep -q '"n_gen":1000' "$TMP/t2.json"
res $? "SIGTERM drains: both requests in flight complete with 1000 tokens (both seen running: $both; exits $s1, $s2)"
[ $s1 = 0 ] || tail -c 300 "$TMP/t1.json" | sed "s/^/# /"
[ $s2 = 0 ] || tail -c 300 "$TMP/t2.json" | sed "s/^/# /"
res $(( QSTATUS != 0 )) "qvld exits 0 after the drain (got $QSTATUS)"
san_clean && ! grep -q "ERROR: AddressSanitizer\|runtime error:" "$FLOG" "$FLOG.1"
res $? "no sanitizer report in the logs so far"

# SIGKILL of the daemon: a streaming client gets an error, not a hang
start_qvld
stream_client "$TMP/d.out"
kill -9 "$QPID"
wait "$QPID" 2>/dev/null
QPID=
wait "$CPID"
st=$?
[ $st = 3 ]
res $? "daemon killed: the client exits 3 (got $st: $(tail -n1 "$TMP/d.out"))"

start_qvld --max-seqs 1 && grep -q "replaced a stale socket" "$LOG"
res $? "the stale socket is detected and replaced"

# one slot: a client whose request waits in the queue dies; its memory is
# reclaimed at once, while the running request goes on
stream_client "$TMP/a.out"
APID=$CPID
"$QVLCTL" --socket "$SOCK" generate --prompt "queued" --max-tokens 8 >/dev/null 2>&1 &
BPID=$!
wait_for stats_has '^queued: 1'
[ $? = 0 ] && queued=yes || queued=no
wait_for has_memfd "$BPID"
ino_b=$(client_ino "$BPID")
[ -n "$ino_b" ] && daemon_maps "$ino_b"
mapped=$?
kill -9 "$BPID" 2>/dev/null
wait "$BPID" 2>/dev/null
wait_for unmapped "$ino_b"
r=$?
kill -0 "$APID" 2>/dev/null
alive=$?
[ $queued = yes ]
res $(($? + mapped + r + alive)) "a queued client killed: its memory is reclaimed while another request runs (queued: $queued; mapped $mapped, reclaimed $r, the other alive $alive)"
[ $alive = 0 ] || tail -c 300 "$TMP/a.out" | sed "s/^/# /"
kill -9 "$APID" 2>/dev/null
wait "$APID" 2>/dev/null

timeout 60 "$QVLCTL" --socket "$SOCK" shutdown
st=$?
wait_for sh -c "! kill -0 $QPID 2>/dev/null"
wait "$QPID"
qs=$?
QPID=
[ $st = 0 ] && [ $qs = 0 ] && [ ! -e "$SOCK" ]
res $? "qvlctl shutdown: the daemon drains and exits 0, the socket is gone ($st, $qs)"
[ $fail = 0 ] || { sed 's/^/# /' "$LOG" | tail -20; sed 's/^/# /' "$FLOG.1" | tail -20; }
exit $fail
