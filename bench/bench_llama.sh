#!/bin/sh
# qvl beside llama.cpp on the same GGUF, threads and machine (issues 16, 17).
#
# Needs a llama.cpp build given by LLAMA_CPP_DIR (the build directory, or
# the directory holding llama-bench); built outside this repository, never
# fetched or built by it. Without it the benchmark says so and skips.
#
# Runs alternate (qvl, llama.cpp, qvl, llama.cpp, ...) so that drift on a
# shared machine hits both sides; every figure is the ratio of the medians,
# with each side's median and min-max spread.
#
#   text:   `qvlctl bench` vs `llama-bench` (pp = prompt tokens, tg = decode),
#           qvl at the default precision and at --precision exact
#   vision: `qvlctl embed-image` (preprocess + tower) vs the encode time
#           `llama-mtmd-cli` logs ("... encoded in N ms" / "encoding done in"), on
#           synthetic 448x448 and 1024x768 PNGs (needs the mmproj); also the
#           tower alone, like llama.cpp's figure (its preprocessing is not in it)
#   AVX2:   when LLAMA_CPP_AVX2_DIR names a llama.cpp build without AVX-512
#           (GGML_NATIVE=OFF GGML_AVX2=ON GGML_AVX512=OFF), the text figures
#           again with QVL_SIMD=avx2 against it
#
# Files: QVL_BENCH_GGUF (default $QVL_BENCH_DIR/qvl-2b-bf16.gguf) and
# QVL_BENCH_MMPROJ (default ...-mmproj.gguf beside it). When absent, they
# are written by `qvlctl convert` from the 2b test model (`qvlctl mkmodel
# --shape 2b`, in $QVL_BENCH_DIR, default /tmp/qvl-bench-llama).
# QVL_BENCH_TYPE=q8_0|q4_0|q4_k_m|... converts to that type instead of bf16.
# Knobs: QVL_BENCH_REPS (3), QVL_BENCH_THREADS (2), QVL_BENCH_PP (512),
# QVL_BENCH_TG (32), QVL_BENCH_DEPTH (0: none) adds the decode at that many
# positions of context on both sides (llama-bench -d), QVL_BENCH_VISION=0 to skip the vision figures,
# QVL_BENCH_EXACT=0 to skip the --precision exact prefill (slow on K-quants).
#
# The decode bound: the machine's read bandwidth (`bench/bench_qdot
# --bandwidth` on the same threads, beside qvlctl: built with `make
# bench/bench_qdot` when missing, or QVL_BENCH_BW names it) is measured right
# before and right after each side's decode run, and the summary prints each
# side's decode as a fraction of `bandwidth / weight bytes read per token`
# (issues 16 and 17 ask 0.92 and 0.9): per round against the mean of the two
# probes beside that run (the host's bandwidth moves by 1.5x within a minute
# on a shared VM), the median of the rounds, and also against the median of
# every probe. llama.cpp reads the same file's tensors per token, so the same
# byte count is used for both.
: "${QVLCTL:=./qvlctl}"
DIR=${QVL_BENCH_DIR:-/tmp/qvl-bench-llama}
TYPE=${QVL_BENCH_TYPE:-bf16}
GGUF=${QVL_BENCH_GGUF:-$DIR/qvl-2b-$TYPE.gguf}
MMPROJ=${QVL_BENCH_MMPROJ:-${GGUF%.gguf}-mmproj.gguf}
REPS=${QVL_BENCH_REPS:-3}
TH=${QVL_BENCH_THREADS:-2}
PP=${QVL_BENCH_PP:-512}
TG=${QVL_BENCH_TG:-32}
DEPTH=${QVL_BENCH_DEPTH:-0}
PY=${PYTHON3:-python3}

find_bin() { # DIR NAME: the llama.cpp binary, in DIR/bin or DIR
	for c in "$1/bin/$2" "$1/$2"; do
		[ -x "$c" ] && { echo "$c"; return 0; }
	done
	return 1
}

if [ -z "$LLAMA_CPP_DIR" ]; then
	echo "bench_llama: LLAMA_CPP_DIR not set (a llama.cpp build directory): skipped"
	exit 0
fi
LB=$(find_bin "$LLAMA_CPP_DIR" llama-bench) || {
	echo "bench_llama: no llama-bench in $LLAMA_CPP_DIR or $LLAMA_CPP_DIR/bin: skipped"
	exit 0
}
MTMD=$(find_bin "$LLAMA_CPP_DIR" llama-mtmd-cli) || MTMD=
LB2=
if [ -n "$LLAMA_CPP_AVX2_DIR" ]; then
	LB2=$(find_bin "$LLAMA_CPP_AVX2_DIR" llama-bench) || {
		echo "bench_llama: LLAMA_CPP_AVX2_DIR=$LLAMA_CPP_AVX2_DIR has no llama-bench" >&2
		exit 1
	}
