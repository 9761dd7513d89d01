# Helpers for the qvld end-to-end tests (sourced). Every wait is bounded;
# the daemon started here is always killed on exit (trap), and its log is
# checked for sanitizer reports after each test.
: "${QVLCTL:=./qvlctl}"
: "${QVLD:=${QVL_BUILDDIR:-.}/qvld}"
: "${QVL_SHARED:=../shared}"
MODEL=$QVL_TINY
[ -n "$MODEL" ] && [ -f "$MODEL/config.json" ] || MODEL=$QVL_SHARED/models/qvl-tiny
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvld-test.XXXXXX")
SOCK=$TMP/qvld.sock
LOG=$TMP/qvld.log
QPID=
n=0
fail=0

cleanup() {
	[ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null
	[ -n "$QPID" ] && wait "$QPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

res() { # res STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fail=1
	fi
}

need_model() {
	if [ ! -f "$MODEL/config.json" ]; then
		echo "1..0 # SKIP no tiny model"
		exit 0
	fi
}

# start_qvld [ARGS...]: foreground daemon on $SOCK, waits (bounded) until it
# answers status. Returns non-zero if it does not come up.
start_qvld() {
	"$QVLD" --foreground --model "$MODEL" --socket "$SOCK" --threads 2 --log-level 3 \
		"$@" >>"$LOG" 2>&1 &
	QPID=$!
	i=0
	while [ $i -lt 300 ]; do
		if timeout 5 "$QVLCTL" --socket "$SOCK" status >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$QPID" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# stop_qvld: SIGTERM and a bounded wait; the exit status is in $QSTATUS.
stop_qvld() { # SIGTERM, then SIGKILL after ${STOP_WAIT:-300} tenths of a second
	QSTATUS=
	[ -n "$QPID" ] || return 0
	kill -TERM "$QPID" 2>/dev/null
	i=0
	while kill -0 "$QPID" 2>/dev/null && [ $i -lt "${STOP_WAIT:-300}" ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$QPID" 2>/dev/null; then
		kill -9 "$QPID"
		QSTATUS=timeout
	fi
	wait "$QPID" 2>/dev/null
	st=$?
	[ "${QSTATUS:-}" = timeout ] || QSTATUS=$st
	QPID=
}

# no sanitizer report (ASan, UBSan, LSan) in the daemon's log
san_clean() {
	! grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$LOG"
}

gen() { # gen ARGS...: a bounded qvlctl generate
	timeout 60 "$QVLCTL" --socket "$SOCK" generate "$@"
}

# a field of a one-line JSON object from qvlctl ... --json (ids or text)
jfield() { # jfield FILE KEY
	"$PYTHON3" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$1" "$2"
}

# run_client PROG ARGS...: run a libqvl test program against the daemon
# started by start_qvld (QVL_SOCKET set, bounded by QVL_CLIENT_TIMEOUT
# seconds, default 120), stop the daemon and exit with the program's status,
# or 1 if the daemon did not exit cleanly or its log has a sanitizer report.
run_client() {
	QVL_SOCKET=$SOCK timeout "${QVL_CLIENT_TIMEOUT:-120}" "$@"
	cst=$?
	stop_clean || exit 1
	exit $cst
}

# stop_clean: stop_qvld; non-zero, with the log's tail as TAP comments,
# when the daemon did not exit cleanly or its log has a sanitizer report
stop_clean() {
	stop_qvld
	if ! san_clean || [ "$QSTATUS" != 0 ]; then
		echo "# qvld exit $QSTATUS or sanitizer report:"
		sed 's/^/# /' "$LOG" | tail -30
		return 1
	fi
}

# wait_log PATTERN: bounded wait (60 s) for a line of the daemon's log
wait_log() {
	i=0
	while ! grep -q "$1" "$LOG" && [ $i -lt 600 ]; do
		kill -0 "$QPID" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	grep -q "$1" "$LOG" || { echo "# too slow: no '$1' in qvld's log after 60 s"; return 1; }
}

# flip_byte PACK SHARD AT: flip a bit of the byte AT bytes into SHARD
flip_byte() {
	_off=$("$QVLCTL" verify "$1" --shards 2>/dev/null |
		sed -n "s/^shard $2 offset \([0-9]*\) .*/\1/p")
	_b=$(dd if="$1" bs=1 skip=$((_off + $3)) count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "$(printf '\\%03o' $((_b ^ 64)))" |
		dd of="$1" bs=1 seek=$((_off + $3)) count=1 conv=notrunc 2>/dev/null
}
