"""A minimal PyTorch re-implementation of the diffusers 0.29.2 modules arc2face.cpp mirrors, for machines where
diffusers cannot be installed (this one has Debian's torch 1.13 only).

It follows diffusers' module code op by op (src/diffusers/models/resnet.py, downsampling.py, upsampling.py,
attention.py, attention_processor.py AttnProcessor (the unfused baddbmm + softmax + bmm path diffusers uses on
torch < 2), transformers/transformer_2d.py, embeddings.py, unets/unet_2d_blocks.py, unets/unet_2d_condition.py,
autoencoders/vae.py, autoencoders/autoencoder_kl.py) for the SD1.5-family configurations, with the same parameter
names, so a diffusers state dict loads with strict=True. Also transformers 4.36's CLIPTextModel (with Arc2Face's
token-embedding override) and diffusers' DPMSolverMultistepScheduler for SD1.5's config. Used by
scripts/make_model_refs.py (reference arrays diffusers' fixtures do not contain; it first checks itself against
those fixtures), scripts/make_sd15_random_models.py, bench/compare_torch_unet.py and bench/compare_torch_generate.py
(whose --check-fixtures checks the CLIP model, the scheduler and the whole pipeline against diffusers' outputs).
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------------------------------- files

def load_safetensors(path):
    """safetensors -> {name: torch.Tensor} (numpy parser; the safetensors package is not installed here)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[base + b:base + e], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[base + b:base + e], dtype=dtypes[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def save_safetensors(path, sd):
    """{name: torch.Tensor (f32)} -> safetensors file (sorted names, as the safetensors package writes them).

    Streams one tensor at a time (the header only needs the shapes), so a multi-GB state dict is never copied
    whole."""
    header, off = {}, 0
    names = sorted(sd)
    for name in names:
        shape = list(sd[name].shape)
        nbytes = 4 * int(np.prod(shape, dtype=np.int64))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name in names:
            f.write(sd[name].detach().to(torch.float32).contiguous().numpy().tobytes())


def rename_legacy_attention(sd):
    """diffusers' _convert_deprecated_attention_blocks: query/key/value/proj_attn -> to_q/to_k/to_v/to_out.0."""
    m = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}
    out = {}
    for k, v in sd.items():
        for a, b in m.items():
            if a in k:
                k = k.replace(a, b)
        out[k] = v
    return out


def act(name):
    return {"silu": nn.SiLU(), "swish": nn.SiLU(), "gelu": nn.GELU(), "relu": nn.ReLU()}[name]


# ---------------------------------------------------------------------------------------------------- layers

def get_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1, scale=1,
                           max_period=10000):
    half_dim = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(start=0, end=half_dim, dtype=torch.float32)
    exponent = exponent / (half_dim - downscale_freq_shift)
    emb = torch.exp(exponent)
    emb = timesteps[:, None].float() * emb[None, :]
    emb = scale * emb
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half_dim:], emb[:, :half_dim]], dim=-1)
    if embedding_dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels, time_embed_dim, act_fn="silu", cond_proj_dim=None):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        self.cond_proj = nn.Linear(cond_proj_dim, in_channels, bias=False) if cond_proj_dim else None
        self.act = act(act_fn)
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)

    def forward(self, sample, condition=None):
        if condition is not None:
            sample = sample + self.cond_proj(condition)
        return self.linear_2(self.act(self.linear_1(sample)))


