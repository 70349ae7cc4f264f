#!/usr/bin/python3
"""Reference arrays for model paths the diffusers fixtures (tests/fixtures/ref) do not cover, written to
tests/models/data/:

  unet_cn_out.npy           UNet(controlnet_in_latents, t=500, prompt_embeds[0:1]) with the fixture's ControlNet
                            residuals (controlnet_down_res_0..5, controlnet_mid_res) added as diffusers adds them
  unet_odd_in.npy / _out    UNet on a 7x9 latent (not a multiple of 2^num_upsamplers: diffusers' upsample_size path)
  vae_enc_in.npy            2 images [2, 3, 64, 64] in [-1, 1] (clamped vae_out_raw and its mirror image)
  vae_enc_mean/_logvar.npy  AutoencoderKL.encode(x).latent_dist mean and clamped logvar
  unet_cond_proj_w.npy, unet_cond.npy, unet_cond_out.npy
                            time_cond_proj_dim = 8 (LCM-distilled UNets): a seeded cond_proj weight [16, 8] added
                            to the fixture UNet, a condition [1, 8] and the output at t=500
  unet_variant/             a second tiny UNet (config.json + safetensors, seeded torch init) in the SD2-style
                            variants: use_linear_projection, per-block attention_head_dim [2, 4],
                            transformer_layers_per_block 2, only_cross_attention [true, false]; with
                            unet_variant_in.npy / unet_variant_out.npy

They come from scripts/torch_diffusers_mini.py (a PyTorch 1.13 re-implementation of the diffusers 0.29.2 modules,
diffusers cannot be installed here) loading the same fixture files. Before writing anything the script checks
that this re-implementation reproduces the diffusers outputs in the fixtures (UNet t=999/t=500/batch 2, VAE decode)
to 1e-5 and stops otherwise.

Run: /usr/bin/python3 scripts/make_model_refs.py   (from the repository root; deterministic, CPU, fp32)
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_diffusers_mini as tdm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "tests", "models", "data")


def ref(name):
    return torch.from_numpy(np.load(os.path.join(FIX, "ref", name + ".npy")))


def check(what, got, want, tol=1e-5):
    d = (got - want).abs().max().item()
    print(f"{what}: max abs diff vs diffusers {d:.3g}")
    if d > tol:
        sys.exit(f"{what}: the re-implementation does not reproduce diffusers ({d} > {tol}); nothing written")


def save(name, t):
    path = os.path.join(OUT, name + ".npy")
    np.save(path, t.detach().numpy().astype(np.float32))
    print("wrote", os.path.relpath(path, ROOT), tuple(t.shape))


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    with torch.no_grad():
        # UNet
        udir = os.path.join(FIX, "models", "arc2face")
        cfg = json.load(open(os.path.join(udir, "config.json")))
        unet = tdm.UNet2DConditionModel(cfg).eval()
        unet.load_state_dict(tdm.load_safetensors(os.path.join(udir, "diffusion_pytorch_model.safetensors")))
        pe = ref("prompt_embeds")
        x = ref("unet_in_latents")
        check("unet t=999", unet(x, torch.tensor(999), pe[0:1]), ref("unet_out_t999"))
        check("unet t=500", unet(x, torch.tensor(500), pe[0:1]), ref("unet_out_t500"))
        ehs2 = torch.cat([ref("negative_prompt_embeds"), pe[0:1]])
        check("unet b2 t=500", unet(ref("unet_in_latents_b2"), torch.tensor(500), ehs2), ref("unet_out_b2_t500"))

        down = [ref(f"controlnet_down_res_{i}") for i in range(6)]
        out = unet(ref("controlnet_in_latents"), torch.tensor(500), pe[0:1], down, ref("controlnet_mid_res"))
        save("unet_cn_out", out)

        g = torch.Generator().manual_seed(7)
        odd = torch.randn((1, 4, 7, 9), generator=g)
        save("unet_odd_in", odd)
        save("unet_odd_out", unet(odd, torch.tensor(321), pe[1:2]))

        # time_cond_proj_dim
        g = torch.Generator().manual_seed(8)
        cond_w = torch.randn((16, 8), generator=g) / 8 ** 0.5
        cond = torch.randn((1, 8), generator=g)
        cfg_c = dict(cfg, time_cond_proj_dim=8)
        unet_c = tdm.UNet2DConditionModel(cfg_c).eval()
        sd = tdm.load_safetensors(os.path.join(udir, "diffusion_pytorch_model.safetensors"))
        sd["time_embedding.cond_proj.weight"] = cond_w
        unet_c.load_state_dict(sd)
        save("unet_cond_proj_w", cond_w)
        save("unet_cond", cond)
        save("unet_cond_out", unet_c(x, torch.tensor(500), pe[0:1], timestep_cond=cond))

        # SD2-style variant config
        vcfg_u = dict(cfg, use_linear_projection=True, attention_head_dim=[2, 4], transformer_layers_per_block=2,
                      only_cross_attention=[True, False])
        torch.manual_seed(9)
        unet_v = tdm.UNet2DConditionModel(vcfg_u).eval()
        for name, prm in unet_v.named_parameters():  # torch's default init has all-zero-ish norms/biases
            if prm.ndim == 1:
                prm.add_(0.1 * torch.randn(prm.shape))
        vdir_u = os.path.join(OUT, "unet_variant")
        os.makedirs(vdir_u, exist_ok=True)
        json.dump(vcfg_u, open(os.path.join(vdir_u, "config.json"), "w"), indent=2, sort_keys=True)
        tdm.save_safetensors(os.path.join(vdir_u, "diffusion_pytorch_model.safetensors"), unet_v.state_dict())
        print("wrote", os.path.relpath(vdir_u, ROOT))
        vx = torch.randn((2, 4, 8, 8), generator=g)
        save("unet_variant_in", vx)
        ehs_v = torch.cat([ref("negative_prompt_embeds"), pe[2:3]])
        save("unet_variant_out", unet_v(vx, torch.tensor(77), ehs_v))

        # VAE
        vdir = os.path.join(FIX, "models", "sd15", "vae")
        vcfg = json.load(open(os.path.join(vdir, "config.json")))
        vae = tdm.AutoencoderKL(vcfg).eval()
        vae.load_state_dict(tdm.rename_legacy_attention(
            tdm.load_safetensors(os.path.join(vdir, "diffusion_pytorch_model.safetensors"))))
        check("vae decode", vae.decode(ref("vae_in_latents") / 0.18215), ref("vae_out_raw"))
        img = ref("vae_out_raw").clamp(-1, 1)
        img = torch.cat([img, img.flip(-1)])
        save("vae_enc_in", img)
        mean, logvar = vae.encode_moments(img)
        save("vae_enc_mean", mean)
        save("vae_enc_logvar", logvar)


if __name__ == "__main__":
    main()
