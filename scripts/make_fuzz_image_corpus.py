#!/usr/bin/python3
"""Seed corpus for tests/fuzz/fuzz_image.cpp: tiny images (12x9) in every format and mode the decoder handles
(PNG RGB / gray / palette / RGBA, JPEG baseline / gray / CMYK / progressive, WebP lossy / lossless) and EXIF
orientation in JPEG, PNG and WebP. Written with Pillow (Debian python3-pil).

  /usr/bin/python3 scripts/make_fuzz_image_corpus.py [OUT]   (default tests/fuzz/corpus/image)
"""
import os
import sys

from PIL import Image


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fuzz",
                                                               "corpus", "image")
    os.makedirs(out, exist_ok=True)
    im = Image.new("RGB", (12, 9))
    for y in range(9):
        for x in range(12):
            im.putpixel((x, y), (x * 20, y * 25, (x * y) % 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW
    cases = [
        ("rgb.png", im, "PNG", {}), ("gray.png", im.convert("L"), "PNG", {}),
        ("palette.png", im.convert("P"), "PNG", {}), ("rgba.png", im.convert("RGBA"), "PNG", {}),
        ("exif6.png", im, "PNG", {"exif": exif.tobytes()}),
        ("rgb.jpg", im, "JPEG", {"quality": 80}), ("gray.jpg", im.convert("L"), "JPEG", {}),
        ("cmyk.jpg", im.convert("CMYK"), "JPEG", {}), ("progressive.jpg", im, "JPEG", {"progressive": True}),
        ("exif6.jpg", im, "JPEG", {"exif": exif.tobytes()}),
        ("rgb.webp", im, "WEBP", {"quality": 80}), ("lossless.webp", im, "WEBP", {"lossless": True}),
        ("exif6.webp", im, "WEBP", {"exif": exif.tobytes()}),
    ]
    for name, img, fmt, kw in cases:
        img.save(os.path.join(out, name), fmt, **kw)


if __name__ == "__main__":
    main()
