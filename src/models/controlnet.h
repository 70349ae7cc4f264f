// Mirrors diffusers 0.29.2 ControlNetModel and ControlNetConditioningEmbedding (src/diffusers/models/
// controlnet.py) for SD1.5-family configs (the Arc2Face pose ControlNet is one): the UNet's down and mid
// blocks (shared with models/unet2d_blocks.h), a conditioning-image encoder (conv_in 3x3, SiLU; per level a
// 3x3 conv and a 3x3 stride-2 conv, each with SiLU; conv_out 3x3) added to conv_in's output, and one 1x1 conv
// per skip connection (controlnet_down_blocks) and for the mid block (controlnet_mid_block). guess_mode and
// global_pool_conditions are not supported (the pipelines' defaults; a config with global_pool_conditions is
// rejected).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/weights.h"
#include "models/embeddings.h"
#include "models/model_config.h"
#include "models/unet2d.h"

namespace a2f {

struct ControlNetConfig {
  UNet2DConditionConfig unet;  // the keys ControlNetModel shares with the UNet (down / mid blocks, time)
  int64_t conditioning_channels = 3;
  std::vector<int64_t> conditioning_embedding_out_channels{16, 32, 96, 256};
  bool bgr = false;  // controlnet_conditioning_channel_order == "bgr": the condition's channels are flipped

  // diffusers' defaults for absent keys; unsupported values throw naming the key and value.
  static ControlNetConfig from_reader(const ConfigReader& r);
};

class ControlNetModel {
 public:
  // Loads `dir`/config.json and `dir`/diffusion_pytorch_model.safetensors (or .bin).
  static std::unique_ptr<ControlNetModel> from_pretrained(const std::filesystem::path& dir, Backend& backend,
                                                          DType dtype = DType::F32);
  ControlNetModel(const ControlNetConfig& config, nn::WeightLoader& weights);

  const ControlNetConfig& config() const { return cfg_; }

  // sample [B, in, h, w] (the UNet's input), timesteps (host) scalar/[1]/[B], encoder_hidden_states [B, L,
  // C], cond [B, conditioning_channels, h*f, w*f] in [0, 1] (f = 2^(levels of the condition encoder - 1)) ->
  // residuals for the UNet's skip connections and mid block, multiplied by conditioning_scale.
  UNetResiduals forward(const Tensor& sample, const Tensor& timesteps, const Tensor& encoder_hidden_states,
                        const Tensor& cond, float conditioning_scale = 1.0f) const;

  void set_debug_hook(nn::TensorHook hook) { hook_ = std::move(hook); }

 private:
  ControlNetConfig cfg_;
  Backend& be_;
  DType dtype_;
  Act act_ = Act::Silu;
  nn::Conv2d conv_in_;
  Timesteps time_proj_;
  TimestepEmbedding time_embedding_;
  // controlnet_cond_embedding
  nn::Conv2d cond_conv_in_;
  std::vector<nn::Conv2d> cond_blocks_;
  nn::Conv2d cond_conv_out_;
  std::vector<DownBlock2D> down_blocks_;
  std::vector<nn::Conv2d> controlnet_down_blocks_;
  std::optional<UNetMidBlock2DCrossAttn> mid_cross_;
  std::optional<UNetMidBlock2D> mid_plain_;
  nn::Conv2d controlnet_mid_block_;
  nn::TensorHook hook_;
};

}  // namespace a2f
