// Diffusion schedulers in parity with diffusers 0.29.2 (src/diffusers/schedulers/scheduling_*.py), each built
// the way `<Class>.from_config(sd15_scheduler_config)` builds it: keys the class knows override its own
// defaults, other keys are ignored. Arithmetic follows diffusers/torch: float32 tensors with the same
// operation order and rounding, float64 where diffusers computes in numpy.
//
// Use (what StableDiffusionPipeline does):
//   auto s = make_scheduler("dpm++2m", config);  s->set_timesteps(25);
//   latents = randn(...) * s->init_noise_sigma();
//   for (int i = 0; i < s->num_steps(); ++i) {
//     Tensor in = s->scale_model_input(latents, i);      // UNet input, at timestep s->timesteps()[i]
//     Tensor eps = unet(in, s->timesteps()[i], ...);
//     latents = s->step(eps, i, latents, &generator);    // steps must come in order 0, 1, 2, ...
//   }
// Schedulers are stateful (multistep history) and not thread-safe; set_timesteps() resets them.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace a2f {

class TorchGenerator;

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  virtual std::string_view name() const = 0;  // CLI name, e.g. "dpm++2m"
  virtual void set_timesteps(int num_inference_steps) = 0;

  int num_steps() const { return static_cast<int>(timesteps_.size()); }
  // The timestep passed to the UNet at each step, as diffusers passes it (integers for
  // DPM/DDIM/PNDM/UniPC/LCM, float32 values that may be fractional for Euler/Euler-a/LMS).
  const std::vector<double>& timesteps() const { return timesteps_; }
  // Noise levels per step plus the final one (float32 as diffusers keeps them); empty for DDIM/PNDM/LCM.
  const std::vector<float>& sigmas() const { return sigmas_; }
  // Scale of the initial noise: latents = randn * init_noise_sigma().
  float init_noise_sigma() const { return init_noise_sigma_; }

  // Host tensors of any shape (computed in float32; device tensors are refused). scale_model_input returns
  // the sample itself where diffusers does.
  virtual Tensor scale_model_input(const Tensor& sample, int step_index) const;
  // One denoising step from the model output at `step_index`; returns the next sample. Schedulers that inject
  // noise (euler-a, lcm) draw it from `gen` exactly as diffusers does (one randn of the sample's shape per
  // step).
  virtual Tensor step(const Tensor& model_output, int step_index, const Tensor& sample,
                      TorchGenerator* gen) = 0;
  // The clean-sample prediction of the last step (pred_original_sample / denoised / x0); undefined if none.
  const Tensor& pred_original_sample() const { return pred_original_; }

 protected:
  void begin_schedule();  // resets the step counter; call from set_timesteps
  void check_step(int step_index, const Tensor& model_output, const Tensor& sample);  // order, shapes, dtype
  void check_index(int step_index) const;

  std::vector<double> timesteps_;
  std::vector<float> sigmas_;
  float init_noise_sigma_ = 1.0f;
  Tensor pred_original_;
  int next_step_ = 0;
};

// Names: dpm++2m, dpm++2m-karras, euler, euler-a, ddim, pndm, lms, unipc, lcm.
const std::vector<std::string>& scheduler_names();
// `config` is a diffusers scheduler_config.json (any class). An unknown name, an unsupported option or a
// value of the wrong type throws a2f::Error.
std::unique_ptr<Scheduler> make_scheduler(std::string_view name, const nlohmann::json& config);

}  // namespace a2f
