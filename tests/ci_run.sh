#!/bin/sh
# .ci/run end to end on a stub project: the real .ci/run and
# scripts/ci-verdict, with install-deps, configure, autoreconf, make, clang
# and the fuzz driver replaced by stubs, so that each `make check` (plain and
# sanitizer) reports what a scenario says. CI must fail (non-zero exit, a
# non-zero "failed" on its last line) when a make check exits non-zero with
# no failed result, when fewer results than the floor were recorded, and must
# not count the .trs files of an earlier run.
set -u
: "${QVL_SRCDIR:=.}"
if ! command -v bash >/dev/null 2>&1; then
	echo "1..0 # SKIP bash not found (.ci/run is a bash script)"
	exit 0
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-ci-run.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
P=$TMP/project
mkdir -p "$P/.ci" "$P/scripts" "$P/tests/fuzz" "$TMP/bin"
cp "$QVL_SRCDIR/.ci/run" "$P/.ci/run"
cp "$QVL_SRCDIR/scripts/ci-verdict" "$P/scripts/ci-verdict"
for f in scripts/install-deps configure tests/fuzz/run-fuzz.sh; do
	printf '#!/bin/sh\nexit 0\n' >"$P/$f"
done
for f in autoreconf clang; do
	printf '#!/bin/sh\nexit 0\n' >"$TMP/bin/$f"
done
# make: a build succeeds; `make check` in build/ or build-san/ writes
# STUB_<dir> = "EXIT PASSES FAILS" as one .trs file and exits EXIT
cat >"$TMP/bin/make" <<'EOF'
#!/bin/sh
for a in "$@"; do
	[ "$a" = check ] || continue
	case ${PWD##*/} in build) spec=$STUB_build ;; *) spec=$STUB_san ;; esac
	set -- $spec
	mkdir -p tests
	{
		i=0
		while [ $i -lt "$2" ]; do echo ":test-result: PASS" && i=$((i + 1)); done
		i=0
		while [ $i -lt "$3" ]; do echo ":test-result: FAIL" && i=$((i + 1)); done
	} >tests/stub.trs
	exit "$1"
done
exit 0
EOF
chmod +x "$P/.ci/run" "$P/scripts/ci-verdict" "$P/scripts/install-deps" "$P/configure" \
	"$P/tests/fuzz/run-fuzz.sh" "$TMP/bin/autoreconf" "$TMP/bin/clang" "$TMP/bin/make"

# enough results for either floor
floor=$(grep -o 'FLOOR_CHECK[A-Z_]*=[0-9]*' "$P/.ci/run" | cut -d= -f2 | sort -n | tail -n 1)
if [ -z "$floor" ]; then
	echo "1..1"
	echo "not ok 1 - no FLOOR_CHECK= line in .ci/run"
	exit 1
fi
ok=$((floor + 10))
n=0
fail=0

# scenario DESC WANT_EXIT WANT_LAST PLAIN_SPEC SAN_SPEC
scenario() {
	n=$((n + 1))
	STUB_build=$4 STUB_san=$5 PATH="$TMP/bin:$PATH" bash "$P/.ci/run" >"$TMP/out" 2>&1
	st=$?
	last=$(tail -n 1 "$TMP/out")
	if [ "$st" = "$2" ] && [ "$last" = "$3" ]; then
		echo "ok $n - $1: exit $st, '$last'"
	else
		echo "not ok $n - $1: exit $st (want $2), last line '$last' (want '$3')"
		sed 's/^/# /' "$TMP/out" | tail -n 15
		fail=1
	fi
}

all=$((2 * ok + 1)) # the fuzz stage counts one pass
scenario "both make checks pass" 0 "$all passed, 0 failed, 0 skipped" "0 $ok 0" "0 $ok 0"
scenario "plain make check exits 2 with no result (a test did not compile)" 1 \
	"$((ok + 1)) passed, 2 failed, 0 skipped" "2 0 0" "0 $ok 0"
scenario "sanitizer make check exits 2, every result passed" 1 \
	"$all passed, 1 failed, 0 skipped" "0 $ok 0" "2 $ok 0"
scenario "plain make check under the floor" 1 \
	"$((ok + 11)) passed, 1 failed, 0 skipped" "0 10 0" "0 $ok 0"
scenario "a failed result in the sanitizer build" 1 \
	"$((all - 1)) passed, 1 failed, 0 skipped" "0 $ok 0" "2 $((ok - 1)) 1"
# a FAIL left by an earlier run is not this run's
mkdir -p "$P/build/tests/fuzz"
echo ":test-result: FAIL" >"$P/build/tests/fuzz/old.trs"
scenario "the .trs files of an earlier run are not counted" 0 \
	"$all passed, 0 failed, 0 skipped" "0 $ok 0" "0 $ok 0"
echo "1..$n"
exit $fail
