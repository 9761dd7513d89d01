#!/bin/sh
# qvlctl fails fast, before expensive work (issue 12): the prompt checked
# against --ctx from the image grids before the vision tower, the image
# token budget (--image-max-tokens), output files opened first with the
# reason of a failed write, --ctx against max_position_embeddings, --threads
# clamped to the usable CPUs, bench --prompt-tokens against the context.
. "${QVL_SRCDIR:-.}/tests/cli_lib.sh"
TO=$(command -v timeout >/dev/null && echo "timeout 40")

# A 4000x3000 image is 11750 tokens: 73 s of tower on the tiny model if the
# context is checked after it; the grid alone says it cannot fit 4096.
t0=$(date +%s)
$TO "$QVLCTL" run --model "$MODEL" --image "$BIG" --prompt "Describe." --max-tokens 2 \
	>"$TMP/out" 2>"$TMP/err"
st=$? el=$(($(date +%s) - t0))
[ $st = 1 ] && has "$TMP/err" "11750 of them for 1 image" && has "$TMP/err" "--image-max-tokens" &&
	[ $el -lt 30 ]
res $? "run --image 4000x3000: refused from the grid in ${el}s (exit $st), names the image tokens and --image-max-tokens"
t_run run --model "$MODEL" --image "$BIG" --prompt "Describe." --max-tokens 1 --greedy \
	--image-max-tokens 300
[ $st = 0 ] && has "$TMP/err" "4000x3000 downscaled to 640x480 (300 tokens"
res $? "run --image-max-tokens 300: runs, says the image was downscaled to 640x480"
t_run embed-image --model "$MODEL" --image "$BIG" --image-max-tokens 64 --json
[ $st = 0 ] && has "$TMP/out" '"grid_thw":[1,12,18],"n_tokens":54' && has "$TMP/err" "downscaled"
res $? "embed-image --image-max-tokens 64: HF max_pixels arithmetic (grid 12x18, 54 tokens), says downscaled"
t_run embed-image --model "$MODEL" --image "$G/photo_128x96.png" --image-max-tokens 16 --json
[ $st = 0 ] && has "$TMP/out" '"n_tokens":12'
res $? "embed-image --image-max-tokens 16 on 128x96: a ceiling, not upscaled to min_pixels (12 tokens)"
t_run run --model "$MODEL" --tokens 1 --image-max-tokens 0
[ $st = 2 ] && has "$TMP/err" "(1..1048576)"
res $? "--image-max-tokens 0: usage error with the range"

t_run run --model "$MODEL" --tokens "1 2 3" --max-tokens 2 --dump-logits "$TMP/no/such/dir/l.f32"
[ $st = 1 ] && has "$TMP/err" "$TMP/no/such/dir/l.f32: No such file or directory" &&
	! has "$TMP/err" "prompt 3 tokens in"
res $? "run --dump-logits into a missing directory: refused before the prefill, says why"
# opened first, but an existing file is replaced only by a run that gets to
# write it
printf 'old logits\n' >"$TMP/keep.f32"
t_run run --model "$MODEL" --tokens "1 2 3" --max-tokens 1 --ctx 2 --dump-logits "$TMP/keep.f32"
[ $st = 1 ] && [ "$(cat "$TMP/keep.f32")" = "old logits" ]
res $? "run --dump-logits EXISTING that fails before the prefill leaves EXISTING as it was"
printf 'old, and longer than the new embedding file: %060000d\n' 0 >"$TMP/keep.f32"
t_run embed-image --model "$MODEL" --image "$G/grad_64x64.png" -o "$TMP/keep.f32" --json
sz=$(wc -c <"$TMP/keep.f32")
[ $st = 0 ] && has "$TMP/out" '"n_tokens":64,"width":192' && [ "$sz" = $((64 * 192 * 4)) ]
res $? "embed-image -o EXISTING (longer) is replaced, not overwritten in place ($sz bytes)"
if [ -c /dev/full ]; then
	t_run run --model "$MODEL" --tokens "1 2 3" --max-tokens 2 --dump-logits /dev/full
	[ $st = 1 ] && has "$TMP/err" "/dev/full: write failed: No space left on device"
	res $? "run --dump-logits /dev/full: the write error says why"
	t_run embed-image --model "$MODEL" --image "$G/grad_64x64.png" -o /dev/full
	[ $st = 1 ] && has "$TMP/err" "/dev/full: write failed: No space left on device"
	res $? "embed-image -o /dev/full: the write error says why"
