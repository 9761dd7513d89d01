#!/bin/sh
# Load: tests/daemon_load (32 client processes x 50 requests here; set
# QVL_LOAD_REQS=200 or run `make bench` for the full 32 x 200) against a
# daemon started here; nothing lost or duplicated, per-client latency
# spread printed.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
start_qvld --max-seqs 16 ||
	{ echo "1..1"; echo "not ok 1 - qvld did not start"; sed 's/^/# /' "$LOG"; exit 1; }
QVL_SOCKET=$SOCK timeout 300 "${QVL_BUILDDIR:-.}/tests/daemon_load" 32 "${QVL_LOAD_REQS:-50}"
st=$?
stop_qvld
if ! san_clean || [ "$QSTATUS" != 0 ]; then
	echo "# qvld exit $QSTATUS or sanitizer report:"
	sed 's/^/# /' "$LOG" | tail -30
	exit 1
fi
exit $st
