#!/bin/sh
# Cold start: qvld started on the 2b pack (O_DIRECT, so the page cache never
# serves the weights) to its first generated token (`qvlctl generate`, one
# token of a 3-token prompt), against model bytes / fio's O_DIRECT
# sequential read bandwidth of the same file measured in the same run.
# Issue 14's bar: at most 1.15x. Where the time goes: qvld's load (of which
# reading + CRC, as `qvlctl verify` measures it on the same file) and the
# first token after the socket is up (prefill + client).
#
# With LLAMA_CPP_DIR (a llama.cpp build, with llama-server in it or its
# bin/), llama.cpp's cold start side by side: llama-server on the bf16 GGUF
# and its mmproj (QVL_BENCH_GGUF, default /work/bench/qvl-2b-bf16.gguf: the
# same weights and about the same bytes as the pack) started to the first
# token of /completion, with the files' pages dropped from the page cache
# first (bench_evict: drop_caches when permitted, else posix_fadvise; the
# line is skipped when neither works). Runs alternate; median and spread of
# QVL_BENCH_REPS (default 3) and the load average. The pack: pack_lib.sh.
set -u
QVLCTL=${QVLCTL:-./qvlctl}
QVLD=${QVLD:-${QVL_BUILDDIR:-.}/qvld}
reps=${QVL_BENCH_REPS:-3}
gguf=${QVL_BENCH_GGUF:-/work/bench/qvl-2b-bf16.gguf}
. "$(dirname "$0")/pack_lib.sh"
bench_pack_file bench_coldstart
command -v fio >/dev/null 2>&1 || { echo "bench_coldstart: SKIP: fio not installed"; exit 0; }
server=
if [ -n "${LLAMA_CPP_DIR:-}" ]; then
	for c in "$LLAMA_CPP_DIR/bin/llama-server" "$LLAMA_CPP_DIR/llama-server"; do
		[ -x "$c" ] && { server=$c; break; }
	done
	[ -n "$server" ] || echo "bench_coldstart: no llama-server in $LLAMA_CPP_DIR: qvl side only"
	[ -f "$gguf" ] || { echo "bench_coldstart: no $gguf: qvl side only"; server=; }
fi
mmproj=$(dirname "$gguf")/$(basename "$gguf" .gguf)-mmproj.gguf
[ -f "$mmproj" ] || mmproj=
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-bench-coldstart.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

python3 - "$TMP" "$reps" "$pack" "$QVLCTL" "$QVLD" "$server" "$gguf" "$mmproj" \
	"$(dirname "$0")/pack_lib.sh" <<'PY'
import json, os, re, signal, socket, statistics, subprocess, sys, time, urllib.request
tmp, reps, pack, qvlctl, qvld, server, gguf, mmproj, lib = sys.argv[1:10]
reps = int(reps)
nbytes = os.path.getsize(pack)

