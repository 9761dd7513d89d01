#!/bin/sh
# Runs tests/daemon_sched (cancellation mid-prefill and mid-decode, a full
# queue answered with -EBUSY then recovery, a killed client's sequences and
# pages reclaimed within a second) against a daemon started here.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
start_qvld --max-seqs 4 --max-queue 6 --prefill-chunk 32 --ctx 4096 ||
	{ echo "1..1"; echo "not ok 1 - qvld did not start"; sed 's/^/# /' "$LOG"; exit 1; }
QVL_SOCKET=$SOCK timeout 120 "${QVL_BUILDDIR:-.}/tests/daemon_sched"
st=$?
stop_qvld
if ! san_clean || [ "$QSTATUS" != 0 ]; then
	echo "# qvld exit $QSTATUS or sanitizer report:"
	sed 's/^/# /' "$LOG" | tail -30
	exit 1
fi
exit $st
