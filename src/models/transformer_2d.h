// Mirrors diffusers 0.29.2 Transformer2DModel (src/diffusers/models/transformers/transformer_2d.py),
// continuous input path, with BasicTransformerBlock (src/diffusers/models/attention.py) in its UNet
// configuration: norm_type "layer_norm" (eps 1e-5, affine), activation_fn "geglu", attention_bias False, no
// positional embeddings, attention_type "default".
#pragma once
#include <string>
#include <vector>

#include "nn/attention.h"

namespace a2f {

struct BasicTransformerBlock {
  nn::LayerNorm norm1, norm2, norm3;
  nn::Attention attn1;  // self-attention (cross-attention to the context when only_cross_attention)
  nn::Attention attn2;  // cross-attention
  nn::FeedForward ff;
  bool only_cross_attention = false;
  std::string name;

  // x [N, L, C], context [N, Lc, Cc] -> [N, L, C]
  Tensor operator()(const nn::Ctx& c, const Tensor& x, const Tensor& context) const;
};

struct Transformer2DModel {
  struct Options {
    int num_attention_heads = 8;
    int64_t attention_head_dim = 0;  // per head
    int64_t in_channels = 0;
    int num_layers = 1;
    int64_t cross_attention_dim = 0;
    int norm_num_groups = 32;
    bool use_linear_projection = false;
    bool only_cross_attention = false;
  };

  nn::GroupNorm norm;            // eps 1e-6
  nn::Linear proj_in, proj_out;  // 1x1 convs are loaded as Linear over channels-last tokens
  std::vector<BasicTransformerBlock> transformer_blocks;
  std::string name;

  static Transformer2DModel load(nn::WeightLoader& w, const std::string& prefix, const Options& o);
  // x [N, C, H, W], context [N, Lc, Cc] -> [N, C, H, W]
  Tensor operator()(const nn::Ctx& c, const Tensor& x, const Tensor& context) const;
};

}  // namespace a2f
