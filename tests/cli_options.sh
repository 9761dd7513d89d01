#!/bin/sh
# qvlctl options users expect (issue 12): run --prompt-file / --system, the
# random seed printed and repeatable, strict --tokens, ids without text
# reported, peak memory and KV cache size, one option-error style (prefix,
# range, exit 2, no help dump) for every command, QVL_SIMD checked for
# every command, run/bench --help one line per option.
. "${QVL_SRCDIR:-.}/tests/cli_lib.sh"
GEN="--greedy --ignore-eos --max-tokens 4 --print-ids"

# --prompt-file and --system
t_run run --model "$MODEL" --prompt "Name three colours." $GEN
want=$(cat "$TMP/out")
printf 'Name three colours.' >"$TMP/p.txt"
t_run run --model "$MODEL" --prompt-file "$TMP/p.txt" $GEN
[ $st = 0 ] && [ -n "$want" ] && [ "$(cat "$TMP/out")" = "$want" ]
res $? "run --prompt-file FILE: the same ids as --prompt ($want)"
got=$(printf 'Name three colours.' | "$QVLCTL" run --model "$MODEL" --prompt-file - $GEN 2>"$TMP/err")
[ "$got" = "$want" ]
res $? "run --prompt-file - reads standard input"
t_run run --model "$MODEL" --prompt-file "$TMP/none.txt" $GEN
[ $st = 1 ] && has "$TMP/err" "$TMP/none.txt"
res $? "run --prompt-file of a missing file: exit 1, names it"
t_run run --model "$MODEL" --prompt x --prompt-file "$TMP/p.txt"
[ $st = 2 ] && has "$TMP/err" "exactly one of"
res $? "--prompt with --prompt-file: usage error"
nsys=$("$QVLCTL" chat-format --model "$MODEL" --system "Answer in French." --prompt "Hi" | wc -w)
t_run run --model "$MODEL" --system "Answer in French." --prompt "Hi" --greedy --max-tokens 1 --json
[ $st = 0 ] && has "$TMP/out" "\"n_prompt\":$nsys,"
res $? "run --system: the prompt is the chat-format one with the system turn ($nsys tokens)"
nimg=$("$QVLCTL" chat-format --model "$MODEL" --system "Be brief." --image-tokens 64 --prompt "Describe." | wc -w)
t_run run --model "$MODEL" --system "Be brief." --image "$G/grad_64x64.png" --prompt "Describe." \
	--greedy --max-tokens 1 --json
[ $st = 0 ] && has "$TMP/out" "\"n_prompt\":$nimg,"
res $? "run --system with --image: system turn then the image ($nimg tokens)"
t_run run --model "$MODEL" --system S --raw --prompt x
[ $st = 2 ] && has "$TMP/err" "--system"
res $? "--system with --raw: usage error"

# Seeds: a sampled run without --seed picks one, prints it, and it repeats
S="--temperature 1.5 --top-k 0 --ignore-eos --max-tokens 12 --print-ids"
t_run run --model "$MODEL" --prompt "Hi" $S
seed1=$(sed -n 's/.*random seed \([0-9]*\) .*/\1/p' "$TMP/err")
ids1=$(cat "$TMP/out")
t_run run --model "$MODEL" --prompt "Hi" $S
seed2=$(sed -n 's/.*random seed \([0-9]*\) .*/\1/p' "$TMP/err")
[ -n "$seed1" ] && [ -n "$seed2" ] && [ "$seed1" != "$seed2" ]
res $? "sampling without --seed: a random seed each run, printed ($seed1, $seed2)"
t_run run --model "$MODEL" --prompt "Hi" $S --seed "$seed1"
[ $st = 0 ] && [ "$(cat "$TMP/out")" = "$ids1" ] && ! has "$TMP/err" "random seed"
res $? "--seed with the printed seed repeats the run"
t_run run --model "$MODEL" --prompt "Hi" --greedy --max-tokens 2
[ $st = 0 ] && ! has "$TMP/err" "seed"
res $? "greedy: no seed to print"
"$QVLCTL" run --help | grep -q -- "--seed S .*random seed"
res $? "run --help documents the default (random, printed) seed"

# --tokens: strict items, whatever their length
t_run run --model "$MODEL" --tokens "0000000000000000000000000000000042garbage" --max-tokens 1
[ $st = 2 ] && has "$TMP/err" "not an integer id" && has "$TMP/err" "42garbage"
res $? "--tokens '0...042garbage' (41 chars): refused, not run as id 0"
t_run run --model "$MODEL" --tokens "00000000000000000000000000000000042 7" $GEN
a=$(cat "$TMP/out")
t_run run --model "$MODEL" --tokens "42 7" $GEN
[ $st = 0 ] && [ "$(cat "$TMP/out")" = "$a" ]
res $? "--tokens with a 35-digit 42: read as 42"
t_run run --model "$MODEL" --tokens "1 99999999999"
[ $st = 2 ] && has "$TMP/err" "item 2"
res $? "--tokens id beyond 32 bits: usage error naming the item"
t_run run --model "$MODEL" --tokens " , "
[ $st = 2 ] && has "$TMP/err" "bad --tokens ' , ': no ids" && ! has "$TMP/err" "loaded"
res $? "--tokens with no ids: usage error before the model is loaded"
t_run run --model "$MODEL" --tokens abc
st_run=$st
t_run detokenize --model "$MODEL" abc
[ $st_run = 2 ] && [ $st = 2 ]
res $? "run --tokens abc and detokenize abc: both exit 2 ($st_run, $st)"

