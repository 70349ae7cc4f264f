#!/usr/bin/python3
"""One SD1.5 UNet step (batch 2 = CFG, 4x64x64 latents, 77x768 context, t=500): arc2face.cpp vs PyTorch, same
machine, same run. Prints each time, ours/torch, and the peak RSS of each process.

PyTorch side: scripts/torch_diffusers_mini.py's UNet2DConditionModel (a faithful re-implementation of diffusers
0.29.2, same op sequence, diffusers' unfused baddbmm + softmax + bmm attention as on torch < 2; diffusers cannot be
installed here) with the real SD1.5 config, random weights, torch.no_grad, all cores, NCHW or channels_last
(whichever is faster is reported), f32; bf16 as diffusers runs it with torch_dtype=torch.bfloat16 (weights and
activations bf16).
Ours: build/bin/a2f_bench_unet (cpu backend), one process per dtype (so its peak RSS is per dtype).
Both sides: one warm-up step, then the best of --iters single steps (the machine may be shared).

Run from the repository root after building a2f_bench_unet (Release):
  /usr/bin/python3 bench/compare_torch_unet.py [--bin build/bin/a2f_bench_unet] [--iters 3] [--skip-ours]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import torch_diffusers_mini as tdm  # noqa: E402

SD15 = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}


def run_ours(binary, dtype, iters):
    # GNU time reports the peak RSS of this one child (getrusage(RUSAGE_CHILDREN) is a max over all children).
    cmd = ["/usr/bin/time", "-f", "A2F_MAXRSS_KB=%M", binary, f"--benchmark_filter=/{dtype}/",
           f"--benchmark_repetitions={iters}", "--benchmark_format=json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr}")
    rss_kb = float("nan")
    for line in p.stderr.splitlines():
        if line.startswith("A2F_MAXRSS_KB="):
            rss_kb = float(line.split("=", 1)[1])
    rep = json.loads(p.stdout)
    runs = [b for b in rep["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    if not runs:
        raise RuntimeError(f"{binary} ran no benchmark for {dtype} (is the cpu backend built?)")
    ms = min(b["real_time"] for b in runs)  # ms per step (one step per repetition), best repetition
    return ms / 1000.0, rss_kb / 1024.0


def time_torch(unet, x, t, ehs, iters, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    unet = unet.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    with torch.no_grad():
        unet(x, t, ehs)  # warm-up
        best = float("inf")
        for _ in range(iters):
            t0 = time.perf_counter()
            unet(x, t, ehs)
            best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "a2f_bench_unet"))
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--skip-bf16", action="store_true")
    ap.add_argument("--layouts", choices=["both", "nchw", "channels_last"], default="both")
    a = ap.parse_args()

    ours = {}
    if not a.skip_ours:
        for dt in ["f32"] + ([] if a.skip_bf16 else ["bf16"]):
            ours[dt] = run_ours(a.bin, dt, a.iters)
            print(f"ours  {dt:4s}: {ours[dt][0]:.3f} s/step, peak RSS {ours[dt][1]:.0f} MiB", flush=True)

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    unet = tdm.UNet2DConditionModel(SD15).eval()
    x = torch.randn(2, 4, 64, 64)
    t = torch.tensor(500)
    ehs = torch.randn(2, 77, 768)
    res = {}
    layouts = (False, True) if a.layouts == "both" else ((True,) if a.layouts == "channels_last" else (False,))
    for cl in layouts:
        res[("f32", cl)] = time_torch(unet, x, t, ehs, a.iters, cl)
        print(f"torch f32 {'channels_last' if cl else 'NCHW'}: {res[('f32', cl)]:.3f} s/step", flush=True)
    if not a.skip_bf16:
        unet = unet.to(torch.bfloat16)
        x, ehs = x.to(torch.bfloat16), ehs.to(torch.bfloat16)
        for cl in layouts:
            try:
                res[("bf16", cl)] = time_torch(unet, x, t, ehs, a.iters, cl)
                print(f"torch bf16 {'channels_last' if cl else 'NCHW'}: {res[('bf16', cl)]:.3f} s/step", flush=True)
            except Exception as e:  # noqa: BLE001
                print(f"torch bf16 failed: {e}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, peak RSS {rss:.0f} MiB")
    for dt, (sec, mib) in ours.items():
        cands = [v for (d, _), v in res.items() if d == dt]
        if cands:
            best = min(cands)
            print(f"{dt}: ours {sec:.3f} s, torch {best:.3f} s (best layout) -> ours/torch = {sec / best:.2f}")


if __name__ == "__main__":
    main()
