#!/bin/sh
# qvl-http with the official `openai` npm client (tests/http_openai.mjs):
# text chat, image chat, streaming, stop strings, logprobs, multi-turn, a
# bad request, a bad key; the greedy texts equal `qvlctl run`'s for the same
# messages. Skips without node or the openai package (scripts/install-deps).
. "$QVL_SRCDIR/tests/qvld_lib.sh"
. "$QVL_SRCDIR/tests/http_lib.sh"
need_model
need_http
if [ -z "${NODE:-}" ] || [ ! -d "${QVL_NODE_MODULES:-}/node_modules/openai" ]; then
	echo "1..0 # SKIP node or the openai npm package not found (scripts/install-deps)"
	exit 0
fi
IMG=$TMP/image.png # written by the node script
KEY=qvl-test-$$
echo "$KEY" >"$TMP/key"
start_qvld || { echo "1..0 # SKIP qvld did not start"; exit 0; }
if ! start_http --api-key-file "$TMP/key"; then
	echo "1..1"
	echo "not ok 1 - qvl-http starts"
	sed 's/^/# /' "$HLOG"
	exit 1
fi

QVL_NODE_MODULES=$QVL_NODE_MODULES/node_modules timeout 120 "$NODE" \
	"$QVL_SRCDIR/tests/http_openai.mjs" "$BASE/v1" "$KEY" "$TMP" >"$TMP/node.out" 2>&1
st=$?
grep -c '^\(not \)\?ok - ' "$TMP/node.out" >/dev/null || true
awk '/^(not )?ok - / { n++; sub(/ - /, " " n " - "); print; next } { print "# " $0 }' \
	"$TMP/node.out" >"$TMP/tap"
m=$(grep -c '^\(not \)\?ok ' "$TMP/tap")
echo "1..$((m + 8))"
cat "$TMP/tap"
n=$m
res "$st" "the node client ran to the end (status $st)"

run() { # run ARGS...: qvlctl run's greedy text
	timeout 60 "$QVLCTL" run --model "$MODEL" --threads 2 --greedy --max-tokens 12 "$@" 2>/dev/null
}
same() { # same FILE_HTTP FILE_RUN: equal but for run's final newline
	[ -s "$1" ] && [ "$(cat "$1")" = "$(cat "$2")" ] && return 0
	echo "# http: '$(cat "$1" 2>/dev/null)'"
	echo "# run:  '$(cat "$2" 2>/dev/null)'"
	return 1
}
run --system "You are terse." --prompt "Name three colours." >"$TMP/run_text.txt"
same "$TMP/text.txt" "$TMP/run_text.txt"
res $? "text chat: greedy text equals qvlctl run's"
if [ -f "$IMG" ]; then
	run --image "$IMG" --prompt "Describe the image." >"$TMP/run_image.txt"
fi
same "$TMP/image.txt" "$TMP/run_image.txt"
res $? "image chat: greedy text equals qvlctl run's"

# the image between the text parts: what the chat template renders, as a
# raw prompt with the placeholder at that place
if [ -f "$IMG" ]; then
	nl='
'
	run --raw --image "$IMG" --prompt "<|im_start|>user${nl}Look:<|vision_start|><|image_pad|><|vision_end|> What is this?<|im_end|>${nl}<|im_start|>assistant${nl}" \
		>"$TMP/run_imgpos.txt"
fi
same "$TMP/imgpos.txt" "$TMP/run_imgpos.txt"
res $? "image between text parts: greedy text equals qvlctl run --raw's with the placeholder there"

# the same request through the ring: greedy with --frequency-penalty 2
gen --prompt "Repeat after me: la la la la la la la la la la la la" --greedy --ignore-eos \
	--max-tokens 24 --frequency-penalty 2 --no-stream >"$TMP/gen_freq.txt" 2>"$TMP/gen_freq.err"
same "$TMP/freq.txt" "$TMP/gen_freq.txt"
res $? "frequency_penalty: the text equals qvlctl generate --frequency-penalty's"

# /metrics: the bridge's own counters after the requests above, its CPU time
# (bench_http.sh reads it) a positive number of seconds
curl -s -m 10 -H "Authorization: Bearer $KEY" "$BASE/metrics" >"$TMP/metrics"
cpu=$(sed -n 's/^qvl_http_cpu_seconds_total //p' "$TMP/metrics")
ok2=$(sed -n 's/^qvl_http_responses_total{class="2xx"} //p' "$TMP/metrics")
awk -v c="$cpu" -v k="$ok2" 'BEGIN { exit !(c ~ /^[0-9]+\.[0-9]+$/ && c > 0 && k + 0 > 0) }'
res $? "/metrics: qvl_http_cpu_seconds_total '$cpu' > 0 after $ok2 successful answers"

stop_http
[ "$HSTATUS" = 0 ]
res $? "qvl-http stops cleanly on SIGTERM (status $HSTATUS)"
http_san_clean && san_clean
res $? "no sanitizer report in qvl-http's or qvld's log"
exit $fail
