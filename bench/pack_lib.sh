# Sourced by bench_pack.sh and bench_coldstart.sh: bench_pack_file NAME sets
# $pack to the pack to measure: QVL_BENCH_PACK, else the 2b test model
# (QVL_BENCH_MODEL, default /work/m2b) packed once into QVL_BENCH_SCRATCH
# (default $QVL_BUILDDIR/bench-scratch; several GB, delete it when done), or
# again with QVL_BENCH_REPACK=1. Packing records the packer's peak RSS in
# $pack.rss (KiB), the memory bound of `qvlctl pack` (issue 14: bounded
# memory, under ~256 MB for the 2b shape). Exits 0 (skip) without a model.
bench_pack_file() {
	pack=${QVL_BENCH_PACK:-}
	[ -n "$pack" ] && return 0
	_model=${QVL_BENCH_MODEL:-/work/m2b}
	if [ ! -f "$_model/config.json" ]; then
		echo "$1: SKIP: no model at $_model (set QVL_BENCH_MODEL or QVL_BENCH_PACK)"
		exit 0
	fi
	_scratch=${QVL_BENCH_SCRATCH:-${QVL_BUILDDIR:-.}/bench-scratch}
	mkdir -p "$_scratch" || exit 1
	pack=$_scratch/$(basename "$_model").qvl
	if [ ! -f "$pack" ] || [ ! -f "$pack.rss" ] || [ "${QVL_BENCH_REPACK:-0}" = 1 ]; then
		echo "$1: packing $_model into $pack (once)"
		rm -f "$pack.rss"
		# peak RSS of the packer (getrusage of the waited-for child)
		python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL)
if rc == 0:
    open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$pack.rss" "$QVLCTL" pack "$_model" -o "$pack" --quiet || exit 1
	fi
}

# bench_evict FILE...: drop the files' pages from the page cache, so that a
# buffered or mmap reader starts cold: /proc/sys/vm/drop_caches when root
# and permitted, else posix_fadvise(DONTNEED) on each file (clean, unmapped
# pages); checked with fincore where installed. Prints how; returns 1 when
# the pages could not be dropped.
bench_evict() {
	sync
	if echo 1 2>/dev/null >/proc/sys/vm/drop_caches; then
		_how="drop_caches"
	else
		python3 -c 'import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' "$@" || return 1
		_how="posix_fadvise DONTNEED (drop_caches not permitted)"
	fi
	if command -v fincore >/dev/null 2>&1; then
		_res=$(fincore -nb -o RES "$@" 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}')
		# a few pages may be mapped by another process: allow 1%
		_tot=$(stat -c %s "$@" | awk '{s += $1} END {printf "%d\n", s}')
		if [ "$_res" -gt $((_tot / 100)) ]; then
			echo "evict: $_res bytes of $* still cached after $_how" >&2
			return 1
		fi
	fi
	evicted_how=$_how
}
