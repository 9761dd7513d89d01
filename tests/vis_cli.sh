#!/bin/sh
# qvlctl embed-image and run --image through the front door: grid and token
# count printed, the output file in the golden layout, the PNG path and the
# already-resized (hfpre) path giving the same bytes, greedy ids of run
# --image equal to the golden ones (grad_64x64: only its first 2 golden
# margins are >= 0.1, so only those are compared), and bad input refused
# with exit 1 / usage with exit 2.
: "${QVLCTL:=./qvlctl}"
: "${QVL_SHARED:=../shared}"
: "${QVL_TESTDATA:=tests/data}"
MODEL=$QVL_TINY
[ -n "$MODEL" ] && [ -f "$MODEL/config.json" ] || MODEL=$QVL_SHARED/models/qvl-tiny
if [ ! -f "$MODEL/config.json" ]; then
	echo "1..0 # SKIP no tiny model"
	exit 0
fi
G=$QVL_TESTDATA/golden/vision
TMP=${TMPDIR:-/tmp}/qvl-vis-cli.$$
mkdir -p "$TMP" && trap 'rm -rf "$TMP"' EXIT
n=0
fail=0
res() { # res COND DESCRIPTION
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}

"$QVLCTL" embed-image --model "$MODEL" --image "$G/grad_64x64.png" -o "$TMP/a.f32" >"$TMP/out" 2>"$TMP/err"
res $? "embed-image grad_64x64.png exits 0"
grep -q "grid_thw 1 16 16, 64 tokens x 192" "$TMP/out"
res $? "embed-image prints grid 1x16x16 and 64 tokens of 192 (64 main + 2 x 64 DeepStack)"
[ "$(wc -c <"$TMP/a.f32")" -eq $((64 * 192 * 4)) ]
res $? "embed-image writes 64 x 192 f32"
"$QVLCTL" embed-image --model "$MODEL" --image "$G/odd_100x70.png" --json >"$TMP/out" 2>"$TMP/err"
grep -q '"grid_thw":\[1,14,20\],"n_tokens":70' "$TMP/out"
res $? "embed-image --json: odd_100x70 grid (1, 14, 20), 70 tokens"
RGB=$QVL_SHARED/golden/hf_preprocess/grad_64x64.resized.rgb
if [ -f "$RGB" ]; then
	"$QVLCTL" embed-image --model "$MODEL" --pixels-from "$RGB" --size 256x256 -o "$TMP/b.f32" >/dev/null 2>&1 &&
		cmp -s "$TMP/a.f32" "$TMP/b.f32"
	res $? "embed-image --pixels-from the HF-resized RGB equals the PNG path"
else
	n=$((n + 1)); echo "ok $n # SKIP no $RGB"
fi
# and with the weights (text and tower) copied into huge pages at load
for copy in "" --copy-weights; do
	"$QVLCTL" run --model "$MODEL" --image "$G/grad_64x64.png" --prompt "Describe." \
		--max-tokens 2 --greedy --ignore-eos --print-ids --kv-type f32 --precision exact \
		$copy >"$TMP/out" 2>"$TMP/err"
	grep -q "^111105 105676" "$TMP/out"
	res $? "run --image $copy: greedy ids 111105 105676 (golden)"
done
"$QVLCTL" run --model "$MODEL" --image "$G/grad_64x64.png" --raw --prompt "no placeholder" \
	--max-tokens 1 >"$TMP/out" 2>"$TMP/err"
[ $? = 1 ] && grep -q "placeholder" "$TMP/err"
res $? "run --raw without a placeholder: exit 1, says so"
for f in empty.png truncated.png badcrc_idat.png huge_2g.png bogus_dims_huge.jpg tiny_1x1.png; do
	"$QVLCTL" embed-image --model "$MODEL" --image "$QVL_TESTDATA/vision/$f" >"$TMP/out" 2>"$TMP/err"
	[ $? = 1 ] && grep -q "$f" "$TMP/err"
	res $? "embed-image $f: exit 1, message names the file"
