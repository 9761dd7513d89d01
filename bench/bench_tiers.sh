#!/bin/sh
# Streaming decode through the tiered pool: the 2b shape packed, served with
# --cpu-mem at QVL_BENCH_CPU_PCT (default 25) % of the pack's bytes, O_DIRECT
# (the page cache never serves the streamed layers). The bound a streamed
# decode step can reach is the device's read bandwidth over the bytes
# streamed per step: tok/s as a fraction of it (issue 14's bar: 0.85), for
# one sequence (`qvlctl run`) and for 8 in one batch (bench_batch against a qvld
# started here, decode steps only, as bench_batch counts them: the same
# streamed bytes serve 8, so the reads allow 8x; the same 8 sequences with
# every layer resident say what compute allows, and the bound is the
# smaller of the two). The
# device bandwidth is measured the way the stream reads, in the same
# minutes: fio, O_DIRECT, io_uring, over the very file range the window
# reads (the streamed layers' shards, from the run's report), with the
# stream's read size (1 MiB), threads (2 jobs, one ring each) and reads in
# flight (16 each), the whole range once, right after the 1-sequence run
# and right after the 8-sequence one; the bound uses their mean. (Until
# session 5 it was the best of 3 one-job reads of another 1 GiB of the file
# taken before and after: below what the stream itself read, which put the
# ratios above 1.)
#
# The pack: bench/pack_lib.sh (QVL_BENCH_PACK, else the 2b test model packed
# once into QVL_BENCH_SCRATCH; several GB, delete it when done).
# QVL_BENCH_TOKENS (default 8) decode steps each. Skips without a model or
# without fio.
set -u
QVLCTL=${QVLCTL:-./qvlctl}
QVLD=${QVLD:-${QVL_BUILDDIR:-.}/qvld}
pct=${QVL_BENCH_CPU_PCT:-25}
ntok=${QVL_BENCH_TOKENS:-8}
if ! command -v fio >/dev/null 2>&1; then
	echo "bench_tiers: SKIP: fio not installed (the device bandwidth is measured with it)"
	exit 0
fi
. "$(dirname "$0")/pack_lib.sh"
bench_pack_file bench_tiers
bytes=$(wc -c <"$pack")
cpu=$((bytes / 100 * pct))
TMP=$(mktemp -d) || exit 1
QPID=
trap '[ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null; rm -rf "$TMP"' EXIT

fio_bw() { # [FIO-OPTIONS...]: MB/s of O_DIRECT reads of [soff, send) of the
	# pack as the window reads it: 1 MiB reads, 2 jobs (the window's two I/O
	# threads) of 16 in flight each, each job on its half, sequentially
	_half=$(( (send - soff) / 2 / 1048576 * 1048576 ))
	fio --name=streamlike --filename="$pack" --rw=read --bs=1m --direct=1 \
		--ioengine=io_uring --iodepth=16 --numjobs=2 --offset="$soff" \
		--offset_increment="$_half" --size="$_half" --group_reporting \
		--output-format=terse --terse-version=3 "$@" 2>/dev/null |
		awk -F';' '{printf "%.0f\n", $7 * 1024 / 1e6}' | head -1
}
# the same with registered buffers and file: on this VM the plain fio reads
# slower than the window's reader, this one faster; the bound is the faster
FIO_BEST="--fixedbufs=1 --registerfiles=1"
field() { sed -n "s/^$1: //p" "$2" | head -1; }
# one sequence, in-process
"$QVLCTL" run --model "$pack" --cpu-mem "$cpu" --tokens "1 2 3 4" --max-tokens "$ntok" \
	--ignore-eos --greedy --print-ids --verbose >"$TMP/run.out" 2>"$TMP/run.err" || {
	cat "$TMP/run.err"; exit 1; }
grep -q "^o_direct: true" "$TMP/run.out" || echo "bench_tiers: WARNING: not O_DIRECT"
# "generated N tokens (length) in T s": N - 1 decode steps (the first token
# comes from the prompt's pass)
tok1=$(sed -n 's/.*generated \([0-9]*\) tokens ([a-z]*) in \([0-9.]*\) s.*/\1 \2/p' \
	"$TMP/run.err" | awk '{printf "%.4f\n", ($1 - 1) / $2}')
spp=$(field streamed_bytes_per_pass "$TMP/run.out")
nstr=$(field layers_streamed "$TMP/run.out")
nbuf=$(field buffers "$TMP/run.out")
rate1=$(field stream_rate_mbs "$TMP/run.out")
stalls1=$(field stalls "$TMP/run.out")
soff=$(field stream_file_off "$TMP/run.out")
send=$(field stream_file_end "$TMP/run.out")
if [ -z "$soff" ] || [ -z "$send" ] || [ "$send" -le "$soff" ]; then
	echo "bench_tiers: no streamed range in the run's report"; exit 1
fi
bw1=$(fio_bw)
# shellcheck disable=SC2086
bb1=$(fio_bw $FIO_BEST)