class Attention(nn.Module):
    """diffusers Attention + AttnProcessor (torch < 2 path)."""

    def __init__(self, query_dim, cross_attention_dim=None, heads=8, dim_head=64, bias=False, out_bias=True,
                 norm_num_groups=None, eps=1e-5, residual_connection=False, rescale_output_factor=1.0,
                 upcast_softmax=False):
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.residual_connection = residual_connection
        self.rescale_output_factor = rescale_output_factor
        self.upcast_softmax = upcast_softmax
        self.group_norm = (nn.GroupNorm(num_channels=query_dim, num_groups=norm_num_groups, eps=eps, affine=True)
                           if norm_num_groups is not None else None)
        kv = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(kv, inner, bias=bias)
        self.to_v = nn.Linear(kv, inner, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim, bias=out_bias), nn.Dropout(0.0)])

    def head_to_batch_dim(self, t):
        b, s, d = t.shape
        h = self.heads
        return t.reshape(b, s, h, d // h).permute(0, 2, 1, 3).reshape(b * h, s, d // h)

    def batch_to_head_dim(self, t):
        bh, s, d = t.shape
        h = self.heads
        return t.reshape(bh // h, h, s, d).permute(0, 2, 1, 3).reshape(bh // h, s, d * h)

    def forward(self, hidden_states, encoder_hidden_states=None):
        residual = hidden_states
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, hh, ww = hidden_states.shape
            hidden_states = hidden_states.view(b, c, hh * ww).transpose(1, 2)
        if self.group_norm is not None:
            hidden_states = self.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = self.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        key = self.to_k(encoder_hidden_states)
        value = self.to_v(encoder_hidden_states)
        query = self.head_to_batch_dim(query)
        key = self.head_to_batch_dim(key)
        value = self.head_to_batch_dim(value)
        baddbmm_input = torch.empty(query.shape[0], query.shape[1], key.shape[1], dtype=query.dtype)
        scores = torch.baddbmm(baddbmm_input, query, key.transpose(-1, -2), beta=0, alpha=self.scale)
        if self.upcast_softmax:
            scores = scores.float()
        probs = scores.softmax(dim=-1).to(query.dtype)
        hidden_states = torch.bmm(probs, value)
        hidden_states = self.batch_to_head_dim(hidden_states)
        hidden_states = self.to_out[0](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, hh, ww)
        if self.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / self.rescale_output_factor


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        inner = int(dim * mult)
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, head_dim, cross_attention_dim, only_cross_attention=False):
        super().__init__()
        self.only_cross_attention = only_cross_attention
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=True, eps=1e-5)
        self.attn1 = Attention(dim, heads=heads, dim_head=head_dim,
                               cross_attention_dim=cross_attention_dim if only_cross_attention else None)
        self.norm2 = nn.LayerNorm(dim, 1e-5, True)
        self.attn2 = Attention(dim, cross_attention_dim=cross_attention_dim, heads=heads, dim_head=head_dim)
        self.norm3 = nn.LayerNorm(dim, 1e-5, True)
        self.ff = FeedForward(dim)

    def forward(self, h, ehs):
        n = self.norm1(h)
        h = self.attn1(n, ehs if self.only_cross_attention else None) + h
        n = self.norm2(h)
        h = self.attn2(n, ehs) + h
        n = self.norm3(h)
        return self.ff(n) + h


class Transformer2DModel(nn.Module):
    def __init__(self, heads, head_dim, in_channels, num_layers, cross_attention_dim, norm_num_groups,
                 use_linear_projection=False, only_cross_attention=False):
        super().__init__()
        inner = heads * head_dim
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(num_groups=norm_num_groups, num_channels=in_channels, eps=1e-6, affine=True)
        if use_linear_projection:
            self.proj_in = nn.Linear(in_channels, inner)
            self.proj_out = nn.Linear(inner, in_channels)
        else:
            self.proj_in = nn.Conv2d(in_channels, inner, 1, 1, 0)
            self.proj_out = nn.Conv2d(inner, in_channels, 1, 1, 0)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, head_dim, cross_attention_dim, only_cross_attention)
             for _ in range(num_layers)])

    def forward(self, x, ehs):
        b, _, hh, ww = x.shape
        residual = x
        h = self.norm(x)
        if not self.use_linear_projection:
            h = self.proj_in(h)
            inner = h.shape[1]
            h = h.permute(0, 2, 3, 1).reshape(b, hh * ww, inner)
        else:
            inner = h.shape[1]
            h = h.permute(0, 2, 3, 1).reshape(b, hh * ww, inner)
            h = self.proj_in(h)
        for blk in self.transformer_blocks:
            h = blk(h, ehs)
        if not self.use_linear_projection:
            h = h.reshape(b, hh, ww, inner).permute(0, 3, 1, 2).contiguous()
            h = self.proj_out(h)
        else:
            h = self.proj_out(h)
            h = h.reshape(b, hh, ww, inner).permute(0, 3, 1, 2).contiguous()
        return h + residual


