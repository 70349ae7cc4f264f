// LoRA adapters for the UNet, read the way diffusers 0.29.2 reads them with PEFT 0.11.1:
//   LoraLoaderMixin.load_lora_weights / lora_state_dict (src/diffusers/loaders/lora.py),
//   _convert_non_diffusers_lora_to_diffusers + _convert_unet_lora_key (loaders/lora_conversion_utils.py),
//   UNet2DConditionLoadersMixin._process_lora (loaders/unet.py), convert_unet_state_dict_to_peft
//   (utils/state_dict_utils.py), get_peft_kwargs (utils/peft_utils.py), and PEFT's LoraLayer merge / forward
//   (peft/tuners/lora/layer.py, Linear and Conv2d).
//
// Formats (all as diffusers loads them from a `pytorch_lora_weights.safetensors` or .bin):
// - kohya / A1111: `lora_unet_<path with _>.lora_down.weight`, `.lora_up.weight`, `.alpha` (e.g.
//   latent-consistency/lcm-lora-sdv1-5); `lora_te_*` text-encoder parts are not applied (reported).
// - diffusers / PEFT: `unet.<module>.lora_A.weight` / `.lora_B.weight`, `unet.<module>.lora.down.weight` /
//   `.lora.up.weight` (what save_lora_weights writes), and the old attention-processor names
//   `<...>.attn1.processor.to_q_lora.down.weight` (no prefix). `text_encoder.*` parts are not applied.
// Scaling per module: scale = alpha / rank, where alpha is the module's own kohya alpha, else the most common
// alpha of the file, else (files without alphas) the rank of the first module in key order — exactly the
// LoraConfig(lora_alpha, alpha_pattern) diffusers builds. Merge: W' = W + (B @ A) * scale (a conv's A
// [r, in, k, k] times its 1x1 B), in f32.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/weights.h"
#include "models/unet2d.h"

namespace a2f {

// One adapted UNet module.
struct LoraModuleWeights {
  std::string
      module;   // diffusers module path, e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
  Tensor down;  // lora_A as stored (host): [r, in] or [r, in, k, k]
  Tensor up;    // lora_B as stored (host): [out, r] or [out, r, 1, 1]
  int64_t rank = 0;
  double alpha = 0;  // the lora_alpha PEFT uses for this module
  double scale() const { return alpha / static_cast<double>(rank); }
};

struct LoraWeights {
  std::string file;
  std::string format;                   // "kohya", "peft", "diffusers", "diffusers-old" (for messages)
  std::vector<LoraModuleWeights> unet;  // sorted by module path
  std::vector<std::string> ignored;     // tensors of parts this port does not adapt (text encoders)
};

// Reads a LoRA file (safetensors or torch .bin). Throws a2f::Error naming the file and the offending key for
// anything diffusers would reject (missing lora_up, keys that do not convert, DoRA, custom diffusion, ...).
LoraWeights lora_load(const std::filesystem::path& file);
LoraWeights lora_from_state_dict(const StateDict& sd, const std::string& what);

// The key conversions, exposed for the tests: diffusers' _convert_unet_lora_key (a kohya `lora_unet_...` key
// to the diffusers name) and convert_unet_state_dict_to_peft on one key.
std::string lora_kohya_unet_key(const std::string& key);
std::string lora_unet_key_to_peft(const std::string& key);

// How an enabled LoRA runs: merged into a second copy of each adapted weight (the base weights stay
// untouched; same speed as the base model, one extra copy of the adapted weights), or unmerged as a low-rank
// side path (no copy, extra compute each step). bench/bench_lcm.cpp measures both.
enum class LoraMode { Merged, Unmerged };

// A LoRA attached to a UNet. Enabling and disabling swap weight handles (or side paths) of the adapted
// layers: cheap, and exact (disabled = the base model bit for bit). The UNet must outlive the adapter; not
// thread-safe (the pipeline runs one generation at a time).
class LoraAdapter {
 public:
  // Matches every module of `weights` to a Linear / Conv2d of `unet` (a shape mismatch throws; modules the
  // UNet lacks are warned about, as diffusers warns about unexpected keys; none matching throws). `scale` is
  // the adapter weight (fuse_lora(lora_scale) / set_adapters(weights)). Starts disabled.
  LoraAdapter(UNet2DConditionModel& unet, LoraWeights weights, float scale = 1.0f,
              LoraMode mode = LoraMode::Merged);
  ~LoraAdapter();
  LoraAdapter(const LoraAdapter&) = delete;
  LoraAdapter& operator=(const LoraAdapter&) = delete;

  // Merged mode computes the merged copies on the first enable and keeps them.
  void set_enabled(bool on);
  bool enabled() const { return enabled_; }
  LoraMode mode() const { return mode_; }
  const std::string& file() const { return weights_.file; }
  size_t num_modules() const { return targets_.size(); }
  std::vector<std::string> unmatched() const { return unmatched_; }

  // The weight of `module` with the LoRA merged (host f32, the layer's shape), e.g. to compare with
  // diffusers' fuse_lora(). Throws for a module the adapter does not touch.
  Tensor merged_weight(const std::string& module);

 private:
  struct Target {
    const LoraModuleWeights* w = nullptr;
    nn::Linear* linear = nullptr;
    nn::Conv2d* conv = nullptr;
    Tensor base;                                   // the layer's own weight (never modified)
    Tensor merged;                                 // merged mode: base + delta, computed on first enable
    std::shared_ptr<const nn::LoraBranch> branch;  // unmerged mode
    Tensor& weight() { return linear ? linear->weight : conv->weight; }
  };
  void merge(Target& t);

  Backend& be_;
  DType dtype_;  // the UNet's compute dtype (its weights may be kept in the checkpoint's; see
                 // prepare_dense_weight)
  LoraWeights weights_;
  float scale_;
  LoraMode mode_;
  bool enabled_ = false;
  std::vector<Target> targets_;
  std::vector<std::string> unmatched_;
};

// Enables a LoRA for a scope (one request) and restores the previous state on exit, also on exceptions.
class LoraScope {
 public:
  LoraScope(LoraAdapter* lora, bool on) : lora_(lora), was_(lora && lora->enabled()) {
    if (lora_) lora_->set_enabled(on);
  }
  ~LoraScope() {
    if (lora_) lora_->set_enabled(was_);
  }
  LoraScope(const LoraScope&) = delete;
  LoraScope& operator=(const LoraScope&) = delete;

 private:
  LoraAdapter* lora_;
  bool was_;
};

}  // namespace a2f
