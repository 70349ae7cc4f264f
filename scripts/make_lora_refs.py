#!/usr/bin/python3
"""A diffusers/PEFT-named LoRA for the tiny fixture UNet and its fused weights, for tests/models/test_lora.cpp,
written to tests/models/data/:

  lora_peft_tiny.safetensors   keys exactly as diffusers 0.29.2's save_lora_weights writes a PEFT-trained UNet
                               LoRA: "unet." + convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
                               i.e. attention projections as `<module>.lora.down.weight` / `.lora.up.weight`
                               (PEFT_TO_DIFFUSERS renames to_q/to_k/to_v/to_out.0), every other module as
                               `<module>.lora_A.weight` / `.lora_B.weight`; no alphas (diffusers does not save
                               them). Plus two text-encoder tensors (must be ignored for the UNet). fp16 like the
                               released LoRAs. One module has rank 2, the others rank 4.
  lora_peft_fused_<k>.npy      the fused weight of module k (index into MODULES) computed here by PEFT 0.11.1's
                               merge formula in float32: W + delta * scaling, delta = B @ A for Linear and 1x1
                               convs, F.conv2d(A.permute(1, 0, 2, 3), B).permute(1, 0, 2, 3) for kxk convs;
                               scaling = lora_alpha / r with lora_alpha = the rank of the first lora_B key in key
                               order (4) since the file has no alphas (diffusers' get_peft_kwargs), so the rank-2
                               module gets scaling 2.
  lora_peft_scales.json        module -> scaling used

The base weights come from tests/fixtures/models/arc2face (the tiny UNet). Needs torch and numpy only.
Run: /usr/bin/python3 scripts/make_lora_refs.py   (from the repository root; deterministic)
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_diffusers_mini as tdm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "tests", "models", "data")

# (module, rank, diffusers-renamed attention projection?)
MODULES = [
    ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", 4, True),
    ("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 4, True),
    ("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0", 4, True),
    ("down_blocks.0.attentions.0.proj_in", 4, False),  # 1x1 conv
    ("down_blocks.0.resnets.0.conv1", 4, False),  # 3x3 conv
    ("down_blocks.0.downsamplers.0.conv", 4, False),  # 3x3 stride-2 conv
    ("mid_block.resnets.0.conv2", 2, False),  # rank 2
    ("up_blocks.1.attentions.2.transformer_blocks.0.ff.net.0.proj", 4, False),
    ("up_blocks.1.resnets.0.time_emb_proj", 4, False),
    ("up_blocks.0.resnets.2.conv_shortcut", 4, False),  # 1x1 conv
]


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dt = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    torch.manual_seed(1234)
    base = tdm.load_safetensors(os.path.join(FIX, "models", "arc2face", "diffusion_pytorch_model.safetensors"))
    lora, fused, scales = {}, [], {}
    for module, r, attn in MODULES:
        w = base[module + ".weight"].float()
        out_f, in_f = w.shape[0], w.shape[1]
        if w.ndim == 4:
            a = torch.randn(r, in_f, w.shape[2], w.shape[3]) / (in_f * w.shape[2] * w.shape[3]) ** 0.5
            b = torch.randn(out_f, r, 1, 1) / r ** 0.5
        else:
            a = torch.randn(r, in_f) / in_f ** 0.5
            b = torch.randn(out_f, r) / r ** 0.5
        a, b = a.half(), b.half()  # stored fp16; PEFT's layers are float32 (the UNet's dtype)
        down, up = (".lora.down.weight", ".lora.up.weight") if attn else (".lora_A.weight", ".lora_B.weight")
        lora["unet." + module + down] = a.numpy()
        lora["unet." + module + up] = b.numpy()
        fused.append((module, w, a.float(), b.float(), r))
    lora["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight"] = \
        np.zeros((4, 32), np.float16)
    lora["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.up.weight"] = \
        np.zeros((32, 4), np.float16)

    # get_peft_kwargs without alphas: lora_alpha = rank of the first lora_B key (diffusers' key order).
    first_b = sorted(k for k in lora if k.startswith("unet.") and (".lora_B." in k or ".lora.up." in k))[0]
    lora_alpha = lora[first_b].shape[1]
    for k, (module, w, a, b, r) in enumerate(fused):
        scaling = lora_alpha / r
        if w.ndim == 4 and w.shape[2:4] == (1, 1):
            delta = (b.squeeze(3).squeeze(2) @ a.squeeze(3).squeeze(2)).unsqueeze(2).unsqueeze(3) * scaling
        elif w.ndim == 4:
            delta = F.conv2d(a.permute(1, 0, 2, 3), b).permute(1, 0, 2, 3) * scaling
        else:
            delta = (b @ a) * scaling
        np.save(os.path.join(OUT, f"lora_peft_fused_{k}.npy"), (w + delta).numpy().astype(np.float32))
        scales[module] = scaling
    write_safetensors(os.path.join(OUT, "lora_peft_tiny.safetensors"), lora)
    with open(os.path.join(OUT, "lora_peft_scales.json"), "w") as f:
        json.dump({"modules": [m for m, _, _ in MODULES], "scaling": scales, "lora_alpha": lora_alpha}, f, indent=1)
    print(f"wrote lora_peft_tiny.safetensors ({len(lora)} tensors), {len(fused)} fused weights, alpha {lora_alpha}")


if __name__ == "__main__":
    main()
