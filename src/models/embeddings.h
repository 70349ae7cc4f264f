// Mirrors diffusers 0.29.2 Timesteps + TimestepEmbedding (src/diffusers/models/embeddings.py).
#pragma once
#include <optional>
#include <string>

#include "nn/layers.h"

namespace a2f {

// Timesteps(num_channels, flip_sin_to_cos, downscale_freq_shift): get_timestep_embedding with scale 1 and
// max_period 10000. timesteps [N] -> [N, num_channels] f32.
struct Timesteps {
  int num_channels = 0;
  bool flip_sin_to_cos = true;
  float downscale_freq_shift = 0.0f;

  Tensor operator()(const nn::Ctx& c, const Tensor& timesteps) const;
};

// TimestepEmbedding(in_channels, time_embed_dim, act_fn, post_act_fn, cond_proj_dim):
// sample (+ cond_proj(condition)) -> linear_1 -> act -> linear_2 -> post_act.
struct TimestepEmbedding {
  nn::Linear linear_1, linear_2;
  nn::Linear cond_proj;  // weight undefined without cond_proj_dim
  Act act = Act::Silu;
  Act post_act = Act::None;

  static TimestepEmbedding load(nn::WeightLoader& w, const std::string& prefix, int64_t in_channels,
                                int64_t time_embed_dim, Act act, Act post_act, int64_t cond_proj_dim = 0);
  // sample [N, in], condition [N, cond_proj_dim] (required iff cond_proj exists) -> [N, time_embed_dim]
  Tensor operator()(const nn::Ctx& c, const Tensor& sample, const Tensor& condition = Tensor()) const;
};

// Host-side helper: timesteps as a [n] f32 host tensor from a scalar/[1]/[n] tensor of any float or int
// dtype, broadcast to the batch as diffusers' `timesteps.expand(sample.shape[0])`. `what` names the model in
// errors.
Tensor timesteps_for_batch(const Tensor& timesteps, int64_t batch, const std::string& what);

}  // namespace a2f
