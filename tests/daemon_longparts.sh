#!/bin/sh
# One long part per scheduler step (issue 18, pace.h): while a long prompt's
# prefill is cut by layers and an image's encode by tower blocks at the same
# time, a step carries a split part or an encode part, never both (both
# would take two shares of the --prefill-step-pct bound); they take turns.
# With --prefill-step-pct 1 every part is one layer or one block, so the
# split's 4 layers per chunk and the encode's 3 x 4 blocks overlap for
# many steps on any machine. Each part's debug line names its step (the
# scheduler's tick), so a step is known whether or not it had a forward.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..3"
IMG=$QVL_SHARED/golden/vision/grad_64x64.png
COMMON="--precision exact --kv-type f32 --ctx 4096 --kv-mem 64M --vision-cache 0 --prefix-cache false"

start_qvld $COMMON --prefill-step-pct 1
res $? "qvld starts"
long=$(i=0; while [ $i -lt 700 ]; do printf 'tree '; i=$((i + 1)); done)
"$QVLCTL" --socket "$SOCK" generate --prompt "count" --greedy --ignore-eos --max-tokens 400 \
	--no-stream >/dev/null 2>"$TMP/e1" &
p1=$!
sleep 0.3
"$QVLCTL" --socket "$SOCK" generate --prompt "Compare." --image "$IMG" --image "$IMG" \
	--image "$IMG" --greedy --max-tokens 2 --no-stream >/dev/null 2>"$TMP/e2" &
p2=$!
"$QVLCTL" --socket "$SOCK" generate --prompt "$long" --greedy --max-tokens 2 --no-stream \
	>/dev/null 2>"$TMP/e3" &
p3=$!
st=0
for p in $p1 $p2 $p3; do wait $p || st=1; done
res $st "a decode, an image request and a long prompt at once all end ($(cat "$TMP/e1" "$TMP/e2" "$TMP/e3" | head -c 300))"

# every part names its scheduler step: no step number has both kinds
awk '/ debug: (split|encode) in step [0-9]+:/ {
		kind = ($0 ~ / debug: split /) ? "s" : "e"
		match($0, /in step [0-9]+:/); st = substr($0, RSTART + 8, RLENGTH - 9)
		if (kind == "s") nsplit++; else nenc++
		if (seen[st] != "" && seen[st] != kind) both++
		seen[st] = kind
		if (prev == "s" && kind == "e" && st != prev_st) turns++
		prev = kind; prev_st = st }
	END { printf "%d %d %d %d\n", both + 0, nsplit + 0, nenc + 0, turns + 0 }' \
	"$LOG" >"$TMP/count"
read -r both split enc turns <"$TMP/count"
[ "$both" = 0 ] && [ "$split" -ge 4 ] && [ "$enc" -ge 4 ] && [ "$turns" -ge 1 ]
res $? "no step carried both a split part and an encode part ($both did; $split split and $enc encode parts, $turns turns from split to encode)"
stop_clean
exit $fail
