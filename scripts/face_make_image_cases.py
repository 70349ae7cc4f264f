#!/usr/bin/python3
"""Small image-decoding cases for tests/face (Pillow is the reference decoder).

Writes tests/face/data/images/*.{jpg,png,webp} and tests/face/data/images/expected.json holding, for each
file, the size and sha256 of what Pillow gives for
    ImageOps.exif_transpose(Image.open(p)).convert('RGB')      ("rgb_sha256", EXIF orientation applied)
    Image.open(p).convert('RGB')                               ("rgb_sha256_no_exif")
Deterministic (seeded). Run with Debian's python3 (Pillow 9.4): /usr/bin/python3 scripts/face_make_image_cases.py
"""
import hashlib
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "face", "data", "images")


def smooth_rgb(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], -1)
    img = img + rng.integers(-20, 21, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png_bytes(arr, color_type, bit_depth, extra_chunks=(), palette=None, trns=None, width=None):
    h, w = arr.shape[:2]
    w = width or w
    dt = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\0" + arr[y].astype(dt).tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    for t, d in extra_chunks:
        out += chunk(t, d)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def exif_orientation_block(orientation, little=True):
    e = "<" if little else ">"
    head = (b"II" if little else b"MM") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0)
    return head + ifd + struct.pack(e + "I", 0)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}

    rgb = smooth_rgb(23, 37, 1)
    # Baseline 4:2:0 JPEG, progressive 4:4:4 JPEG, gray JPEG, CMYK JPEG (Pillow writes Adobe-inverted CMYK).
    b = io.BytesIO(); Image.fromarray(rgb).save(b, "JPEG", quality=90); files["rgb420.jpg"] = b.getvalue()
    b = io.BytesIO(); Image.fromarray(rgb).save(b, "JPEG", quality=85, subsampling=0, progressive=True)
    files["rgb444_progressive.jpg"] = b.getvalue()
    b = io.BytesIO(); Image.fromarray(rgb[..., 1]).save(b, "JPEG", quality=90); files["gray.jpg"] = b.getvalue()
    b = io.BytesIO(); Image.fromarray(rgb).convert("CMYK").save(b, "JPEG", quality=90)
    files["cmyk.jpg"] = b.getvalue()
    # JPEG with EXIF orientation 6 (rotate 90 degrees clockwise to display) and 3 (big-endian TIFF).
    for o, little in ((6, True), (3, False)):
        exif = b"Exif\0\0" + exif_orientation_block(o, little)
        b = io.BytesIO(); Image.fromarray(rgb).save(b, "JPEG", quality=90, exif=exif)
        files[f"exif{o}.jpg"] = b.getvalue()

    # PNGs: 16-bit RGB, 16-bit RGBA, 8-bit gray+alpha, 4-bit gray, palette with tRNS, interlaced via Pillow,
    # and an RGB PNG with an eXIf chunk (orientation 8).
    r16 = (smooth_rgb(11, 13, 2).astype(np.uint16) * 257 + np.arange(13, dtype=np.uint16)[None, :, None] * 3)
    files["rgb16.png"] = png_bytes(r16, 2, 16)
    rgba16 = np.concatenate([r16, np.full((11, 13, 1), 30000, np.uint16)], -1)
    files["rgba16.png"] = png_bytes(rgba16, 6, 16)
    la = np.stack([smooth_rgb(9, 10, 3)[..., 0], np.arange(90, dtype=np.uint8).reshape(9, 10)], -1)
    files["gray_alpha.png"] = png_bytes(la, 4, 8)
    g4 = (np.arange(8 * 10).reshape(8, 10) % 16).astype(np.uint8)
    packed = np.zeros((8, 5), np.uint8)
    packed[:] = (g4[:, 0::2] << 4) | g4[:, 1::2]
    files["gray4.png"] = png_bytes(packed, 0, 4, width=10)
    pal = np.array([[i * 13 % 256, i * 29 % 256, i * 71 % 256] for i in range(16)])
    idx = (np.arange(7 * 9).reshape(7, 9) % 16).astype(np.uint8)
    files["palette_trns.png"] = png_bytes(idx, 3, 8, palette=pal, trns=bytes(range(0, 160, 10)))
    b = io.BytesIO(); Image.fromarray(smooth_rgb(17, 19, 4)).save(b, "PNG", interlace=1)  # Pillow ignores it
    files["rgb.png"] = b.getvalue()
    files["exif8.png"] = png_bytes(smooth_rgb(5, 7, 5), 2, 8, extra_chunks=[(b"eXIf", exif_orientation_block(8))])

    # WebP: lossless RGB and lossy with alpha.
    b = io.BytesIO(); Image.fromarray(smooth_rgb(15, 21, 6)).save(b, "WEBP", lossless=True)
    files["lossless.webp"] = b.getvalue()
    rgba = np.concatenate([smooth_rgb(15, 21, 7), np.full((15, 21, 1), 128, np.uint8)], -1)
    b = io.BytesIO(); Image.fromarray(rgba, "RGBA").save(b, "WEBP", quality=80)
    files["lossy_alpha.webp"] = b.getvalue()

    expected = {}
    for name, data in sorted(files.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        plain = np.ascontiguousarray(np.array(im.convert("RGB")))
        im = Image.open(io.BytesIO(data))
        tr = np.ascontiguousarray(np.array(ImageOps.exif_transpose(im).convert("RGB")))
        expected[name] = {
            "pil_mode": Image.open(io.BytesIO(data)).mode,
            "width": tr.shape[1], "height": tr.shape[0],
            "rgb_sha256": hashlib.sha256(tr.tobytes()).hexdigest(),
            "rgb_sha256_no_exif": hashlib.sha256(plain.tobytes()).hexdigest(),
        }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"generator": "scripts/face_make_image_cases.py", "pillow": Image.__version__,
                   "files": expected}, f, indent=1)
    print("wrote", len(files), "images to", OUT)


if __name__ == "__main__":
    main()