fi
BWP=${QVL_BENCH_BW:-$(dirname "$QVLCTL")/bench/bench_qdot}
if [ ! -x "$BWP" ] && [ -z "$QVL_BENCH_BW" ] && [ -f "$(dirname "$QVLCTL")/Makefile" ]; then
	make -C "$(dirname "$QVLCTL")" bench/bench_qdot >/dev/null 2>&1
fi
[ -x "$BWP" ] || { echo "bench_llama: no $BWP: the decode bound is not measured" >&2; BWP=; }
command -v "$PY" >/dev/null || { echo "bench_llama: python3 needed for the statistics: skipped"; exit 0; }

mkdir -p "$DIR" || exit 1
if [ ! -f "$GGUF" ]; then
	if ! "$QVLCTL" convert --help >/dev/null 2>&1; then
		echo "bench_llama: $GGUF missing and this qvlctl has no convert: skipped"
		exit 0
	fi
	SRC=$DIR/qvl-2b
	if [ ! -f "$SRC/model.safetensors" ]; then
		echo "bench_llama: writing the 2b test model to $SRC (once)" >&2
		"$QVLCTL" mkmodel --shape 2b ${QVL_TOKENIZER_DIR:+--tokenizer-dir "$QVL_TOKENIZER_DIR"} \
			-o "$SRC" >&2 || exit 1
	fi
	echo "bench_llama: converting to $GGUF ($TYPE) and $MMPROJ" >&2
	"$QVLCTL" convert "$SRC" -o "$GGUF" --type "$TYPE" --mmproj "$MMPROJ" --quiet >&2 || exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-bench-llama.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
echo "bench_llama: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $TH threads, $(basename "$GGUF"), $REPS reps"

# probe_bw FILE: the read bandwidth now, into FILE (nothing without a probe;
# a stale bench_qdot without --bandwidth: the figures without the bound)
probe_bw() {
	[ -n "$BWP" ] || return 0
	"$BWP" --bandwidth --threads "$TH" --reps 3 >"$1" 2>"$TMP/err" && return 0
	cat "$TMP/err" >&2
	echo "bench_llama: $BWP --bandwidth failed: the decode bound is not measured" >&2
	rm -f "$TMP"/bw.*
	BWP=
}

# text REP LEVEL LLAMA_BENCH [SIMD]: one interleaved round of the text figures
text_round() {
	r=$1 tag=$2 lb=$3 simd=$4
	# llama-bench's tg decodes from an empty context (positions 0..TG-1),
	# so qvl's decode runs after a one-token prompt, not after the pp
	# prompt: the same positions, the same attention work
	# probe, qvl decode, probe, llama.cpp decode, probe: each decode
	# between two bandwidth readings of its own
	probe_bw "$TMP/bw.$tag.$r.0" || return 1
	QVL_SIMD=$simd "$QVLCTL" bench --model "$GGUF" --prompt-tokens 1 --gen-tokens "$TG" --reps 1 \
		--threads "$TH" --quiet --json >"$TMP/$tag.qvl.$r" 2>"$TMP/err" || { cat "$TMP/err" >&2; return 1; }
	probe_bw "$TMP/bw.$tag.$r.1" || return 1
	"$lb" -m "$GGUF" -p 0 -n "$TG" -r 1 -t "$TH" -o json >"$TMP/$tag.llamatg.$r" 2>"$TMP/err" ||
		{ cat "$TMP/err" >&2; return 1; }
	probe_bw "$TMP/bw.$tag.$r.2" || return 1
	QVL_SIMD=$simd "$QVLCTL" bench --model "$GGUF" --prompt-tokens "$PP" --gen-tokens 1 --reps 1 \
		--threads "$TH" --quiet --json >"$TMP/$tag.qvlpp.$r" 2>"$TMP/err" || { cat "$TMP/err" >&2; return 1; }
	"$lb" -m "$GGUF" -p "$PP" -n 0 -r 1 -t "$TH" -o json >"$TMP/$tag.llama.$r" 2>"$TMP/err" ||
		{ cat "$TMP/err" >&2; return 1; }
	if [ "$DEPTH" -gt 0 ]; then
		QVL_SIMD=$simd "$QVLCTL" bench --model "$GGUF" --prompt-tokens "$DEPTH" --gen-tokens "$TG" \
			--reps 1 --threads "$TH" --quiet --json >"$TMP/$tag.qvld.$r" 2>"$TMP/err" ||
			{ cat "$TMP/err" >&2; return 1; }
		"$lb" -m "$GGUF" -p 0 -n "$TG" -d "$DEPTH" -r 1 -t "$TH" -o json \
			>"$TMP/$tag.llamad.$r" 2>"$TMP/err" || { cat "$TMP/err" >&2; return 1; }
	fi
	[ "${QVL_BENCH_EXACT:-1}" = 0 ] && return 0
	QVL_SIMD=$simd "$QVLCTL" bench --model "$GGUF" --prompt-tokens "$PP" --gen-tokens 1 --reps 1 \
		--threads "$TH" --precision exact --quiet --json >"$TMP/$tag.exact.$r" 2>"$TMP/err" ||
		{ cat "$TMP/err" >&2; return 1; }
}