done
"$QVLCTL" embed-image --model "$MODEL" >/dev/null 2>&1
[ $? = 2 ]
res $? "embed-image without an image: usage, exit 2"
"$QVLCTL" embed-image --model "$MODEL" --pixels-from "$G/grad_64x64.png" --size 7x7 >/dev/null 2>"$TMP/err"
[ $? = 1 ]
res $? "embed-image --pixels-from with the wrong size: exit 1"
# The tower's weight products in blocks of QVL_VIS_MC rows (default 256) give
# the exact precision's bits of one call (784 patches on one thread: 3 blocks
# whether a product is split by columns or, for the narrow ones of the tiny
# tower, by rows), at the default SIMD level and at avx2 where the CPU has it.
head -c $((448 * 448 * 3)) /dev/urandom >"$TMP/big.rgb"
for lvl in "" avx2; do
	if [ -n "$lvl" ] && ! grep -qw avx2 /proc/cpuinfo; then
		res 0 "# SKIP QVL_SIMD=avx2: the CPU has no AVX2"
		continue
	fi
	QVL_SIMD=$lvl QVL_VIS_MC=0 "$QVLCTL" embed-image --model "$MODEL" --pixels-from "$TMP/big.rgb" \
		--size 448x448 --precision exact --threads 1 -o "$TMP/mc0.f32" >/dev/null 2>"$TMP/err" &&
		QVL_SIMD=$lvl "$QVLCTL" embed-image --model "$MODEL" --pixels-from "$TMP/big.rgb" \
			--size 448x448 --precision exact --threads 1 -o "$TMP/mc.f32" >/dev/null 2>>"$TMP/err" &&
		cmp -s "$TMP/mc0.f32" "$TMP/mc.f32"
	res $? "exact tower, QVL_SIMD=${lvl:-default}: row blocks give the bits of one call"
done
# With --copy-weights the tower copies its file-mapped weight matrices into
# huge pages when it is created (vision.c, vis_own), read from the file with
# pread() (weight_copy.c) or, with QVL_WEIGHT_PREAD=0, through the mapping:
# either copy gives the bits of the mapping, at both precisions and on 2
# threads (a matrix copied to a wrong offset would not).
for prec in bf16 exact; do
	QVL_WEIGHT_COPY=0 "$QVLCTL" embed-image --model "$MODEL" --pixels-from "$TMP/big.rgb" \
		--size 448x448 --precision $prec --threads 2 -o "$TMP/map.f32" >/dev/null 2>"$TMP/err" &&
		"$QVLCTL" embed-image --model "$MODEL" --pixels-from "$TMP/big.rgb" --copy-weights \
			--size 448x448 --precision $prec --threads 2 -o "$TMP/own.f32" >/dev/null 2>>"$TMP/err" &&
		cmp -s "$TMP/map.f32" "$TMP/own.f32"
	res $? "$prec tower: weights read into the copy at creation give the bits of the mapped file"
	QVL_WEIGHT_PREAD=0 "$QVLCTL" embed-image --model "$MODEL" --pixels-from "$TMP/big.rgb" \
		--copy-weights --size 448x448 --precision $prec --threads 2 -o "$TMP/own.f32" \
		>/dev/null 2>>"$TMP/err" && cmp -s "$TMP/map.f32" "$TMP/own.f32"
	res $? "$prec tower: copied through the mapping (QVL_WEIGHT_PREAD=0), the same bits"
done
# Heads of 8 values (the tiny tower's 32 as 4 heads; the 4B and 8B towers
# have 72): the AVX2 level's attention tile (vattn_f32.h) then reads V
# panels of 16 values whose columns past 8 are pads the tower must have
# zeroed, and must give the GEMM attention's bits (QVL_VIS_GEMM_ATTN=1)
# where every block of 64 queries is whole (256 patches) and the products
# take their packed kernel (QVL_GEMM_SMALL_M=1; blocks of up to 64 queries
# would stream the weights and sum in another order).
mkdir -p "$TMP/hv8" && cp "$MODEL"/* "$TMP/hv8/" &&
	sed 's/"num_heads": *2\([^0-9]\)/"num_heads": 4\1/' "$MODEL/config.json" >"$TMP/hv8/config.json" &&
	grep -q '"num_heads": 4' "$TMP/hv8/config.json"
res $? "a copy of the tiny model with 4 vision heads of 8 values"
for thr in 1 2; do
	QVL_GEMM_SMALL_M=1 QVL_VIS_GEMM_ATTN=1 "$QVLCTL" embed-image --model "$TMP/hv8" \
		--image "$G/grad_64x64.png" --precision exact --threads $thr -o "$TMP/g8.f32" \
		>/dev/null 2>"$TMP/err" &&
		QVL_GEMM_SMALL_M=1 "$QVLCTL" embed-image --model "$TMP/hv8" --image "$G/grad_64x64.png" \
			--precision exact --threads $thr -o "$TMP/t8.f32" >/dev/null 2>>"$TMP/err" &&
		cmp -s "$TMP/g8.f32" "$TMP/t8.f32"
	res $? "heads of 8, $thr thread(s): the attention tile gives the GEMM attention's bits"
done
echo "1..$n"
exit $fail
