#!/usr/bin/python3
"""Op-level reference fixtures for tests/ops (PyTorch 1.13 CPU, float64 math where torch allows).

Writes tests/fixtures/ops/<case>_<name>.npy (float32 unless stated) and tests/fixtures/ops/README.md.
Inputs are seeded N(0,1) draws; outputs are computed by torch in float64 from those float32 inputs and stored
as float32, so the fixtures are the exact answer up to one f32 rounding. Keep every case tiny (a few KB).
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops")
cases = []


def save(case, **arrays):
    for name, a in arrays.items():
        a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        np.save(os.path.join(OUT, f"{case}_{name}.npy"), np.ascontiguousarray(a))
    cases.append(case)


def rnd(*shape, scale=1.0):
    # f32 draw, then f64 for the math
    return (torch.randn(*shape, dtype=torch.float32) * scale).double()


def act(name, x):
    return {
        "none": lambda t: t,
        "relu": F.relu,
        "silu": F.silu,
        "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "quick_gelu": lambda t: t * torch.sigmoid(1.702 * t),
        "sigmoid": torch.sigmoid,
    }[name](x)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    # conv2d: groups, stride, dilation, asymmetric padding (F.pad, then a padding-free conv), bias, fused SiLU.
    x, w, b = rnd(2, 6, 5, 7), rnd(4, 3, 3, 2), rnd(4)
    y = F.silu(F.conv2d(F.pad(x, (1, 0, 2, 1)), w, b, stride=(2, 1), dilation=(1, 2), groups=2))
    save("conv_a", x=x, w=w, b=b, y=y)  # pads: left 1 right 0 top 2 bottom 1
    x, w = rnd(1, 3, 6, 6), rnd(5, 3, 1, 1)
    save("conv_b", x=x, w=w, y=F.conv2d(x, w))  # 1x1, no bias
    x, w, b = rnd(1, 4, 7, 5), rnd(4, 1, 3, 3), rnd(4)
    save("conv_dw", x=x, w=w, b=b, y=F.relu(F.conv2d(x, w, b, stride=2, padding=1, groups=4)))

    # linear with bias and gelu_tanh; matmul with broadcast batch dims and trans_b.
    x, w, b = rnd(2, 3, 7), rnd(5, 7), rnd(5)
    save("linear", x=x, w=w, b=b, y=act("gelu_tanh", F.linear(x, w, b)))
    a, bb = rnd(2, 1, 3, 4), rnd(3, 4, 5)
    save("matmul", a=a, b=bb, y=0.5 * torch.matmul(a, bb))
    a, bb = rnd(3, 2, 6), rnd(1, 4, 6)
    save("matmul_tb", a=a, b=bb, y=torch.matmul(a, bb.transpose(-1, -2)))

    # activations over a spread of values
    x = torch.linspace(-6, 6, 61, dtype=torch.float64)
    save("act", x=x, **{n: act(n, x) for n in ["relu", "silu", "gelu", "gelu_tanh", "quick_gelu", "sigmoid"]})

    x = rnd(2, 3, 8)
    h, gate = x.chunk(2, dim=-1)  # diffusers GEGLU after its proj
    save("geglu", x=x, y=h * F.gelu(gate))
    x, s = rnd(2, 3, 2, 2), rnd(3)
    save("prelu", x=x, s=s, y=F.prelu(x, s))

    # norms and softmax
    x, g, b = rnd(2, 6, 3, 5, scale=3.0) + 1.5, rnd(6), rnd(6)
    save("group_norm", x=x, g=g, b=b, y=F.silu(F.group_norm(x, 3, g, b, eps=1e-5)))
    x, g, b = rnd(3, 7, scale=2.0) - 1.0, rnd(7), rnd(7)
    save("layer_norm", x=x, g=g, b=b, y=F.layer_norm(x, (7,), g, b, eps=1e-5))
    x, m, v, g, b = rnd(2, 3, 2, 3), rnd(3), rnd(3).abs() + 0.5, rnd(3), rnd(3)
    save("batch_norm", x=x, m=m, v=v, g=g, b=b, y=F.batch_norm(x, m, v, g, b, training=False, eps=1e-3))
    x = rnd(4, 9, scale=10.0)
    x[1, 3] = 80.0  # large values: needs max subtraction in f32
    save("softmax", x=x, y=torch.softmax(x, dim=-1))

    # attention: heads interleaved as diffusers' head_to_batch_dim / transformers' view(B, L, H, D).transpose
    def attn(q, k, v, heads, causal, scale=None):
        bsz, lq, _ = q.shape
        lk = k.shape[1]
        d = q.shape[2] // heads
        dv = v.shape[2] // heads
        qh = q.view(bsz, lq, heads, d).transpose(1, 2)
        kh = k.view(bsz, lk, heads, d).transpose(1, 2)
        vh = v.view(bsz, lk, heads, dv).transpose(1, 2)
        s = qh @ kh.transpose(-1, -2) * (scale if scale else d ** -0.5)
        if causal:
            s = s + torch.full((lq, lk), float("-inf"), dtype=s.dtype).triu(1)
        o = torch.softmax(s, dim=-1) @ vh
        return o.transpose(1, 2).reshape(bsz, lq, heads * dv)

    q, k, v = rnd(2, 5, 12), rnd(2, 7, 12), rnd(2, 7, 18)
    save("attn", q=q, k=k, v=v, y=attn(q, k, v, 3, False))
    q, k, v = rnd(1, 6, 8), rnd(1, 6, 8), rnd(1, 6, 8)
    save("attn_causal", q=q, k=k, v=v, y=attn(q, k, v, 2, True, scale=0.3))

    # spatial
    x = rnd(1, 2, 3, 5)
    save("upsample", x=x, y2=F.interpolate(x, size=(6, 10), mode="nearest"),
         y=F.interpolate(x, size=(7, 4), mode="nearest"))
    x = rnd(1, 2, 5, 7)
    save("maxpool", x=x, y=F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True))
    save("avgpool_incl", x=x, y=F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True))
    save("avgpool_excl", x=x, y=F.avg_pool2d(x, (2, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True,
                                           count_include_pad=False))

    # timestep embeddings, the diffusers 0.29.2 recipe (embeddings.get_timestep_embedding), in float32 as there
    def temb(t, dim, flip, shift, scale=1.0, max_period=10000):
        half = dim // 2
        e = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32)
        e = torch.exp(e / (half - shift))
        e = scale * (t[:, None].float() * e[None, :])
        e = torch.cat([torch.sin(e), torch.cos(e)], dim=-1)
        if flip:
            e = torch.cat([e[:, half:], e[:, :half]], dim=-1)
        if dim % 2 == 1:
            e = F.pad(e, (0, 1, 0, 0))
        return e

    t = torch.tensor([981.0, 1.0, 500.5, 0.0], dtype=torch.float32)
    save("temb_a", t=t, y=temb(t, 320, True, 0.0))
    save("temb_b", t=t, y=temb(t, 7, False, 1.0, scale=2.0))

    ids, table = torch.tensor([[3, 0, 5], [5, 1, 2]], dtype=torch.int64), rnd(6, 4)
    save("embedding", ids=ids, table=table, y=F.embedding(ids, table))

    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# Op fixtures (generated by scripts/gen_op_refs.py; do not edit)\n\n"
                f"torch {torch.__version__}. Inputs: seeded f32 N(0,1) draws; outputs computed by torch in float64 "
                "from those inputs (timestep embeddings in float32 like diffusers), stored as float32.\n"
                "Cases: " + ", ".join(cases) + "\n")


if __name__ == "__main__":
    sys.exit(main())
