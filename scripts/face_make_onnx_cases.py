#!/usr/bin/python3
"""Small ONNX operator cases for tests/face/test_onnx_graph.cpp, exported by torch.onnx (opset 11, as
insightface's models) with the outputs PyTorch computed.

Writes tests/face/data/onnx/<case>.onnx, <case>.in<i>.npy, <case>.out<i>.npy and cases.json (case -> number
of inputs/outputs, op types). Seeded and deterministic. Run: /usr/bin/python3 scripts/face_make_onnx_cases.py
"""
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "face", "data", "onnx")


class TopDown(nn.Module):
    """PAFPN-style top-down step: nearest upsample to the lateral's size (Shape/Gather/Concat/Cast/Resize)."""

    def __init__(self):
        super().__init__()
        self.lat = nn.Conv2d(3, 4, 1)
        self.top = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x):
        lat = self.lat(x)
        top = self.top(x)
        return lat + F.interpolate(top, size=lat.shape[2:], mode="nearest")


class Pools(nn.Module):
    """ResNetV1e avg-down (ceil_mode, count_include_pad=False) and stem max pool, on odd sizes."""

    def __init__(self):
        super().__init__()
        self.avg = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
        self.avg3 = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.max = nn.MaxPool2d(2, 2)
        self.max3 = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)

    def forward(self, x):
        return self.avg(x), self.avg3(x), self.max(x), self.max3(x)


class IBlock(nn.Module):
    """arcface_torch IBasicBlock (bn1 -> conv -> bn2 -> PReLU -> conv(stride) -> bn3, + downsample) and the tail."""

    def __init__(self):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(4, eps=1e-5)
        self.conv1 = nn.Conv2d(4, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6, eps=1e-5)
        self.prelu = nn.PReLU(6)
        self.conv2 = nn.Conv2d(6, 6, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(6, eps=1e-5)
        self.down = nn.Sequential(nn.Conv2d(4, 6, 1, stride=2, bias=False), nn.BatchNorm2d(6, eps=1e-5))
        self.bn_tail = nn.BatchNorm2d(6, eps=1e-5)
        self.fc = nn.Linear(6 * 4 * 4, 10)
        self.features = nn.BatchNorm1d(10, eps=1e-5)

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        out = out + self.down(x)
        out = self.bn_tail(out)
        out = torch.flatten(out, 1)
        return self.features(self.fc(out))


class Head(nn.Module):
    """SCRFD head export form: Scale multiply, sigmoid, permute(2,3,0,1).reshape(-1,C)."""

    def __init__(self):
        super().__init__()
        self.cls = nn.Conv2d(4, 2, 3, padding=1)
        self.reg = nn.Conv2d(4, 8, 3, padding=1)
        self.scale = nn.Parameter(torch.tensor(0.8))

    def forward(self, x):
        cls = self.cls(x).permute(2, 3, 0, 1).reshape(-1, 1).sigmoid()
        reg = (self.reg(x) * self.scale).permute(2, 3, 0, 1).reshape(-1, 4)
        return cls, reg


class Misc(nn.Module):
    """Grouped + dilated conv, Gemm with alpha/beta and an untransposed B, Sub/Div, Slice, dynamic reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2)
        self.b = nn.Parameter(torch.randn(12, 5))
        self.c = nn.Parameter(torch.randn(5))

    def forward(self, x):
        y = torch.relu(self.conv(x))  # [1, 6, H', W']
        y = (y - 0.25) / 1.5
        z = y[:, 1:5:2, :, 1:]  # Slice with a step
        flat = z.reshape(z.shape[0], -1)[:, :12]  # Shape/Gather/Unsqueeze/Concat/Reshape
        g = torch.addmm(self.c, flat, self.b, beta=0.5, alpha=2.0)  # Gemm alpha/beta, B not transposed
        return y, g


CASES = {
    # name: (module, input shape, dynamic axes, further input shapes run through the same exported graph)
    "topdown": (TopDown, (1, 3, 12, 10), {"input.1": {2: "h", 3: "w"}}, [(1, 3, 9, 14), (1, 3, 16, 16)]),
    "pools": (Pools, (1, 3, 7, 9), None, []),
    "iblock": (IBlock, (1, 4, 8, 8), None, []),
    "head": (Head, (1, 4, 5, 6), None, []),
    "misc": (Misc, (1, 4, 9, 11), None, []),
}


def randomize(m, g):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
            mod.weight.data = torch.rand(mod.weight.shape, generator=g) * 0.8 + 0.6
            mod.bias.data = torch.randn(mod.bias.shape, generator=g) * 0.2
            mod.running_mean.data = torch.randn(mod.running_mean.shape, generator=g) * 0.3
            mod.running_var.data = torch.rand(mod.running_var.shape, generator=g) + 0.5
        if isinstance(mod, nn.PReLU):
            mod.weight.data = torch.rand(mod.weight.shape, generator=g) * 0.3 + 0.05


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20240925)
    g = torch.Generator().manual_seed(7)
    manifest = {}
    for name, (cls, in_shape, dyn, more) in CASES.items():
        m = cls().eval()
        randomize(m, g)
        x = torch.randn(in_shape, generator=g)
        path = os.path.join(OUT, name + ".onnx")
        torch.onnx.export(m, (x,), path, opset_version=11, input_names=["input.1"], dynamic_axes=dyn,
                          do_constant_folding=True)
        runs = [x] + [torch.randn(s, generator=g) for s in more]
        n_out = 0
        for r, xr in enumerate(runs):
            with torch.no_grad():
                ys = m(xr)
            ys = ys if isinstance(ys, tuple) else (ys,)
            n_out = len(ys)
            np.save(os.path.join(OUT, f"{name}.run{r}.in0.npy"), xr.numpy())
            for i, y in enumerate(ys):
                np.save(os.path.join(OUT, f"{name}.run{r}.out{i}.npy"), y.numpy())
        model = onnx.load(path)
        ops = sorted({n.op_type for n in model.graph.node})
        manifest[name] = {"runs": len(runs), "outputs": n_out, "ops": ops,
                          "input_names": [i.name for i in model.graph.input if i.name not in
                                          {t.name for t in model.graph.initializer}]}
        print(name, ops)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"generator": "scripts/face_make_onnx_cases.py", "torch": torch.__version__, "opset": 11,
                   "cases": manifest}, f, indent=1)


if __name__ == "__main__":
    main()
