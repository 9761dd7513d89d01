#!/bin/sh
# Load: tests/daemon_load (32 client processes x 200 requests; set
# QVL_LOAD_REQS to change the 200) against a
# daemon started here; nothing lost or duplicated, per-client latency
# spread printed.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
start_qvld --max-seqs 16 ||
	{ echo "1..1"; echo "not ok 1 - qvld did not start"; sed 's/^/# /' "$LOG"; exit 1; }
QVL_CLIENT_TIMEOUT=300 run_client "${QVL_BUILDDIR:-.}/tests/daemon_load" 32 "${QVL_LOAD_REQS:-200}"
