#!/usr/bin/env python3
"""llama-server side of bench/bench_batch.sh: the decode mix of bench_batch
(1, 4, 16, 64 concurrent greedy requests of 16 ids, QVL_BENCH_TOKENS ids
each, EOS ignored) through /completion with streaming, aggregate tok/s
counted the same way (tokens after every request has its first one, to the
next completion; to the last one: drain_tok_s), median of QVL_BENCH_REPS;
with 64 requests on its 16 slots the last first token comes in the last
wave, so the window sees at most 16 running; printed beside qvl's figures
(the JSON lines of bench_batch given as argv[2]).
  bench_batch_llama.py PORT QVL_JSON"""
import http.client
import json
import os
import statistics
import sys
import threading
import time

port, qvl_json = int(sys.argv[1]), sys.argv[2]
reps = int(os.environ.get("QVL_BENCH_REPS", "3"))
ntok = int(os.environ.get("QVL_BENCH_TOKENS", "16"))


def wait_ready():
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def ids(seed):
    x = (seed * 0x9E3779B97F4A7C15 + 12345) & (2**64 - 1)
    out = []
    for _ in range(16):
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out.append(100 + (x >> 33) % 20000)
    return out


def one(seed, stamps):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = json.dumps({"prompt": ids(seed), "n_predict": ntok, "ignore_eos": True,
                       "temperature": 0, "stream": True, "cache_prompt": False})
    c.request("POST", "/completion", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    for line in r:
        if line.startswith(b"data: "):
            stamps.append(time.monotonic())


def decode_once(n, base):
    stamps = [[] for _ in range(n)]
    th = [threading.Thread(target=one, args=(base + i, stamps[i])) for i in range(n)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    if any(not s for s in stamps):
        return -1, -1
    t_all = max(s[0] for s in stamps)
    t_end = max(s[-1] for s in stamps)
    ends = [s[-1] for s in stamps if s[-1] > t_all]
    t_next = min(ends) if ends else t_all

    def rate(t1):
        n_in = sum(sum(1 for t in s if t_all < t <= t1) for s in stamps)
        return n_in / (t1 - t_all) if t1 > t_all and n_in else -1
    return rate(t_next), rate(t_end)


if not wait_ready():
    print("bench_batch_llama: llama-server did not become ready", file=sys.stderr)
    sys.exit(1)
qvl = {}
for line in open(qvl_json):
    try:
        d = json.loads(line)
        qvl[d["name"]] = d
    except (ValueError, KeyError):
        pass
base = 1
one_l = None
for n in (1, 4, 16, 64):
    v, dr = [], []
    for _ in range(reps):
        a, b = decode_once(n, base)
        v.append(a)
        dr.append(b)
        base += n
    med = statistics.median(v)
    one_l = med if n == 1 else one_l
    q = qvl.get(f"batch_decode_tok_s_{n}", {}).get("value", 0)
    print(json.dumps({"name": f"llama_server_decode_tok_s_{n}", "value": round(med, 4),
                      "min": round(min(v), 4), "max": round(max(v), 4), "unit": "tok/s",
                      "seqs": n, "ratio_to_1": round(med / one_l, 2) if one_l else 0,
                      "drain_tok_s": round(statistics.median(dr), 4),
                      "qvl": q, "qvl_over_llama": round(q / med, 3) if med > 0 else 0,
                      "peer": "llama-server -np 16"}))
    print(f"decode, {n:2d} sequences: qvl {q:8.2f} tok/s, llama-server -np 16 {med:8.2f} "
          f"tok/s ({min(v):.2f}..{max(v):.2f}): qvl/llama {q / med if med > 0 else 0:.2f}",
          file=sys.stderr)
