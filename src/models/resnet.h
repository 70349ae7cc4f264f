// Mirrors diffusers 0.29.2 ResnetBlock2D (src/diffusers/models/resnet.py), Downsample2D
// (src/diffusers/models/downsampling.py) and Upsample2D (src/diffusers/models/upsampling.py), for the
// configurations the UNet / ControlNet / AutoencoderKL families use: pre-norm, no up/down inside the resnet,
// time_embedding_norm "default" or "scale_shift", conv downsampling, nearest + conv upsampling.
#pragma once
#include <optional>
#include <string>

#include "nn/layers.h"

namespace a2f {

struct ResnetBlock2D {
  struct Options {
    int64_t in_channels = 0;
    int64_t out_channels = 0;
    int64_t temb_channels = 0;  // 0: no time_emb_proj (VAE)
    int groups = 32;
    int groups_out = 0;  // 0: same as groups
    float eps = 1e-6f;
    Act act = Act::Silu;
    bool scale_shift = false;  // time_embedding_norm == "scale_shift"
    float output_scale_factor = 1.0f;
  };

  nn::GroupNorm norm1, norm2;
  nn::Conv2d conv1, conv2;
  nn::Linear time_emb_proj;  // weight undefined when temb_channels == 0
  std::optional<nn::Conv2d> conv_shortcut;
  Act act = Act::Silu;
  bool scale_shift = false;
  float output_scale_factor = 1.0f;
  std::string name;

  static ResnetBlock2D load(nn::WeightLoader& w, const std::string& prefix, const Options& o);
  // x [N, in, H, W]; temb_act = nonlinearity(temb) [N, T] (shared by all resnets of a network), or undefined
  // -> [N, out, H, W]
  Tensor operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act) const;
};

// Downsample2D(use_conv=True): 3x3 stride-2 conv; padding 0 means diffusers' explicit (0, 1, 0, 1) zero pad.
struct Downsample2D {
  nn::Conv2d conv;
  std::string name;

  static Downsample2D load(nn::WeightLoader& w, const std::string& prefix, int64_t channels,
                           int64_t out_channels, int padding);
  // x [N, C, H, W] -> [N, out, ceil-ish(H/2), ...]
  Tensor operator()(const nn::Ctx& c, const Tensor& x) const;
};

// Upsample2D(use_conv=True): nearest resize (x2, or to the given size as diffusers' upsample_size), 3x3 conv.
struct Upsample2D {
  nn::Conv2d conv;
  std::string name;

  static Upsample2D load(nn::WeightLoader& w, const std::string& prefix, int64_t channels,
                         int64_t out_channels);
  // x [N, C, H, W] -> [N, out, out_h, out_w]; out_h/out_w <= 0 mean 2H/2W.
  Tensor operator()(const nn::Ctx& c, const Tensor& x, int64_t out_h = 0, int64_t out_w = 0) const;
};

}  // namespace a2f