# ids the tokenizer cannot detokenize (151669..151935 pad the embedding)
found=
for seed in 2 1 3; do
	"$QVLCTL" run --model "$MODEL" --prompt Hi --temperature 3 --top-k 0 --top-p 1 \
		--seed $seed --max-tokens 600 --ignore-eos --json >"$TMP/out" 2>"$TMP/err"
	sed -n 's/.*"ids":\[\([0-9,]*\)\].*/\1/p' "$TMP/out" | tr ',' '\n' |
		awk '$1 >= 151669' >"$TMP/ids"
	k=$(wc -l <"$TMP/ids")
	if [ "$k" -gt 0 ]; then found=$seed; break; fi
done
if [ -n "$found" ]; then
	first=$(head -1 "$TMP/ids")
	grep -q "run: $k generated ids\{0,1\} ha[sv]e\{0,1\} no text" "$TMP/err" &&
		has "$TMP/err" " $first" && has "$TMP/err" "--print-ids" &&
		has "$TMP/out" "\"dropped_ids\":$k,"
	res $? "generated ids without text ($k, first $first): reported, not silently dropped"
else
	skip "no sampled id above the tokenizer's vocabulary in 3 seeds"
fi

# memory at the end of run
t_run run --model "$MODEL" --tokens "1 2 3" --max-tokens 2 --ctx 1000 --kv-type f32
[ $st = 0 ] && grep -q "peak RSS [0-9.]* MB, KV cache 2.0 MB (1000 positions, F32)" "$TMP/err"
res $? "run reports peak RSS and the KV cache size (4 layers x K,V x 2 x 32 x 1000 x 4 B)"
t_run run --model "$MODEL" --tokens "1 2 3" --max-tokens 2 --ctx 1000 --json
[ $st = 0 ] && has "$TMP/out" '"kv_bytes":1024000' && grep -q '"peak_rss":[1-9]' "$TMP/out"
res $? "run --json: kv_bytes and peak_rss"

# one option-error style: prefix, hint, exit 2, no help dump
for c in info mkmodel tokenize detokenize chat-format run bench embed-image; do
	t_run $c --bogus
	[ $st = 2 ] && [ "$(sed -n 1p "$TMP/err")" = "qvlctl $c: unknown option '--bogus'" ] &&
		[ "$(wc -l <"$TMP/err")" -le 2 ]
	res $? "$c --bogus: 'qvlctl $c: unknown option', exit 2, no help dump"
done
for c in run bench embed-image; do
	t_run $c --model
	[ $st = 2 ] && has "$TMP/err" "qvlctl $c: option '--model' needs a value"
	res $? "$c --model (no value): says so, exit 2"
done
t_run run --model "$MODEL" --tokens 1 --ctx 0
[ $st = 2 ] && has "$TMP/err" "qvlctl run: bad --ctx '0': out of range (1..2147483647)"
res $? "run --ctx 0: range error with the range"
t_run run --model "$MODEL" --tokens 1 --top-p 1.5
[ $st = 2 ] && has "$TMP/err" "bad --top-p '1.5': out of range (0, 1]"
res $? "run --top-p 1.5: range error with the interval"
t_run bench --model "$MODEL" --reps 0
[ $st = 2 ] && has "$TMP/err" "qvlctl bench: bad --reps '0': out of range (1..1000)"
res $? "bench --reps 0: range error with the range"
t_run embed-image --model "$MODEL" --image x --threads many
[ $st = 2 ] && has "$TMP/err" "qvlctl embed-image: bad --threads 'many': not an integer (want 1..1024)"
res $? "embed-image --threads many: says it is not an integer, with the range"

# QVL_SIMD checked for every command, before it runs
for c in info tokenize mkmodel; do
	QVL_SIMD=sse9 "$QVLCTL" $c --help >"$TMP/out" 2>"$TMP/err"
	st=$?
	[ $st = 2 ] && has "$TMP/err" "qvlctl $c: QVL_SIMD='sse9'"
	res $? "QVL_SIMD=sse9 qvlctl $c: exit 2, names the variable"
done

# run --help / bench --help: one line per option
for o in model mmproj prompt prompt-file system tokens raw image image-max-tokens max-tokens \
	ignore-eos greedy temperature top-k top-p min-p repeat-penalty presence-penalty seed \
	print-ids dump-logits threads cpus ctx ctx-override kv-type precision json quiet help; do
	"$QVLCTL" run --help | grep -q "^  --$o "
	res $? "run --help describes --$o on its own line"
done
for o in model prompt-tokens gen-tokens reps threads cpus kv-type precision seed json quiet help; do
	"$QVLCTL" bench --help | grep -q "^  --$o "
	res $? "bench --help describes --$o on its own line"
done
finish
