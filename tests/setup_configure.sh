#!/bin/sh
# configure says what is built and what each library is for (its summary, as
# config.log keeps it), and declares no dependency the build does not use the
# way it says: PCRE2 is linked by the test that needs it and by nothing
# installed; no CUDA claim without a CUDA backend.
set -u
log="$QVL_BUILDDIR/config.log"
mk="$QVL_BUILDDIR/Makefile"
src=$QVL_SRCDIR
[ -f "$log" ] || { echo "1..0 # SKIP no config.log in $QVL_BUILDDIR"; exit 0; }
summary=$(sed -n '/^qvl .* configuration$/,/clang (fuzzers)/p' "$log")
libs="hwloc libnuma utf8proc libspng libjpeg liburing ISA-L inih PCRE2 OpenBLAS"
n=0
for l in $libs; do n=$((n + 1)); done
echo "1..$((n + 7))"
i=0
ok() { i=$((i + 1)); echo "ok $i - $1"; }
notok() { i=$((i + 1)); echo "not ok $i - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/# /'; }
line() { echo "$summary" | grep -E "^ +$1: " | head -n 1; }

for l in $libs; do
	v=$(line "$l")
	case $v in
	*"("*")") ok "summary says what $l is for: ${v#*(}" ;;
	*) notok "summary line for $l has no purpose: '$v'" ;;
	esac
done
case $(line PCRE2) in *"(tests only"*) ok "PCRE2 is tests only" ;; *) notok "PCRE2 not marked tests only" "$(line PCRE2)" ;; esac
case $(line inih) in *"(qvld config (qvl.conf))"*) ok "inih is for qvld's qvl.conf" ;; *) notok "inih purpose" "$(line inih)" ;; esac

cuda=$(line CUDA)
case $cuda in
*"no CUDA backend in this version"*) ok "CUDA line says no backend is built: ${cuda#*CUDA: }" ;;
*) notok "CUDA line claims more than is built" "$cuda" ;;
esac

# which code uses PCRE2: only tests/
users=$(grep -rl --include='*.[ch]' 'pcre2\.h' "$src/src" "$src/simd" "$src/include" "$src/tests" 2>/dev/null |
	sed "s|^$src/||" | sort)
case $users in
tests/*) if echo "$users" | grep -qv '^tests/'; then notok "PCRE2 used outside tests/" "$users"
	else ok "only tests include pcre2.h: $(echo $users)"; fi ;;
*) notok "no test includes pcre2.h, or non-tests do" "$users" ;;
esac

# the link lines make would run (-n -W: as if an object had changed)
link() { make -s -n -C "$QVL_BUILDDIR" -W "$1" "$2" 2>/dev/null | grep -- ' -o '; }
pretok=$(link tests/tok_pretok-tok_pretok.o tests/tok_pretok)
pcre=$(sed -n 's/^PCRE2_LIBS = //p' "$mk")
case $pretok in
*"$pcre"*) ok "tests/tok_pretok links $pcre" ;;
*) notok "tests/tok_pretok does not link PCRE2_LIBS '$pcre'" "$pretok" ;;
esac
ctl=$(link src/qvlctl.o qvlctl)
case $ctl in
'') notok "no link line for qvlctl" ;;
*pcre2*) notok "qvlctl links PCRE2" "$ctl" ;;
*) ok "qvlctl does not link PCRE2" ;;
esac
case $(sed -n 's/^AM_CFLAGS = //p' "$mk") in
*pcre2* | *PCRE2*) notok "PCRE2 flags in every compile (AM_CFLAGS)" ;;
*) ok "PCRE2_CFLAGS only where PCRE2 is used" ;;
esac