# 8 sequences in one batch, through the daemon: bench_batch's decode figure
# (aggregate tok/s counted from the moment every sequence has its first
# token: decode steps only, no prefill), streamed and then all resident
# (the same 8-row passes with no reads: what compute alone allows)
SOCK=$TMP/qvld.sock
. "$(dirname "$0")/qvld_wait.sh"
batch8() { # batch8 TAG QVLD-ARGS...: tok/s in $TMP/b.TAG, `qvlctl tiers` in $TMP/tiers.TAG
	_tag=$1
	shift
	# the vision tower read before the socket (QVL_VISION_LATE=0): read
	# behind it, it would share the device and the cores with the decode
	QVL_VISION_LATE=0 "$QVLD" --foreground --model "$pack" --socket "$SOCK" --max-seqs 8 "$@" \
		>"$TMP/qvld.$_tag.log" 2>&1 &
	QPID=$!
	qvld_wait bench_tiers "$SOCK" "$QPID" "$TMP/qvld.$_tag.log"
	QVL_SOCKET=$SOCK QVL_BENCH_SEQS=8 QVL_BENCH_REPS=${QVL_BENCH_REPS:-1} \
		QVL_BENCH_TOKENS=$ntok timeout 600 "${QVL_BUILDDIR:-.}/bench/bench_batch" decode \
		>"$TMP/b.$_tag.json" 2>/dev/null || echo "bench_tiers: bench_batch failed ($_tag)"
	sed -n 's/.*"value":\([0-9.]*\).*/\1/p' "$TMP/b.$_tag.json" >"$TMP/b.$_tag"
	"$QVLCTL" --socket "$SOCK" tiers >"$TMP/tiers.$_tag" 2>&1
	kill -TERM "$QPID"
	wait "$QPID" 2>/dev/null
	QPID=
}
batch8 str --cpu-mem "$cpu"
bw2=$(fio_bw)
# shellcheck disable=SC2086
bb2=$(fio_bw $FIO_BEST)
batch8 res
tok8=$(cat "$TMP/b.str")
tok8res=$(cat "$TMP/b.res")

python3 - "${bw1:-0}" "${bw2:-0}" "$tok1" "$spp" "${tok8:-0}" "${tok8res:-0}" "$TMP/tiers.str" "$nstr" \
	"$nbuf" "$rate1" "$stalls1" "$cpu" "$bytes" "$soff" "$send" "$(cat /proc/loadavg)" \
	"${bb1:-0}" "${bb2:-0}" <<'PY'
import json, statistics, sys
bw1, bw2, tok1, spp, tok8, tok8res = map(float, sys.argv[1:7])
t8 = dict(l.strip().split(": ", 1) for l in open(sys.argv[7]) if ": " in l)
nstr, nbuf, rate1, stalls1, cpu, size, soff, send, load = sys.argv[8:17]
bb1, bb2 = map(float, sys.argv[17:19])
# the bound: the faster fio (plain, or registered buffers and file), the
# median of its two measurements
plain, best = statistics.median([bw1, bw2]), statistics.median([bb1, bb2])
bw = max(plain, best) * 1e6
bound = bw / spp
# 8 rows per pass: the reads allow 8 x bound, compute alone (everything
# resident) tok8res; a pass can overlap the two at best, so the bound is the
# smaller rate (the larger time per pass)
bound8 = min(8 * bound, tok8res) if tok8res > 0 else 8 * bound
for name, v, b in (("tiers_decode_1seq", tok1, bound), ("tiers_decode_8seq", tok8, bound8)):
    print(json.dumps({"name": name, "value": round(v, 3), "unit": "tok/s",
                      "bound": round(b, 3), "ratio": round(v / b, 3) if b else 0, "bar": 0.85}))
print(json.dumps({"name": "tiers_decode_8seq_reads_bound", "value": round(8 * bound, 3),
                  "unit": "tok/s", "what": "8 x device bw / streamed bytes per pass"}))
print(json.dumps({"name": "tiers_decode_8seq_compute_bound", "value": round(tok8res, 3),
                  "unit": "tok/s", "what": "8 sequences, every layer resident"}))
print(f"bench_tiers: pack {int(size)/1e9:.2f} GB, --cpu-mem {int(cpu)/1e9:.2f} GB; "
      f"{nstr} layers streamed, {spp/1e6:.0f} MB per step, {nbuf} buffers")
for name, v in (("tiers_fio_plain", plain), ("tiers_fio_registered", best)):
    print(json.dumps({"name": name, "value": round(v), "unit": "MB/s",
                      "what": "fio O_DIRECT, 2 jobs x 16, 1 MiB, the streamed file range"
                      + (", --fixedbufs --registerfiles" if name.endswith("registered") else ""),
                      "bound_per_seq": round(v * 1e6 / spp, 3)}))
print(f"bench_tiers: device, read as the stream reads it (fio, O_DIRECT, 1 MiB, 2 jobs x 16 "
      f"in flight, file bytes {int(soff)}-{int(send)}): plain {bw1:.0f} / registered buffers "
      f"{bb1:.0f} MB/s after the 1-sequence run, {bw2:.0f} / {bb2:.0f} after the 8-sequence "
      f"one: bound {bound:.2f} tok/s per sequence at the faster "
      f"(load average {' '.join(load.split()[:3])})")
print(f"bench_tiers: 1 sequence: {tok1:.2f} tok/s = {tok1/bound:.2f} of the bound "
      f"(stream {rate1} MB/s while reading, {stalls1} stalls)")
print(f"bench_tiers: 8 sequences, decode steps only: {tok8:.2f} tok/s; reads allow "
      f"{8*bound:.2f} (8x), compute allows {tok8res:.2f} (all resident): "
      f"{tok8/bound8 if bound8 else 0:.2f} of the smaller, "
      f"{'compute' if tok8res and tok8res < 8 * bound else 'reads'} bound "
      f"(stream {t8.get('stream_rate_mbs')} MB/s while reading, {t8.get('stalls')} stalls "
      f"for {t8.get('stall_s')} s, {t8.get('layers_served')} layers served)")
PY
