#!/bin/sh
# Every man page lints clean with mandoc (-T lint -W warning), and every
# qvlctl command has a section in qvlctl(8) (the daemon commands, for now, in
# qvld(8) under CLIENT COMMANDS).
set -u
mandir="$QVL_SRCDIR/man"
[ -n "${MANDOC:-}" ] && [ -x "$MANDOC" ] || { echo "1..0 # SKIP mandoc not found"; exit 0; }
pages=$(ls "$mandir"/*.[1-8] 2>/dev/null)
[ -n "$pages" ] || { echo "1..0 # SKIP no man pages"; exit 0; }
cmds=$("$QVLCTL" --help | awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1}')
n=0
for p in $pages; do n=$((n + 1)); done
for c in $cmds; do n=$((n + 1)); done
echo "1..$n"
i=0
for p in $pages; do
	i=$((i + 1))
	if out=$("$MANDOC" -T lint -W warning "$p" 2>&1); then
		echo "ok $i - $(basename "$p") lints clean"
	else
		echo "not ok $i - $(basename "$p")"
		echo "$out" | sed 's/^/# /'
	fi
done
for c in $cmds; do
	i=$((i + 1))
	if grep -q "^\.It Cm $c\b\|^\.Ss $c\$\|^\.Sh.*$c" "$mandir/qvlctl.8" 2>/dev/null ||
		grep -qE "^\.(Ss|It Cm) \"?$c" "$mandir/qvlctl.8" 2>/dev/null ||
		grep -q "^\.Ss $c\$" "$mandir/qvld.8" 2>/dev/null; then
		echo "ok $i - qvlctl(8) documents $c"
	else
		echo "not ok $i - qvlctl(8) does not document $c"
	fi
done
