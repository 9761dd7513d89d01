#!/bin/sh
# An image's encode never stalls the others' decodes (issue 18;
# tests/daemon_visstep.c). With --prefill-step-pct 1 every step runs one
# tower block (or one layer of a long prefill) beside the decodes, so the
# count is the same on any machine: the decode streams a token per step
# through the 3 images x 4 blocks of the tiny tower and the 4 layers of the
# prompt's prefill. With --prefill-step-pct 0 (the old way, the encode
# inside the admission) it streams none during the encode: the gap bound
# below fails there, which the second daemon checks. The gap is counted
# from a NOP behind the image request (daemon_visstep.c), so a client that
# reads late does not inflate it. Ids are those of the
# requests alone, and equal across the two daemons. Cancel and SIGKILL
# during an encode (held there by QVL_ENCODE_HOLD, so they land mid-encode
# however late this client is) free the sequences and KV pages (ASan: the
# log is clean). Exact precision and an f32 KV cache: batched and alone agree bit
# for bit; no image or prefix cache, so every run encodes.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..8"
D=${QVL_BUILDDIR:-.}/tests/daemon_visstep
COMMON="--precision exact --kv-type f32 --ctx 2048 --kv-mem 64M --vision-cache 0 --prefix-cache false"
# decode tokens the old way streams between the image's submission and its
# first token: at most ~2 around the admission + 4 layer steps; the cut
# encode adds one per block (12)
GAP=10
# the test hook the client writes to hold the encode (daemon_visstep.c)
export QVL_ENCODE_HOLD="$TMP/encode_hold"

run_set() { # run_set NAME CLIENT-ARGS -- QVLD-ARGS...
	name=$1
	cargs=$2
	shift 3
	start_qvld $COMMON "$@" || { echo "# qvld $* did not start"; return 1; }
	QVL_SOCKET=$SOCK timeout 300 "$D" $cargs >"$TMP/$name" 2>"$TMP/$name.err"
	rst=$?
	san_clean || { echo "# sanitizer report in the log"; rst=1; }
	stop_clean || return 1
	: >"$LOG"
	return $rst
}
get() { sed -n "s/^$2 //p" "$TMP/$1"; }

run_set cut "" -- --prefill-step-pct 1
res $? "cut encode: every request ends as it should ($(head -c 200 "$TMP/cut.err"))"
sed 's/^/# /' "$TMP/cut"
[ -n "$(get cut alone_dec)" ] && [ "$(get cut alone_dec)" = "$(get cut beside_dec)" ] &&
	[ -n "$(get cut alone_img)" ] && [ "$(get cut alone_img)" = "$(get cut beside_img)" ]
res $? "the decode's and the image request's ids beside each other equal theirs alone"
g=$(get cut gap)
[ -n "$g" ] && [ "$g" -ge $GAP ]
res $? "the decode streamed $g tokens between the image's hand-off and its first (>= $GAP)"
# the encode is held after 3 of its 12 parts (QVL_ENCODE_HOLD) until the
# cancel or the kill has been dealt with: exactly 3 ran, on any machine
set -- $(get cut cancel)
[ "${1:-0}" = 3 ] && [ "${2:-1}" = 0 ] && [ "$3" = cancelled ]
res $? "cancelled during its encode ($1 of 12 block parts ran, held at 3): ends ${3:-?} with no token"
k=$(get cut kill)
[ "${k:-0}" = 3 ] && [ "$(get cut idle)" = "0 0" ]
res $? "a client killed during its encode ($k parts ran, held at 3): no sequence or KV page left ($(get cut idle))"

run_set old --encode-at-admission -- --prefill-step-pct 0
res $? "--prefill-step-pct 0 (encode at admission): every request ends ($(head -c 200 "$TMP/old.err"))"
sed 's/^/# /' "$TMP/old"
[ "$(get old alone_img)" = "$(get cut alone_img)" ] && [ "$(get old beside_dec)" = "$(get cut alone_dec)" ] &&
	[ "$(get old beside_img)" = "$(get cut alone_img)" ]
res $? "the same ids with the encode at admission"
go=$(get old gap)
[ "$(get old parts)" = 0 ] && [ -n "$go" ] && [ "$go" -lt $GAP ]
res $? "with the encode at admission: no encode part, a gap of $go tokens (< $GAP: the bound catches the stall)"
exit $fail
