#!/bin/sh
# qvlctl run / bench from the command line: golden greedy ids and dumped
# logits through the front door, and every bad input refused with exit
# status 1 (bad input) or 2 (usage) and a message that says what is wrong.
: "${QVLCTL:=./qvlctl}"
: "${QVL_SHARED:=../shared}"
: "${QVL_TESTDATA:=tests/data}"
MODEL=$QVL_TINY
[ -n "$MODEL" ] && [ -f "$MODEL/config.json" ] || MODEL=$QVL_SHARED/models/qvl-tiny
if [ ! -f "$MODEL/config.json" ]; then
	echo "1..0 # SKIP no tiny model"
	exit 0
fi
TMP=${TMPDIR:-/tmp}/qvl-engine-run.$$
mkdir -p "$TMP" && trap 'rm -rf "$TMP"' EXIT
n=0
fail=0
check() { # check DESCRIPTION WANT_STATUS PATTERN -- qvlctl args...
	desc=$1 want=$2 pat=$3
	shift 4
	"$QVLCTL" "$@" >"$TMP/out" 2>"$TMP/err"
	st=$?
	n=$((n + 1))
	if [ "$st" = "$want" ] && grep -q -- "$pat" "$TMP/err"; then
		echo "ok $n - $desc (exit $st)"
	else
		echo "not ok $n - $desc: exit $st, want $want; stderr:"
		sed 's/^/# /' "$TMP/err" | head -5
		fail=1
	fi
}

check "id out of range" 1 "out of range" -- run --model "$MODEL" --tokens "1 151936"
check "negative id" 1 "out of range" -- run --model "$MODEL" --tokens "5 -1"
check "id not a number" 2 "not an integer" -- run --model "$MODEL" --tokens "1 2x"
check "--tokens with no ids" 2 "no ids" -- run --model "$MODEL" --tokens " "
check "empty prompt" 1 "empty prompt" -- run --model "$MODEL" --raw --prompt ""
check "prompt longer than the context" 1 "longer than the context" -- \
	run --model "$MODEL" --tokens "1 2 3 4 5 6" --ctx 5
check "missing model" 1 "nonexistent" -- run --model "$TMP/nonexistent" --tokens "1"
check "no prompt" 2 "exactly one of" -- run --model "$MODEL"
check "both prompt and tokens" 2 "exactly one of" -- run --model "$MODEL" --tokens 1 --prompt x
check "bad kv type" 2 "kv-type" -- run --model "$MODEL" --tokens 1 --kv-type q8
check "bad top-p" 2 "top-p" -- run --model "$MODEL" --tokens 1 --top-p 1.5
check "unknown option" 2 "unknown" -- run --model "$MODEL" --tokens 1 --frobnicate
check "bench without model" 2 "need --model" -- bench --prompt-tokens 4
check "bench bad reps" 2 "reps" -- bench --model "$MODEL" --reps 0

