#!/bin/sh
# Cold read of a pack: qvl's io_uring reader with the CRC-64 of every shard
# (`qvlctl verify`, O_DIRECT, so the page cache never serves it) against fio's
# sequential O_DIRECT reads of the same file with the same read size and
# queue depth (io_uring engine), alternated in one run; the median of
# QVL_BENCH_REPS (default 3) each, the spread, and the share of the time the
# CRC takes. Issue 14's bar: at least 0.9x fio, CRC under 5% of the time.
#
# The pack: bench/pack_lib.sh (QVL_BENCH_PACK, else the 2b test model
# packed once); with the packer's peak RSS, checked against 256 MB (issue
# 14: bounded memory). Skips without a model, and skips the fio side
# without fio (scripts/install-deps installs it as an optional bench
# package). QVL_BENCH_THREADS: I/O threads (default: qvl's).
set -u
QVLCTL=${QVLCTL:-./qvlctl}
reps=${QVL_BENCH_REPS:-3}
qd=${QVL_BENCH_QD:-16}
kib=${QVL_BENCH_READ_KIB:-1024}
threads=${QVL_BENCH_THREADS:-}
. "$(dirname "$0")/pack_lib.sh"
bench_pack_file bench_pack
rss=$(cat "$pack.rss" 2>/dev/null || echo 0)
bytes=$(wc -c <"$pack")
have_fio=1
command -v fio >/dev/null 2>&1 || { have_fio=0; echo "bench_pack: fio not installed: qvl side only"; }
out=$(mktemp) || exit 1
trap 'rm -f "$out" "$out.fio"' EXIT

i=0
while [ $i -lt "$reps" ]; do
	"$QVLCTL" verify "$pack" --qd "$qd" --read-size "$kib" ${threads:+--threads "$threads"} \
		>"$out.v" 2>&1 || { cat "$out.v"; rm -f "$out.v"; exit 1; }
	# "read: 1.234 s, 2345 MB/s, CRC 0.1% of the time exposed, 9% of the
	# threads' time (O_DIRECT, registered buffers, 2 threads, ...)"
	sed -n 's/^read: \([0-9.]*\) s, \([0-9]*\) MB\/s, CRC \([0-9.]*\)% .*, \([0-9]*\)% of the threads.*(\([A-Za-z_]*\),.*, \([0-9]*\) threads*,.*/qvl \2 \3 \5 \4 \6/p' \
		"$out.v" >>"$out"
	rm -f "$out.v"
	if [ $have_fio = 1 ]; then
		fio --name=seqread --filename="$pack" --rw=read --bs="${kib}k" --direct=1 \
			--ioengine=io_uring --iodepth="$qd" --numjobs=1 --size="$bytes" \
			--output-format=terse --terse-version=3 >"$out.fio" 2>/dev/null &&
			# terse v3: field 7 is read bandwidth in KiB/s
			awk -F';' '{printf "fio %.0f\n", $7 * 1024 / 1e6}' "$out.fio" >>"$out"
	fi
	i=$((i + 1))
done

python3 - "$out" "$bytes" "$qd" "$kib" "$rss" <<'PY'
import json, os, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
bytes_, qd, kib, rss_kib = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
qvl = [float(r[1]) for r in rows if r[0] == "qvl"]
crc = [float(r[2]) for r in rows if r[0] == "qvl"]
crc_cpu = [float(r[4]) for r in rows if r[0] == "qvl"]
nthr = {r[5] for r in rows if r[0] == "qvl"}
mode = {r[3] for r in rows if r[0] == "qvl"}
fio = [float(r[1]) for r in rows if r[0] == "fio"]
if not qvl:
    sys.exit("bench_pack: no qvl figures")
def fig(name, vals, unit, **kw):
    d = {"name": name, "value": round(statistics.median(vals), 3), "unit": unit,
         "min": min(vals), "max": max(vals), "n": len(vals)}
    d.update(kw)
    print(json.dumps(d))
fig("pack_cold_read_qvl", qvl, "MB/s", crc="crc64 (ISA-L)", qd=int(qd), read_kib=int(kib),
    io=",".join(sorted(mode)), bytes=bytes_, io_threads=",".join(sorted(nthr)),
    loadavg=os.getloadavg()[0])
# the CRC's cost in wall time: hashing the device waited on (nothing in
# flight); its CPU share of the I/O threads' time is reported beside it
fig("pack_crc_share", crc, "%", bound=5, measure="exposed (device idle) / wall")
fig("pack_crc_cpu_share", crc_cpu, "%", measure="CRC CPU / (wall x I/O threads)")
if fio:
    fig("pack_cold_read_fio", fio, "MB/s", qd=int(qd), read_kib=int(kib))
    ratio = statistics.median(qvl) / statistics.median(fio)
    print(json.dumps({"name": "pack_cold_read_ratio_qvl_fio", "value": round(ratio, 3),
                      "unit": "x", "bound": 0.9, "peer": "fio io_uring O_DIRECT seq read"}))
print(f"# cold read of {bytes_ / 1e9:.2f} GB, {kib} KiB reads, qd {qd}, median of {len(qvl)}: "
      f"qvl {statistics.median(qvl):.0f} MB/s with CRC ({statistics.median(crc):.1f}% of the "
      f"time exposed, {statistics.median(crc_cpu):.0f}% of the threads' CPU)"
      + (f", fio {statistics.median(fio):.0f} MB/s: {ratio:.2f}x fio" if fio else ", no fio")
      + f", load average {os.getloadavg()[0]:.1f}")
if rss_kib:
    print(json.dumps({"name": "pack_write_peak_rss", "value": round(rss_kib / 1024, 1),
                      "unit": "MB", "bound": 256, "what": "qvlctl pack of the 2b shape"}))
    if rss_kib > 256 * 1024:
        sys.exit(f"bench_pack: qvlctl pack peaked at {rss_kib / 1024:.0f} MB, over 256 MB")
else:
    print("# pack_write_peak_rss: not measured (QVL_BENCH_PACK given; QVL_BENCH_REPACK=1 "
          "with the default pack measures it)")
PY
