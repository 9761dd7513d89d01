#!/bin/sh
# scripts/ci-verdict on fabricated build trees: a make check that failed
# without any failed result (a test program that did not build) is a failure,
# so is a run with fewer results than the floor; failed results of every kind
# count; a normal run passes with its exact counts on the last line.
set -u
: "${QVL_SRCDIR:=.}"
V=$QVL_SRCDIR/scripts/ci-verdict
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-ci-verdict.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
n=0
fail=0

# tree NAME RESULT...: a build dir whose tests/ holds one .trs per RESULT
# (the last one in a subdirectory, as tests/fuzz/ has)
tree() {
	d=$TMP/$1
	shift
	rm -rf "$d" && mkdir -p "$d/tests/sub"
	i=0
	for r in "$@"; do
		i=$((i + 1))
		f=$d/tests/t$i.trs
		[ $i = $# ] && f=$d/tests/sub/t$i.trs
		printf ':global-test-result: %s\n:recheck: no\n:test-result: %s\n' "$r" "$r" >"$f"
	done
}

# verdict DESC WANT_EXIT WANT_LAST DIR MAKE_EXIT FLOOR [PATTERN]: run it and
# compare its exit status, its last line and (if given) a line it must print
verdict() {
	desc=$1 want=$2 wlast=$3 dir=$4 rc=$5 floor=$6 pat=${7:-}
	sh "$V" "$desc" "$TMP/$dir" "$rc" "$floor" >"$TMP/out" 2>&1
	st=$?
	last=$(tail -n 1 "$TMP/out")
	n=$((n + 1))
	if [ "$st" = "$want" ] && [ "$last" = "$wlast" ] &&
		{ [ -z "$pat" ] || grep -q -- "$pat" "$TMP/out"; }; then
		echo "ok $n - $desc: exit $st, '$last'"
	else
		echo "not ok $n - $desc: exit $st (want $want), last line '$last' (want '$wlast')"
		sed 's/^/# /' "$TMP/out"
		fail=1
	fi
}

tree normal PASS PASS PASS SKIP XFAIL
verdict "normal run, as many results as the floor" 0 "4 passed, 0 failed, 1 skipped" normal 0 5
tree nothing
verdict "make check exit 2, no .trs at all (a test program did not compile)" 1 \
	"0 passed, 1 failed, 0 skipped" nothing 2 0 "no result failed"
tree allpass PASS PASS PASS
verdict "make check exit 2, every recorded result passed (a setup step failed)" 1 \
	"3 passed, 1 failed, 0 skipped" allpass 2 3 "exited 2"
tree onefail PASS FAIL PASS
verdict "make check exit 2 explained by one FAIL: counted once" 1 \
	"2 passed, 1 failed, 0 skipped" onefail 2 3
verdict "one FAIL with make check exit 0 still fails" 1 "2 passed, 1 failed, 0 skipped" \
	onefail 0 3
tree errors PASS ERROR XPASS FAIL
verdict "ERROR, XPASS and FAIL (in a subdirectory) all count as failures" 1 \
	"1 passed, 3 failed, 0 skipped" errors 2 4
verdict "fewer results than the floor" 1 "4 passed, 1 failed, 1 skipped" normal 0 6 \
	"fewer than the floor 6"
verdict "no results, make check exit 2, floor 10: both failures" 1 \
	"0 passed, 2 failed, 0 skipped" nothing 2 10 "floor 10"
# a whole-test skip logs "SKIP: NAME - reason" ("1..0 # SKIP reason"); a bare
# "1..0" plan logs "SKIP: NAME": nothing ran and nothing said why
tree skips PASS SKIP SKIP
printf '1..0 # SKIP no data\nSKIP: tests/t2 - no data\n' >"$TMP/skips/tests/t2.log"
printf 'ok 1 # SKIP slow\nSKIP: tests/t3 1 # SKIP slow\n1..1\n' >"$TMP/skips/tests/sub/t3.log"
verdict "whole-test and single skips that say why pass" 0 "1 passed, 0 failed, 2 skipped" \
	skips 0 3
printf '1..0\nSKIP: tests/sub/t3\n' >"$TMP/skips/tests/sub/t3.log"
verdict "a bare '1..0' plan (skipped, no reason) is a failure" 1 \
	"1 passed, 1 failed, 2 skipped" skips 0 3 "tests/sub/t3"
for args in "x $TMP/normal 0" "x $TMP/normal zero 5" "x $TMP/normal 0 -1" "x $TMP/none 0 1"; do
	# shellcheck disable=SC2086
	sh "$V" $args >"$TMP/out" 2>&1
	st=$?
	n=$((n + 1))
	shown=$(echo "$args" | sed "s|$TMP/||")
	if [ $st = 2 ]; then
		echo "ok $n - usage error for '$shown': exit 2"
	else
		echo "not ok $n - '$shown': exit $st, want 2"
		fail=1
	fi
done
echo "1..$n"
exit $fail
