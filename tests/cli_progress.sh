#!/bin/sh
# The progress line (issue 12): on a terminal, one updating line (\r, stage,
# done/total, rate, ETA) for the vision tower, long prefills, mkmodel and
# bench, erased when done; --quiet silences it; with stderr not a terminal
# nothing changes. The terminal is script(1)'s pseudo-terminal.
. "${QVL_SRCDIR:-.}/tests/cli_lib.sh"
CR=$(printf '\r')
i=0
while [ $i -lt 700 ]; do printf 'word '; i=$((i + 1)); done >"$TMP/long.txt"
RUN="run --model $MODEL --image $G/grad_64x64.png --prompt-file $TMP/long.txt --max-tokens 2 --greedy"
RUN_VIS="run --model $MODEL --image $G/grad_64x64.png --prompt Describe. --max-tokens 2 --greedy"

# not a terminal: no progress line, no carriage return
t_run $RUN_VIS
[ $st = 0 ] && ! has "$TMP/err" "ETA" && ! has "$TMP/err" "$CR"
res $? "stderr not a terminal: no progress line"
t_run bench --model "$MODEL" --prompt-tokens 8 --gen-tokens 2 --reps 1
[ $st = 0 ] && ! has "$TMP/err" "ETA" && ! has "$TMP/err" "$CR"
res $? "bench, stderr not a terminal: no progress line"

# tty tty_run OUTFILE ARGS...: qvlctl ARGS on a pseudo-terminal
tty_run() {
	out=$1
	shift
	script -qec "$QVLCTL $*" /dev/null >"$out" 2>&1 </dev/null
}
if ! command -v script >/dev/null || ! script -qec true /dev/null >/dev/null 2>&1; then
	for k in 1 2 3 4 5 6 7; do skip "no script(1) with -e (bsdutils)"; done
	finish
fi
case "$MODEL$G$TMP$QVLCTL" in *' '*)
	for k in 1 2 3 4 5 6 7; do skip "a path with a space"; done
	finish ;;
esac
# 700 words and one image: over 512 prompt rows, so the prefill runs in two slices
tty_run "$TMP/t1" $RUN
st=$?
[ $st = 0 ] && has "$TMP/t1" "qvlctl run: vision 0/64 tokens" && has "$TMP/t1" "ETA" &&
	grep -q "qvlctl run: prefill [0-9]*/[0-9]* tokens, [0-9.]* tokens/s, ETA" "$TMP/t1"
res $? "run on a terminal: vision and prefill progress (stage, done/total, rate, ETA)"
grep -q "$(printf '\r\033\\[K')" "$TMP/t1"
res $? "run on a terminal: the line is erased when the stage ends"
tty_run "$TMP/t2" $RUN --quiet
st=$?
[ $st = 0 ] && ! has "$TMP/t2" "ETA" && has "$TMP/t2" "generated 2 tokens"
res $? "run --quiet on a terminal: no progress line, the rest unchanged"
tty_run "$TMP/t3" embed-image --model "$MODEL" --image "$G/grad_64x64.png"
st=$?
[ $st = 0 ] && has "$TMP/t3" "qvlctl embed-image: vision" && has "$TMP/t3" "ETA"
res $? "embed-image on a terminal: vision tower progress"
tty_run "$TMP/t4" bench --model "$MODEL" --prompt-tokens 8 --gen-tokens 4 --reps 1
st=$?
[ $st = 0 ] && has "$TMP/t4" "qvlctl bench: rep 1/1 decode" && has "$TMP/t4" "ETA"
res $? "bench on a terminal: progress per repetition and stage"
tty_run "$TMP/t5" bench --model "$MODEL" --prompt-tokens 8 --gen-tokens 4 --reps 1 --quiet
st=$?
[ $st = 0 ] && ! has "$TMP/t5" "ETA"
res $? "bench --quiet on a terminal: no progress line"
tty_run "$TMP/t6" mkmodel --shape tiny -o "$TMP/mk"
st=$?
[ $st = 0 ] && has "$TMP/t6" "qvlctl mkmodel: model.safetensors" && has "$TMP/t6" "MB/s, ETA"
res $? "mkmodel on a terminal: progress of model.safetensors in MB"
finish
