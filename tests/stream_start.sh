#!/bin/sh
# qvld's streamed start (the default; offload/fill.c) on the tiny
# model packed: every text layer is served from the streaming window until
# its resident copy is read behind the socket. With the fill held back
# (QVL_STREAM_HOLD, the test hook: the file holds how many layers may be
# filled) a request runs with every layer streamed, then with the first two
# resident and the others streamed, then (released) with every layer
# resident and the window gone; each equals the in-process run, bit for
# bit, and so does a long request that runs while the fill is released. A
# byte flipped in a layer's shard: the request fails naming the shard, the
# fill stops at it and qvld logs it; QVL_STREAM_START=0 refuses that pack
# at start-up as before. The token embeddings (and the tied head) are read
# behind the open too (offload/embed.c): with that read held back
# (QVL_EMBED_HOLD) the socket comes up and the first request waits for it,
# then gives the same ids; the fill sets up one io_uring reader for all the
# layers; a byte flipped in text.embed fails each request
# naming the shard while qvld keeps running. A q4_0 pack (layers the
# engine repacks at load) starts with everything resident.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..15"
P=$TMP/tiny.qvl
QVL_TINY_SRC=$MODEL
"$QVLCTL" pack "$MODEL" -o "$P" --quiet >/dev/null 2>&1
TXT="--prompt hello --greedy --ignore-eos --max-tokens 12 --print-ids"
LONG="--prompt hello --greedy --ignore-eos --max-tokens 120 --print-ids"
for a in TXT LONG; do
	eval "args=\$$a"
	# shellcheck disable=SC2086
	timeout 120 "$QVLCTL" run --model "$P" --threads 2 --precision exact --quiet $args \
		>"$TMP/run.$a" 2>/dev/null
done
MODEL=$P

tiers() { timeout 10 "$QVLCTL" --socket "$SOCK" tiers --json 2>/dev/null; }
wait_filled() { # wait_filled N: bounded wait until qvlctl tiers says N layers filled
	i=0
	while ! tiers | grep -q "\"layers_filled\":$1," && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	tiers | grep -q "\"layers_filled\":$1,"
}

echo 0 >"$TMP/hold"
: >"$TMP/ehold"
unset QVL_STREAM_START
export QVL_STREAM_HOLD="$TMP/hold" QVL_EMBED_HOLD="$TMP/ehold"
start_qvld --precision exact
st=$?
tiers >"$TMP/t0"
grep -q "streamed start: the text layers are served from the streaming window" "$LOG" &&
	grep -q '"layers_streamed":4,.*"resident_fill":"[a-z]*","layers_filled":0,' "$TMP/t0" &&
	grep -q '"embed_read":"reading"' "$TMP/t0"
res $(($? | st)) "qvld serves with every layer streamed, the fill and the embeddings held back"

# the first request waits for the embeddings' read
# shellcheck disable=SC2086
timeout 120 "$QVLCTL" --socket "$SOCK" generate $TXT >"$TMP/gen0" 2>"$TMP/err" &
gpid=$!
sleep 0.5
kill -0 "$gpid" 2>/dev/null && [ ! -s "$TMP/gen0" ]
wt=$?
rm -f "$TMP/ehold"
wait "$gpid"
gs=$?
[ $wt = 0 ] && [ $gs = 0 ] && tiers | grep -q '"embed_read":"done"'
res $? "a request sent before the embeddings are read waits for them (waited: $wt, exit $gs)"
[ -s "$TMP/run.TXT" ] && cmp -s "$TMP/run.TXT" "$TMP/gen0" &&
	tiers | grep -q '"layers_served":[1-9].*"layers_filled":0,'
res $? "every layer streamed: equals the in-process run ($(cat "$TMP/gen0"))"
unset QVL_EMBED_HOLD

echo 2 >"$TMP/hold"
wait_filled 2
st=$?
# shellcheck disable=SC2086
gen $TXT >"$TMP/gen2" 2>>"$TMP/err"
cmp -s "$TMP/run.TXT" "$TMP/gen2"
res $(($? | st)) "layers 0-1 resident, 2-3 streamed: the same ids"

