#!/bin/sh
# The daemon's EMBED_IMAGE (tests/daemon_embed.c) writes what `qvlctl
# embed-image -o` writes for the same image, byte for byte, at each
# precision: the same preprocessing and the same tower, whether the engine
# runs it for a socket or in-process. Both with 1 thread: a bf16 result may
# depend on how the rows are split among threads, and both clamp --threads
# to the CPUs they may use (under taskset -c 0, before qvld did, the 100x70
# image differed at --threads 2). Two images: the square golden
# gradient and an odd-sized one (100x70, resized).
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
IMGS="grad_64x64 odd_100x70"
[ -f "$QVL_SHARED/golden/vision/grad_64x64.png" ] || { echo "1..0 # SKIP no golden images"; exit 0; }
echo "1..6"
for prec in bf16 exact; do
	start_qvld --precision $prec --threads 1
	res $? "qvld --precision $prec starts"
	for im in $IMGS; do
		png=$QVL_SHARED/golden/vision/$im.png
		QVL_SOCKET=$SOCK timeout 120 "${QVL_BUILDDIR:-.}/tests/daemon_embed" "$png" \
			"$TMP/d.$im" >"$TMP/d.out" 2>&1
		dst=$?
		timeout 120 "$QVLCTL" embed-image --model "$MODEL" --image "$png" --threads 1 \
			--precision $prec --quiet -o "$TMP/c.$im" >/dev/null 2>"$TMP/c.err"
		cst=$?
		[ $dst = 0 ] && [ $cst = 0 ] && [ -s "$TMP/c.$im" ] && cmp -s "$TMP/d.$im" "$TMP/c.$im"
		res $? "$prec, $im: EMBED_IMAGE equals qvlctl embed-image ($(cat "$TMP/d.out"), $(wc -c <"$TMP/c.$im" 2>/dev/null) bytes; $(head -c 200 "$TMP/c.err"))"
	done
	stop_clean || fail=1
	: >"$LOG"
done
exit $fail
