#!/usr/bin/env python3
"""One streamed chat through an OpenAI-compatible server (bench_http.sh):
prints one JSON line with the client's clock (time to the first content
chunk, decode tokens/s from the first to the last content chunk) and the
server's own timings when it reports them (qvl-http and llama-server both
do, under llama-server's names).

Usage: bench_http_client.py URL PROMPT MAX_TOKENS"""
import http.client
import json
import sys
import time
import urllib.parse

url, prompt, ntok = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(url)
body = json.dumps({
    "model": "qvl", "messages": [{"role": "user", "content": prompt}],
    "max_tokens": ntok, "temperature": 0, "ignore_eos": True, "stream": True,
    "stream_options": {"include_usage": True},
})
c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
t0 = time.perf_counter()
c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
r = c.getresponse()
if r.status != 200:
    sys.exit(f"bench_http_client: {url}: HTTP {r.status}: {r.read()[:300]!r}")
t_first = t_last = None
chunks, timings, usage = 0, None, None
for line in r:
    line = line.strip()
    if not line.startswith(b"data: "):
        continue
    data = line[6:]
    if data == b"[DONE]":
        break
    ev = json.loads(data)
    if ev.get("timings"):
        timings = ev["timings"]
    if ev.get("usage"):
        usage = ev["usage"]
    for ch in ev.get("choices", []):
        if ch.get("delta", {}).get("content"):
            now = time.perf_counter()
            t_first = t_first or now
            t_last = now
            chunks += 1
n = (usage or {}).get("completion_tokens") or chunks
out = {
    "ttft_s": (t_first - t0) if t_first else None,
    "decode_tok_s": (chunks - 1) / (t_last - t_first) if chunks > 1 and t_last > t_first else 0,
    "content_chunks": chunks, "completion_tokens": n,
}
if timings:
    # what the server spent before the first token: queue + prefill
    srv = (timings.get("queue_ms") or 0) + (timings.get("prompt_ms") or 0)
    out["server_ttft_s"] = srv / 1e3
    out["server_decode_tok_s"] = timings.get("predicted_per_second")
    if "qvl_http_ttft_ms" in timings:
        out["bridge_ttft_ms"] = timings["qvl_http_ttft_ms"]
        for k in ("submit", "wake", "write"):
            if f"qvl_http_{k}_ms" in timings:
                out[f"bridge_{k}_ms"] = timings[f"qvl_http_{k}_ms"]
print(json.dumps(out))
