#!/bin/sh
# A damaged pack is named and refused, never computed on: one byte flipped
# in each shard in turn (all of the tiny model's 12), the header, the
# metadata and the tensor table damaged, the file truncated. verify exits 1
# and names the problem; run refuses to load with exit 1 and the same name.
# info and the tokenizer commands read only the head: they work on a pack
# whose every shard is damaged, which verify names shard by shard.
. "${QVL_SRCDIR:-.}/tests/cli_lib.sh"
P=$TMP/good.qvl
"$QVLCTL" pack "$MODEL" -o "$P" --quiet >/dev/null 2>&1 || { echo "1..0 # SKIP pack failed"; exit 0; }
"$QVLCTL" verify "$P" --shards >"$TMP/shards" 2>&1
nsh=$(grep -c '^shard ' "$TMP/shards")
res "$([ "$nsh" -ge 10 ] && echo 0)" "the tiny pack has $nsh shards"

flip() { # flip FILE OFFSET: invert one byte in place
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
refused() { # refused FILE PATTERN DESCRIPTION: verify and run both fail naming PATTERN
	t_run verify "$1"
	res "$([ $st = 1 ] && has "$TMP/err" "$2" && echo 0)" "verify: $3"
	t_run run --model "$1" --tokens 1,2,3 --max-tokens 1 --quiet
	res "$([ $st = 1 ] && has "$TMP/err" "$2" && echo 0)" "run refuses: $3"
}

# every shard, the byte in the middle of its payload
while read -r _ name _ off _ len _ _; do
	cp "$P" "$TMP/bad.qvl"
	flip "$TMP/bad.qvl" $((off + len / 2))
	refused "$TMP/bad.qvl" "shard '$name'" "one byte flipped in shard $name"
done <<EOS
$(grep '^shard ' "$TMP/shards")
EOS

# every shard damaged at once: info still describes the pack from its head
# (it reads no shard), verify names each shard
cp "$P" "$TMP/bad.qvl"
while read -r _ name _ off _ len _ _; do
	flip "$TMP/bad.qvl" $((off + len / 2))
done <<EOS
$(grep '^shard ' "$TMP/shards")
EOS
t_run info "$TMP/bad.qvl"
res "$([ $st = 0 ] && has "$TMP/out" "tensors: 115" && has "$TMP/out" "format: pack" && echo 0)" \
	"info describes a pack with every shard damaged (no shard read)"
# the tokenizer commands need only the head's tokenizer record too (a 2b
# pack is 4.27 GB of shards behind it)
t_run tokenize --model "$P" "Hello, world"
good=$(cat "$TMP/out")
t_run tokenize --model "$TMP/bad.qvl" "Hello, world"
res "$([ $st = 0 ] && [ -n "$good" ] && [ "$(cat "$TMP/out")" = "$good" ] && echo 0)" \
	"tokenize reads a pack with every shard damaged (no shard read)"
t_run detokenize --model "$TMP/bad.qvl" $good
res "$([ $st = 0 ] && [ "$(cat "$TMP/out")" = "Hello, world" ] && echo 0)" \
	"detokenize reads a pack with every shard damaged"
t_run chat-format --model "$TMP/bad.qvl" --prompt hi --text
res "$([ $st = 0 ] && has "$TMP/out" "<|im_start|>user" && echo 0)" \
	"chat-format reads a pack with every shard damaged"
t_run verify "$TMP/bad.qvl"
named=0
while read -r _ name _ _ _ _ _ _; do
	has "$TMP/err" "shard '$name': CRC-64 mismatch" && named=$((named + 1))
done <<EOS
$(grep '^shard ' "$TMP/shards")
EOS
res "$([ $st = 1 ] && [ $named = "$nsh" ] && echo 0)" "verify names all $named of $nsh damaged shards"

# header: a version byte (the header CRC catches it), and the magic
cp "$P" "$TMP/bad.qvl"; flip "$TMP/bad.qvl" 9
refused "$TMP/bad.qvl" "header: CRC-64 mismatch" "damaged header"
cp "$P" "$TMP/bad.qvl"; flip "$TMP/bad.qvl" 0
refused "$TMP/bad.qvl" "not a qvl pack" "damaged magic"
# metadata (first record, right after the header) and the table (its last
# bytes, the name pool, just before the first shard)
cp "$P" "$TMP/bad.qvl"; flip "$TMP/bad.qvl" 4200
refused "$TMP/bad.qvl" "metadata: CRC-64 mismatch" "damaged metadata"
first=$(grep '^shard ' "$TMP/shards" | head -1 | awk '{print $4}')
toff=$(od -An -tu8 -j 48 -N8 "$P" | tr -d ' ')
tlen=$(od -An -tu8 -j 56 -N8 "$P" | tr -d ' ')
cp "$P" "$TMP/bad.qvl"; flip "$TMP/bad.qvl" $((toff + tlen - 20))
refused "$TMP/bad.qvl" "table: CRC-64 mismatch" "damaged tensor table"
# truncated: mid-way through the last shard, and inside the table
sz=$(wc -c <"$P")
head -c $((sz - 100000)) "$P" >"$TMP/bad.qvl"
refused "$TMP/bad.qvl" "truncated" "truncated inside the last shard"
t_run verify "$TMP/bad.qvl"
last=$(grep '^shard ' "$TMP/shards" | tail -1 | awk '{print $2}')
res "$(has "$TMP/err" "shard '$last'" && echo 0)" "verify names the truncated shard $last"
head -c $((first - 4096)) "$P" >"$TMP/bad.qvl"
refused "$TMP/bad.qvl" "truncated" "truncated inside the metadata"
: >"$TMP/bad.qvl"
refused "$TMP/bad.qvl" "too short for a pack header" "empty file"
# and the good file still loads
t_run run --model "$P" --tokens 1,2,3 --max-tokens 1 --quiet
res $st "the undamaged pack still runs"
finish