# a long request, and the fill released while it runs
# shellcheck disable=SC2086
timeout 120 "$QVLCTL" --socket "$SOCK" generate $LONG >"$TMP/genL" 2>>"$TMP/err" &
lpid=$!
sleep 0.05
rm -f "$TMP/hold"
wait "$lpid"
st=$?
[ $st = 0 ] && cmp -s "$TMP/run.LONG" "$TMP/genL"
res $? "a 120-token request while the fill is released: the same ids (exit $st)"

wait_log "resident fill: 4 layers .* CRC checked"
res $? "qvld logs the fill's end ($(grep -o 'resident fill:.*' "$LOG"))"
# shellcheck disable=SC2086
gen $TXT >"$TMP/gen4" 2>>"$TMP/err"
cmp -s "$TMP/run.TXT" "$TMP/gen4" && tiers >"$TMP/t4" &&
	grep -q '"resident_fill":"done","layers_filled":4,' "$TMP/t4" &&
	grep -q '"fill_readers":1[,}]' "$TMP/t4"
res $? "every layer resident (the window dropped, one reader for the fill): the same ids"
wait_log "vision tower read in [0-9.]* s"
res $? "the vision tower is read after the text layers"
stop_clean
res $? "qvld stops cleanly (no sanitizer report)"
: >"$LOG"

bad_gen() { # bad_gen SHARD: a request fails naming SHARD's CRC mismatch (exit in gs)
	# shellcheck disable=SC2086
	gen $TXT >/dev/null 2>"$TMP/err"
	gs=$?
	[ $gs != 0 ] && grep -q "$1.*CRC-64 mismatch" "$TMP/err"
}

# a byte flipped in the token embeddings (read behind the open)
E=$TMP/tiny-e.qvl
cp "$P" "$E"
flip_byte "$E" text.embed 3000
MODEL=$E
start_qvld --precision exact
st=$?
bad_gen text.embed && [ $st = 0 ]
res $? "a corrupt text.embed: the request fails naming the shard (exit $gs: $(head -c 200 "$TMP/err"))"
bad_gen text.embed && kill -0 "$QPID" && tiers | grep -q '"embed_read":"failed"'
res $? "and the next one too; qvld is still serving (exit $gs)"
stop_clean
: >"$LOG"
MODEL=$P

# a byte flipped in the middle of text.layer.2
flip_byte "$P" text.layer.2 5000
unset QVL_STREAM_HOLD
start_qvld --precision exact
st=$?
bad_gen text.layer.2 && [ $st = 0 ]
res $? "a corrupt layer: the request fails naming the shard (exit $gs: $(head -c 200 "$TMP/err"))"
wait_log "resident fill stopped after 2 of 4 layers: .*text.layer.2.*CRC-64 mismatch"
res $? "the fill stops at it and qvld logs it"
stop_clean
: >"$LOG"
export QVL_STREAM_START=0
start_qvld --precision exact
st=$?
stop_qvld
[ $st != 0 ] && grep -q "text.layer.2.*CRC-64 mismatch" "$LOG"
res $? "QVL_STREAM_START=0: the same pack is refused at start-up (exit $st)"

# a pack whose layers the engine repacks at load (q4_0) starts as before
: >"$LOG"
Q=$TMP/tiny-q4.qvl
# (its error kept: once, under load, this pack was missing and why was lost)
"$QVLCTL" pack "$QVL_TINY_SRC" -o "$Q" --type q4_0 --quiet >/dev/null 2>"$TMP/packq.err" ||
	sed 's/^/# pack: /' "$TMP/packq.err"
# shellcheck disable=SC2086
timeout 120 "$QVLCTL" run --model "$Q" --threads 2 --precision exact --quiet $TXT \
	>"$TMP/runq" 2>/dev/null
export QVL_STREAM_START=1
MODEL=$Q
start_qvld --precision exact
st=$?
# shellcheck disable=SC2086
gen $TXT >"$TMP/genq" 2>"$TMP/err"
[ $st = 0 ] && [ -s "$TMP/runq" ] && cmp -s "$TMP/runq" "$TMP/genq" &&
	grep -q "streamed start: not for this model" "$LOG"
res $? "a q4_0 pack: read before the socket (the log says why), the same ids"
stop_clean
exit $fail
