#!/usr/bin/env python3
"""Assemble the tokenizer benchmark corpus (>= 10 MB of UTF-8) from files found
on a Debian machine, deterministically (sorted walks, fixed seed):

  ~3.4 MB English prose   /usr/share/common-licenses/*, /usr/share/doc/*/copyright
  ~2.5 MB source code     C headers under /usr/include (sorted walk)
  ~3.5 MB translations    msgstr strings of gettext catalogs (.mo) in 22 languages
  ~0.8 MB generated       CJK, kana, Hangul, emoji (ZWJ, flags, skin tones) text

Pieces are cut into ~4 KB chunks at line boundaries and shuffled with a fixed
seed, so every kind of text is spread over the file. Usage:
    bench_tokenizer_corpus.py OUT [MEGABYTES]
Prints one JSON line describing what went in."""
import glob
import json
import os
import random
import struct
import sys

LANGS = ["zh_CN", "zh_TW", "ja", "ko", "ru", "uk", "ar", "fa", "he", "hi", "bn", "ta", "th",
         "vi", "el", "de", "fr", "es", "pl", "pt_BR", "tr", "km"]


def read_text(path, limit):
    try:
        with open(path, "rb") as f:
            b = f.read(limit + 1)
        if len(b) > limit:  # cut: drop a character split by the cut
            return b[:limit].decode("utf-8", "ignore") if b.decode("utf-8", "ignore") else None
        return b.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def take(paths, budget):
    out, n = [], 0
    for p in paths:
        if n >= budget:
            break
        t = read_text(p, budget - n)
        if t is None:
            continue
        out.append(t)
        n += len(t.encode())
    return "".join(out), n


def prose(budget):
    paths = sorted(glob.glob("/usr/share/common-licenses/*"))
    paths += sorted(glob.glob("/usr/share/doc/*/copyright"))
    return take([p for p in paths if os.path.isfile(p)], budget)


def code(budget):
    paths = []
    for root, dirs, files in os.walk("/usr/include"):
        dirs.sort()
        paths += [os.path.join(root, f) for f in sorted(files) if f.endswith(".h")]
    return take(paths, budget)


def mo_strings(path):
    with open(path, "rb") as f:
        d = f.read()
    if len(d) < 28:
        return []
    magic = struct.unpack("<I", d[:4])[0]
    e = "<" if magic == 0x950412DE else ">"
    n, _, toff = struct.unpack(e + "III", d[8:20])
    out = []
    for i in range(n):
        ln, off = struct.unpack(e + "II", d[toff + 8 * i: toff + 8 * i + 8])
        try:
            s = d[off: off + ln].decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.extend(x for x in s.split("\0") if x.strip())
    return out


def translations(budget):
    per = budget // len(LANGS)
    parts, total = [], 0
    for lang in LANGS:
        n = 0
        for p in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
            if n >= per:
                break
            try:
                strs = mo_strings(p)
            except (OSError, struct.error):
                continue
            for s in strs:
                if n >= per:
                    break
                parts.append(s + "\n")
                n += len(s.encode()) + 1
        total += n
    return "".join(parts), total


def generated(budget, rng):
    cjk = [chr(c) for c in range(0x4E00, 0x9FA6)]
    kana = [chr(c) for c in range(0x3041, 0x3097)] + [chr(c) for c in range(0x30A1, 0x30FB)]
    hangul = [chr(c) for c in range(0xAC00, 0xD7A4)]
    emoji = [chr(c) for c in range(0x1F600, 0x1F650)] + [chr(c) for c in range(0x1F300, 0x1F3F0)]
    zwj = ["\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466", "\U0001F3F3\uFE0F\u200D\U0001F308",
           "\U0001F469\U0001F3FD\u200D\U0001F4BB", "\U0001F1E9\U0001F1EA", "\U0001F1EF\U0001F1F5", "1\uFE0F\u20E3"]
    punct = ["\u3002", "\uFF0C", "\u3001", "\uFF01", "\uFF1F", " ", "\n"]
    out, n = [], 0
    while n < budget:
        kind = rng.randrange(4)
        if kind == 0:
            s = "".join(rng.choice(cjk) for _ in range(rng.randrange(4, 30))) + rng.choice(punct)
        elif kind == 1:
            s = "".join(rng.choice(kana) for _ in range(rng.randrange(3, 20))) + rng.choice(punct)
        elif kind == 2:
            s = "".join(rng.choice(hangul) for _ in range(rng.randrange(2, 6))) + " "
        else:
            s = "".join(rng.choice(emoji + zwj) for _ in range(rng.randrange(1, 4))) + " "
        out.append(s)
        n += len(s.encode())
    return "".join(out), n


def chunks(text, size=4096):
    out, cur, n = [], [], 0
    for line in text.splitlines(keepends=True):
        cur.append(line)
        n += len(line)
        if n >= size:
            out.append("".join(cur))
            cur, n = [], 0
    if cur:
        out.append("".join(cur))
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    mb = float(sys.argv[2]) if len(sys.argv) > 2 else 10.5
    total = int(mb * 1e6)
    rng = random.Random(20240601)
    parts = {
        "prose": prose(int(total * 0.33)),
        "code": code(int(total * 0.24)),
        "translations": translations(int(total * 0.34)),
    }
    have = sum(n for _, n in parts.values())
    parts["generated"] = generated(max(total - have, int(total * 0.08)), rng)
    pieces = []
    for t, _ in parts.values():
        pieces += chunks(t)
    rng.shuffle(pieces)
    data = "".join(pieces).encode()
    with open(sys.argv[1], "wb") as f:
        f.write(data)
    print(json.dumps({"corpus": sys.argv[1], "bytes": len(data),
                      "parts": {k: n for k, (_, n) in parts.items()}}))


main()
