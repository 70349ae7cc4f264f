#!/usr/bin/python3
"""Reference for arc2face::sample_identities (include/arc2face/dataset.h), computed with PyTorch:

    g = torch.Generator().manual_seed(seed)
    repeat: v = torch.randn(512, generator=g)               # float32, one draw after another
            u = (v.double() / v.double().norm()).float()    # unit vector, norm in float64
            accept u if max cosine (float64) to the accepted ones <= max_cosine (always when max_cosine >= 1)

Writes tests/dataset/data/sampled_<name>.npy (float32 [N, 512]) and sampled.json (the cases, the number of
rejected candidates, and the smallest |cosine - max_cosine| seen, which must stay far above float rounding so
that the C++ decisions cannot differ from these).

    /usr/bin/python3 scripts/dataset_sample_identities.py
"""
import json
import os

import numpy as np
import torch

CASES = [
    # name, seed, count, max_cosine
    ("seed7_n16_c0.08", 7, 16, 0.08),
    ("seed0_n5_nocheck", 0, 5, 1.0),
    ("seed123_n8_default", 123, 8, 0.3),
]


def sample(seed, count, max_cosine):
    g = torch.Generator().manual_seed(seed)
    accepted, rejected, margin = [], 0, float("inf")
    while len(accepted) < count:
        v = torch.randn(512, generator=g).double()
        u = (v / v.norm()).float()
        if max_cosine < 1.0 and accepted:
            a = torch.stack(accepted).double()
            cos = (a @ u.double()).numpy()
            margin = min(margin, float(np.min(np.abs(cos - max_cosine))))
            if cos.max() > max_cosine:
                rejected += 1
                continue
        accepted.append(u)
    return torch.stack(accepted).numpy().astype(np.float32), rejected, margin


def main():
    out = os.path.join(os.path.dirname(__file__), "..", "tests", "dataset", "data")
    os.makedirs(out, exist_ok=True)
    index = {"torch": torch.__version__, "cases": []}
    for name, seed, count, max_cos in CASES:
        ids, rejected, margin = sample(seed, count, max_cos)
        np.save(os.path.join(out, f"sampled_{name}.npy"), ids)
        index["cases"].append({"name": name, "seed": seed, "count": count, "max_cosine": max_cos,
                               "rejected": rejected, "min_margin": margin if margin != float("inf") else None})
        print(name, "rejected", rejected, "min margin", margin)
    with open(os.path.join(out, "sampled.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
