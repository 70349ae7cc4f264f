#!/usr/bin/python3
"""Writes a FULL-SIZE Arc2Face model tree with seeded random weights, in the exact on-disk layout of the real
releases, for benchmarks of whole generations (bench/compare_torch_generate.py):

  OUTDIR/arc2face/{config.json, diffusion_pytorch_model.safetensors}    UNet2DConditionModel, SD1.5 config (3.4 GB)
  OUTDIR/encoder/{config.json, pytorch_model.bin}                       CLIP ViT-L/14 text model (Arc2Face's
                                                                        CLIPTextModelWrapper config), torch.save
  OUTDIR/stable-diffusion-v1-5/vae/{config.json, diffusion_pytorch_model.safetensors}
                                                                        AutoencoderKL, SD1.5 config, legacy
                                                                        attention names (query/key/value/proj_attn)
  OUTDIR/stable-diffusion-v1-5/tokenizer/*                              the real SD1.5 CLIP BPE files
  OUTDIR/stable-diffusion-v1-5/scheduler/scheduler_config.json          SD1.5's real config
  OUTDIR/stable-diffusion-v1-5/{model_index.json, feature_extractor/}

so `arc2face generate --models OUTDIR --base OUTDIR/stable-diffusion-v1-5` loads it unchanged. The tokenizer,
scheduler, model_index and feature_extractor files are copied from tests/fixtures/models/sd15, which holds the real
SD1.5 files (tests/fixtures/README.md).

Weights (like the fixture generator): per tensor a torch CPU generator seeded from (--seed, crc32(name));
matrices / conv kernels N(0,1)/sqrt(fan_in), biases 0.02*N(0,1), norm scales 1 + 0.1*N(0,1) (sane activations).
Needs about 4.5 GB of disk and 4 GB of memory. Never write it into the repository.

  /usr/bin/python3 scripts/make_sd15_random_models.py /tmp/a2f_sd15_random [--seed 0]
"""
import argparse
import json
import os
import shutil
import sys
import time
import zlib

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import torch_diffusers_mini as tdm  # noqa: E402

FIXTURE_SD15 = os.path.join(ROOT, "tests", "fixtures", "models", "sd15")

# Arc2Face's arc2face/config.json: the SD1.5 UNet config (diffusers 0.29.2 writes every key).
UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.29.2", "act_fn": "silu",
    "addition_embed_type": None, "addition_embed_type_num_heads": 64, "addition_time_embed_dim": None,
    "attention_head_dim": 8, "attention_type": "default", "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "class_embed_type": None, "class_embeddings_concat": False,
    "conv_in_kernel": 3, "conv_out_kernel": 3, "cross_attention_dim": 768, "cross_attention_norm": None,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "dropout": 0.0, "dual_cross_attention": False, "encoder_hid_dim": None,
    "encoder_hid_dim_type": None, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_only_cross_attention": None, "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
    "num_attention_heads": None, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
    "projection_class_embeddings_input_dim": None, "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default", "reverse_transformer_layers_per_block": None, "sample_size": 64,
    "time_cond_proj_dim": None, "time_embedding_act_fn": None, "time_embedding_dim": None,
    "time_embedding_type": "positional", "timestep_post_act": None, "transformer_layers_per_block": 1,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "upcast_attention": False, "use_linear_projection": False,
}

# Arc2Face's encoder/config.json: openai/clip-vit-large-patch14's text model.
ENCODER_CONFIG = {
    "architectures": ["CLIPTextModelWrapper"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
    "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
    "model_type": "clip_text_model", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1,
    "projection_dim": 768, "torch_dtype": "float32", "transformers_version": "4.36.0.dev0", "vocab_size": 49408,
}

# stable-diffusion-v1-5/vae/config.json
VAE_CONFIG = {
    "_class_name": "AutoencoderKL", "_diffusers_version": "0.6.0", "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3,
    "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}


def fill_random(module, seed, legacy_names=None):
    """Overwrites every parameter in place; returns the state dict (optionally renamed)."""
    with torch.no_grad():
        for name, p in module.state_dict().items():
            g = torch.Generator().manual_seed((seed * 1000003 + zlib.crc32(name.encode())) & 0x7FFFFFFFFFFFFFFF)
            if p.ndim == 1:
                is_scale = "norm" in name and name.endswith(".weight")
                v = torch.randn(p.shape, generator=g)
                p.copy_(1.0 + 0.1 * v if is_scale else 0.02 * v)
            else:
                fan_in = p.numel() // p.shape[0]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    sd = module.state_dict()
    return legacy_names(sd) if legacy_names else sd


def to_legacy_vae_names(sd):
    """The SD1.5 VAE file's mid-block attention names (diffusers renames them back at load)."""
    m = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
    out = {}
    for k, v in sd.items():
        if ".attentions." in k:
            for a, b in m.items():
                k = k.replace(a, b)
        out[k] = v
    return out


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = os.path.abspath(a.outdir)
    if out == ROOT or out.startswith(ROOT + os.sep):
        sys.exit(f"refusing to write {out}: inside the repository (use /tmp/...)")
    base = os.path.join(out, "stable-diffusion-v1-5")
    for d in ("arc2face", "encoder"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    for d in ("vae", "tokenizer", "scheduler", "feature_extractor"):
        os.makedirs(os.path.join(base, d), exist_ok=True)

    t0 = time.time()
    # SD1.5 base: real tokenizer / scheduler / index files.
    for sub in ("tokenizer", "scheduler", "feature_extractor"):
        for fn in sorted(os.listdir(os.path.join(FIXTURE_SD15, sub))):
            shutil.copyfile(os.path.join(FIXTURE_SD15, sub, fn), os.path.join(base, sub, fn))
    shutil.copyfile(os.path.join(FIXTURE_SD15, "model_index.json"), os.path.join(base, "model_index.json"))

    # VAE
    write_json(os.path.join(base, "vae", "config.json"), VAE_CONFIG)
    vae = tdm.AutoencoderKL(VAE_CONFIG)
    tdm.save_safetensors(os.path.join(base, "vae", "diffusion_pytorch_model.safetensors"),
                         fill_random(vae, a.seed + 2, to_legacy_vae_names))
    del vae
    print(f"vae done ({time.time() - t0:.0f} s)", flush=True)

    # Encoder (torch zip pickle with transformers' names)
    write_json(os.path.join(out, "encoder", "config.json"), ENCODER_CONFIG)
    enc = tdm.CLIPTextModel(ENCODER_CONFIG)
    torch.save(fill_random(enc, a.seed + 1), os.path.join(out, "encoder", "pytorch_model.bin"))
    del enc
    print(f"encoder done ({time.time() - t0:.0f} s)", flush=True)

    # UNet
    write_json(os.path.join(out, "arc2face", "config.json"), UNET_CONFIG)
    unet = tdm.UNet2DConditionModel(UNET_CONFIG)
    tdm.save_safetensors(os.path.join(out, "arc2face", "diffusion_pytorch_model.safetensors"),
                         fill_random(unet, a.seed))
    del unet
    print(f"unet done ({time.time() - t0:.0f} s); wrote {out}", flush=True)


if __name__ == "__main__":
    main()
