#!/bin/sh
# Runs tests/qvld_ring (libqvl against a live qvld) with a daemon started
# here and killed at the end; the daemon's log is checked for sanitizer
# reports.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
start_qvld --max-seqs 4 || { echo "1..1"; echo "not ok 1 - qvld did not start"; sed 's/^/# /' "$LOG"; exit 1; }
run_client "${QVL_BUILDDIR:-.}/tests/qvld_ring"
