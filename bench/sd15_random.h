// Shared by the SD1.5-size benchmarks (bench_unet, bench_lcm): the real SD1.5 UNet config and seeded random
// weights of sane magnitude, made in memory by name (nn::WeightLoader's missing-tensor handler), no file.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "models/unet2d.h"

namespace a2f::bench {

// stable-diffusion-v1-5/unet/config.json
inline const char* kSd15UnetConfig = R"({
  "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
  "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
  "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
})";

// Fast deterministic uniform numbers with unit variance (values only need to be sane, not Gaussian).
struct Rng {
  uint64_t s;
  float next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const float u = static_cast<float>((s >> 40) & 0xffffff) / 16777216.0f;  // [0, 1)
    return (2.0f * u - 1.0f) * 1.7320508f;
  }
};

inline Tensor random_tensor(const Shape& shape, float scale, float offset, uint64_t seed) {
  Tensor t = Tensor::empty(shape);  // [shape]
  float* p = t.data<float>();
  Rng r{seed * 0x9e3779b97f4a7c15ull + 1};
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = offset + scale * r.next();
  return t;
}

// Like the fixture generator: weights N(0,1)/sqrt(fan_in)-like, biases 0.02, norm scales 1 + 0.1.
inline Tensor random_weight(const std::string& name, const Shape& shape) {
  const uint64_t seed = std::hash<std::string>{}(name);
  if (shape.size() == 1) {
    const bool norm_scale = name.find("norm") != std::string::npos && name.ends_with(".weight");
    return norm_scale ? random_tensor(shape, 0.1f, 1.0f, seed) : random_tensor(shape, 0.02f, 0.0f, seed);
  }
  const int64_t fan_in = shape_numel(shape) / shape[0];
  return random_tensor(shape, 1.0f / std::sqrt(static_cast<float>(fan_in)), 0.0f, seed);
}

// The SD1.5 UNet with random_weight's weights, prepared for `backend` in `dtype`.
inline std::unique_ptr<UNet2DConditionModel> random_sd15_unet(Backend& backend, DType dtype) {
  auto cfg = UNet2DConditionConfig::from_reader(ConfigReader(nlohmann::json::parse(kSd15UnetConfig), "sd15"));
  StateDict none;
  nn::WeightLoader w(none, "random SD1.5 UNet", backend, dtype);
  w.set_missing_handler(random_weight);
  return std::make_unique<UNet2DConditionModel>(cfg, w);
}

}  // namespace a2f::bench
