# Shared by tests/cli_*.sh (sourced): the tiny model, a scratch directory,
# and TAP helpers. t_run runs qvlctl with stdout/stderr in $TMP/out, $TMP/err
# and the exit status in $st.
: "${QVLCTL:=./qvlctl}"
: "${QVL_TESTDATA:=tests/data}"
MODEL=${QVL_TINY:-}
[ -n "$MODEL" ] && [ -f "$MODEL/config.json" ] || MODEL=${QVL_SHARED:-../shared}/models/qvl-tiny
if [ ! -f "$MODEL/config.json" ]; then
	echo "1..0 # SKIP no tiny model"
	exit 0
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
n=0
fail=0
G=$QVL_TESTDATA/golden/vision
BIG=$QVL_TESTDATA/cli/flat_4000x3000.png

t_run() {
	"$QVLCTL" "$@" >"$TMP/out" 2>"$TMP/err"
	st=$?
}
# res STATUS DESCRIPTION: STATUS 0 is a pass; a failure shows stderr
res() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		[ -f "$TMP/err" ] && sed 's/^/# /' "$TMP/err" | head -6
		fail=1
	fi
}
skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}
# has FILE FIXED-STRING
has() { grep -qF -- "$2" "$1"; }
finish() {
	echo "1..$n"
	exit $fail
}
