#!/bin/sh
# qvld reads a pack's vision tower after its socket is up (src/pack_late.c):
# with that read held back (QVL_LATE_HOLD, the test hook), a text request is
# served and equals the in-process run; an image request waits (it is still
# running once the text request is done) and, the hold released, its ids
# equal the in-process run's (everything read before use); qvld logs the
# read's end. A byte flipped in a vision shard: qvld starts and serves text,
# the image request fails naming the shard, the log says so; with
# QVL_VISION_LATE=0 the same pack is refused at start-up, as before.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..15"
P=$TMP/tiny.qvl
IMG=$QVL_SHARED/golden/vision/grad_64x64.png
"$QVLCTL" pack "$MODEL" -o "$P" --quiet >/dev/null 2>&1
TXT="--prompt hello --greedy --ignore-eos --max-tokens 8 --print-ids"
IMA="--image $IMG --prompt what --greedy --ignore-eos --max-tokens 8 --print-ids"
# shellcheck disable=SC2086
timeout 120 "$QVLCTL" run --model "$P" --threads 2 --precision exact --quiet $TXT \
	>"$TMP/run.txt" 2>/dev/null
have_img=0
if [ -f "$IMG" ]; then
	# shellcheck disable=SC2086
	timeout 120 "$QVLCTL" run --model "$P" --threads 2 --precision exact --quiet $IMA \
		>"$TMP/run.img" 2>/dev/null && [ -s "$TMP/run.img" ] && have_img=1
fi
skip_img() { echo "ok $((n = n + 1)) # SKIP no golden image ($IMG): $1"; }
MODEL=$P
# the vision tower read behind a start that read the text model first
# (tests/stream_start.sh has the streamed start, which reads it after the
# text layers' fill)
export QVL_STREAM_START=0

: >"$TMP/hold"
export QVL_LATE_HOLD="$TMP/hold"
start_qvld --precision exact
st=$?
unset QVL_LATE_HOLD
grep -q "reading the vision tower ([0-9]* shards" "$LOG" && ! grep -q "vision tower read in" "$LOG"
res $(($? | st)) "qvld serves with its vision tower not read yet (held back)"
"$QVLCTL" --socket "$SOCK" status >"$TMP/status" 2>&1
grep -q "^vision.state: reading$" "$TMP/status"
res $? "qvlctl status: vision.state reading while held ($(grep '^vision' "$TMP/status" | tr '\n' ' '))"

# shellcheck disable=SC2086
gen $TXT >"$TMP/gen.txt" 2>"$TMP/err"
[ -s "$TMP/run.txt" ] && cmp -s "$TMP/run.txt" "$TMP/gen.txt" && ! grep -q "vision tower read in" "$LOG"
res $? "a text request while the vision tower is unread equals the in-process run ($(cat "$TMP/gen.txt"))"

if [ $have_img = 1 ]; then
	# shellcheck disable=SC2086
	timeout 120 "$QVLCTL" --socket "$SOCK" generate $IMA >"$TMP/gen.img" 2>"$TMP/erri" &
	ipid=$!
	# a second text request, served while the image request waits
	# shellcheck disable=SC2086
	gen $TXT >"$TMP/gen2.txt" 2>>"$TMP/err"
	cmp -s "$TMP/run.txt" "$TMP/gen2.txt" && kill -0 "$ipid" 2>/dev/null
	res $? "an image request waits for the held-back vision tower; text is served meanwhile"
	rm -f "$TMP/hold"
	wait "$ipid"
	st=$?
	[ $st = 0 ] && cmp -s "$TMP/run.img" "$TMP/gen.img"
	res $? "released: the image request completes, its ids equal the in-process run's (exit $st: $(cat "$TMP/gen.img") / $(cat "$TMP/run.img"))"
else
	rm -f "$TMP/hold"
	skip_img "an image request waits"
	skip_img "the image request's ids"
fi
wait_log "vision tower read in [0-9.]* s"
res $? "qvld logs the vision tower's read ($(grep -o 'vision tower read in.*' "$LOG"))"
"$QVLCTL" --socket "$SOCK" status --json >"$TMP/status" 2>&1
grep -q '"vision":{"state":"ready","late_shards":[1-9]' "$TMP/status"
res $? "qvlctl status --json: the vision tower ready, its late shards counted"

if [ $have_img = 1 ]; then
	# shellcheck disable=SC2086
	gen $IMA >"$TMP/gen2.img" 2>"$TMP/erri"
	cmp -s "$TMP/run.img" "$TMP/gen2.img"
	res $? "the same image request again equals the in-process run"
else
	skip_img "the image request again"
fi
stop_clean
res $? "qvld stops cleanly (no sanitizer report)"
: >"$LOG"

# a byte flipped in the vision tower's first block
flip_byte "$P" vision.block.0 3000
start_qvld --precision exact
st=$?
wait_log "vision tower: .*vision.block.0.*CRC-64 mismatch"
res $(($? | st)) "a corrupt vision shard: qvld starts, its log names the shard"
"$QVLCTL" --socket "$SOCK" status >"$TMP/status" 2>&1
grep -q "^vision.state: failed$" "$TMP/status" && grep -q "^vision.error: .*vision.block.0" "$TMP/status"
res $? "qvlctl status: vision.state failed, the error names the shard"
# shellcheck disable=SC2086
gen $TXT >"$TMP/gen3.txt" 2>"$TMP/err"
cmp -s "$TMP/run.txt" "$TMP/gen3.txt"
res $? "and serves text requests as before"
if [ $have_img = 1 ]; then
	# shellcheck disable=SC2086
	gen $IMA >/dev/null 2>"$TMP/erri"
	st=$?
	[ $st != 0 ] && grep -q "vision.block.0" "$TMP/erri"
	res $? "an image request fails naming the shard (exit $st: $(head -c 200 "$TMP/erri"))"
else
	skip_img "an image request fails"
fi
stop_clean
res $? "qvld stops cleanly"
: >"$LOG"
export QVL_VISION_LATE=0
start_qvld --precision exact
st=$?
unset QVL_VISION_LATE
stop_qvld
[ $st != 0 ] && grep -q "vision.block.0.*CRC-64 mismatch" "$LOG"
res $? "QVL_VISION_LATE=0: the same pack is refused at start-up (exit $st)"
exit $fail