else
	skip "no /dev/full"
	skip "no /dev/full"
fi
t_run embed-image --model "$MODEL" --image "$G/grad_64x64.png" -o "$TMP/no/such/e.f32"
[ $st = 1 ] && has "$TMP/err" "No such file or directory" && [ ! -s "$TMP/out" ]
res $? "embed-image -o into a missing directory: refused before the tower, says why"

t_run run --model "$MODEL" --tokens "1 2" --max-tokens 1 --ctx 8193
[ $st = 2 ] && has "$TMP/err" "bad --ctx '8193': out of range (1..8192" &&
	has "$TMP/err" "max_position_embeddings" && has "$TMP/err" "--ctx-override"
res $? "run --ctx above max_position_embeddings (8192): usage error naming the range"
t_run run --model "$MODEL" --tokens "1 2" --max-tokens 1 --ctx 8193 --ctx-override
[ $st = 0 ] && has "$TMP/err" "8193 positions"
res $? "run --ctx 8193 --ctx-override: runs"
t_run run --model "$MODEL" --tokens "1 2" --max-tokens 1 --ctx 8192
[ $st = 0 ]
res $? "run --ctx 8192 (= max_position_embeddings): runs"

for c in run bench; do
	t_run $c --model "$MODEL" --tokens 1 --threads 1 --cpus 0
	[ $c = bench ] && t_run $c --model "$MODEL" --threads 1 --cpus 0
	[ $st = 2 ] && has "$TMP/err" "qvlctl $c: --threads 1 with --cpus 0:" && ! has "$TMP/err" loaded
	res $? "$c --threads with --cpus: usage error (was: --threads silently ignored)"
done
if command -v nproc >/dev/null; then
	cpus=$(nproc)
	t_run run --model "$MODEL" --tokens "1 2" --max-tokens 1 --threads $((cpus + 62))
	[ $st = 0 ] && has "$TMP/err" "qvlctl run: threads $((cpus + 62)) is more than the $cpus CPU" &&
		has "$TMP/err" "may run on: using $cpus (" &&
		has "$TMP/err" "$cpus threads"
	res $? "run --threads $((cpus + 62)) on $cpus usable CPUs: warns and uses $cpus"
	t_run embed-image --model "$MODEL" --image "$G/grad_64x64.png" --threads $((cpus + 1))
	[ $st = 0 ] && has "$TMP/err" "qvlctl embed-image: threads $((cpus + 1)) is more than the $cpus CPU"
	res $? "embed-image --threads above the CPUs: warns"
	t_run mkmodel --shape tiny --threads $((cpus + 1)) -o "$TMP/mk" --json
	[ $st = 0 ] && has "$TMP/err" "qvlctl mkmodel: threads $((cpus + 1)) is more than the $cpus CPU" &&
		has "$TMP/out" "\"threads\":$cpus"
	res $? "mkmodel --threads above the CPUs: warns and uses $cpus"
else
	skip "no nproc"
	skip "no nproc"
	skip "no nproc"
fi

t_run bench --model "$MODEL" --prompt-tokens 8190 --gen-tokens 4 --reps 1
[ $st = 2 ] && has "$TMP/err" "bad --prompt-tokens '8190': out of range (1..8188 with --gen-tokens 4" &&
	has "$TMP/err" "max_position_embeddings is 8192"
res $? "bench --prompt-tokens + --gen-tokens beyond the context: usage error with the range"
t_run bench --model "$MODEL" --prompt-tokens 100 --gen-tokens 9000 --reps 1
[ $st = 2 ] && has "$TMP/err" "bad --gen-tokens '9000': out of range (0..8191" &&
	! has "$TMP/err" "--prompt-tokens '100'"
res $? "bench --gen-tokens beyond the context: names --gen-tokens and its range, not --prompt-tokens"
finish
