#!/bin/sh
# qvld's compute threads stay within the CPUs it may run on: under
# taskset -c C (one CPU), --threads 4 starts one thread with one warning
# naming both numbers (four threads on one CPU would take turns, and every
# pass's spinning barrier would wait for a descheduled one), and the
# default (one per physical core with an allowed CPU) is one thread too.
# qvlctl's own clamp: tests/cli_failfast.sh.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
command -v taskset >/dev/null 2>&1 || { echo "1..0 # SKIP no taskset (util-linux)"; exit 0; }
# the first CPU this test may use (make check may itself run under taskset)
CPU=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*\([0-9]*\).*/\1/p' /proc/self/status)
taskset -c "$CPU" true 2>/dev/null || { echo "1..0 # SKIP taskset -c $CPU fails here"; exit 0; }

# start_pinned ARGS...: start_qvld's bounded start, under taskset -c $CPU
# and without its --threads 2
start_pinned() {
	taskset -c "$CPU" "$QVLD" --foreground --model "$MODEL" --socket "$SOCK" --log-level 3 \
		"$@" >>"$LOG" 2>&1 &
	QPID=$!
	i=0
	while [ $i -lt 300 ]; do
		timeout 5 "$QVLCTL" --socket "$SOCK" status >"$TMP/status" 2>/dev/null && return 0
		kill -0 "$QPID" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
threads() { sed -n 's/^threads: //p' "$TMP/status"; }
warnings() { grep -c "warning: threads" "$LOG"; }

echo "1..5"
start_pinned --threads 4
res $? "taskset -c $CPU qvld --threads 4 starts"
[ "$(threads)" = 1 ]
res $? "--threads 4 on one CPU: 1 compute thread (status: threads $(threads))"
[ "$(warnings)" = 1 ] &&
	grep -q "warning: threads 4 is more than the 1 CPU this process may run on: using 1" "$LOG"
res $? "one warning naming 4 and 1 ($(grep "warning: threads" "$LOG" | head -2 | tr '\n' ' '))"
stop_clean || fail=1
: >"$LOG"

start_pinned
st=$?
[ $st = 0 ] && [ "$(threads)" = 1 ] && [ "$(warnings)" = 0 ]
res $? "taskset -c $CPU qvld (default threads): 1 compute thread, no warning (status: threads $(threads))"
stop_clean
res $? "qvld stops cleanly"
exit $fail