# a PNG of W x H with a smooth pattern (python's zlib; no imaging library)
write_png() {
	"$PY" - "$1" "$2" "$3" <<'PY'
import struct, sys, zlib
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = b"".join(b"\0" + bytes((x * 7 + y * 3) & 255 if c == 0 else (x ^ y) & 255 if c == 1 else (x + 2 * y) & 255
                              for x in range(w) for c in range(3)) for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                       + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))
PY
}

vision_round() { # REP WxH
	r=$1 sz=$2 img=$TMP/img-$2.png
	# --copy-weights: the tower's weights in huge pages before the timed
	# encode, as qvld keeps them (the figure is the encode, not the load)
	"$QVLCTL" embed-image --model "$GGUF" --mmproj "$MMPROJ" --image "$img" --threads "$TH" --quiet \
		--copy-weights --json >"$TMP/vis.$sz.qvl.$r" 2>"$TMP/err" ||
		{ cat "$TMP/err" >&2; return 1; }
	"$MTMD" -m "$GGUF" --mmproj "$MMPROJ" --image "$img" -p "Describe." -n 1 -c 4096 -t "$TH" \
		>"$TMP/vis.$sz.llama.$r" 2>&1 || { tail -5 "$TMP/vis.$sz.llama.$r" >&2; return 1; }
}

for r in $(seq "$REPS"); do
	text_round "$r" native "$LB" "" || exit 1
	[ -n "$LB2" ] && { text_round "$r" avx2 "$LB2" avx2 || exit 1; }
done
VIS=
if [ "${QVL_BENCH_VISION:-1}" != 0 ] && [ -n "$MTMD" ] && [ -f "$MMPROJ" ]; then
	for sz in 448x448 1024x768; do
		write_png "$TMP/img-$sz.png" "${sz%x*}" "${sz#*x}" || exit 1
		for r in $(seq "$REPS"); do
			vision_round "$r" "$sz" || exit 1
		done
		VIS="$VIS $sz"
	done
else
	echo "bench_llama: vision figures skipped (no llama-mtmd-cli, no $MMPROJ, or QVL_BENCH_VISION=0)"
fi

"$PY" - "$TMP" "$REPS" "$PP" "$TG" "${LB2:+avx2}" "$VIS" "$DEPTH" <<'PY'
import json, os, re, statistics, sys
d, reps, pp, tg, avx2, vis = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6].split()
depth = int(sys.argv[7])
R = range(1, reps + 1)
def med(xs):
    return statistics.median(xs), min(xs), max(xs)
def fmt(xs, p=2):
    m, lo, hi = med(xs)
    return f"{m:8.{p}f} ({lo:.{p}f}-{hi:.{p}f})"
def llama(tag, r, kind):
    if kind == "tgd":
        for t in json.load(open(f"{d}/{tag}.llamad.{r}")):
            if t["n_gen"] == tg and t["n_prompt"] == 0 and t.get("n_depth") == depth:
                return t["avg_ts"]
    for t in json.load(open(f"{d}/{tag}.{'llamatg' if kind == 'tg' else 'llama'}.{r}")):
        if kind == "pp" and t["n_prompt"] == pp and t["n_gen"] == 0:
            return t["avg_ts"]
        if kind == "tg" and t["n_gen"] == tg and t["n_prompt"] == 0:
            return t["avg_ts"]
    raise SystemExit(f"bench_llama: no {kind} result in llama-bench output {tag}.{r}")
out = {}
# read bandwidth: the median of every round's median (GB/s)
# (a probe that printed nothing, as bench_qdot at the reference level: none)
def probe(tag, r, i):
    f = f"{d}/bw.{tag}.{r}.{i}"
    t = open(f).read() if os.path.exists(f) else ""
    return json.loads(t)["value"] if t.strip() else None
bws = {tag: [[probe(tag, r, i) for i in range(3)] for r in R] for tag in ["native"] + ([avx2] if avx2 else [])}
bw = [v for rows in bws.values() for three in rows for v in three if v is not None]
if bw:
    out["read_bw_gbs"] = statistics.median(bw)
