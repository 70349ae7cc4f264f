#!/usr/bin/python3
"""Reference arrays for the ControlNet condition image resize (tests/models/test_controlnet_image.cpp), written
to tests/models/data/:

  control_resize_in_<i>.npy    uint8 [H, W, 3] input images (numpy seed 7; smooth gradients plus noise, so the
                               Lanczos overshoot and clipping are exercised)
  control_resize_out_<i>.npy   uint8 [h, w, 3] = np.array(PIL.Image.fromarray(in).resize((w, h), Image.LANCZOS))

diffusers 0.29.2's control image processor (VaeImageProcessor(do_normalize=False), resample "lanczos") resizes a
PIL condition image exactly this way before dividing by 255. Needs Debian's python3-pil (Pillow 9.4) and numpy.

Run: /usr/bin/python3 scripts/make_control_image_refs.py   (from the repository root; deterministic)
"""
import os

import numpy as np
import PIL
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "models", "data")

# (in_w, in_h, out_w, out_h): up, down, mixed, one axis only, strong downscale, 1-pixel edge cases
CASES = [(37, 23, 64, 48), (100, 80, 40, 56), (64, 64, 64, 40), (50, 30, 72, 30), (160, 120, 24, 16),
         (1, 5, 3, 2), (17, 1, 8, 4)]


def main():
    rng = np.random.default_rng(7)
    os.makedirs(OUT, exist_ok=True)
    for i, (iw, ih, ow, oh) in enumerate(CASES):
        yy, xx = np.mgrid[0:ih, 0:iw]
        base = np.stack([255 * xx / max(iw - 1, 1), 255 * yy / max(ih - 1, 1), 127 + 100 * np.sin(xx + yy)], -1)
        img = np.clip(base + rng.normal(0, 40, size=base.shape), 0, 255).astype(np.uint8)
        img[ih // 2, :, :] = 255 * (np.arange(iw)[:, None] % 2)  # a hard edge row (overshoot -> clipping)
        out = np.array(Image.fromarray(img, "RGB").resize((ow, oh), Image.LANCZOS))
        np.save(os.path.join(OUT, f"control_resize_in_{i}.npy"), img)
        np.save(os.path.join(OUT, f"control_resize_out_{i}.npy"), out)
    print(f"wrote {len(CASES)} cases to {OUT} (Pillow {PIL.__version__})")


if __name__ == "__main__":
    main()