def evict(*files):
    """The files' pages out of the page cache (pack_lib.sh's bench_evict)."""
    r = subprocess.run(["sh", "-c", '. "$0"; bench_evict "$@" && echo "$evicted_how"', lib]
                       + list(files), capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None

def fio_mbs():
    r = subprocess.run(["fio", "--name=seqread", f"--filename={pack}", "--rw=read", "--bs=1024k",
                        "--direct=1", "--ioengine=io_uring", "--iodepth=16", "--numjobs=1",
                        f"--size={nbytes}", "--output-format=terse", "--terse-version=3"],
                       capture_output=True, text=True, check=True)
    return float(r.stdout.split(";")[6]) * 1024 / 1e6  # terse v3 field 7: KiB/s

def verify_s():
    r = subprocess.run([qvlctl, "verify", pack], capture_output=True, text=True, check=True)
    return float(re.search(r"^read: ([0-9.]+) s", r.stdout, re.M).group(1))

def wait_for(cond, proc, what, limit=600):
    """Poll cond every 5 ms; a dead process or the limit is a clear failure."""
    t = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            sys.exit(f"bench_coldstart: {what} exited ({proc.returncode}) before it was ready")
        if time.monotonic() - t > limit:
            sys.exit(f"bench_coldstart: {what} not ready after {limit} s")
        time.sleep(0.005)

def qvl_cold():
    sock, log = f"{tmp}/qvld.sock", f"{tmp}/qvld.log"
    evict(pack)  # the head is read buffered; the shards bypass the cache
    t0 = time.monotonic()
    p = subprocess.Popen([qvld, "--foreground", "--model", pack, "--socket", sock,
                          "--max-seqs", "1", "--log-level", "2"],
                         stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        wait_for(lambda: os.path.exists(sock), p, "qvld")
        t_up = time.monotonic()
        for _ in range(200):  # the socket may exist a moment before it listens
            g = subprocess.run([qvlctl, "--socket", sock, "generate", "--tokens", "1 2 3",
                                "--max-tokens", "1", "--greedy", "--json"],
                               capture_output=True, text=True)
            if g.returncode == 0:
                break
            time.sleep(0.005)
        else:
            sys.exit(f"bench_coldstart: qvlctl generate failed: {g.stderr}")
        t1 = time.monotonic()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
    m = re.search(r"loaded .* in ([0-9.]+) s", open(log).read())
    return {"total": t1 - t0, "load": float(m.group(1)) if m else None,
            "up": t_up - t0, "first_token": t1 - t_up}

def llama_cold():
    how = evict(*[f for f in (gguf, mmproj) if f])
    if not how:
        return None, "the page cache could not be dropped"
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cmd = [server, "-m", gguf, "--host", "127.0.0.1", "--port", str(port), "-c", "4096",
           "-np", "1", "-t", str(os.cpu_count())] + (["--mmproj", mmproj] if mmproj else [])
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/llama.log", "w"))

    def healthy():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200
        except Exception:
            return False
    try:
        wait_for(healthy, p, "llama-server")
        t_up = time.monotonic()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/completion",
                                     data=json.dumps({"prompt": "Hello", "n_predict": 1}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=300).read()
        t1 = time.monotonic()
    finally:
        p.terminate()
        p.wait(timeout=120)
    return {"total": t1 - t0, "up": t_up - t0, "first_token": t1 - t_up}, how

fio, qvl, ver, llama, llama_how = [], [], [], [], None
for _ in range(reps):
    fio.append(fio_mbs())
    ver.append(verify_s())
    qvl.append(qvl_cold())
    if server:
        r, llama_how = llama_cold()
        if r:
            llama.append(r)

med = statistics.median
ideal = nbytes / (med(fio) * 1e6)
tot = [r["total"] for r in qvl]
load = [r["load"] for r in qvl if r["load"] is not None]
la = os.getloadavg()[0]
def fig(name, vals, unit, **kw):
    d = {"name": name, "value": round(med(vals), 3), "unit": unit, "min": round(min(vals), 3),
         "max": round(max(vals), 3), "n": len(vals)}
    d.update(kw)
    print(json.dumps(d))
fig("coldstart_qvl", tot, "s", what="qvld start to first token, 2b pack, O_DIRECT",
    bytes=nbytes, loadavg=round(la, 1))
fig("coldstart_fio_read", [nbytes / (f * 1e6) for f in fio], "s", what="model bytes / fio bw")
print(json.dumps({"name": "coldstart_ratio_qvl_ideal", "value": round(med(tot) / ideal, 3),
                  "unit": "x", "bound": 1.15, "peer": "model bytes / fio O_DIRECT bandwidth"}))
if load:
    fig("coldstart_qvl_load", load, "s", what="qvld's model load (read, CRC, memory, engine)")
fig("coldstart_qvl_read_crc", ver, "s", what="qvlctl verify: read + CRC only, staged")
fig("coldstart_qvl_first_token", [r["first_token"] for r in qvl], "s",
    what="socket up to first token: prefill + client")
if llama:
    lt = [r["total"] for r in llama]
    fig("coldstart_llama", lt, "s", what="llama-server start to first token, mmap, cache dropped",
        evicted=llama_how)
    print(json.dumps({"name": "coldstart_ratio_qvl_llama", "value": round(med(tot) / med(lt), 3),
                      "unit": "x", "peer": "llama-server (mmap)"}))
elif server:
    print(f"# llama.cpp cold start skipped: {llama_how}")
print(f"# cold start of {nbytes / 1e9:.2f} GB, median of {reps}: qvl {med(tot):.2f} s "
      f"(load {med(load) if load else float('nan'):.2f} s, of which read + CRC ~{med(ver):.2f} s), "
      f"ideal {ideal:.2f} s at fio's {med(fio):.0f} MB/s: {med(tot) / ideal:.2f}x"
      + (f"; llama-server {med([r['total'] for r in llama]):.2f} s" if llama else "")
      + f"; load average {la:.1f}")
PY
