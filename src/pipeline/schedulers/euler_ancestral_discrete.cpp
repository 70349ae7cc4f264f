// Mirrors diffusers 0.29.2 EulerAncestralDiscreteScheduler
// (src/diffusers/schedulers/scheduling_euler_ancestral_discrete.py): epsilon prediction, one randn of the
// sample's shape from the pipeline generator per step.
#include "pipeline/rng.h"
#include "pipeline/schedulers/common.h"

namespace a2f::sched {
namespace {

class EulerAncestralDiscrete final : public DiscreteSigmaScheduler {
 public:
  explicit EulerAncestralDiscrete(const nlohmann::json& config)
      : DiscreteSigmaScheduler(ConfigReader(config, "EulerAncestralDiscreteScheduler")) {}

  std::string_view name() const override { return "euler-a"; }

  void set_timesteps(int n) override { set_sigma_schedule(n, 0.0f); }

  Tensor step(const Tensor& model_output_in, int i, const Tensor& sample_in, TorchGenerator* gen) override {
    A2F_CHECK(gen != nullptr,
              "euler-a: a random generator is required (the scheduler injects noise every step)");
    check_step(i, model_output_in, sample_in);
    const Tensor model_output = as_f32_host(model_output_in, "model output");
    const Tensor sample = as_f32_host(sample_in, "sample");
    const float sigma = sigmas_[static_cast<size_t>(i)];
    const float sigma_from = sigma, sigma_to = sigmas_[static_cast<size_t>(i + 1)];
    const float to2 = sigma_to * sigma_to, from2 = sigma_from * sigma_from;
    const float sigma_up = std::sqrt(to2 * (from2 - to2) / from2);
    const float sigma_down = std::sqrt(to2 - sigma_up * sigma_up);
    const float dt = sigma_down - sigma;
    pred_original_ = map2(sample, model_output, [&](float x, float e) { return x - sigma * e; });
    const Tensor noise = gen->randn(model_output.shape());
    return map3(sample, pred_original_, noise, [&](float x, float p, float z) {
      const float derivative = (x - p) / sigma;
      const float prev = x + derivative * dt;
      return prev + z * sigma_up;
    });
  }
};

}  // namespace

std::unique_ptr<Scheduler> make_euler_ancestral_discrete(const nlohmann::json& config) {
  return std::make_unique<EulerAncestralDiscrete>(config);
}

}  // namespace a2f::sched
