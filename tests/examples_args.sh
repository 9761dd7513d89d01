#!/bin/sh
# The example clients check -n before they connect: "-n -1" (strtoul made
# it 2^64-1), "-n 5x" (5), "-n 0" and "-n ''" are usage errors, exit 2,
# naming the value; a good -n goes on to the connection (no qvld at the
# socket given: exit 1 saying so).
n=0
fail=0
res() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-ex.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
S=$TMP/none.sock
echo x >"$TMP/img.png"
for prog in text image; do
	bin=./examples/qvl-$prog
	[ "$prog" = image ] && args="$TMP/img.png hi" || args=hi
	for v in -1 5x 0 "" 99999999999 " 5"; do
		$bin -s "$S" -n "$v" $args >/dev/null 2>"$TMP/err"
		st=$?
		res "$([ $st = 2 ] && grep -qF -- "-n '$v': want a number of tokens" "$TMP/err" && echo 0)" \
			"qvl-$prog -n '$v': exit 2 naming it (exit $st)"
	done
	$bin -s "$S" -n 16 $args >/dev/null 2>"$TMP/err"
	st=$?
	res "$([ $st = 1 ] && grep -q "cannot connect" "$TMP/err" && echo 0)" \
		"qvl-$prog -n 16: accepted, then no qvld (exit $st)"
done
echo "1..$n"
exit $fail
