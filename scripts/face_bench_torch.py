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
    """Median wall and process-CPU milliseconds (CPU time is the fairer figure on a loaded machine)."""
    fn()
    wall, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    wall.sort()
    cpu.sort()
    return f"{wall[len(wall) // 2] * 1e3:.1f} ms wall, {cpu[len(cpu) // 2] * 1e3:.1f} ms CPU"


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
        print(f"  SCRFD-10G-bnkps 640x640: {timeit(lambda: det(x640), a.iters)}")
        print(f"  IResNet100 112x112:      {timeit(lambda: rec(x112), a.iters)}")


if __name__ == "__main__":
    main()
