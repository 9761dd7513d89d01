#!/bin/sh
# qvlctl pack / verify / info / run on the tiny model: the pack gives the
# same ids and bit-identical logits as the Hugging Face directory it was made
# from (and as a GGUF source and its pack), verify passes, --type converts
# the matrices, and bad usage exits 2.
. "${QVL_SRCDIR:-.}/tests/cli_lib.sh"
P=$TMP/tiny.qvl
run_ids() { # run_ids MODEL... -> ids on stdout, logits in $TMP/logits.$tag
	"$QVLCTL" run --model "$@" --prompt "hello world" --max-tokens 10 --greedy --ignore-eos \
		--print-ids --precision exact --threads 1 --quiet 2>"$TMP/err"
}

t_run pack "$MODEL" -o "$P" --quiet
res $st "pack exits 0"
res "$(has "$TMP/out" "tensors: 115" && echo 0)" "pack reports 115 tensors"
sz=$(wc -c <"$P")
res "$([ $((sz % 4096)) -eq 0 ] && echo 0)" "file size $sz is a multiple of 4096"
res "$([ ! -e "$P.tmp" ] && echo 0)" "no .tmp file left behind"
t_run verify "$P" --shards
res $st "verify exits 0 on a good pack"
res "$(has "$TMP/out" "shard text.layer.3 " && has "$TMP/out" "shard vision.merger " && echo 0)" \
	"one shard per text layer and the vision merger"
t_run info "$P"
res "$(has "$TMP/out" "format: pack" && has "$TMP/out" "tensors: 115" && \
	has "$TMP/out" "tokenizer: embedded tokenizer.json" && echo 0)" "info on the pack"

run_ids "$MODEL" --dump-logits "$TMP/l.hf" >"$TMP/ids.hf"
run_ids "$P" --dump-logits "$TMP/l.qvl" >"$TMP/ids.qvl"
res "$([ -s "$TMP/ids.hf" ] && cmp -s "$TMP/ids.hf" "$TMP/ids.qvl" && echo 0)" \
	"pack: same ids as the HF directory ($(cat "$TMP/ids.qvl"))"
res "$(cmp -s "$TMP/l.hf" "$TMP/l.qvl" && echo 0)" "pack: bit-identical logits"

# a GGUF source (q8_0 text + mmproj) and its pack
"$QVLCTL" convert "$MODEL" -o "$TMP/t.gguf" --mmproj "$TMP/t-mmproj.gguf" --type q8_0 --quiet \
	>/dev/null 2>&1
t_run pack "$TMP/t.gguf" --mmproj "$TMP/t-mmproj.gguf" -o "$TMP/g.qvl" --quiet
res $st "pack from GGUF text + mmproj"
run_ids "$TMP/t.gguf" --mmproj "$TMP/t-mmproj.gguf" --dump-logits "$TMP/l.gguf" >"$TMP/ids.gguf"
run_ids "$TMP/g.qvl" --dump-logits "$TMP/l.gqvl" >"$TMP/ids.gqvl"
res "$([ -s "$TMP/ids.gguf" ] && cmp -s "$TMP/ids.gguf" "$TMP/ids.gqvl" && \
	cmp -s "$TMP/l.gguf" "$TMP/l.gqvl" && echo 0)" "GGUF pack: same ids and logits as the GGUF"

# --type q8_0 from the HF directory computes like convert --type q8_0
t_run pack "$MODEL" -o "$TMP/q.qvl" --type q8_0 --quiet
res "$([ $st = 0 ] && has "$TMP/out" "payload: 10827456" && echo 0)" "--type q8_0 halves the matrices"
run_ids "$TMP/q.qvl" >"$TMP/ids.q"
res "$(cmp -s "$TMP/ids.q" "$TMP/ids.gguf" && echo 0)" "--type q8_0: same ids as convert --type q8_0"

t_run pack "$MODEL" -o "$TMP/x.qvl" --type q9
res "$([ $st = 2 ] && has "$TMP/err" "--type: unknown type 'q9'" && echo 0)" "unknown --type: exit 2"
t_run pack "$MODEL"
res "$([ $st = 2 ] && has "$TMP/err" "missing -o" && echo 0)" "missing -o: exit 2"
t_run verify "$TMP/nothere.qvl"
res "$([ $st = 1 ] && has "$TMP/err" "nothere.qvl" && echo 0)" "verify on a missing file: exit 1"
finish
