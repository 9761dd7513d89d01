#!/bin/sh
# The developer knobs (src/env.h): a value they cannot use is one line on
# standard error naming the variable and the value, once however often the
# knob is read, and the command goes on with the default; good values are
# silent. Before, every one of these fell back without a word, and
# QVL_LOAD_TRACE=0 switched the trace on.
. "${QVL_SRCDIR:-.}/tests/cli_lib.sh"
# knob VAR=VALUE DESCRIPTION ARGS...: the run succeeds with exactly one
# warning line for VAR and VALUE
knob() {
	kv=$1 desc=$2
	shift 2
	env "$kv" "$QVLCTL" "$@" >"$TMP/out" 2>"$TMP/err"
	st=$?
	var=${kv%%=*} val=${kv#*=}
	nw=$(grep -cF "qvl: $var='$val' ignored: expected" "$TMP/err")
	res "$([ $st = 0 ] && [ "$nw" = 1 ] && echo 0)" "$kv: $desc ($nw warnings)"
}
R="run --model $MODEL --tokens 1,2,3 --max-tokens 2 --quiet"
knob QVL_PROFILE=abc "not a row count" $R
knob QVL_PROFILE=5000 "above 4096 rows" $R
knob QVL_REPACK=yes "read per matrix, warned once" $R
knob QVL_POOL_VERBOSE=2 "a flag is 0 or 1" $R
knob QVL_GEMM_SMALL_M=-1 "negative" $R
knob QVL_QDECODE_STREAMS=5 "above 4 streams" $R
knob QVL_QDECODE_PF=2k "not a byte count" $R
knob QVL_BF16P_PF=2000000 "above 1 MiB" $R
knob QVL_VIS_MC=5x "trailing garbage" embed-image --model "$MODEL" \
	--image "$G/grad_64x64.png" -o "$TMP/a.f32"
env QVL_PROFILE=abc $QVLCTL $R >/dev/null 2>"$TMP/err"
res "$(has "$TMP/err" "qvl: QVL_PROFILE='abc' ignored: expected an integer in [0, 4096]" &&
	echo 0)" "the warning says what is expected"

# good values: no warning
env QVL_PROFILE=0 QVL_REPACK=0 QVL_POOL_VERBOSE=0 QVL_GEMM_SMALL_M=8 QVL_QDECODE_STREAMS=4 \
	QVL_QDECODE_PF=2048 QVL_BF16P_PF=0 $QVLCTL $R \
	>/dev/null 2>"$TMP/err"
res "$([ $? = 0 ] && ! grep -q "ignored" "$TMP/err" && echo 0)" "good values are silent"

# the pack reader's knobs
P=$TMP/m.qvl
if "$QVLCTL" pack "$MODEL" -o "$P" --quiet >/dev/null 2>&1; then
	RP="run --model $P --tokens 1,2,3 --max-tokens 1 --quiet"
	knob QVL_IO_QD=0 "below 1" $RP
	knob QVL_IO_FILL=on "a flag is 0 or 1" $RP
	knob QVL_LOAD_TRACE=yes "a flag is 0 or 1" $RP
	env QVL_LOAD_TRACE=0 $QVLCTL $RP >/dev/null 2>"$TMP/err"
	res "$([ $? = 0 ] && ! grep -q "I/O threads" "$TMP/err" && echo 0)" \
		"QVL_LOAD_TRACE=0: no trace"
	env QVL_LOAD_TRACE=1 $QVLCTL $RP >/dev/null 2>"$TMP/err"
	res "$([ $? = 0 ] && grep -q "I/O threads" "$TMP/err" && echo 0)" "QVL_LOAD_TRACE=1: the trace"
else
	for i in 1 2 3 4 5; do skip "qvlctl pack failed"; done
fi
finish
