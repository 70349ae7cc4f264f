// Mirrors diffusers 0.29.2 EulerDiscreteScheduler (src/diffusers/schedulers/scheduling_euler_discrete.py):
// discrete timesteps, linear sigma interpolation, epsilon prediction, s_churn = 0 (the pipeline's defaults).
#include "pipeline/rng.h"
#include "pipeline/schedulers/common.h"

namespace a2f::sched {
namespace {

class EulerDiscrete final : public DiscreteSigmaScheduler {
 public:
  explicit EulerDiscrete(const nlohmann::json& config)
      : EulerDiscrete(ConfigReader(config, "EulerDiscreteScheduler")) {}
  explicit EulerDiscrete(const ConfigReader& cfg) : DiscreteSigmaScheduler(cfg) {
    const std::string interpolation = cfg.get_string("interpolation_type", "linear");
    cfg.require(interpolation == "linear", "interpolation_type", interpolation);
    cfg.require(!cfg.get_bool("use_karras_sigmas", false), "use_karras_sigmas", "true");
    const std::string timestep_type = cfg.get_string("timestep_type", "discrete");
    cfg.require(timestep_type == "discrete", "timestep_type", timestep_type);
    final_sigmas_type_ = cfg.get_string("final_sigmas_type", "zero");
    cfg.require(final_sigmas_type_ == "zero" || final_sigmas_type_ == "sigma_min", "final_sigmas_type",
                final_sigmas_type_);
  }

  std::string_view name() const override { return "euler"; }

  void set_timesteps(int n) override {
    set_sigma_schedule(
        n, final_sigmas_type_ == "zero" ? 0.0f : sigma_from_alpha_cumprod(train_.alphas_cumprod[0]));
  }

  Tensor step(const Tensor& model_output_in, int i, const Tensor& sample_in, TorchGenerator* gen) override {
    check_step(i, model_output_in, sample_in);
    const Tensor model_output = as_f32_host(model_output_in, "model output");
    const Tensor sample = as_f32_host(sample_in, "sample");
    // diffusers draws (and, with s_churn = 0, discards) one noise tensor per step; drawing it keeps a shared
    // generator in the same state as the reference.
    if (gen) gen->randn(model_output.shape());
    const float sigma_hat = sigmas_[static_cast<size_t>(i)] * 1.0f;  // sigma * (gamma + 1), gamma = 0
    const float dt = sigmas_[static_cast<size_t>(i + 1)] - sigma_hat;
    pred_original_ = map2(sample, model_output, [&](float x, float e) { return x - sigma_hat * e; });
    return map2(sample, pred_original_, [&](float x, float p) {
      const float derivative = (x - p) / sigma_hat;
      return x + derivative * dt;
    });
  }

 private:
  std::string final_sigmas_type_;
};

}  // namespace

std::unique_ptr<Scheduler> make_euler_discrete(const nlohmann::json& config) {
  return std::make_unique<EulerDiscrete>(config);
}

}  // namespace a2f::sched
