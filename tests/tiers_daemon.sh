#!/bin/sh
# qvld with the tiered pool on the tiny model packed: --cpu-mem streams
# every layer and a greedy generate equals the in-process run;
# `qvlctl tiers` shows the placement and the window (and --json); a byte
# flipped on disk in a streamed shard fails that request naming the shard,
# the daemon stays up and, repaired, the next request works; an injected
# failing read (qvl.conf's cpu_mem this time) fails one request and the next
# works; a bad budget stops qvld at startup naming the option.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..10"
P=$TMP/tiny.qvl
"$QVLCTL" pack "$MODEL" -o "$P" --quiet >/dev/null 2>&1
ARGS="--prompt hello --greedy --ignore-eos --max-tokens 12 --print-ids"
# shellcheck disable=SC2086
timeout 60 "$QVLCTL" run --model "$P" --threads 2 --precision exact --quiet $ARGS \
	>"$TMP/run.ids" 2>/dev/null
MODEL=$P
start_qvld --precision exact --cpu-mem 19800000
res $? "qvld --cpu-mem starts on the pack"

# shellcheck disable=SC2086
gen $ARGS >"$TMP/gen.ids" 2>"$TMP/err"
[ -s "$TMP/run.ids" ] && cmp -s "$TMP/run.ids" "$TMP/gen.ids"
res $? "a generate through the daemon equals the in-process run ($(cat "$TMP/gen.ids"))"

timeout 10 "$QVLCTL" --socket "$SOCK" tiers >"$TMP/tiers" 2>&1
grep -q "^layers_streamed: 4$" "$TMP/tiers" && grep -q "^placement.text.layer.3: ssd$" "$TMP/tiers" &&
	grep -q "^stream_rate_mbs: [1-9]" "$TMP/tiers" && grep -q "^buffers: 2$" "$TMP/tiers"
res $? "qvlctl tiers: placement, buffers, a measured stream rate"
timeout 10 "$QVLCTL" --socket "$SOCK" tiers --json >"$TMP/tiers.json" 2>&1
grep -q '^{"cpu_mem":19800000,.*"placement":{.*"text.layer.0":"ssd".*}}$' "$TMP/tiers.json"
res $? "qvlctl tiers --json: the tiers object alone"

# the offset of text.layer.2 from verify's shard list
off=$("$QVLCTL" verify "$P" --shards 2>/dev/null | sed -n 's/^shard text.layer.2 offset \([0-9]*\) .*/\1/p')
flip() { # flip a byte in the middle of text.layer.2
	b=$(dd if="$P" bs=1 skip=$((off + 5000)) count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 64)))" |
		dd of="$P" bs=1 seek=$((off + 5000)) count=1 conv=notrunc 2>/dev/null
}
flip
# shellcheck disable=SC2086
gen $ARGS >/dev/null 2>"$TMP/err"
st=$?
[ $st = 1 ] && grep -q "corrupt.*text.layer.2.*CRC-64 mismatch" "$TMP/err" &&
	grep -q "text.layer.2.*CRC-64 mismatch" "$LOG"
res $? "a corrupt streamed shard fails the request (exit $st), the client's error and the log name the shard"
flip
# shellcheck disable=SC2086
gen $ARGS >"$TMP/gen2.ids" 2>"$TMP/err"
cmp -s "$TMP/run.ids" "$TMP/gen2.ids" && kill -0 "$QPID"
res $? "repaired: the daemon is up and the next request gives the same ids"
stop_qvld
[ "$QSTATUS" = 0 ] && san_clean
res $? "clean exit, no sanitizer report (status $QSTATUS)"

# qvl.conf and an injected failing read: layer 1's 20th read falls in the
# second request (the window prefetches it once at start-up, each request
# reads it ~13 times)
printf '[qvld]\ncpu_mem = 19800000\n' >"$TMP/qvl.conf"
export QVL_TIER_FAULT=text.layer.1:20
start_qvld --precision exact --config "$TMP/qvl.conf"
res $? "qvld with cpu_mem in qvl.conf starts"
unset QVL_TIER_FAULT
fails=0 after=1 i=0
while [ $i -lt 4 ]; do
	# shellcheck disable=SC2086
	if gen $ARGS >"$TMP/g.ids" 2>"$TMP/err"; then
		[ $fails = 1 ] && [ $after = 1 ] && cmp -s "$TMP/run.ids" "$TMP/g.ids" && after=0
	else
		grep -q "Input/output error.*text.layer.1" "$TMP/err" && fails=$((fails + 1))
	fi
	i=$((i + 1))
done
[ $fails = 1 ] && [ $after = 0 ] && grep -q "text.layer.1.*Input/output error" "$LOG"
res $? "an injected read failure fails one request (its error and the log name the shard); the next works ($fails failed)"
stop_qvld

"$QVLD" --foreground --model "$P" --socket "$SOCK" --cpu-mem 12X >"$TMP/bad" 2>&1
st=$?
[ $st != 0 ] && grep -q "cpu" "$TMP/bad" && grep -q "'12X'" "$TMP/bad"
res $? "qvld --cpu-mem 12X: refused at startup naming the option and value (exit $st)"
exit $fail
