#!/bin/sh
# A repeated image through qvld (tests/daemon_image.c: the same PNG twice,
# then with other text, the same pixels as RGB rows, another picture of the
# same size) gives the ids of a daemon without the image and prefix caches,
# and the caches did their work: the image cache, keyed by the bytes the
# client sent, hits for the same bytes only (the same pixels in other bytes
# are a miss, with the same ids), a different image misses, and the KV pages
# of the repeated image are reused up to the text after it. Exact precision
# and an f32 KV cache, so reused pages and recomputed ones cannot differ by
# a rounding.
. "${QVL_SRCDIR:-.}/tests/qvld_lib.sh"
need_model
echo "1..9"
D=${QVL_BUILDDIR:-.}/tests/daemon_image
COMMON="--precision exact --kv-type f32 --ctx 2048 --kv-mem 64M"

run_set() { # run_set NAME ARGS...: start, run the requests into $TMP/NAME
	name=$1
	shift
	start_qvld $COMMON "$@" || { echo "# qvld $* did not start"; return 1; }
	QVL_SOCKET=$SOCK timeout 300 "$D" >"$TMP/$name" 2>"$TMP/$name.err"
	rst=$?
	stop_clean || return 1
	: >"$LOG" # the next daemon's report is its own
	[ $rst = 77 ] && { echo "# $(cat "$TMP/$name.err")"; return 77; }
	return $rst
}

run_set ref --vision-cache 0 --prefix-cache false
st=$?
if [ $st = 77 ]; then
	# no image to send: say so for every test, never a pass
	i=1
	while [ $i -le 9 ]; do
		echo "ok $i # SKIP no golden image (\$QVL_SHARED/golden/vision)"
		i=$((i + 1))
	done
	exit 0
fi
res $st "without caches: 6 image requests complete ($(head -c 200 "$TMP/ref.err"))"
run_set cache --vision-cache 64M
res $? "with the image and prefix caches: they complete ($(head -c 200 "$TMP/cache.err"))"

ids() { sed 's/ |.*//' "$1"; }                  # the lines without the counters
line() { sed -n "$(($2 + 1))p" "$TMP/$1"; }     # line R of set NAME
cnt() { line "$1" "$2" | sed "s/.* $3 \([0-9-]*\).*/\1/"; } # counter of request R
prompt() { line "$1" "$2" | sed 's/^[0-9]* n_prompt \([0-9]*\) .*/\1/'; }

[ "$(wc -l <"$TMP/cache")" = 6 ] && [ "$(ids "$TMP/ref")" = "$(ids "$TMP/cache")" ]
res $? "the ids with caches equal those without, request by request"
sed 's/^/# /' "$TMP/cache"

# the reference did not reuse anything
[ "$(cnt ref 1 vhit)" = 0 ] && [ "$(cnt ref 1 phit)" = 0 ] && [ "$(cnt ref 5 vhit)" = 0 ]
res $? "without caches: no hit counted"

[ "$(cnt cache 0 vmiss)" = 1 ] && [ "$(cnt cache 0 vhit)" = 0 ] &&
	[ "$(cnt cache 1 vhit)" = 1 ] && [ "$(cnt cache 1 vmiss)" = 0 ]
res $? "the same PNG again: a vision cache hit (first: miss $(cnt cache 0 vmiss), again: hit $(cnt cache 1 vhit))"

# the whole repeated prompt but its last position comes from the cache
p1=$(prompt cache 1)
[ "$(cnt cache 1 phit)" = 1 ] && [ "$(cnt cache 1 reused)" = $((p1 - 1)) ]
res $? "the same request again: $(cnt cache 1 reused) of $p1 positions reused"

# other text after the image: everything up to it is reused; what is left
# is "Describe it." and the assistant turn's header, well under 16 ids
p2=$(prompt cache 2)
r2=$(cnt cache 2 reused)
[ "$(cnt cache 2 vhit)" = 1 ] && [ "$(cnt cache 2 phit)" = 1 ] && [ $((p2 - r2)) -le 12 ]
res $? "the same image, other text: a hit, $r2 of $p2 positions reused"

# the same pixels as RGB rows: other bytes, so a miss (no key to share with
# the PNG), and the ids of the PNG request with the same text
[ "$(cnt cache 3 vmiss)" = 1 ] && [ "$(cnt cache 3 vhit)" = 0 ] &&
	[ "$(line cache 3 | sed 's/^3 //; s/ |.*//')" = "$(line cache 2 | sed 's/^2 //; s/ |.*//')" ] &&
	[ "$(cnt cache 5 vhit)" = 1 ]
res $? "the same pixels as RGB rows: a miss, the PNG's ids; and a hit when sent again"

# another picture of the same size: a miss, and only the text before the
# image is reused
p4=$(prompt cache 4)
[ "$(cnt cache 4 vmiss)" = 1 ] && [ "$(cnt cache 4 vhit)" = 0 ] && [ "$(cnt cache 4 reused)" -lt 16 ]
res $? "another image of the same size: a miss, $(cnt cache 4 reused) of $p4 positions reused"
exit $fail
