#!/usr/bin/python3
"""A whole Arc2Face generation (ID vector -> 512x512 image; 25 DPM-Solver++ steps, guidance 3.0, seed 1):
arc2face.cpp vs PyTorch, same machine, same run, same model files. Prints the wall time of each process, ours/torch,
the model-load time of each side, the peak RSS of each process, and how far the two output images are apart.

Models: a full-size tree with seeded random weights in the real releases' layout
(scripts/make_sd15_random_models.py; made in a temporary folder unless --models DIR names one already made).

Ours:  build/bin/arc2face generate --id-embedding EMB.npy --models D --base D/stable-diffusion-v1-5 -n 1
       --steps 25 --guidance 3.0 --seed 1 --dtype fp32|bf16 --threads T -q --dump DUMP --out PNGDIR
       (--dump writes a few small .npy files: prompt embeddings, latents per step, the final float image).
Torch: this script with --torch-child, in its own process: the same pipeline written out in PyTorch 1.13 (Debian's
       python3-torch; diffusers / transformers cannot be installed here) from scripts/torch_diffusers_mini.py:
       CLIPTextModel (transformers 4.36 CLIPTextTransformer) with Arc2Face's ID-token splice (project_face_embs),
       UNet2DConditionModel and AutoencoderKL (diffusers 0.29.2, op for op, unfused attention as on torch < 2),
       DPMSolverMultistepScheduler built from the SD1.5 scheduler config (linspace spacing, DPM-Solver++ 2M,
       lower_order_final, final sigma 0); negative prompt "" through the same encoder; cond + uncond batched;
       noise torch.randn([1, 4, 64, 64], generator=torch.Generator('cpu').manual_seed(1)); all cores
       (--threads). Weights are read straight into the parameters (no mmap, no second copy; parameters are
       not initialised first), so its load time and peak RSS are at or below what diffusers' from_pretrained needs.
       bf16: modules .to(torch.bfloat16) as diffusers' torch_dtype does; the latents and the scheduler stay in
       float32 (as ours does; diffusers would round the latents to bf16 after each step).
Both processes run under GNU time (wall seconds, CPU seconds = user + sys, peak RSS); each side runs once per dtype
(a whole generation takes minutes here), ours first. On a shared machine the wall clock depends on what else runs;
the CPU time much less so (but it counts OpenMP spin-waiting too), so both ratios are printed.

  /usr/bin/python3 bench/compare_torch_generate.py [--models DIR] [--steps 25] [--dtypes fp32,bf16] [--threads N]
                                                   [--skip-torch] [--skip-ours] [--size 512]
  /usr/bin/python3 bench/compare_torch_generate.py --check-fixtures   # the torch pipeline vs diffusers' refs
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import torch_diffusers_mini as tdm  # noqa: E402

PROMPT_WORDS = ["photo", "of", "a", "id", "person"]  # Arc2Face's prompt "photo of a id person"
KNOWN_IDS = [49406, 1125, 539, 320, 1014, 2533, 49407]  # transformers' CLIPTokenizer on the real SD1.5 files


# ---------------------------------------------------------------------------------------------------- torch side

class NoInit:
    """Parameters allocated but not initialised while building the modules (like diffusers' low_cpu_mem_usage
    meta-device construction: from_pretrained never runs the random initialisers)."""
    CLASSES = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Embedding, torch.nn.LayerNorm, torch.nn.GroupNorm)

    def __enter__(self):
        self.saved = [(c, c.reset_parameters) for c in self.CLASSES]
        for c in self.CLASSES:
            c.reset_parameters = lambda self: None

    def __exit__(self, *exc):
        for c, f in self.saved:
            c.reset_parameters = f


def read_safetensors_into(module, path, rename=None):
    """Reads every F32 tensor of a safetensors file straight into the module's parameter (strict names/shapes)."""
    import struct
    params = dict(module.state_dict(keep_vars=True))
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        names = {(rename(k) if rename else k): k for k in header}
        missing = sorted(set(params) - set(names))
        unexpected = sorted(set(names) - set(params))
        if missing or unexpected:
            raise RuntimeError(f"{path}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for name, p in params.items():
            info = header[names[name]]
            if info["dtype"] != "F32" or list(info["shape"]) != list(p.shape):
                raise RuntimeError(f"{path}: {name} is {info['dtype']} {info['shape']}, expected F32 {list(p.shape)}")
            b, e = info["data_offsets"]
            f.seek(8 + n + b)
            buf = p.data.numpy().reshape(-1).view(np.uint8)
            if f.readinto(buf) != e - b:
                raise RuntimeError(f"{path}: {name} is truncated")


def assign_state_dict(module, sd):
    params = dict(module.state_dict(keep_vars=True))
    missing, unexpected = sorted(set(params) - set(sd)), sorted(set(sd) - set(params))
    if missing or unexpected:
        raise RuntimeError(f"state dict: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, p in params.items():
        if tuple(sd[k].shape) != tuple(p.shape):
            raise RuntimeError(f"{k}: shape {tuple(sd[k].shape)}, expected {tuple(p.shape)}")
        p.data = sd[k].to(torch.float32)


def prompt_ids(tokenizer_dir):
    """CLIPTokenizer(prompt, padding='max_length', max_length=77) for Arc2Face's prompt and for "" — each word of
    the prompt is one whole-word token of the real vocabulary, which the lookup below checks."""
    with open(os.path.join(tokenizer_dir, "vocab.json")) as f:
        vocab = json.load(f)
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    ids = [bos] + [vocab[w + "</w>"] for w in PROMPT_WORDS] + [eos]
    if ids != KNOWN_IDS:
        raise RuntimeError(f"{tokenizer_dir}: 'photo of a id person' -> {ids}, expected {KNOWN_IDS}")
    pad = lambda t: torch.tensor([t + [eos] * (77 - len(t))], dtype=torch.int64)  # noqa: E731  pad = eos
    return pad(ids), pad([bos, eos]), vocab["id</w>"]


def load_torch_models(models, base, dtype):
    def cfg(p):
        with open(p) as f:
            return json.load(f)
    with NoInit():
        unet = tdm.UNet2DConditionModel(cfg(os.path.join(models, "arc2face", "config.json"))).eval()
        vae_cfg = cfg(os.path.join(base, "vae", "config.json"))
        vae = tdm.AutoencoderKL(vae_cfg).eval()
        enc = tdm.CLIPTextModel(cfg(os.path.join(models, "encoder", "config.json"))).eval()
    read_safetensors_into(unet, os.path.join(models, "arc2face", "diffusion_pytorch_model.safetensors"))
    legacy = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}

    def rename(k):
        for a, b in legacy.items():
            k = k.replace(a, b)
        return k
    read_safetensors_into(vae, os.path.join(base, "vae", "diffusion_pytorch_model.safetensors"), rename)
    sd = torch.load(os.path.join(models, "encoder", "pytorch_model.bin"), map_location="cpu")
    sd.pop("text_model.embeddings.position_ids", None)
    assign_state_dict(enc, sd)
    del sd
    if dtype == torch.bfloat16:
        unet, vae, enc = unet.to(dtype), vae.to(dtype), enc.to(dtype)
    sched = tdm.DPMSolverMultistepScheduler(cfg(os.path.join(base, "scheduler", "scheduler_config.json")))
    return unet, vae, enc, sched, vae_cfg.get("scaling_factor", 0.18215)


def torch_generate(models, base, id_emb, n_images, steps, guidance, seed, size, dtype, dump=None):
    """Arc2Face's demo: project_face_embs + StableDiffusionPipeline(prompt_embeds=..., guidance_scale, steps,
    num_images_per_prompt). Returns (images [N, H, W, 3] float32, timings dict)."""
    tm = {}
    t0 = time.perf_counter()
    unet, vae, enc, sched, sf = load_torch_models(models, base, dtype)
    tm["load_s"] = time.perf_counter() - t0
    with torch.no_grad():
        t1 = time.perf_counter()
        ids, empty, id_tok = prompt_ids(os.path.join(base, "tokenizer"))
        face = torch.from_numpy(id_emb).reshape(1, 512).to(torch.float32)
        face = (face / torch.norm(face, dim=1, keepdim=True)).to(dtype)
        face_padded = F.pad(face, (0, enc.config["hidden_size"] - 512), "constant", 0)
        tok = enc.token_embs(ids)
        tok[ids == id_tok] = face_padded
        pos = enc(ids, tok)  # [1, 77, D]
        neg = enc(empty)     # [1, 77, D]
        context = torch.cat([neg.repeat(n_images, 1, 1), pos.repeat(n_images, 1, 1)])  # [2N, 77, D]
        tm["encode_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        sched.set_timesteps(steps)
        gen = torch.Generator("cpu").manual_seed(seed)
        lat = torch.randn([n_images, 4, size // 8, size // 8], generator=gen) * sched.init_noise_sigma
        if dump:
            np.save(os.path.join(dump, "prompt_embeds.npy"), pos.float().numpy())
            np.save(os.path.join(dump, "negative_prompt_embeds.npy"), neg.float().numpy())
            np.save(os.path.join(dump, "latents_init.npy"), lat.numpy())
        for k, t in enumerate(sched.timesteps):
            x = sched.scale_model_input(torch.cat([lat, lat]), t).to(dtype)
            eps = unet(x, t, context).float()
            eu, ec = eps.chunk(2)
            eps = eu + guidance * (ec - eu)
            lat = sched.step(eps, t, lat)
            if dump:
                np.save(os.path.join(dump, f"latents_{k}.npy"), lat.numpy())
        tm["denoise_s"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        imgs = [vae.decode((lat[i:i + 1] / sf).to(dtype)).float() for i in range(n_images)]
        img = (torch.cat(imgs) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous().numpy()
        tm["decode_s"] = time.perf_counter() - t3
    return img, tm


def torch_child(a):
    t0 = time.perf_counter()
    torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    emb = np.load(a.emb)
    img, tm = torch_generate(a.models, os.path.join(a.models, "stable-diffusion-v1-5"), emb, 1, a.steps, 3.0,
                             a.seed, a.size, dtype, dump=a.child_out)
    np.save(os.path.join(a.child_out, "image.npy"), img)
    tm["main_s"] = time.perf_counter() - t0
    tm["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    tm["threads"] = torch.get_num_threads()
    tm["torch"] = torch.__version__
    print("A2F_TORCH_RESULT=" + json.dumps(tm), flush=True)


# ---------------------------------------------------------------------------------------------------- driver

def timed(cmd, env=None):
    """Runs cmd under GNU time; returns (wall s, CPU s (user + sys), peak RSS MiB, stdout, stderr)."""
    full = ["/usr/bin/time", "-f", "A2F_TIME wall=%e user=%U sys=%S maxrss_kb=%M"] + cmd
    p = subprocess.run(full, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    m = re.search(r"A2F_TIME wall=([0-9.]+) user=([0-9.]+) sys=([0-9.]+) maxrss_kb=([0-9]+)", p.stderr)
    cpu = float(m.group(2)) + float(m.group(3))
    return float(m.group(1)), cpu, float(m.group(4)) / 1024.0, p.stdout, p.stderr


def run_ours(a, dtype, emb, work):
    dump = os.path.join(work, f"ours_{dtype}")
    cmd = [a.bin, "generate", "--id-embedding", emb, "--models", a.models, "--base",
           os.path.join(a.models, "stable-diffusion-v1-5"), "-n", "1", "--steps", str(a.steps), "--guidance", "3.0",
           "--seed", str(a.seed), "--dtype", dtype, "--threads", str(a.threads), "--width", str(a.size), "--height",
           str(a.size), "-q", "--dump", dump, "--out", os.path.join(work, f"png_{dtype}")]
    wall, cpu, rss, _, err = timed(cmd)
    m = re.search(r"models loaded in ([0-9.eE+-]+) s", err)
    load = float(m.group(1)) if m else float("nan")
    return {"wall_s": wall, "cpu_s": cpu, "maxrss_mib": rss, "load_s": load, "dump": dump, "cmd": " ".join(cmd)}


def run_torch(a, dtype, emb, work):
    out = os.path.join(work, f"torch_{dtype}")
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-child", "--models", a.models, "--emb", emb,
           "--dtype", dtype, "--steps", str(a.steps), "--seed", str(a.seed), "--threads", str(a.threads),
           "--size", str(a.size), "--child-out", out]
    wall, cpu, rss, so, _ = timed(cmd)
    m = re.search(r"A2F_TORCH_RESULT=(.*)", so)
    r = json.loads(m.group(1))
    r.update({"wall_s": wall, "cpu_s": cpu, "maxrss_mib_gnu": rss, "dump": out})
    return r


def maxdiff(d1, d2, name):
    p1, p2 = os.path.join(d1, name + ".npy"), os.path.join(d2, name + ".npy")
    if not (os.path.exists(p1) and os.path.exists(p2)):
        return float("nan")
    x, y = np.load(p1).astype(np.float64), np.load(p2).astype(np.float64)
    if x.size != y.size:
        return float("nan")
    return float(np.abs(x.reshape(-1) - y.reshape(-1)).max())


def check_fixtures():
    """The torch pipeline and scheduler against diffusers' own outputs on the tiny fixture models."""
    fx = os.path.join(ROOT, "tests", "fixtures")
    cfg = json.load(open(os.path.join(fx, "models", "sd15", "scheduler", "scheduler_config.json")))
    s = tdm.DPMSolverMultistepScheduler(cfg)
    s.set_timesteps(25)
    c = lambda n: np.load(os.path.join(fx, "common", f"sched_dpm_{n}.npy"))  # noqa: E731
    assert (s.timesteps.numpy() == c("timesteps")).all(), "timesteps"
    assert np.array_equal(s.sigmas.numpy(), c("sigmas")), "sigmas"
    x = torch.from_numpy(c("model_inputs")[0])
    worst = 0.0
    for i, t in enumerate(s.timesteps):
        x = s.step(torch.from_numpy(c("model_outputs")[i]), t, x)
        worst = max(worst, float(np.abs(x.numpy() - c("prev_samples")[i]).max()))
        x = torch.from_numpy(c("prev_samples")[i])
    print(f"scheduler: timesteps/sigmas equal, worst step error vs diffusers {worst:.2e}")
    r = lambda n: np.load(os.path.join(fx, "ref", n + ".npy"))  # noqa: E731
    models = os.path.join(fx, "models")
    with tempfile.TemporaryDirectory() as d:
        img, _ = torch_generate(models, os.path.join(models, "sd15"), r("id_embs")[0], 2, 25, 3.0, 42, 64,
                                torch.float32, dump=d)
        pe = np.abs(np.load(os.path.join(d, "prompt_embeds.npy"))[0] - r("prompt_embeds")[0]).max()
        ne = np.abs(np.load(os.path.join(d, "negative_prompt_embeds.npy")) - r("negative_prompt_embeds")).max()
        le = np.abs(np.load(os.path.join(d, "latents_24.npy")) - r("pipe_dpm_gen42_step_latents")[24]).max()
    ie = np.abs(img - r("pipe_dpm_gen42_images")).max()
    print(f"tiny models vs diffusers: prompt embeds {pe:.2e}, negative {ne:.2e}, final latents {le:.2e}, "
          f"images {ie:.2e} (pipe_dpm_gen42)")
    ok = worst <= 1e-5 and pe <= 1e-4 and ne <= 1e-4 and ie <= 1e-3
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "arc2face"))
    ap.add_argument("--models", help="a tree made by scripts/make_sd15_random_models.py (default: make one in /tmp)")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--keep", help="keep the outputs (dumps, PNGs) in this folder")
    ap.add_argument("--check-fixtures", action="store_true")
    # internal: the torch process
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--emb", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.check_fixtures:
        torch.set_num_threads(a.threads)
        return check_fixtures()
    if a.torch_child:
        return torch_child(a)

    tmp = tempfile.TemporaryDirectory(prefix="a2f_genbench_", dir="/tmp")
    work = a.keep or tmp.name
    os.makedirs(work, exist_ok=True)
    if not a.models:
        a.models = os.path.join(tmp.name, "models")
        print(f"making the random-weight model tree in {a.models} ...", flush=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_sd15_random_models.py"), a.models],
                       check=True)
    a.models = os.path.abspath(a.models)
    emb = os.path.join(work, "id_embedding.npy")
    v = np.random.default_rng(2024).standard_normal(512).astype(np.float32)
    np.save(emb, (v / np.linalg.norm(v)).astype(np.float32))

    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    print(f"whole generation: {a.size}x{a.size}, {a.steps} steps DPM-Solver++, guidance 3.0, seed {a.seed}, "
          f"{a.threads} threads, models {a.models}", flush=True)
    res = {}
    for dt in dtypes:
        if not a.skip_ours:
            o = run_ours(a, dt, emb, work)
            res[("ours", dt)] = o
            print(f"ours  {dt:4s}: {o['wall_s']:8.1f} s wall, {o['cpu_s']:.1f} s CPU "
                  f"(models loaded in {o['load_s']:.1f} s), "
                  f"peak RSS {o['maxrss_mib']:.0f} MiB", flush=True)
        if not a.skip_torch:
            t = run_torch(a, dt, emb, work)
            res[("torch", dt)] = t
            print(f"torch {dt:4s}: {t['wall_s']:8.1f} s wall, {t['cpu_s']:.1f} s CPU (load {t['load_s']:.1f} s, "
                  f"encode {t['encode_s']:.1f} s, "
                  f"denoise {t['denoise_s']:.1f} s, decode {t['decode_s']:.1f} s), peak RSS {t['maxrss_mib']:.0f} MiB "
                  f"(getrusage; GNU time {t['maxrss_mib_gnu']:.0f})", flush=True)
    print()
    print("| dtype | wall s ours / torch | ours/torch wall | CPU s ours / torch | ours/torch CPU "
          "| load s ours / torch | peak RSS MiB ours / torch | max abs image diff |")
    print("|---|---|---:|---|---:|---|---|---:|")
    for dt in dtypes:
        o, t = res.get(("ours", dt)), res.get(("torch", dt))
        if not o or not t:
            continue
        d = maxdiff(o["dump"], t["dump"], "image")
        print(f"| {dt} | {o['wall_s']:.1f} / {t['wall_s']:.1f} | {o['wall_s'] / t['wall_s']:.2f} | "
              f"{o['cpu_s']:.1f} / {t['cpu_s']:.1f} | {o['cpu_s'] / t['cpu_s']:.2f} | {o['load_s']:.1f} / "
              f"{t['load_s']:.1f} | {o['maxrss_mib']:.0f} / {t['maxrss_mib']:.0f} | {d:.2e} |")
    for dt in dtypes:
        o, t = res.get(("ours", dt)), res.get(("torch", dt))
        if o and t:
            print(f"{dt}: max |diff| ours vs torch: prompt embeds "
                  f"{maxdiff(o['dump'], t['dump'], 'prompt_embeds'):.2e}, "
                  f"negative {maxdiff(o['dump'], t['dump'], 'negative_prompt_embeds'):.2e}, initial latents "
                  f"{maxdiff(o['dump'], t['dump'], 'latents_init'):.2e}, final latents "
                  f"{maxdiff(o['dump'], t['dump'], f'latents_{a.steps - 1}'):.2e}, image "
                  f"{maxdiff(o['dump'], t['dump'], 'image'):.2e}")
    if ("ours", "fp32") in res and ("ours", "bf16") in res:
        d = maxdiff(res[("ours", "fp32")]["dump"], res[("ours", "bf16")]["dump"], "image")
        print(f"ours bf16 vs ours fp32 image: {d:.2e}")
    if ("ours", dtypes[0]) in res:
        print(f"ours command: {res[('ours', dtypes[0])]['cmd']}")
    print(f"torch {torch.__version__}, {a.threads} threads; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
