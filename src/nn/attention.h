// diffusers 0.29.2 attention layers: Attention with the plain AttnProcessor
// (src/diffusers/models/attention_processor.py) and FeedForward with GEGLU
// (src/diffusers/models/attention.py, activations.py).
#pragma once
#include <string>

#include "nn/layers.h"

namespace a2f::nn {

// diffusers Attention: to_q / to_k / to_v / to_out.0 (the legacy names query / key / value / proj_attn of old
// VAE files are accepted too, as diffusers renames them at load). Heads are interleaved in the last dimension
// (head_to_batch_dim), scale = dim_head^-0.5, softmax in f32.
struct Attention {
  Linear to_q, to_k, to_v, to_out;
  int heads = 1;
  int64_t dim_head = 0;
  float scale = 1.0f;

  struct Options {
    int64_t query_dim = 0;
    int64_t cross_attention_dim = 0;  // 0: self-attention (to_k / to_v take query_dim)
    int heads = 1;
    int64_t dim_head = 0;
    bool bias = false;     // to_q / to_k / to_v
    bool out_bias = true;  // to_out.0
  };
  static Attention load(WeightLoader& w, const std::string& prefix, const Options& o);

  // x [B, Lq, query_dim], context [B, Lk, cross_dim] or undefined (self-attention) -> [B, Lq, query_dim]
  Tensor operator()(const Ctx& c, const Tensor& x, const Tensor& context = Tensor()) const;
};

// diffusers FeedForward(dim, activation_fn="geglu"): net.0 = GEGLU (proj to 2*inner, hidden * gelu(gate)),
// net.2 = Linear(inner, dim_out).
struct FeedForward {
  Linear proj;  // net.0.proj
  Linear out;   // net.2

  static FeedForward load(WeightLoader& w, const std::string& prefix, int64_t dim, int64_t inner_dim,
                          int64_t dim_out);
  // x [..., dim] -> [..., dim_out]
  Tensor operator()(const Ctx& c, const Tensor& x) const;
};

}  // namespace a2f::nn
