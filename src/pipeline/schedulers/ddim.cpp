// Mirrors diffusers 0.29.2 DDIMScheduler (src/diffusers/schedulers/scheduling_ddim.py): epsilon prediction,
// eta = 0 (StableDiffusionPipeline's default), optional clip_sample.
#include "pipeline/schedulers/common.h"

namespace a2f::sched {
namespace {

class Ddim final : public Scheduler {
 public:
  explicit Ddim(const nlohmann::json& config) {
    ConfigReader cfg(config, "DDIMScheduler");
    train_ = read_train_schedule(cfg);
    clip_sample_ = cfg.get_bool("clip_sample", true);
    clip_range_ = static_cast<float>(cfg.get_double("clip_sample_range", 1.0));
    const bool set_alpha_to_one = cfg.get_bool("set_alpha_to_one", true);
    final_alpha_cumprod_ = set_alpha_to_one ? 1.0f : train_.alphas_cumprod[0];
    steps_offset_ = cfg.get_int("steps_offset", 0);
    const std::string prediction = cfg.get_string("prediction_type", "epsilon");
    cfg.require(prediction == "epsilon", "prediction_type", prediction);
    cfg.require(!cfg.get_bool("thresholding", false), "thresholding", "true");
    spacing_ = cfg.get_string("timestep_spacing", "leading");
    cfg.require(spacing_ == "linspace" || spacing_ == "leading" || spacing_ == "trailing", "timestep_spacing",
                spacing_);
  }

  std::string_view name() const override { return "ddim"; }

  void set_timesteps(int n) override {
    const int T = train_.num_train_timesteps;
    A2F_CHECK(n >= 1 && n <= T, "ddim: number of steps must be in [1, ", T, "], got ", n);
    num_inference_steps_ = n;
    timesteps_.clear();
    if (spacing_ == "linspace") {
      const std::vector<double> lin = np_linspace(0, T - 1, n);
      for (int i = n - 1; i >= 0; --i) timesteps_.push_back(np_round(lin[static_cast<size_t>(i)]));
    } else if (spacing_ == "leading") {
      const int ratio = T / n;
      for (int i = n - 1; i >= 0; --i) timesteps_.push_back(static_cast<double>(i * ratio + steps_offset_));
    } else {
      for (double v : np_arange(T, 0, -static_cast<double>(T) / n)) timesteps_.push_back(np_round(v) - 1);
    }
    begin_schedule();
  }

  Tensor step(const Tensor& model_output_in, int i, const Tensor& sample_in, TorchGenerator*) override {
    check_step(i, model_output_in, sample_in);
    const Tensor model_output = as_f32_host(model_output_in, "model output");
    const Tensor sample = as_f32_host(sample_in, "sample");
    const int64_t t = static_cast<int64_t>(timesteps_[static_cast<size_t>(i)]);
    const int64_t prev_t = t - train_.num_train_timesteps / num_inference_steps_;
    A2F_CHECK(t >= 0 && t < train_.num_train_timesteps, "ddim: timestep ", t,
              " is outside the training schedule");
    const float a_t = train_.alphas_cumprod[static_cast<size_t>(t)];
    const float a_prev =
        prev_t >= 0 ? train_.alphas_cumprod[static_cast<size_t>(prev_t)] : final_alpha_cumprod_;
    const float b_t = 1.0f - a_t;
    const float sqrt_b_t = std::sqrt(b_t), sqrt_a_t = std::sqrt(a_t);
    pred_original_ = map2(sample, model_output, [&](float x, float e) {
      const float p = (x - sqrt_b_t * e) / sqrt_a_t;
      return clip_sample_ ? std::clamp(p, -clip_range_, clip_range_) : p;
    });
    // _get_variance; std_dev_t = eta * variance ** 0.5 with eta = 0
    const float b_prev = 1.0f - a_prev;
    const float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
    const float std_dev = 0.0f * std::sqrt(variance);
    const float dir_coeff = std::sqrt(1.0f - a_prev - std_dev * std_dev);
    const float sqrt_a_prev = std::sqrt(a_prev);
    return map2(pred_original_, model_output,
                [&](float p, float e) { return sqrt_a_prev * p + dir_coeff * e; });
  }

 private:
  TrainSchedule train_;
  bool clip_sample_ = true;
  float clip_range_ = 1.0f, final_alpha_cumprod_ = 1.0f;
  int steps_offset_ = 0, num_inference_steps_ = 0;
  std::string spacing_;
};

}  // namespace

std::unique_ptr<Scheduler> make_ddim(const nlohmann::json& config) {
  return std::make_unique<Ddim>(config);
}

}  // namespace a2f::sched
