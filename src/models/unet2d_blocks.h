// Mirrors the diffusers 0.29.2 blocks of src/diffusers/models/unets/unet_2d_blocks.py that SD1.5-family
// UNets, ControlNets and AutoencoderKL use: CrossAttnDownBlock2D / DownBlock2D / DownEncoderBlock2D (one
// struct: attentions and a time embedding are optional), CrossAttnUpBlock2D / UpBlock2D, UpDecoderBlock2D,
// UNetMidBlock2DCrossAttn and UNetMidBlock2D (with diffusers' single-head spatial Attention).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "models/resnet.h"
#include "models/transformer_2d.h"

namespace a2f {

// What get_down_block / get_up_block / get_mid_block pass to a block.
struct BlockOptions {
  int num_layers = 1;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t prev_output_channel = 0;  // up blocks with skip connections
  int64_t temb_channels = 0;        // 0: no time embedding (VAE)
  float resnet_eps = 1e-6f;
  Act resnet_act = Act::Silu;
  int resnet_groups = 32;
  bool resnet_scale_shift = false;  // resnet_time_scale_shift == "scale_shift"
  float output_scale_factor = 1.0f;
  bool add_sample = false;  // add_downsample / add_upsample
  int downsample_padding = 1;
  // Cross-attention blocks (Transformer2DModel after each resnet).
  bool cross_attention = false;
  std::vector<int64_t> transformer_layers;  // per layer
  int num_attention_heads = 1;
  int64_t cross_attention_dim = 0;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
};

// CrossAttnDownBlock2D (attentions not empty), DownBlock2D, DownEncoderBlock2D (no temb, states not
// collected).
struct DownBlock2D {
  std::vector<ResnetBlock2D> resnets;
  std::vector<Transformer2DModel> attentions;
  std::optional<Downsample2D> downsampler;
  std::string name;

  static DownBlock2D load(nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o);
  // x [N, in, H, W] -> [N, out, H', W']; each output state is appended to `states` when given.
  Tensor operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act, const Tensor& context,
                    std::vector<Tensor>* states) const;
  size_t num_states() const { return resnets.size() + (downsampler ? 1 : 0); }
};

// CrossAttnUpBlock2D (attentions not empty), UpBlock2D: each resnet takes cat([h, skip], dim 1) with the
// skips popped from the end of `skips`.
struct UpBlock2D {
  std::vector<ResnetBlock2D> resnets;
  std::vector<Transformer2DModel> attentions;
  std::optional<Upsample2D> upsampler;
  std::string name;

  static UpBlock2D load(nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o);
  // upsample_h/w: diffusers' upsample_size (<= 0: x2).
  Tensor operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act, const Tensor& context,
                    std::vector<Tensor>& skips, int64_t upsample_h = 0, int64_t upsample_w = 0) const;
};

// UpDecoderBlock2D: resnets (no skips, no temb), then the upsampler.
struct UpDecoderBlock2D {
  std::vector<ResnetBlock2D> resnets;
  std::optional<Upsample2D> upsampler;
  std::string name;

  static UpDecoderBlock2D load(nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o);
  Tensor operator()(const nn::Ctx& c, const Tensor& x) const;
};

// UNetMidBlock2DCrossAttn (num_layers 1): resnet, then (Transformer2DModel, resnet) per layer.
struct UNetMidBlock2DCrossAttn {
  std::vector<ResnetBlock2D> resnets;
  std::vector<Transformer2DModel> attentions;
  std::string name;

  static UNetMidBlock2DCrossAttn load(nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o);
  Tensor operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act, const Tensor& context) const;
};

// diffusers Attention as UNetMidBlock2D builds it: GroupNorm in front, heads = C / attention_head_dim, biased
// projections, residual connection, divided by rescale_output_factor.
struct SpatialAttention {
  nn::GroupNorm group_norm;
  nn::Attention attn;
  float rescale_output_factor = 1.0f;
  std::string name;

  static SpatialAttention load(nn::WeightLoader& w, const std::string& prefix, int64_t channels,
                               int64_t attention_head_dim, int groups, float eps,
                               float rescale_output_factor);
  // x [N, C, H, W] -> [N, C, H, W]
  Tensor operator()(const nn::Ctx& c, const Tensor& x) const;
};

// UNetMidBlock2D: resnet, then (attention if add_attention, resnet) per layer. The VAE uses num_layers 1 with
// attention (attention_head_dim = channels: one head); the UNet's "UNetMidBlock2D" uses num_layers 0.
struct UNetMidBlock2D {
  std::vector<ResnetBlock2D> resnets;
  std::vector<SpatialAttention> attentions;  // empty when add_attention is false
  std::string name;

  static UNetMidBlock2D load(nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o,
                             bool add_attention, int64_t attention_head_dim);
  Tensor operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act) const;
};

}  // namespace a2f
