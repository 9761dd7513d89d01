#!/bin/sh
# Runs tests/daemon_sched (cancellation mid-prefill and mid-decode, a full
# queue answered with -EBUSY then recovery, a killed client's sequences and
# pages reclaimed within a second) against a daemon started here, then its
# deadline part against one with --deadline-ms 300 --max-seqs 1 (two TAP
# streams of one test).
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
start_qvld --max-seqs 4 --max-queue 6 --prefill-chunk 32 --ctx 4096 ||
	{ echo "1..1"; echo "not ok 1 - qvld did not start"; sed 's/^/# /' "$LOG"; exit 1; }
QVL_SOCKET=$SOCK timeout 120 "${QVL_BUILDDIR:-.}/tests/daemon_sched" >"$TMP/part1"
st1=$?
stop_qvld
[ "$QSTATUS" = 0 ] && san_clean || st1=1
start_qvld --max-seqs 1 --deadline-ms 300 --ctx 4096 ||
	{ echo "1..1"; echo "not ok 1 - qvld --deadline-ms did not start"; exit 1; }
QVL_SOCKET=$SOCK timeout 60 "${QVL_BUILDDIR:-.}/tests/daemon_sched" deadline >"$TMP/part2"
st2=$?
# one TAP stream: renumber the second part after the first
n1=$(grep -c '^\(not \)\?ok ' "$TMP/part1")
n2=$(grep -c '^\(not \)\?ok ' "$TMP/part2")
echo "1..$((n1 + n2))"
grep -v '^1\.\.' "$TMP/part1"
grep -v '^1\.\.' "$TMP/part2" | awk -v o="$n1" '/^(not )?ok [0-9]+/ { match($0, /[0-9]+/); $0 = substr($0, 1, RSTART - 1) (substr($0, RSTART, RLENGTH) + o) substr($0, RSTART + RLENGTH) } { print }'
[ $st1 = 0 ] && [ $st2 = 0 ] || fail=1
stop_qvld
if ! san_clean || [ "$QSTATUS" != 0 ]; then
	echo "# qvld exit $QSTATUS or sanitizer report:"
	sed 's/^/# /' "$LOG" | tail -30
	exit 1
fi
exit $fail