for tag in ["native"] + ([avx2] if avx2 else []):
    q = [json.load(open(f"{d}/{tag}.qvl.{r}")) for r in R]
    qp = [json.load(open(f"{d}/{tag}.qvlpp.{r}")) for r in R]
    rows = [("decode tok/s (tg%d)" % tg, [j["decode_tok_s"] for j in q], [llama(tag, r, "tg") for r in R]),
            ("prefill tok/s (pp%d)" % pp, [j["prefill_tok_s"] for j in qp], [llama(tag, r, "pp") for r in R])]
    if depth > 0:
        qd = [json.load(open(f"{d}/{tag}.qvld.{r}")) for r in R]
        rows.append(("decode tg%d @ depth %d" % (tg, depth), [j["decode_tok_s"] for j in qd],
                     [llama(tag, r, "tgd") for r in R]))
    if os.path.exists(f"{d}/{tag}.exact.1"):
        x = [json.load(open(f"{d}/{tag}.exact.{r}")) for r in R]
        rows.append(("prefill exact (pp%d)" % pp, [j["prefill_tok_s"] for j in x], [llama(tag, r, "pp") for r in R]))
    wt = ", ".join(f"{k} {v['tensors']}" for k, v in q[0].get("weight_types", {}).items())
    print(f"\n{tag} (qvl simd {q[0]['simd']}, precision {q[0].get('precision', '?')}; weights {wt}): median (min-max) of {reps}")
    print(f"{'figure':24s} {'qvl':>22s} {'llama.cpp':>22s} {'ratio':>6s}")
    for name, a, b in rows:
        ratio = statistics.median(a) / statistics.median(b)
        out[f"{tag} {name}"] = ratio
        print(f"{name:24s} {fmt(a):>22s} {fmt(b):>22s} {ratio:6.2f}")
    wb = q[0].get("weight_bytes_per_token")
    if wb:
        tq = statistics.median([j["decode_tok_s"] for j in q])
        tl = statistics.median([llama(tag, r, "tg") for r in R])
        print(f"decode reads {wb / 1e9:.2f} GB of weights per token: qvl {tq * wb / 1e9:.1f} GB/s,"
              f" llama.cpp {tl * wb / 1e9:.1f} GB/s")
        if bw and all(v is not None for three in bws[tag] for v in three):
            b = statistics.median(bw)
            # each run against the mean of the probes just before and after it
            pq = [q[i]["decode_tok_s"] * wb / 1e9 / ((p[0] + p[1]) / 2) for i, p in enumerate(bws[tag])]
            pl = [llama(tag, r, "tg") * wb / 1e9 / ((p[1] + p[2]) / 2) for r, p in zip(R, bws[tag])]
            out[f"{tag} decode of bound qvl"] = statistics.median(pq)
            out[f"{tag} decode of bound llama.cpp"] = statistics.median(pl)
            out[f"{tag} decode of median bound qvl"] = tq * wb / 1e9 / b
            out[f"{tag} decode of median bound llama.cpp"] = tl * wb / 1e9 / b
            print(f"read bandwidth {fmt(bw).strip()} GB/s (every probe), bound {b * 1e9 / wb:.2f} tok/s")
            print(f"decode of the bound, each run against the probes beside it: qvl {fmt(pq, 3).strip()},"
                  f" llama.cpp {fmt(pl, 3).strip()}")
            print(f"decode of the median bound: qvl {tq * wb / 1e9 / b:.3f}, llama.cpp {tl * wb / 1e9 / b:.3f}")
for sz in vis:
    q = [json.load(open(f"{d}/vis.{sz}.qvl.{r}")) for r in R]
    tot = [j["preprocess_s"] + j["tower_s"] for j in q]
    ll = []
    for r in R:
        # older builds log "image slice encoded in N ms", newer ones
        # "mtmd batch encoding done in N ms"
        m = re.findall(r"(?:slice encoded|batch encoding done) in (\d+) ms", open(f"{d}/vis.{sz}.llama.{r}").read())
        if not m:
            raise SystemExit(f"bench_llama: llama-mtmd-cli printed no encode time for {sz} rep {r}")
        ll.append(sum(int(v) for v in m) / 1e3)
    pre = statistics.median([j["preprocess_s"] for j in q]) / statistics.median(tot)
    ratio = statistics.median(ll) / statistics.median(tot)
    # llama.cpp's figure times mtmd_encode_chunk / mtmd_batch_encode only:
    # its preprocessing ran before, in mtmd_tokenize. qvl's tower alone is
    # the like-for-like figure; preprocess + tower stays the headline.
    tower = statistics.median(ll) / statistics.median([j["tower_s"] for j in q])
    out[f"vision {sz}"] = ratio
    out[f"vision {sz} tower"] = tower
    print(f"\nvision {sz} ({q[0]['n_tokens']} tokens): qvl {fmt(tot)} s (preprocess {pre * 100:.1f}%),"
          f" llama.cpp encode {fmt(ll)} s: qvl {ratio:.2f}x faster ({tower:.2f}x the tower alone)")
print("\nratios " + json.dumps(out))
PY