# The CPUs this test may use (make check may run under taskset), one a line.
cpus_allowed() {
	sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status
}
expand_cpus() { # "0-2,5" -> 0 1 2 5, one a line
	echo "$1" | tr ',' '\n' | while IFS=- read -r lo hi; do
		i=$lo
		while [ "$i" -le "${hi:-$lo}" ]; do echo "$i" && i=$((i + 1)); done
	done
}
# affinity_is TID WANT: the pool thread TID reported (QVL_POOL_VERBOSE, its
# own sched_getaffinity) exactly the CPU list WANT in $TMP/err
affinity_is() {
	got_aff=$(sed -n "s/^qvl pool: thread $1 of [0-9]*: affinity \([0-9,-]*\).*/\1/p" "$TMP/err")
	[ -n "$got_aff" ] && [ "$got_aff" = "$2" ]
}
# pool_threads: how many threads the pool reported
pool_threads() {
	sed -n 's/^qvl pool: thread 0 of \([0-9]*\):.*/\1/p' "$TMP/err"
}
# pinned_run CPU...: t0007 with --cpus CPU,CPU...: the golden ids, one pool
# thread per CPU, thread i on the i-th CPU alone ($prompt, $want: below)
pinned_run() {
	list=$(echo "$*" | tr ' ' ',')
	got=$(QVL_POOL_VERBOSE=1 "$QVLCTL" run --model "$MODEL" --tokens "$prompt" --greedy \
		--ignore-eos --max-tokens 16 --print-ids --kv-type f32 --cpus "$list" 2>"$TMP/err")
	n=$((n + 1))
	bad=
	[ "$(pool_threads)" = $# ] || bad=" threads: '$(pool_threads)'"
	i=0
	for c in "$@"; do
		affinity_is $i "$c" || bad="$bad thread $i not on CPU $c alone;"
		i=$((i + 1))
	done
	[ "$got" = "$want" ] || bad="$bad ids '$got';"
	if [ -z "$bad" ]; then
		echo "ok $n - run --cpus $list: thread i really on the i-th CPU alone, the golden ids"
	else
		echo "not ok $n - run --cpus $list:$bad"
		sed 's/^/# /' "$TMP/err" | head -5
		fail=1
	fi
}
allowed=$(cpus_allowed)
cpu0=$(expand_cpus "$allowed" | sed -n 1p)
cpu1=$(expand_cpus "$allowed" | sed -n 2p)

# The golden greedy continuation and last logits of t0007 through the CLI.
GOLD=$QVL_SHARED/golden/text
if [ -n "$PYTHON3" ] && [ -f "$GOLD/t0007.logits.f32" ]; then
	ids=$("$PYTHON3" -c 'import json,sys; c=json.load(open(sys.argv[1]))["cases"]["t0007"]
print(" ".join(map(str, c["ids"]))); print(" ".join(map(str, c["greedy"]["ids"])))' \
		"$QVL_TESTDATA/golden/text/cases.json")
	prompt=$(echo "$ids" | sed -n 1p)
	want=$(echo "$ids" | sed -n 2p)
	got=$(QVL_POOL_VERBOSE=1 "$QVLCTL" run --model "$MODEL" --tokens "$prompt" --greedy \
		--ignore-eos --max-tokens 16 --print-ids --kv-type f32 --dump-logits "$TMP/l.f32" \
		2>"$TMP/err")
	n=$((n + 1))
	if [ "$got" = "$want" ]; then
		echo "ok $n - run t0007: 16 greedy ids equal the golden"
	else
		echo "not ok $n - run t0007: got '$got', golden '$want'"
		fail=1
	fi
	# without --cpus the caller keeps the process's binding, each worker
	# runs on exactly one of its CPUs
	n=$((n + 1))
	nth=$(pool_threads)
	bad=
	affinity_is 0 "$allowed" || bad="thread 0"
	i=1
	while [ -n "$nth" ] && [ "$i" -lt "$nth" ]; do
		w=$(sed -n "s/^qvl pool: thread $i of [0-9]*: affinity \([0-9]*\)\$/\1/p" "$TMP/err")
		[ -n "$w" ] && expand_cpus "$allowed" | grep -qx "$w" || bad="$bad thread $i"
		i=$((i + 1))
	done
	if [ -n "$nth" ] && [ -z "$bad" ]; then
		echo "ok $n - run (no --cpus): the caller keeps its binding ($allowed), $((nth - 1)) worker(s) on one CPU each"
	else
		echo "not ok $n - run (no --cpus): wrong affinity for${bad:- every thread} (allowed $allowed)"
		grep '^qvl pool' "$TMP/err" | sed 's/^/# /'
		fail=1
	fi
	# an explicit CPU list: the same ids, and thread i (0 is the caller,
	# which computes too) really runs on the i-th CPU listed, alone
	pinned_run "$cpu0"
	if [ -z "$cpu1" ]; then
		n=$((n + 1))
		echo "ok $n # SKIP one CPU allowed ($allowed): no two-CPU list"
	else
		pinned_run "$cpu0" "$cpu1"
	fi
	n=$((n + 1))
	if "$PYTHON3" -c 'import sys, array
a = array.array("f"); a.frombytes(open(sys.argv[1], "rb").read())
b = array.array("f"); b.frombytes(open(sys.argv[2], "rb").read())
d = max(abs(x - y) for x, y in zip(a, b)) if len(a) == len(b) == 151936 else 1e9
print("# max |d| %.3g" % d); sys.exit(0 if d <= 1e-3 else 1)' "$TMP/l.f32" "$GOLD/t0007.logits.f32"; then
		echo "ok $n - run --dump-logits t0007 within 1e-3 of the golden"
	else
		echo "not ok $n - run --dump-logits t0007"
		fail=1
	fi
else
	for _ in 1 2 3 4 5; do
		n=$((n + 1))
		echo "ok $n # SKIP no python3 or golden logits"
	done
fi

# Images through the front door: the engine's embedding replacement, M-RoPE
# positions and DeepStack injection against llama.cpp's multimodal golden
# (hfpre variant), compared up to the first golden margin < 0.1 (README).
VG=$QVL_SHARED/golden/vision
for img in grad_64x64 photo_128x96; do
	n=$((n + 1))
	if [ -z "$PYTHON3" ] || [ ! -f "$VG/$img.png" ]; then
		echo "ok $n # SKIP no python3 or $VG/$img.png"
		continue
	fi
	want=$("$PYTHON3" -c 'import json,sys
d = json.load(open(sys.argv[1]))["images"]
x = [i for i in d if isinstance(i, dict) and i.get("png", "").endswith(sys.argv[2] + ".png")] \
	if isinstance(d, list) else [d[sys.argv[2]]]
g = x[0]["hfpre"]["greedy"]; k = 0
while k < 16 and g["top1_top2_margin"][k] >= 0.1: k += 1
print(" ".join(map(str, g["ids"][:k])))' "$VG/cases.json" "$img" 2>/dev/null)
	got=$("$QVLCTL" run --model "$MODEL" --image "$VG/$img.png" --prompt "Describe." --greedy \
		--ignore-eos --max-tokens 16 --print-ids --kv-type f32 2>"$TMP/err")
	st=$?
	if [ $st = 0 ] && [ -n "$want" ] && case "$got " in "$want "*) true ;; *) false ;; esac; then
		echo "ok $n - run --image $img: greedy equals the golden up to its first small margin"
	else
		echo "not ok $n - run --image $img (exit $st): got '$got', golden prefix '$want'"
		sed 's/^/# /' "$TMP/err" | head -3
		fail=1
	fi
done

# bench --json: one object with the rates and their spreads
"$QVLCTL" bench --model "$MODEL" --prompt-tokens 16 --gen-tokens 4 --reps 2 --json \
	>"$TMP/b.json" 2>"$TMP/err"
st=$?
n=$((n + 1))
if [ $st = 0 ] && grep -q '"prefill_tok_s":[0-9]' "$TMP/b.json" &&
	grep -q '"decode_tok_s":[0-9]' "$TMP/b.json" && grep -q '"decode_tok_s_sd"' "$TMP/b.json" &&
	grep -q '"weight_types":{"BF16":{"tensors":[1-9][0-9]*,"bytes":[1-9]' "$TMP/b.json"; then
	echo "ok $n - bench --json reports prefill_tok_s, decode_tok_s and weight_types"
else
	echo "not ok $n - bench --json (exit $st)"
	sed 's/^/# /' "$TMP/b.json" "$TMP/err" | head -5
	fail=1
fi
echo "1..$n"
exit $fail
