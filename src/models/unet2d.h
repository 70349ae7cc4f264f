// Mirrors diffusers 0.29.2 UNet2DConditionModel (src/diffusers/models/unets/unet_2d_condition.py) for
// SD1.5-family configs: positional time embedding (optionally with cond_proj for LCM-distilled UNets),
// CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn / UNetMidBlock2D / none, CrossAttnUpBlock2D /
// UpBlock2D, ControlNet residuals. Config values outside that family (class / addition embeddings,
// encoder_hid_proj, dual cross-attention, gated attention, ...) are rejected with an error naming the key and
// value.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/weights.h"
#include "models/embeddings.h"
#include "models/model_config.h"
#include "models/unet2d_blocks.h"

namespace a2f {

struct UNet2DConditionConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<std::string> down_block_types;  // "CrossAttnDownBlock2D" | "DownBlock2D"
  std::vector<std::string> up_block_types;    // "CrossAttnUpBlock2D" | "UpBlock2D"
  std::string mid_block_type;                 // "UNetMidBlock2DCrossAttn" | "UNetMidBlock2D" | "" (none)
  std::vector<bool> only_cross_attention;     // per down block
  std::vector<int64_t> block_out_channels;
  std::vector<int64_t> layers_per_block;  // per down block
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1;
  std::string act_fn = "silu";
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  std::vector<int64_t> cross_attention_dim;  // per down block
  // Per block, per layer (an int in the file is repeated over the block's layers).
  std::vector<std::vector<int64_t>> transformer_layers_per_block;          // down blocks
  std::vector<std::vector<int64_t>> reverse_transformer_layers_per_block;  // up blocks (empty: reversed down)
  // Heads per down block: diffusers' `num_attention_heads or attention_head_dim` (SD1.5's attention_head_dim
  // 8 is the number of heads).
  std::vector<int64_t> num_attention_heads;
  bool use_linear_projection = false;
  bool upcast_attention = false;                    // f32 scores and softmax; ours always are
  std::string resnet_time_scale_shift = "default";  // "default" | "scale_shift"
  int64_t time_embedding_dim = 0;                   // 0: block_out_channels[0] * 4
  std::string time_embedding_act_fn;                // "" = none
  std::string timestep_post_act;                    // "" = none
  int64_t time_cond_proj_dim = 0;                   // 0 = none
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;

  // diffusers' defaults for absent keys; unsupported values throw naming the key and value.
  static UNet2DConditionConfig from_reader(const ConfigReader& r);

  int64_t time_embed_dim() const {
    return time_embedding_dim > 0 ? time_embedding_dim : block_out_channels[0] * 4;
  }
  // What get_down_block / get_mid_block receive for down block i / the mid block (shared with ControlNet).
  BlockOptions down_block_options(size_t i) const;
  BlockOptions mid_block_options() const;
  BlockOptions up_block_options(size_t i) const;
};

// ControlNet outputs, already multiplied by the conditioning scale: one residual per skip connection (conv_in
// output first, in diffusers' down_block_res_samples order) and one for the mid block output.
struct UNetResiduals {
  std::vector<Tensor> down;
  Tensor mid;
};

class UNet2DConditionModel {
 public:
  // Loads `dir`/config.json and `dir`/diffusion_pytorch_model.safetensors (or .bin).
  static std::unique_ptr<UNet2DConditionModel> from_pretrained(const std::filesystem::path& dir,
                                                               Backend& backend, DType dtype = DType::F32);
  UNet2DConditionModel(const UNet2DConditionConfig& config, const StateDict& weights, const std::string& file,
                       Backend& backend, DType dtype = DType::F32);
  // Takes every tensor from `weights` (its backend and compute dtype).
  UNet2DConditionModel(const UNet2DConditionConfig& config, nn::WeightLoader& weights);

  const UNet2DConditionConfig& config() const { return cfg_; }
  DType dtype() const { return dtype_; }
  Backend& backend() const { return be_; }

  // sample [B, in, h, w]; timesteps (host) scalar, [1] or [B], float or int; encoder_hidden_states [B, L, C];
  // controlnet residuals optional; timestep_cond [B, time_cond_proj_dim] only for UNets with
  // time_cond_proj_dim. Returns the predicted noise [B, out, h, w] in f32.
  Tensor forward(const Tensor& sample, const Tensor& timesteps, const Tensor& encoder_hidden_states,
                 const UNetResiduals* controlnet = nullptr, const Tensor& timestep_cond = Tensor()) const;

  void set_debug_hook(nn::TensorHook hook) { hook_ = std::move(hook); }

  // Visits every Linear and Conv2d of the network (the modules a LoRA can target; models/lora.h). A layer's
  // diffusers module path is its weight's name without ".weight", e.g. "down_blocks.0.resnets.0.conv1" (1x1
  // proj_in / proj_out convs are held as Linear layers). Layers stay at the same addresses for the model's
  // life.
  void for_each_layer(const std::function<void(nn::Linear&)>& on_linear,
                      const std::function<void(nn::Conv2d&)>& on_conv);

 private:
  UNet2DConditionConfig cfg_;
  Backend& be_;
  DType dtype_;
  Act act_ = Act::Silu;
  Act time_embed_act_ = Act::None;
  nn::Conv2d conv_in_;
  Timesteps time_proj_;
  TimestepEmbedding time_embedding_;
  std::vector<DownBlock2D> down_blocks_;
  std::optional<UNetMidBlock2DCrossAttn> mid_cross_;
  std::optional<UNetMidBlock2D> mid_plain_;
  std::vector<UpBlock2D> up_blocks_;
  nn::GroupNorm conv_norm_out_;
  nn::Conv2d conv_out_;
  size_t num_upsamplers_ = 0;
  nn::TensorHook hook_;
};

}  // namespace a2f
