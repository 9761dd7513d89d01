#!/bin/sh
# `make install` puts the tokenizer files in $(pkgdatadir)/tokenizer-qwen3 and
# the installed qvlctl mkmodel finds them there with the build tree out of
# sight. Installed with DESTDIR into a temporary root; the installed
# qvlctl then runs in a private mount namespace (unshare) where the staged
# $(pkgdatadir) is bind-mounted at its real path and an empty tmpfs hides the
# build tree's tokenizer directory. Lookup order: --tokenizer-dir,
# $QVL_TOKENIZER_DIR, the installed copy, the build tree.
set -u
build=$QVL_BUILDDIR
buildtok=${QVL_TOKENIZER_DIR:-}
[ -f "$buildtok/tokenizer.json" ] || {
	echo "1..0 # SKIP no tokenizer.json in QVL_TOKENIZER_DIR ('$buildtok')"
	exit 0
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qvl-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"

echo "1..9"
i=0
ok() { i=$((i + 1)); echo "ok $i - $1"; }
notok() { i=$((i + 1)); echo "not ok $i - $1"; [ -n "${2:-}" ] && sed 's/^/# /' "$2"; }
skip() { i=$((i + 1)); echo "ok $i # SKIP $1"; }

if make -s -C "$build" install DESTDIR="$root" >"$tmp/install.out" 2>&1; then
	ok "make install DESTDIR=..."
else
	notok "make install DESTDIR=... failed" "$tmp/install.out"
fi
staged=$(find "$root" -path '*/tokenizer-qwen3/tokenizer.json' | head -n 1)
staged=${staged%/tokenizer.json}
inst=${staged#"$root"}
qvlctl=$(find "$root" -path '*/bin/qvlctl' -type f | head -n 1)
if [ -n "$staged" ] && cmp -s "$staged/tokenizer.json" "$buildtok/tokenizer.json" &&
	cmp -s "$staged/tokenizer_config.json" "$buildtok/tokenizer_config.json"; then
	ok "tokenizer files installed in $inst"
else
	notok "no tokenizer files under \$(pkgdatadir) in $root" "$tmp/install.out"
fi
if [ -n "$qvlctl" ] && [ -n "$inst" ] && "$qvlctl" mkmodel --help | grep -qF "$inst"; then
	ok "installed qvlctl mkmodel --help names $inst"
else
	notok "installed qvlctl (${qvlctl:-missing}) does not name the installed directory"
fi

# Mark the copies so that the output says which one mkmodel took
# (mkmodel copies tokenizer_config.json byte for byte).
printf '\n' >>"$staged/tokenizer_config.json"
mkdir -p "$tmp/envtok"
cp "$buildtok/tokenizer.json" "$buildtok/tokenizer_config.json" "$tmp/envtok/"
printf '\n\n' >>"$tmp/envtok/tokenizer_config.json"
mkdir -p "$tmp/optok"
cp "$buildtok/tokenizer.json" "$buildtok/tokenizer_config.json" "$tmp/optok/"
printf '\n\n\n' >>"$tmp/optok/tokenizer_config.json"

# view INSTALLED STAGED BUILDTOK CMD...: run CMD with STAGED at INSTALLED and
# BUILDTOK empty
cat >"$tmp/view.sh" <<'EOF'
set -e
inst=$1 staged=$2 buildtok=$3
shift 3
if [ ! -d "$inst" ]; then
	a=$inst
	while [ ! -d "$a" ]; do a=$(dirname "$a"); done
	case $a in /) echo "view: no existing parent of $inst to mount on" >&2; exit 77 ;; esac
	case $staged/ in "$a"/*) echo "view: $staged is below $a" >&2; exit 77 ;; esac
	mount -t tmpfs qvl-test "$a"
	mkdir -p "$inst"
fi
mount --bind "$staged" "$inst"
mount -t tmpfs qvl-test "$buildtok"
exec "$@"
EOF
ns=
if unshare -m true 2>/dev/null; then
	ns="unshare -m"
elif unshare -rm true 2>/dev/null; then
	ns="unshare -rm"
fi
view() {
	$ns sh "$tmp/view.sh" "$inst" "$staged" "$buildtok" "$@"
}
used() { # which tokenizer_config.json landed in model directory $1
	if cmp -s "$1/tokenizer_config.json" "$staged/tokenizer_config.json"; then echo installed
	elif cmp -s "$1/tokenizer_config.json" "$tmp/envtok/tokenizer_config.json"; then echo env
	elif cmp -s "$1/tokenizer_config.json" "$tmp/optok/tokenizer_config.json"; then echo option
	elif cmp -s "$1/tokenizer_config.json" "$buildtok/tokenizer_config.json"; then echo build
	else echo none; fi
}
mk() { # mk OUT ENV-ARG [MKMODEL-ARGS...]: installed mkmodel, tiny text-only model
	out=$1 envarg=$2
	shift 2
	view env "$envarg" "$qvlctl" mkmodel --shape tiny --no-vision "$@" -o "$tmp/$out" \
		>"$tmp/$out.out" 2>&1
}

if [ -z "$ns" ] || [ -z "$qvlctl" ] || [ -z "$staged" ]; then
	for t in 4 5 6 7; do skip "no private mount namespace (unshare -m) or nothing installed"; done
else
	if view sh -c 'test ! -e "$1/tokenizer.json" && test -f "$2/tokenizer.json"' sh \
		"$buildtok" "$inst" 2>"$tmp/view.out"; then
		ok "in the namespace the build tree's tokenizer dir is empty, $inst is populated"
	else
		notok "could not set up the namespace" "$tmp/view.out"
	fi
	if mk m1 --unset=QVL_TOKENIZER_DIR && [ "$(used "$tmp/m1")" = installed ]; then
		ok "installed mkmodel without QVL_TOKENIZER_DIR uses $inst"
	else
		notok "installed mkmodel without QVL_TOKENIZER_DIR: used $(used "$tmp/m1")" "$tmp/m1.out"
	fi
	if mk m2 QVL_TOKENIZER_DIR="$tmp/envtok" && [ "$(used "$tmp/m2")" = env ]; then
		ok "QVL_TOKENIZER_DIR comes before the installed copy"
	else
		notok "with QVL_TOKENIZER_DIR: used $(used "$tmp/m2")" "$tmp/m2.out"
	fi
	if mk m3 QVL_TOKENIZER_DIR="$tmp/envtok" --tokenizer-dir "$tmp/optok" &&
		[ "$(used "$tmp/m3")" = option ]; then
		ok "--tokenizer-dir comes before QVL_TOKENIZER_DIR"
	else
		notok "with --tokenizer-dir: used $(used "$tmp/m3")" "$tmp/m3.out"
	fi
fi

# the build tree's qvlctl, outside any namespace and with nothing in
# $(pkgdatadir) on this machine, falls back to the build tree
if [ -e "$inst/tokenizer.json" ]; then
	skip "qvl is installed on this machine ($inst)"
elif env -u QVL_TOKENIZER_DIR "$QVLCTL" mkmodel --shape tiny --no-vision -o "$tmp/m4" \
	>"$tmp/m4.out" 2>&1 && [ "$(used "$tmp/m4")" = build ]; then
	ok "uninstalled qvlctl falls back to the build tree"
else
	notok "uninstalled qvlctl: used $(used "$tmp/m4")" "$tmp/m4.out"
fi

if make -s -C "$build" uninstall DESTDIR="$root" >"$tmp/uninstall.out" 2>&1 &&
	[ -z "$(find "$root" -type f)" ]; then
	ok "make uninstall removes every installed file"
else
	find "$root" -type f >>"$tmp/uninstall.out"
	notok "make uninstall left files" "$tmp/uninstall.out"
fi
