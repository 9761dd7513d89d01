#!/bin/sh
# Runs tests/daemon_sched (cancellation mid-prefill and mid-decode, a full
# queue answered with -EBUSY then recovery, a killed client's sequences and
# pages reclaimed within a second) against a daemon started here.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
start_qvld --max-seqs 4 --max-queue 6 --prefill-chunk 32 --ctx 4096 ||
	{ echo "1..1"; echo "not ok 1 - qvld did not start"; sed 's/^/# /' "$LOG"; exit 1; }
run_client "${QVL_BUILDDIR:-.}/tests/daemon_sched"
