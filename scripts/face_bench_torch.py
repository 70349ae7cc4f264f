#!/usr/bin/python3
"""Reference timings for bench/bench_face.cpp: the PyTorch modules behind the full-width graphs of
scripts/make_full_width_onnx.py (SCRFD-10G-bnkps at 640x640, IResNet100 at 112x112), fp32 CPU, eval mode,
BN folded the way the ONNX export folds it is NOT applied (PyTorch runs the BN layers), so this is a rough
baseline, not an onnxruntime comparison (onnxruntime is not a Debian package).

    /usr/bin/python3 scripts/face_bench_torch.py [--threads N] [--iters 10]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from make_full_width_onnx import SCRFD, IResNet  # noqa: E402


def timeit(fn, iters):
    fn()
    t = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    t.sort()
    return t[len(t) // 2] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    det, rec = SCRFD().eval(), IResNet().eval()
    x640, x112 = torch.randn(1, 3, 640, 640), torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        print(f"torch {torch.__version__}, {a.threads} threads (median of {a.iters})")
        print(f"  SCRFD-10G-bnkps 640x640: {timeit(lambda: det(x640), a.iters):.1f} ms")
        print(f"  IResNet100 112x112:      {timeit(lambda: rec(x112), a.iters):.1f} ms")


if __name__ == "__main__":
    main()
