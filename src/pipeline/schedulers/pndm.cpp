// Mirrors diffusers 0.29.2 PNDMScheduler (src/diffusers/schedulers/scheduling_pndm.py) with skip_prk_steps
// (the PLMS sampler Stable Diffusion ships with): 4th-order linear multistep over the epsilon history.
#include "pipeline/schedulers/common.h"

namespace a2f::sched {
namespace {

class Pndm final : public Scheduler {
 public:
  explicit Pndm(const nlohmann::json& config) {
    ConfigReader cfg(config, "PNDMScheduler");
    train_ = read_train_schedule(cfg);
    cfg.require(cfg.get_bool("skip_prk_steps", false), "skip_prk_steps", "false (Runge-Kutta warm-up steps)");
    const bool set_alpha_to_one = cfg.get_bool("set_alpha_to_one", false);
    final_alpha_cumprod_ = set_alpha_to_one ? 1.0f : train_.alphas_cumprod[0];
    const std::string prediction = cfg.get_string("prediction_type", "epsilon");
    cfg.require(prediction == "epsilon", "prediction_type", prediction);
    spacing_ = cfg.get_string("timestep_spacing", "leading");
    cfg.require(spacing_ == "linspace" || spacing_ == "leading" || spacing_ == "trailing", "timestep_spacing",
                spacing_);
    steps_offset_ = cfg.get_int("steps_offset", 0);
  }

  std::string_view name() const override { return "pndm"; }

  void set_timesteps(int n) override {
    const int T = train_.num_train_timesteps;
    A2F_CHECK(n >= 1 && n <= T, "pndm: number of steps must be in [1, ", T, "], got ", n);
    num_inference_steps_ = n;
    std::vector<double> base;  // ascending _timesteps
    if (spacing_ == "linspace") {
      for (double v : np_linspace(0, T - 1, n)) base.push_back(np_round(v));
    } else if (spacing_ == "leading") {
      const int ratio = T / n;
      for (int i = 0; i < n; ++i) base.push_back(static_cast<double>(i * ratio + steps_offset_));
    } else {
      const std::vector<double> a = np_arange(T, 0, -static_cast<double>(T) / n);
      for (size_t i = a.size(); i-- > 0;) base.push_back(np_round(a[i]) - 1);
    }
    // plms_timesteps = concat(_t[:-1], _t[-2:-1], _t[-1:])[::-1]
    std::vector<double> plms(base.begin(), base.end() - 1);
    if (base.size() >= 2) plms.push_back(base[base.size() - 2]);
    plms.push_back(base.back());
    timesteps_.assign(plms.rbegin(), plms.rend());
    ets_.clear();
    counter_ = 0;
    cur_sample_ = Tensor();
    begin_schedule();
  }

  Tensor step(const Tensor& model_output_in, int i, const Tensor& sample_in, TorchGenerator*) override {
    check_step(i, model_output_in, sample_in);
    const Tensor model_output = as_f32_host(model_output_in, "model output").clone();
    Tensor sample = as_f32_host(sample_in, "sample");
    const int64_t ratio = train_.num_train_timesteps / num_inference_steps_;
    int64_t t = static_cast<int64_t>(timesteps_[static_cast<size_t>(i)]);
    int64_t prev_t = t - ratio;
    if (counter_ != 1) {
      if (ets_.size() > 3) ets_.erase(ets_.begin(), ets_.end() - 3);
      ets_.push_back(model_output);
    } else {
      prev_t = t;
      t = t + ratio;
    }
    Tensor eps;
    const size_t k = ets_.size();
    if (k == 1 && counter_ == 0) {
      eps = model_output;
      cur_sample_ = sample.clone();
    } else if (k == 1 && counter_ == 1) {
      eps = map2(model_output, ets_[0], [](float m, float e1) { return (m + e1) / 2.0f; });
      sample = cur_sample_;
      cur_sample_ = Tensor();
    } else if (k == 2) {
      eps = map2(ets_[1], ets_[0], [](float e1, float e2) { return (3.0f * e1 - e2) / 2.0f; });
    } else if (k == 3) {
      eps = map3(ets_[2], ets_[1], ets_[0],
                 [](float e1, float e2, float e3) { return (23.0f * e1 - 16.0f * e2 + 5.0f * e3) / 12.0f; });
    } else {
      const float c = static_cast<float>(1.0 / 24);
      const float *e1 = ets_[3].data<float>(), *e2 = ets_[2].data<float>(), *e3 = ets_[1].data<float>(),
                  *e4 = ets_[0].data<float>();
      eps = Tensor::empty(model_output.shape(), DType::F32);
      float* y = eps.data<float>();
      for (int64_t j = 0, n = eps.numel(); j < n; ++j)
        y[j] = c * (55.0f * e1[j] - 59.0f * e2[j] + 37.0f * e3[j] - 9.0f * e4[j]);
    }
    ++counter_;
    return prev_sample(sample, t, prev_t, eps);
  }

 private:
  Tensor prev_sample(const Tensor& sample, int64_t t, int64_t prev_t, const Tensor& eps) const {
    A2F_CHECK(t >= 0 && t < train_.num_train_timesteps, "pndm: timestep ", t,
              " is outside the training schedule");
    const float a_t = train_.alphas_cumprod[static_cast<size_t>(t)];
    const float a_prev =
        prev_t >= 0 ? train_.alphas_cumprod[static_cast<size_t>(prev_t)] : final_alpha_cumprod_;
    const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    const float sample_coeff = std::sqrt(a_prev / a_t);
    const float denom = a_t * std::sqrt(b_prev) + std::sqrt(a_t * b_t * a_prev);
    const float diff = a_prev - a_t;
    return map2(sample, eps, [&](float x, float e) { return sample_coeff * x - diff * e / denom; });
  }

  TrainSchedule train_;
  float final_alpha_cumprod_ = 1.0f;
  std::string spacing_;
  int steps_offset_ = 0, num_inference_steps_ = 0, counter_ = 0;
  std::vector<Tensor> ets_;
  Tensor cur_sample_;
};

}  // namespace

std::unique_ptr<Scheduler> make_pndm(const nlohmann::json& config) {
  return std::make_unique<Pndm>(config);
}

}  // namespace a2f::sched
