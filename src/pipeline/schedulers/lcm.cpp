// Mirrors diffusers 0.29.2 LCMScheduler (src/diffusers/schedulers/scheduling_lcm.py): timesteps picked from
// the original_inference_steps (50) distillation schedule, boundary-condition scalings c_skip/c_out with
// timestep_scaling 10, fresh noise from the pipeline generator between steps (not after the last).
#include "pipeline/rng.h"
#include "pipeline/schedulers/common.h"

namespace a2f::sched {
namespace {

class Lcm final : public Scheduler {
 public:
  explicit Lcm(const nlohmann::json& config) {
    ConfigReader cfg(config, "LCMScheduler");
    train_ = read_train_schedule(cfg, BetaDefaults{0.00085, 0.012, "scaled_linear"});
    original_steps_ = cfg.get_int("original_inference_steps", 50);
    cfg.require(original_steps_ >= 1 && original_steps_ <= train_.num_train_timesteps,
                "original_inference_steps", std::to_string(original_steps_));
    clip_sample_ = cfg.get_bool("clip_sample", false);
    clip_range_ = static_cast<float>(cfg.get_double("clip_sample_range", 1.0));
    final_alpha_cumprod_ = cfg.get_bool("set_alpha_to_one", true) ? 1.0f : train_.alphas_cumprod[0];
    const std::string prediction = cfg.get_string("prediction_type", "epsilon");
    cfg.require(prediction == "epsilon", "prediction_type", prediction);
    cfg.require(!cfg.get_bool("thresholding", false), "thresholding", "true");
    timestep_scaling_ = static_cast<float>(cfg.get_double("timestep_scaling", 10.0));
  }

  std::string_view name() const override { return "lcm"; }

  void set_timesteps(int n) override {
    const int64_t k = train_.num_train_timesteps / original_steps_;
    std::vector<int64_t> origin;  // lcm_origin_timesteps, descending
    for (int64_t i = original_steps_; i >= 1; --i) origin.push_back(i * k - 1);
    A2F_CHECK(n >= 1 && n <= original_steps_, "lcm: number of steps must be in [1, ", original_steps_,
              "] (original_inference_steps), got ", n);
    timesteps_.clear();
    for (double v : np_linspace(0, static_cast<double>(origin.size()), n, /*endpoint=*/false))
      timesteps_.push_back(static_cast<double>(origin[static_cast<size_t>(std::floor(v))]));
    begin_schedule();
  }

  Tensor step(const Tensor& model_output_in, int i, const Tensor& sample_in, TorchGenerator* gen) override {
    const bool last = i == num_steps() - 1;
    A2F_CHECK(last || gen != nullptr,
              "lcm: a random generator is required (noise is injected between steps)");
    check_step(i, model_output_in, sample_in);
    const Tensor model_output = as_f32_host(model_output_in, "model output");
    const Tensor sample = as_f32_host(sample_in, "sample");
    const int64_t t = static_cast<int64_t>(timesteps_[static_cast<size_t>(i)]);
    const int64_t prev_t = last ? t : static_cast<int64_t>(timesteps_[static_cast<size_t>(i + 1)]);
    const float a_t = train_.alphas_cumprod[static_cast<size_t>(t)];
    const float a_prev =
        prev_t >= 0 ? train_.alphas_cumprod[static_cast<size_t>(prev_t)] : final_alpha_cumprod_;
    const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    // get_scalings_for_boundary_condition_discrete; `0.25 / x` is torch's reciprocal(x) * 0.25.
    const float scaled = static_cast<float>(t) * timestep_scaling_;
    const float s2 = scaled * scaled + 0.25f;
    const float c_skip = (1.0f / s2) * 0.25f;
    const float c_out = scaled / std::sqrt(s2);
    const float sqrt_b_t = std::sqrt(b_t), sqrt_a_t = std::sqrt(a_t);
    const Tensor x0 = map2(sample, model_output, [&](float x, float e) {
      const float p = (x - sqrt_b_t * e) / sqrt_a_t;
      return clip_sample_ ? std::clamp(p, -clip_range_, clip_range_) : p;
    });
    pred_original_ = map2(x0, sample, [&](float p, float x) { return c_out * p + c_skip * x; });
    if (last) return pred_original_;
    const Tensor noise = gen->randn(model_output.shape());
    const float sqrt_a_prev = std::sqrt(a_prev), sqrt_b_prev = std::sqrt(b_prev);
    return map2(pred_original_, noise, [&](float d, float z) { return sqrt_a_prev * d + sqrt_b_prev * z; });
  }

 private:
  TrainSchedule train_;
  int original_steps_ = 50;
  bool clip_sample_ = false;
  float clip_range_ = 1.0f, final_alpha_cumprod_ = 1.0f, timestep_scaling_ = 10.0f;
};

}  // namespace

std::unique_ptr<Scheduler> make_lcm(const nlohmann::json& config) {
  return std::make_unique<Lcm>(config);
}

}  // namespace a2f::sched