class ResnetBlock2D(nn.Module):
    def __init__(self, in_channels, out_channels, temb_channels, groups, eps, act_fn="silu",
                 output_scale_factor=1.0):
        super().__init__()
        self.output_scale_factor = output_scale_factor
        self.norm1 = nn.GroupNorm(num_groups=groups, num_channels=in_channels, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels) if temb_channels is not None else None
        self.norm2 = nn.GroupNorm(num_groups=groups, num_channels=out_channels, eps=eps, affine=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.nonlinearity = act(act_fn)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1, 1, 0) if in_channels != out_channels else None

    def forward(self, x, temb):
        h = self.nonlinearity(self.norm1(x))
        h = self.conv1(h)
        if self.time_emb_proj is not None:
            temb = self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None]
            h = h + temb
        h = self.nonlinearity(self.norm2(h))
        h = self.conv2(h)
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / self.output_scale_factor


class Downsample2D(nn.Module):
    def __init__(self, channels, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1), mode="constant", value=0)
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, output_size=None):
        if output_size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=output_size, mode="nearest")
        return self.conv(x)


# ---------------------------------------------------------------------------------------------------- blocks

class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (cross=True) / DownBlock2D / DownEncoderBlock2D (temb None)."""

    def __init__(self, in_ch, out_ch, temb, layers, groups, eps, add_down, pad, cross=False, heads=8, tlayers=1,
                 cross_dim=None, linear_proj=False, only_cross=False):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, temb, groups, eps) for i in range(layers)])
        self.attentions = nn.ModuleList(
            [Transformer2DModel(heads, out_ch // heads, out_ch, tlayers, cross_dim, groups, linear_proj, only_cross)
             for _ in range(layers)]) if cross else None
        self.downsamplers = nn.ModuleList([Downsample2D(out_ch, pad)]) if add_down else None

    def forward(self, h, temb=None, ehs=None):
        states = ()
        for i, r in enumerate(self.resnets):
            h = r(h, temb)
            if self.attentions is not None:
                h = self.attentions[i](h, ehs)
            states += (h,)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            states += (h,)
        return h, states


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D (cross=True) / UpBlock2D."""

    def __init__(self, in_ch, prev_ch, out_ch, temb, layers, groups, eps, add_up, cross=False, heads=8, tlayers=1,
                 cross_dim=None, linear_proj=False, only_cross=False):
        super().__init__()
        rs = []
        for i in range(layers):
            skip = in_ch if i == layers - 1 else out_ch
            rin = prev_ch if i == 0 else out_ch
            rs.append(ResnetBlock2D(rin + skip, out_ch, temb, groups, eps))
        self.resnets = nn.ModuleList(rs)
        self.attentions = nn.ModuleList(
            [Transformer2DModel(heads, out_ch // heads, out_ch, tlayers, cross_dim, groups, linear_proj, only_cross)
             for _ in range(layers)]) if cross else None
        self.upsamplers = nn.ModuleList([Upsample2D(out_ch)]) if add_up else None

    def forward(self, h, res, temb, ehs, upsample_size=None):
        for i, r in enumerate(self.resnets):
            s = res[-1]
            res = res[:-1]
            h = torch.cat([h, s], dim=1)
            h = r(h, temb)
            if self.attentions is not None:
                h = self.attentions[i](h, ehs)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h, upsample_size)
        return h


class MidBlockCrossAttn(nn.Module):
    def __init__(self, ch, temb, groups, eps, heads, cross_dim, tlayers=1, scale=1.0, linear_proj=False):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, temb, groups, eps, output_scale_factor=scale)
                                      for _ in range(2)])
        self.attentions = nn.ModuleList([Transformer2DModel(heads, ch // heads, ch, tlayers, cross_dim, groups,
                                                            linear_proj)])

    def forward(self, h, temb, ehs):
        h = self.resnets[0](h, temb)
        h = self.attentions[0](h, ehs)
        return self.resnets[1](h, temb)


