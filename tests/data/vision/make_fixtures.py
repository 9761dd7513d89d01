#!/usr/bin/env python3
"""Writes the small image fixtures of tests/vis_image.c and tests/vis_preprocess.c.

Run ONCE (python3 + numpy + Pillow from Debian); the outputs are committed, the
tests never run this. Every expected output here comes from Pillow itself
(decode, convert("RGB"), ImageOps.exif_transpose, Image.resize BICUBIC), so the
tests compare qvl against the reference library, not against qvl.

  python3 make_fixtures.py [OUTDIR]    (default: the directory of this script)
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20251122)
manifest = {"decode": [], "bad": [], "resize": []}


def w(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def png_bytes(im, **kw):
    b = io.BytesIO()
    im.save(b, format="PNG", **kw)
    return b.getvalue()


def expect_decode(name, data, orient_note=""):
    """Record what PIL gives after exif_transpose + convert('RGB')."""
    w(name, data)
    im = Image.open(io.BytesIO(data))
    im = ImageOps.exif_transpose(im).convert("RGB")
    arr = np.asarray(im, dtype=np.uint8)
    w(name + ".rgb", arr.tobytes())
    manifest["decode"].append({"file": name, "w": im.size[0], "h": im.size[1], "note": orient_note})


# ---- decodable images: modes PIL converts to RGB -------------------------
base = rng.integers(0, 256, size=(23, 37, 3), dtype=np.uint8)
rgb = Image.fromarray(base, "RGB")
expect_decode("rgb.png", png_bytes(rgb))
expect_decode("gray.png", png_bytes(rgb.convert("L")))
expect_decode("palette.png", png_bytes(rgb.convert("P", palette=Image.ADAPTIVE, colors=16)))
rgba = np.concatenate([base, rng.integers(0, 256, size=(23, 37, 1), dtype=np.uint8)], axis=2)
expect_decode("rgba.png", png_bytes(Image.fromarray(rgba, "RGBA")))
expect_decode("gray_alpha.png", png_bytes(Image.fromarray(rgba, "RGBA").convert("LA")))

# EXIF orientations 1..8 on a JPEG with four distinct quadrants
q = np.zeros((24, 40, 3), dtype=np.uint8)
q[:12, :20] = (230, 20, 20)
q[:12, 20:] = (20, 230, 20)
q[12:, :20] = (20, 20, 230)
q[12:, 20:] = (230, 230, 20)
qim = Image.fromarray(q, "RGB")
for o in range(1, 9):
    ex = Image.Exif()
    ex[0x0112] = o
    b = io.BytesIO()
    qim.save(b, format="JPEG", quality=95, exif=ex.tobytes())
    expect_decode("exif_%d.jpg" % o, b.getvalue(), "orientation %d" % o)
# big-endian TIFF header inside the Exif block
b = io.BytesIO()
qim.save(b, format="JPEG", quality=95)
j = b.getvalue()
tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + \
    struct.pack(">HHI", 0x0112, 3, 1) + struct.pack(">HH", 6, 0) + struct.pack(">I", 0)
app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
expect_decode("exif_6_be.jpg", j[:2] + app1 + j[2:], "orientation 6, big-endian")
gray_jpg = io.BytesIO()
rgb.convert("L").save(gray_jpg, format="JPEG", quality=90)
expect_decode("gray.jpg", gray_jpg.getvalue())

# ---- bad images: each must be a clear error ------------------------------
good = png_bytes(rgb)


def bad(name, data, why):
    w(name, data)
    manifest["bad"].append({"file": name, "why": why})


bad("empty.png", b"", "0-byte file")
bad("truncated.png", good[: len(good) // 2], "PNG cut in the middle of IDAT")
crc = bytearray(good)
crc[29] ^= 0xFF  # IHDR CRC (8 signature + 4 len + 4 type + 13 data = bytes 29..32)
bad("badcrc_ihdr.png", bytes(crc), "wrong IHDR CRC")
crc = bytearray(good)
idat = good.index(b"IDAT")
ln = struct.unpack(">I", good[idat - 4:idat])[0]
crc[idat + 4 + ln] ^= 0x55
bad("badcrc_idat.png", bytes(crc), "wrong IDAT CRC")


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


sig = b"\x89PNG\r\n\x1a\n"
ihdr = struct.pack(">IIBBBBB", 65536, 32768, 8, 2, 0, 0, 0)  # 2^31 pixels, RGB8
bad("huge_2g.png", sig + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) +
    chunk(b"IEND", b""), "PNG header claiming 65536x32768 = 2^31 pixels")
ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)
bad("zero_width.png", sig + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""), "PNG width 0")
bad("not_an_image.png", b"hello, world\n" * 4, "text")
# JPEG with its SOF dimensions replaced
jb = bytearray(io.BytesIO(gray_jpg.getvalue()).getvalue())
sof = jb.index(b"\xff\xc0")
jz = bytearray(jb)
jz[sof + 5:sof + 9] = struct.pack(">HH", 0, 0)
bad("bogus_dims_zero.jpg", bytes(jz), "JPEG SOF 0x0")
jh = bytearray(jb)
jh[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
bad("bogus_dims_huge.jpg", bytes(jh), "JPEG SOF 65000x65000 (4.2 Gpx) with 23x37 of data")
bad("truncated.jpg", gray_jpg.getvalue()[: len(gray_jpg.getvalue()) // 2], "JPEG cut in half")
# valid files whose size HF refuses (sides below 32, aspect ratio above 200)
w("tiny_1x1.png", png_bytes(Image.new("RGB", (1, 1), (1, 2, 3))))
w("wide_100000x1.png", png_bytes(Image.new("RGB", (100000, 1), (9, 9, 9))))
w("wide_6432x32.png", png_bytes(Image.new("RGB", (6432, 32), (9, 9, 9))))
manifest["preprocess_errors"] = [
    {"file": "tiny_1x1.png", "why": "sides below 32"},
    {"file": "wide_100000x1.png", "why": "height 1 below 32, aspect 100000"},
    {"file": "wide_6432x32.png", "why": "aspect ratio 201 > 200"},
]

# ---- Pillow BICUBIC resize cases (source random RGB, expected from PIL) --
for (sw, sh, dw, dh) in [(37, 23, 64, 96), (37, 23, 5, 3), (150, 100, 32, 64), (33, 65, 128, 96),
                         (97, 61, 160, 96), (200, 31, 199, 33), (45, 45, 45, 90)]:
    src = rng.integers(0, 256, size=(sh, sw, 3), dtype=np.uint8)
    name = "resize_%dx%d_%dx%d" % (sw, sh, dw, dh)
    w(name + ".src.rgb", src.tobytes())
    dst = Image.fromarray(src, "RGB").resize((dw, dh), resample=Image.BICUBIC, reducing_gap=None)
    w(name + ".pil.rgb", np.asarray(dst, dtype=np.uint8).tobytes())
    manifest["resize"].append({"name": name, "sw": sw, "sh": sh, "dw": dw, "dh": dh})

with open(os.path.join(out, "fixtures.json"), "w") as f:
    json.dump(manifest, f, indent=1)
    f.write("\n")
print("wrote fixtures to", out)
