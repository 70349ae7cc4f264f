#!/usr/bin/python3
"""Full-width SCRFD-10G-bnkps and IResNet100 ONNX graphs with seeded random weights, exported the way
insightface exported its release files, plus the outputs PyTorch computes for fixed inputs.

    /usr/bin/python3 scripts/make_full_width_onnx.py --out DIR

DIR receives an antelopev2-style folder (so it can be passed as `arc2face embed --antelope DIR` or to
bench_face):
  scrfd_10g_bnkps.onnx   SCRFD-10G-bnkps topology (insightface detection/scrfd/configs/scrfd/scrfd_10g_bnkps.py):
                         ResNetV1e backbone (deep stem 28/28/56, BasicBlock stages (3,4,2,3), planes
                         56/88/88/224, avg-down shortcuts), PAFPN neck 56 wide, SCRFD head (3 stacked
                         conv3x3+BN+ReLU 80 wide per stride, not shared; cls 2 / reg 8 x Scale / kps 20).
                         Exported like tools/scrfd2onnx.py before Oct 2021: opset 11, input 'input.1'
                         [1, 3, '?', '?'], BN folded (eval export), outputs scores s8/s16/s32, bbox, kps as
                         permute(2,3,0,1).reshape(-1, C), scores sigmoided. (No onnxsim: torch's constant folding.)
  arcface.onnx           arcface_torch iresnet100 (layers [3,13,30,3], 64..512, fc 25088->512, BatchNorm1d
                         features with weight 1) exported like recognition/arcface_torch/torch2onnx.py: opset 11,
                         input 'input.1' ['None', 3, 112, 112], BN folded where it follows a conv.
  scrfd_in_<H>x<W>.npy, scrfd_out_<H>x<W>_<i>.npy   inputs and PyTorch outputs (graph order), two sizes
  arcface_in.npy, arcface_out.npy
  manifest.json          version, seeds, shapes, parameter counts

BatchNorm running statistics are calibrated on a random batch (so activations stay O(1) through the depth),
then perturbed; the detector is calibrated on the face fixture photos (tests/fixtures/face/images, letterboxed
to 640) and its cls biases shifted so that ~10 anchors per stride score >= 0.5 on them (as a trained detector
finds a handful of faces, not thousands). Exits with status 77 when torch or onnx is missing (tests treat that as "skip").
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

VERSION = 6

try:
    import numpy as np
    import onnx
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    print(f"make_full_width_onnx.py: {e}; skipping", file=sys.stderr)
    sys.exit(77)


def conv_bn(cin, cout, k, s=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, 1, relu=False)
        self.down = None
        if stride != 1 or cin != cout:  # ResNetV1d avg-down shortcut
            pool = [nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)] if stride != 1 else []
            self.down = nn.Sequential(*pool, conv_bn(cin, cout, 1, 1, relu=False))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return F.relu(self.conv2(self.conv1(x)) + idt)


class Scale(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(v)))

    def forward(self, x):
        return x * self.scale


class SCRFD(nn.Module):
    def __init__(self, stem=(28, 28, 56), planes=(56, 88, 88, 224), blocks=(3, 4, 2, 3), neck=56, feat=80):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, stem[0], 3, 2), conv_bn(stem[0], stem[1], 3), conv_bn(stem[1], stem[2], 3),
                                  nn.MaxPool2d(2, 2))
        layers, cin = [], stem[2]
        for i, (p, n) in enumerate(zip(planes, blocks)):
            stage = [BasicBlock(cin, p, 1 if i == 0 else 2)] + [BasicBlock(p, p, 1) for _ in range(n - 1)]
            layers.append(nn.Sequential(*stage))
            cin = p
        self.layers = nn.ModuleList(layers)
        ins = planes[1:]
        self.lateral = nn.ModuleList([nn.Conv2d(c, neck, 1) for c in ins])
        self.fpn = nn.ModuleList([nn.Conv2d(neck, neck, 3, 1, 1) for _ in ins])
        self.down = nn.ModuleList([nn.Conv2d(neck, neck, 3, 2, 1) for _ in ins[1:]])
        self.pafpn = nn.ModuleList([nn.Conv2d(neck, neck, 3, 1, 1) for _ in ins[1:]])
        self.stacked = nn.ModuleList(
            [nn.Sequential(conv_bn(neck, feat, 3), conv_bn(feat, feat, 3), conv_bn(feat, feat, 3)) for _ in range(3)])
        self.cls = nn.ModuleList([nn.Conv2d(feat, 2, 3, 1, 1) for _ in range(3)])
        self.reg = nn.ModuleList([nn.Conv2d(feat, 8, 3, 1, 1) for _ in range(3)])
        self.kps = nn.ModuleList([nn.Conv2d(feat, 20, 3, 1, 1) for _ in range(3)])
        self.scales = nn.ModuleList([Scale(v) for v in (0.8463594, 0.8996264, 1.081209)])

    def levels(self, x):
        """Backbone + PAFPN: the three feature maps the head runs on (strides 8, 16, 32)."""
        x = self.stem(x)
        feats = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i >= 1:
                feats.append(x)
        lat = [l(f) for l, f in zip(self.lateral, feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:], mode="nearest")
        inter = [f(l) for f, l in zip(self.fpn, lat)]
        for i in range(len(inter) - 1):
            inter[i + 1] = inter[i + 1] + self.down[i](inter[i])
        return [inter[0]] + [p(t) for p, t in zip(self.pafpn, inter[1:])]

    def tune_cls_bias(self, x, per_image=10.0):
        """Shifts each stride's cls bias so that about `per_image` anchors per image score >= 0.5 (random
        weights otherwise saturate the sigmoid and 'detect' thousands of faces, unlike a trained model)."""
        with torch.no_grad():
            for i, o in enumerate(self.levels(x)):
                logits = self.cls[i](self.stacked[i](o))
                frac = per_image / logits[0].numel()
                self.cls[i].bias.sub_(torch.quantile(logits.flatten().double(), 1.0 - frac).float())

    def forward(self, x):
        outs = self.levels(x)
        scores, bboxes, kpss = [], [], []
        for i, o in enumerate(outs):
            h = self.stacked[i](o)
            scores.append(self.cls[i](h).permute(2, 3, 0, 1).reshape(-1, 1).sigmoid())
            bboxes.append(self.scales[i](self.reg[i](h)).permute(2, 3, 0, 1).reshape(-1, 4))
            kpss.append(self.kps[i](h).permute(2, 3, 0, 1).reshape(-1, 10))
        return tuple(scores + bboxes + kpss)


class IBasicBlock(nn.Module):
    def __init__(self, cin, planes, stride, downsample):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + idt


class IResNet(nn.Module):
    def __init__(self, layers=(3, 13, 30, 3), widths=(64, 128, 256, 512), emb=512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        stages, cin = [], 64
        for n, w in zip(layers, widths):
            down = nn.Sequential(nn.Conv2d(cin, w, 1, 2, bias=False), nn.BatchNorm2d(w, eps=1e-5))
            blocks = [IBasicBlock(cin, w, 2, down)] + [IBasicBlock(w, w, 1, None) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = w
        self.layers = nn.Sequential(*stages)
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512 * 7 * 7, emb)
        self.features = nn.BatchNorm1d(emb, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def forward(self, x):
        x = self.layers(self.prelu(self.bn1(self.conv1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def init_and_calibrate(model, calib, g, residual_bn=None):
    """Kaiming convs, random BN affine, BN statistics from one batch (momentum 1), then perturbed."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()  # kaiming normal (ReLU gain), from the seeded generator
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if m.weight.requires_grad:
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) * 0.8 + 0.6)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            m.momentum = 1.0
        elif isinstance(m, nn.PReLU):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) * 0.3 + 0.05)
    if residual_bn:
        for bn in residual_bn(model):
            bn.weight.data.mul_(0.2)
    model.train()
    with torch.no_grad():
        model(calib)
    model.eval()
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            std = m.running_var.sqrt()
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=g) * 0.1 * std)
            m.running_var.mul_(torch.exp(torch.randn(m.running_var.shape, generator=g) * 0.2))