class UNet2DConditionModel(nn.Module):
    """SD1.5-family UNet2DConditionModel from a diffusers config dict (CrossAttn/plain blocks, cross-attn mid)."""

    def __init__(self, cfg):
        super().__init__()
        boc = cfg["block_out_channels"]
        n = len(boc)
        heads = cfg.get("attention_head_dim", 8)
        heads = heads if isinstance(heads, list) else [heads] * n
        cross = cfg.get("cross_attention_dim", 1280)
        cross = cross if isinstance(cross, list) else [cross] * n
        lpb = cfg.get("layers_per_block", 2)
        lpb = lpb if isinstance(lpb, list) else [lpb] * n
        tl = cfg.get("transformer_layers_per_block", 1)
        tl = tl if isinstance(tl, list) else [tl] * n
        groups, eps = cfg.get("norm_num_groups", 32), cfg.get("norm_eps", 1e-5)
        lin = cfg.get("use_linear_projection", False)
        oca = cfg.get("only_cross_attention", False)
        oca = oca if isinstance(oca, list) else [oca] * n
        self.flip = cfg.get("flip_sin_to_cos", True)
        self.shift = cfg.get("freq_shift", 0)
        self.boc0 = boc[0]
        ted = boc[0] * 4
        self.conv_in = nn.Conv2d(cfg.get("in_channels", 4), boc[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(boc[0], ted, cond_proj_dim=cfg.get("time_cond_proj_dim"))
        self.down_blocks = nn.ModuleList()
        out = boc[0]
        for i, t in enumerate(cfg["down_block_types"]):
            inp, out = out, boc[i]
            self.down_blocks.append(DownBlock(inp, out, ted, lpb[i], groups, eps, i < n - 1,
                                              cfg.get("downsample_padding", 1), t == "CrossAttnDownBlock2D",
                                              heads[i], tl[i], cross[i], lin, oca[i]))
        self.mid_block = MidBlockCrossAttn(boc[-1], ted, groups, eps, heads[-1], cross[-1], tl[-1],
                                           cfg.get("mid_block_scale_factor", 1), lin)
        self.num_upsamplers = n - 1
        rb, rh, rl, rc, rt, ro = boc[::-1], heads[::-1], lpb[::-1], cross[::-1], tl[::-1], oca[::-1]
        self.up_blocks = nn.ModuleList()
        out = rb[0]
        for i, t in enumerate(cfg["up_block_types"]):
            prev, out = out, rb[i]
            inp = rb[min(i + 1, n - 1)]
            self.up_blocks.append(UpBlock(inp, prev, out, ted, rl[i] + 1, groups, eps, i < n - 1,
                                          t == "CrossAttnUpBlock2D", rh[i], rt[i], rc[i], lin, ro[i]))
        self.conv_norm_out = nn.GroupNorm(num_channels=boc[0], num_groups=groups, eps=eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[0], cfg.get("out_channels", 4), 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, down_block_additional_residuals=None,
                mid_block_additional_residual=None, timestep_cond=None):
        up_factor = 2 ** self.num_upsamplers
        forward_upsample_size = any(s % up_factor != 0 for s in sample.shape[-2:])
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.float64)
        elif len(timesteps.shape) == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.expand(sample.shape[0])
        t_emb = get_timestep_embedding(timesteps, self.boc0, self.flip, self.shift).to(dtype=sample.dtype)
        emb = self.time_embedding(t_emb, timestep_cond)
        sample = self.conv_in(sample)
        res = (sample,)
        for blk in self.down_blocks:
            sample, r = blk(sample, emb, encoder_hidden_states)
            res += r
        if down_block_additional_residuals is not None and mid_block_additional_residual is not None:
            res = tuple(a + b for a, b in zip(res, down_block_additional_residuals))
        sample = self.mid_block(sample, emb, encoder_hidden_states)
        if mid_block_additional_residual is not None and down_block_additional_residuals is not None:
            sample = sample + mid_block_additional_residual
        upsample_size = None
        for i, blk in enumerate(self.up_blocks):
            final = i == len(self.up_blocks) - 1
            r = res[-len(blk.resnets):]
            res = res[:-len(blk.resnets)]
            if not final and forward_upsample_size:
                upsample_size = res[-1].shape[2:]
            sample = blk(sample, r, emb, encoder_hidden_states, upsample_size)
        sample = self.conv_act(self.conv_norm_out(sample))
        return self.conv_out(sample)


# ---------------------------------------------------------------------------------------------------- VAE

class UNetMidBlock2D(nn.Module):
    def __init__(self, ch, groups, eps=1e-6):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, None, groups, eps) for _ in range(2)])
        self.attentions = nn.ModuleList([Attention(ch, heads=1, dim_head=ch, bias=True, norm_num_groups=groups,
                                                   eps=eps, residual_connection=True, upcast_softmax=True)])

    def forward(self, h):
        h = self.resnets[0](h, None)
        h = self.attentions[0](h)
        return self.resnets[1](h, None)


