// Mirrors diffusers 0.29.2 AutoencoderKL (src/diffusers/models/autoencoders/autoencoder_kl.py) with its
// Encoder and Decoder (src/diffusers/models/autoencoders/vae.py: DownEncoderBlock2D / UpDecoderBlock2D,
// UNetMidBlock2D with one single-head attention, GroupNorm eps 1e-6) and DiagonalGaussianDistribution's mean
// / clamped logvar. Loads the SD1.5 VAE file unchanged, including its legacy attention names
// (query/key/value/proj_attn).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/weights.h"
#include "models/model_config.h"
#include "models/unet2d_blocks.h"

namespace a2f {

struct AutoencoderKLConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t latent_channels = 4;
  std::vector<int64_t> block_out_channels{64};
  int64_t layers_per_block = 1;
  std::string act_fn = "silu";
  int64_t norm_num_groups = 32;
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;

  // diffusers' defaults for absent keys; unsupported values throw naming the key and value.
  static AutoencoderKLConfig from_reader(const ConfigReader& r);
};

class AutoencoderKL {
 public:
  // Loads `dir`/config.json and `dir`/diffusion_pytorch_model.safetensors (or .bin).
  static std::unique_ptr<AutoencoderKL> from_pretrained(const std::filesystem::path& dir, Backend& backend,
                                                        DType dtype = DType::F32);
  AutoencoderKL(const AutoencoderKLConfig& config, const StateDict& weights, const std::string& file,
                Backend& backend, DType dtype = DType::F32);

  const AutoencoderKLConfig& config() const { return cfg_; }
  float scaling_factor() const { return static_cast<float>(cfg_.scaling_factor); }
  // 2^(levels - 1): image pixels per latent pixel (8 for SD).
  int64_t downscale_factor() const { return int64_t(1) << (cfg_.block_out_channels.size() - 1); }

  // vae.decode(z).sample: z [B, latent, h, w] (already divided by scaling_factor, as the pipelines do)
  // -> [B, out, h*f, w*f] in f32, roughly [-1, 1].
  Tensor decode(const Tensor& z) const;

  // vae.encode(x).latent_dist: x [B, in, H, W] in [-1, 1] (H, W multiples of downscale_factor())
  // -> mean and logvar (clamped to [-30, 20]) [B, latent, H/f, W/f] in f32, on the host.
  struct LatentDist {
    Tensor mean, logvar;
  };
  LatentDist encode(const Tensor& x) const;

  void set_debug_hook(nn::TensorHook hook) { hook_ = std::move(hook); }

 private:
  AutoencoderKLConfig cfg_;
  Backend& be_;
  DType dtype_;
  Act act_ = Act::Silu;
  // encoder
  nn::Conv2d enc_conv_in_;
  std::vector<DownBlock2D> enc_down_;
  UNetMidBlock2D enc_mid_;
  nn::GroupNorm enc_norm_out_;
  nn::Conv2d enc_conv_out_;
  std::optional<nn::Conv2d> quant_conv_;
  // decoder
  std::optional<nn::Conv2d> post_quant_conv_;
  nn::Conv2d dec_conv_in_;
  UNetMidBlock2D dec_mid_;
  std::vector<UpDecoderBlock2D> dec_up_;
  nn::GroupNorm dec_norm_out_;
  nn::Conv2d dec_conv_out_;
  nn::TensorHook hook_;
};

// VaeImageProcessor.postprocess(x, "np"): clamp(x / 2 + 0.5, 0, 1) as NHWC f32 on the host. x [B, C, H, W].
Tensor vae_postprocess(const Tensor& x);

}  // namespace a2f
