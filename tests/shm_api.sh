#!/bin/sh
# libqvl's ABI: libqvl.so exports exactly the names in libqvl.map, each
# declared in qvl.h with its own man page, and the inline helpers have pages too.
set -u
map="$QVL_SRCDIR/shm/libqvl.map"
so="$QVL_BUILDDIR/.libs/libqvl.so"
[ -f "$so" ] || { echo "1..0 # SKIP $so not built (shared libraries disabled)"; exit 0; }
names=$(sed -n 's/^[[:space:]]*\(qvl_[a-z_]*\);$/\1/p' "$map")
inline="qvl_sqe_get qvl_cqe_peek qvl_cqe_seen qvl_cq_ready qvl_cq_advance qvl_arena_ptr"
n=1
for f in $names $inline; do n=$((n + 2)); done
echo "1..$n"
i=0
exported=$(nm -D --defined-only "$so" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort)
i=$((i + 1))
if [ "$exported" = "$(echo "$names" | sort)" ]; then
	echo "ok $i - libqvl.so exports exactly the $(echo "$names" | wc -w) names of libqvl.map"
else
	echo "not ok $i - libqvl.so exports differ from libqvl.map"
	echo "$exported" | sed 's/^/# exported: /'
fi
for f in $names $inline; do
	i=$((i + 1))
	if grep -q "[ *]$f(" "$QVL_SRCDIR/include/qvl.h"; then
		echo "ok $i - $f declared in qvl.h"
	else
		echo "not ok $i - $f not declared in qvl.h"
	fi
	i=$((i + 1))
	if [ -e "$QVL_SRCDIR/man/$f.3" ] && grep -q "^\.Nm $f\b" "$QVL_SRCDIR/man/$f.3"; then
		echo "ok $i - $f(3) documents $f"
	else
		echo "not ok $i - no man page $f(3) naming $f"
	fi
done