class UpDecoderBlock2D(nn.Module):
    def __init__(self, in_ch, out_ch, layers, groups, add_up):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, None, groups, 1e-6) for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(out_ch)]) if add_up else None

    def forward(self, h):
        for r in self.resnets:
            h = r(h, None)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        boc, groups, lpb = cfg["block_out_channels"], cfg.get("norm_num_groups", 32), cfg.get("layers_per_block", 1)
        n = len(boc)
        self.conv_in = nn.Conv2d(cfg.get("in_channels", 3), boc[0], 3, 1, 1)
        self.down_blocks = nn.ModuleList()
        out = boc[0]
        for i in range(n):
            inp, out = out, boc[i]
            self.down_blocks.append(DownBlock(inp, out, None, lpb, groups, 1e-6, i < n - 1, 0))
        self.mid_block = UNetMidBlock2D(boc[-1], groups)
        self.conv_norm_out = nn.GroupNorm(num_channels=boc[-1], num_groups=groups, eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[-1], 2 * cfg.get("latent_channels", 4), 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x, _ = b(x)
        x = self.mid_block(x)
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        boc, groups, lpb = cfg["block_out_channels"], cfg.get("norm_num_groups", 32), cfg.get("layers_per_block", 1)
        n = len(boc)
        self.conv_in = nn.Conv2d(cfg.get("latent_channels", 4), boc[-1], 3, 1, 1)
        self.mid_block = UNetMidBlock2D(boc[-1], groups)
        rb = boc[::-1]
        self.up_blocks = nn.ModuleList()
        out = rb[0]
        for i in range(n):
            prev, out = out, rb[i]
            self.up_blocks.append(UpDecoderBlock2D(prev, out, lpb + 1, groups, i < n - 1))
        self.conv_norm_out = nn.GroupNorm(num_channels=boc[0], num_groups=groups, eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[0], cfg.get("out_channels", 3), 3, padding=1)

    def forward(self, z):
        z = self.conv_in(z)
        z = self.mid_block(z)
        for b in self.up_blocks:
            z = b(z)
        return self.conv_out(self.conv_act(self.conv_norm_out(z)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        lat = cfg.get("latent_channels", 4)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * lat, 2 * lat, 1)
        self.post_quant_conv = nn.Conv2d(lat, lat, 1)

    def encode_moments(self, x):
        """encode(x).latent_dist -> (mean, logvar clamped to [-30, 20]) as DiagonalGaussianDistribution."""
        moments = self.quant_conv(self.encoder(x))
        mean, logvar = torch.chunk(moments, 2, dim=1)
        return mean, torch.clamp(logvar, -30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


# ---------------------------------------------------------------------------------------------------- CLIP text

class CLIPAttention(nn.Module):
    """transformers 4.36 CLIPAttention (eager): q scaled before the product, causal mask added, softmax, out_proj."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim ** -0.5
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _shape(self, t, seq, bsz):
        return t.view(bsz, seq, self.heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, h, causal_mask):
        bsz, tgt, dim = h.shape
        q = self._shape(self.q_proj(h) * self.scale, tgt, bsz).view(bsz * self.heads, -1, self.head_dim)
        k = self._shape(self.k_proj(h), -1, bsz).view(bsz * self.heads, -1, self.head_dim)
        v = self._shape(self.v_proj(h), -1, bsz).view(bsz * self.heads, -1, self.head_dim)
        w = torch.bmm(q, k.transpose(1, 2))
        src = k.shape[1]
        w = (w.view(bsz, self.heads, tgt, src) + causal_mask).view(bsz * self.heads, tgt, src)
        w = F.softmax(w, dim=-1)
        o = torch.bmm(w, v).view(bsz, self.heads, tgt, self.head_dim).transpose(1, 2).reshape(bsz, tgt, dim)
        return self.out_proj(o)


class CLIPMLP(nn.Module):
    def __init__(self, dim, inter):
        super().__init__()
        self.fc1 = nn.Linear(dim, inter)
        self.fc2 = nn.Linear(inter, dim)

    def forward(self, x):
        x = self.fc1(x)
        x = x * torch.sigmoid(1.702 * x)  # quick_gelu
        return self.fc2(x)


class CLIPEncoderLayer(nn.Module):
    def __init__(self, dim, heads, inter, eps):
        super().__init__()
        self.self_attn = CLIPAttention(dim, heads)
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = CLIPMLP(dim, inter)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, causal_mask):
        x = x + self.self_attn(self.layer_norm1(x), causal_mask)
        return x + self.mlp(self.layer_norm2(x))


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, vocab, dim, max_pos):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.position_embedding = nn.Embedding(max_pos, dim)


class CLIPEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(cfg["hidden_size"], cfg["num_attention_heads"],
                                                      cfg["intermediate_size"], cfg.get("layer_norm_eps", 1e-5))
                                     for _ in range(cfg["num_hidden_layers"])])


class CLIPTextTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = CLIPTextEmbeddings(cfg["vocab_size"], cfg["hidden_size"], cfg["max_position_embeddings"])
        self.encoder = CLIPEncoder(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg["hidden_size"], eps=cfg.get("layer_norm_eps", 1e-5))


class CLIPTextModel(nn.Module):
    """transformers 4.36 CLIPTextModel (last_hidden_state only) with Arc2Face's CLIPTextModelWrapper extension:
    forward(input_ids, input_token_embs) uses the given token embeddings (Arc2Face splices the ID vector into the
    row of the "id" token) before the position embeddings are added. State dict names are transformers'
    (text_model.*), so the encoder's pytorch_model.bin loads with strict=True."""

    def __init__(self, cfg):
        super().__init__()
        if cfg.get("hidden_act", "quick_gelu") != "quick_gelu":
            raise ValueError(f"CLIPTextModel: hidden_act {cfg['hidden_act']} is not supported here")
        self.config = cfg
        self.text_model = CLIPTextTransformer(cfg)

    def token_embs(self, input_ids):
        return self.text_model.embeddings.token_embedding(input_ids)

    def forward(self, input_ids, input_token_embs=None):
        tm = self.text_model
        seq = input_ids.shape[-1]
        tok = input_token_embs if input_token_embs is not None else tm.embeddings.token_embedding(input_ids)
        pos = tm.embeddings.position_embedding(torch.arange(seq)[None, :])
        h = tok + pos
        # _create_4d_causal_attention_mask: finfo(dtype).min above the diagonal, 0 elsewhere.
        mask = torch.full((seq, seq), torch.finfo(h.dtype).min, dtype=h.dtype).triu(1)[None, None]
        for layer in tm.encoder.layers:
            h = layer(h, mask)
        return tm.final_layer_norm(h)


# ---------------------------------------------------------------------------------------------------- scheduler

class DPMSolverMultistepScheduler:
    """diffusers 0.29.2 DPMSolverMultistepScheduler restricted to what SD1.5's scheduler config selects:
    algorithm dpmsolver++, solver_order 2, midpoint, epsilon prediction, no Karras sigmas, lower_order_final,
    final_sigmas_type zero, timestep_spacing linspace / leading / trailing (+ steps_offset)."""

    def __init__(self, config):
        c = dict(config)
        if c.get("beta_schedule", "linear") != "scaled_linear" or c.get("trained_betas"):
            raise ValueError("DPMSolverMultistepScheduler here: only beta_schedule scaled_linear")
        for k, want in (("algorithm_type", "dpmsolver++"), ("solver_order", 2), ("solver_type", "midpoint"),
                        ("prediction_type", "epsilon"), ("use_karras_sigmas", False), ("thresholding", False),
                        ("final_sigmas_type", "zero"), ("euler_at_final", False)):
            if c.get(k, want) != want:
                raise ValueError(f"DPMSolverMultistepScheduler here: only {k}={want}")
        self.n_train = c.get("num_train_timesteps", 1000)
        betas = torch.linspace(c["beta_start"] ** 0.5, c["beta_end"] ** 0.5, self.n_train, dtype=torch.float32) ** 2
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.spacing = c.get("timestep_spacing", "linspace")
        self.steps_offset = c.get("steps_offset", 0)
        self.lower_order_final = c.get("lower_order_final", True)
        self.init_noise_sigma = 1.0

    def set_timesteps(self, n):
        last = self.n_train  # lambda_min_clipped = -inf
        if self.spacing == "linspace":
            ts = np.linspace(0, last - 1, n + 1).round()[::-1][:-1].copy().astype(np.int64)
        elif self.spacing == "leading":
            ratio = last // (n + 1)
            ts = (np.arange(0, n + 1) * ratio).round()[::-1][:-1].copy().astype(np.int64) + self.steps_offset
        elif self.spacing == "trailing":
            ts = np.arange(last, 0, -self.n_train / n).round().copy().astype(np.int64) - 1
        else:
            raise ValueError(f"timestep_spacing {self.spacing}")
        sig = np.array(((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5)
        sig = np.interp(ts, np.arange(0, len(sig)), sig)
        self.sigmas = torch.from_numpy(np.concatenate([sig, [0.0]]).astype(np.float32))
        self.timesteps = torch.from_numpy(ts).to(torch.int64)
        self.model_outputs = [None, None]
        self.lower_order_nums = 0
        self.step_index = 0

    @staticmethod
    def _alpha_sigma(sigma):
        alpha_t = 1 / ((sigma ** 2 + 1) ** 0.5)
        return alpha_t, sigma * alpha_t

    def scale_model_input(self, sample, t):
        return sample

    def step(self, model_output, t, sample):
        i, n = self.step_index, len(self.timesteps)
        lower_final = i == n - 1  # final_sigmas_type zero
        # convert_model_output (dpmsolver++): x0 prediction
        a_s, s_s = self._alpha_sigma(self.sigmas[i])
        x0 = (sample - s_s * model_output) / a_s
        self.model_outputs = [self.model_outputs[1], x0]
        sample = sample.to(torch.float32)
        a_t, s_t = self._alpha_sigma(self.sigmas[i + 1])
        lam_t = torch.log(a_t) - torch.log(s_t)
        lam_s0 = torch.log(a_s) - torch.log(s_s)
        h = lam_t - lam_s0
        if self.lower_order_nums < 1 or lower_final:
            prev = (s_t / s_s) * sample - (a_t * (torch.exp(-h) - 1.0)) * x0
        else:
            a_s1, s_s1 = self._alpha_sigma(self.sigmas[i - 1])
            lam_s1 = torch.log(a_s1) - torch.log(s_s1)
            r0 = (lam_s0 - lam_s1) / h
            m0, m1 = self.model_outputs[1], self.model_outputs[0]
            d0, d1 = m0, (1.0 / r0) * (m0 - m1)
            prev = (s_t / s_s) * sample - (a_t * (torch.exp(-h) - 1.0)) * d0 - 0.5 * (a_t * (torch.exp(-h) - 1.0)) * d1
        if self.lower_order_nums < 2:
            self.lower_order_nums += 1
        self.step_index += 1
        return prev.to(model_output.dtype)
