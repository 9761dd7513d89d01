#!/bin/sh
# qvlctl tokenize / detokenize / chat-format from the command line: ids of a
# golden case, stdin input, round trip, exit codes (1 bad input, 2 usage).
# Expected ids: README examples / golden cases, the rest checked with
# ../shared/tools/hf-tokenize.mjs (the Hugging Face referee).
QVLCTL=${QVLCTL:-./qvlctl}
MODEL=${QVL_TOKENIZER_DIR:-}
if [ -z "$MODEL" ] || [ ! -f "$MODEL/tokenizer.json" ]; then
	echo "1..0 # SKIP no QVL_TOKENIZER_DIR with a tokenizer.json"
	exit 0
fi
n=0
fail=0
check() { # description, command status (0 ok)
	n=$((n + 1))
	if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi
}
out=$("$QVLCTL" tokenize --model "$MODEL" "Hello world"); check "tokenize Hello world = 9707 1879 ($out)" $([ "$out" = "9707 1879" ]; echo $?)
out=$(printf '<|im_start|>user' | "$QVLCTL" tokenize --model "$MODEL" --no-special); check "stdin, --no-special ($out)" $([ "$out" = "27 91 318 4906 91 29 872" ]; echo $?)
out=$("$QVLCTL" tokenize --model "$MODEL" --json '<|im_start|>user'); check "--json ($out)" $([ "$out" = "[151644,872]" ]; echo $?)
out=$("$QVLCTL" tokenize --model "$MODEL/tokenizer.json" ""); check "empty text: an empty line" $([ "$out" = "" ]; echo $?)
out=$("$QVLCTL" detokenize --model "$MODEL" 9707 1879 151645); check "detokenize ($out)" $([ "$out" = "Hello world<|im_end|>" ]; echo $?)
out=$(echo "9707 1879" | "$QVLCTL" detokenize --model "$MODEL"); check "detokenize from stdin" $([ "$out" = "Hello world" ]; echo $?)
out=$("$QVLCTL" chat-format --model "$MODEL" --image-tokens 3 --prompt Describe.); check "chat-format ids ($out)" $([ "$out" = "151644 872 198 151652 151655 151655 151655 151653 74785 13 151645 198 151644 77091 198" ]; echo $?)
out=$("$QVLCTL" chat-format --model "$MODEL" --system S --image-tokens 2 --prompt Hi --text); check "chat-format --text" $([ "$out" = "$(printf '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>*2<|vision_end|>Hi<|im_end|>\n<|im_start|>assistant\n')" ]; echo $?)
if [ -d "${QVL_TINY:-/nonexistent}" ]; then
	out=$("$QVLCTL" tokenize --model "$QVL_TINY" "Hello world"); check "tokenize with a model directory" $([ "$out" = "9707 1879" ]; echo $?)
else
	n=$((n + 1)); echo "ok $n # SKIP no tiny model"
fi
gguf=${QVL_SHARED:-/nonexistent}/models/qvl-tiny-gguf
if [ -d "$gguf" ]; then
	out=$("$QVLCTL" tokenize --model "$gguf" "Hello world <|im_start|> 中文"); check "tokenize with a GGUF model ($out)" $([ "$out" = "9707 1879 220 151644 72858 16744" ]; echo $?)
else
	n=$((n + 1)); echo "ok $n # SKIP no GGUF test model"
fi
printf 'a\200b' | "$QVLCTL" tokenize --model "$MODEL" 2>/dev/null; check "invalid UTF-8: exit 1" $([ $? -eq 1 ]; echo $?)
"$QVLCTL" detokenize --model "$MODEL" 999999 >/dev/null 2>&1; check "unknown id: exit 1" $([ $? -eq 1 ]; echo $?)
"$QVLCTL" detokenize --model "$MODEL" abc >/dev/null 2>&1; check "not an id: exit 2" $([ $? -eq 2 ]; echo $?)
"$QVLCTL" tokenize "x" >/dev/null 2>&1; check "no --model: exit 2" $([ $? -eq 2 ]; echo $?)
"$QVLCTL" tokenize --model /nonexistent "x" >/dev/null 2>&1; check "bad model: exit 1" $([ $? -eq 1 ]; echo $?)
"$QVLCTL" chat-format --model "$MODEL" >/dev/null 2>&1; check "chat-format without --prompt: exit 2" $([ $? -eq 2 ]; echo $?)
"$QVLCTL" chat-format --model "$MODEL" --image-tokens 0 --prompt x >/dev/null 2>&1; check "--image-tokens 0: exit 2" $([ $? -eq 2 ]; echo $?)
for c in tokenize detokenize chat-format; do
	"$QVLCTL" $c --help | grep -q "Usage: qvlctl $c"; check "$c --help" $?
done
echo "1..$n"
exit $fail