def photo_batch(size=640):
    """The face fixture photos letterboxed like insightface (top-left, zero padding) as a [N, 3, S, S] blob;
    None when they or Pillow are not available."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "face", "images")
    try:
        from PIL import Image
        names = sorted(os.listdir(folder))
    except (ImportError, OSError):
        return None
    blobs = []
    for n in names:
        im = Image.open(os.path.join(folder, n)).convert("RGB")
        w, h = im.size
        if h / w > 1.0:
            nh, nw = size, int(size / (h / w))
        else:
            nw, nh = size, int(size * h / w)
        canvas = np.zeros((size, size, 3), np.float32)
        canvas[:nh, :nw] = np.asarray(im.resize((nw, nh), Image.BILINEAR), np.float32)
        blobs.append(torch.from_numpy((canvas - 127.5) / 128.0).permute(2, 0, 1))
    return torch.stack(blobs) if blobs else None


def export(model, x, path, dynamic_axes):
    torch.onnx.export(model, (x,), path, opset_version=11, input_names=["input.1"], dynamic_axes=dynamic_axes,
                      do_constant_folding=True, keep_initializers_as_inputs=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    out = os.path.abspath(args.out)
    tmp = tempfile.mkdtemp(prefix=".tmp_full_width_", dir=os.path.dirname(out) or ".")
    try:
        manifest = {"generator": "scripts/make_full_width_onnx.py", "version": VERSION, "torch": torch.__version__}
        g = torch.Generator().manual_seed(20241122)

        det = SCRFD()
        photos = photo_batch()
        calib = photos if photos is not None else torch.randn(2, 3, 640, 640, generator=g)
        init_and_calibrate(det, calib, g)
        det.tune_cls_bias(calib)
        export(det, torch.randn(1, 3, 640, 640, generator=g), os.path.join(tmp, "scrfd_10g_bnkps.onnx"),
               {"input.1": {2: "?", 3: "?"}})
        manifest["scrfd"] = {"params": sum(p.numel() for p in det.parameters()), "sizes": [],
                             "calibration": "fixture photos" if photos is not None else "random"}
        for k, (h, w) in enumerate(((640, 640), (256, 384))):
            # Inputs in the regime the network was calibrated for: a letterboxed photo (and a crop of another);
            # random noise would drive the random-weight activations into the hundreds.
            x = photos[k:k + 1, :, :h, :w].clone() if photos is not None else torch.randn(1, 3, h, w, generator=g)
            with torch.no_grad():
                ys = det(x)
            np.save(os.path.join(tmp, f"scrfd_in_{h}x{w}.npy"), x.numpy())
            for i, y in enumerate(ys):
                np.save(os.path.join(tmp, f"scrfd_out_{h}x{w}_{i}.npy"), y.numpy())
            manifest["scrfd"]["sizes"].append([h, w])

        rec = IResNet()
        init_and_calibrate(rec, torch.randn(4, 3, 112, 112, generator=g), g,
                           residual_bn=lambda m: [b.bn3 for b in m.modules() if isinstance(b, IBasicBlock)])
        path = os.path.join(tmp, "arcface.onnx")
        export(rec, torch.randn(1, 3, 112, 112, generator=g), path, {"input.1": {0: "None"}})
        x = torch.randn(1, 3, 112, 112, generator=g)
        with torch.no_grad():
            y = rec(x)
        np.save(os.path.join(tmp, "arcface_in.npy"), x.numpy())
        np.save(os.path.join(tmp, "arcface_out.npy"), y.numpy())
        manifest["arcface"] = {"params": sum(p.numel() for p in rec.parameters()) + 2 * 512}

        for name in ("scrfd_10g_bnkps.onnx", "arcface.onnx"):
            m = onnx.load(os.path.join(tmp, name))
            ops = {}
            for n in m.graph.node:
                ops[n.op_type] = ops.get(n.op_type, 0) + 1
            manifest[name] = {"bytes": os.path.getsize(os.path.join(tmp, name)), "ops": ops,
                              "outputs": [o.name for o in m.graph.output]}
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
        print("wrote", out)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
