// Mirrors diffusers 0.29.2 DPMSolverMultistepScheduler
// (src/diffusers/schedulers/scheduling_dpmsolver_multistep.py): DPM-Solver++ (and DPM-Solver) multistep,
// orders 1-3, midpoint/heun, Karras sigmas; epsilon prediction.
#include <cmath>
#include <limits>

#include "pipeline/schedulers/common.h"

namespace a2f::sched {
namespace {

struct AlphaSigma {
  float alpha, sigma, lambda;
};

// _sigma_to_alpha_sigma_t and lambda = log(alpha) - log(sigma), as float32 0-dim tensor ops.
AlphaSigma alpha_sigma(float sigma) {
  const float alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
  const float sigma_t = sigma * alpha;
  return {alpha, sigma_t, torch_log(alpha) - torch_log(sigma_t)};
}

class DpmSolverMultistep final : public Scheduler {
 public:
  DpmSolverMultistep(const nlohmann::json& config, bool karras) : karras_name_(karras) {
    ConfigReader cfg(config, "DPMSolverMultistepScheduler");
    train_ = read_train_schedule(cfg);
    solver_order_ = cfg.get_int("solver_order", 2);
    cfg.require(solver_order_ >= 1 && solver_order_ <= 3, "solver_order", std::to_string(solver_order_));
    const std::string prediction = cfg.get_string("prediction_type", "epsilon");
    cfg.require(prediction == "epsilon", "prediction_type", prediction);
    cfg.require(!cfg.get_bool("thresholding", false), "thresholding", "true");
    algorithm_ = cfg.get_string("algorithm_type", "dpmsolver++");
    if (algorithm_ == "deis") algorithm_ = "dpmsolver++";
    cfg.require(algorithm_ == "dpmsolver++" || algorithm_ == "dpmsolver", "algorithm_type", algorithm_);
    solver_type_ = cfg.get_string("solver_type", "midpoint");
    if (solver_type_ == "logrho" || solver_type_ == "bh1" || solver_type_ == "bh2") solver_type_ = "midpoint";
    cfg.require(solver_type_ == "midpoint" || solver_type_ == "heun", "solver_type", solver_type_);
    lower_order_final_ = cfg.get_bool("lower_order_final", true);
    euler_at_final_ = cfg.get_bool("euler_at_final", false);
    use_karras_ = karras || cfg.get_bool("use_karras_sigmas", false);
    cfg.require(!cfg.get_bool("use_lu_lambdas", false), "use_lu_lambdas", "true");
    final_sigmas_type_ = cfg.get_string("final_sigmas_type", "zero");
    cfg.require(final_sigmas_type_ == "zero" || final_sigmas_type_ == "sigma_min", "final_sigmas_type",
                final_sigmas_type_);
    cfg.require(!(algorithm_ == "dpmsolver" && final_sigmas_type_ == "zero"), "final_sigmas_type",
                "zero with algorithm_type dpmsolver");
    cfg.require(cfg.get_string("variance_type", "").empty(), "variance_type",
                cfg.get_string("variance_type", ""));
    // lambda_min_clipped: only the default -inf (no clipping) is supported.
    if (config.is_object() && config.contains("lambda_min_clipped") &&
        !config["lambda_min_clipped"].is_null()) {
      const auto& v = config["lambda_min_clipped"];
      const bool minus_inf = (v.is_string() && (v == "-inf" || v == "-Infinity")) ||
                             (v.is_number() && std::isinf(v.get<double>()) && v.get<double>() < 0);
      cfg.require(minus_inf, "lambda_min_clipped", v.dump());
    }
    spacing_ = cfg.get_string("timestep_spacing", "linspace");
    cfg.require(spacing_ == "linspace" || spacing_ == "leading" || spacing_ == "trailing", "timestep_spacing",
                spacing_);
    steps_offset_ = cfg.get_int("steps_offset", 0);
    init_noise_sigma_ = 1.0f;
  }

  std::string_view name() const override { return karras_name_ ? "dpm++2m-karras" : "dpm++2m"; }

  void set_timesteps(int n) override {
    A2F_CHECK(n >= 1 && n <= train_.num_train_timesteps, "dpm++2m: number of steps must be in [1, ",
              train_.num_train_timesteps, "], got ", n);
    const int64_t last_timestep = train_.num_train_timesteps;  // lambda_min_clipped = -inf
    std::vector<double> ts;
    if (spacing_ == "linspace") {
      std::vector<double> lin = np_linspace(0, static_cast<double>(last_timestep - 1), n + 1);
      for (int i = n; i >= 1; --i) ts.push_back(np_round(lin[static_cast<size_t>(i)]));
    } else if (spacing_ == "leading") {
      const int64_t ratio = last_timestep / (n + 1);
      for (int i = n; i >= 1; --i) ts.push_back(static_cast<double>(i * ratio + steps_offset_));
    } else {  // trailing
      for (double v : np_arange(static_cast<double>(last_timestep), 0,
                                -static_cast<double>(train_.num_train_timesteps) / n))
        ts.push_back(np_round(v) - 1);
    }
    std::vector<float> base(train_.alphas_cumprod.size());
    for (size_t i = 0; i < base.size(); ++i) base[i] = sigma_from_alpha_cumprod(train_.alphas_cumprod[i]);
    std::vector<double> sig;
    if (use_karras_) {
      std::vector<float> log_sigmas(base.size());
      for (size_t i = 0; i < base.size(); ++i) log_sigmas[i] = std::log(base[i]);
      sig = karras_sigmas(base.front(), base.back(), n);
      ts.clear();
      for (double s : sig) ts.push_back(np_round(sigma_to_t(s, log_sigmas)));
    } else {
      for (double t : ts) sig.push_back(np_interp_index(t, base));
    }
    const float sigma_last = final_sigmas_type_ == "zero" ? 0.0f : base.front();
    sigmas_.clear();
    for (double s : sig) sigmas_.push_back(static_cast<float>(s));
    sigmas_.push_back(sigma_last);
    timesteps_.clear();
    for (double t : ts) timesteps_.push_back(static_cast<double>(static_cast<int64_t>(t)));
    model_outputs_.assign(static_cast<size_t>(solver_order_), Tensor());
    lower_order_nums_ = 0;
    begin_schedule();
  }

  Tensor step(const Tensor& model_output_in, int i, const Tensor& sample_in, TorchGenerator*) override {
    check_step(i, model_output_in, sample_in);
    const Tensor model_output = as_f32_host(model_output_in, "model output");
    const Tensor sample = as_f32_host(sample_in, "sample");
    const int n = num_steps();
    const bool lower_final =
        i == n - 1 && (euler_at_final_ || (lower_order_final_ && n < 15) || final_sigmas_type_ == "zero");
    const bool lower_second = i == n - 2 && lower_order_final_ && n < 15;

    // convert_model_output
    const AlphaSigma cur = alpha_sigma(sigmas_[static_cast<size_t>(i)]);
    Tensor converted;
    if (algorithm_ == "dpmsolver++") {
      converted =
          map2(sample, model_output, [&](float x, float e) { return (x - cur.sigma * e) / cur.alpha; });
      pred_original_ = converted;
    } else {
      converted = model_output;
    }
    for (int k = 0; k + 1 < solver_order_; ++k)
      model_outputs_[static_cast<size_t>(k)] = model_outputs_[static_cast<size_t>(k + 1)];
    model_outputs_.back() = converted;

    Tensor prev;
    if (solver_order_ == 1 || lower_order_nums_ < 1 || lower_final) {
      prev = first_order(converted, i, sample);
    } else if (solver_order_ == 2 || lower_order_nums_ < 2 || lower_second) {
      prev = second_order(i, sample);
    } else {
      prev = third_order(i, sample);
    }
    if (lower_order_nums_ < solver_order_) ++lower_order_nums_;
    return prev;
  }

 private:
  Tensor first_order(const Tensor& m, int i, const Tensor& sample) const {
    const AlphaSigma t = alpha_sigma(sigmas_[static_cast<size_t>(i + 1)]);
    const AlphaSigma s = alpha_sigma(sigmas_[static_cast<size_t>(i)]);
    const float h = t.lambda - s.lambda;
    if (algorithm_ == "dpmsolver++") {
      const float c1 = t.sigma / s.sigma, c2 = t.alpha * (torch_exp(-h) - 1.0f);
      return map2(sample, m, [&](float x, float d) { return c1 * x - c2 * d; });
    }
    const float c1 = t.alpha / s.alpha, c2 = t.sigma * (torch_exp(h) - 1.0f);
    return map2(sample, m, [&](float x, float d) { return c1 * x - c2 * d; });
  }

  Tensor second_order(int i, const Tensor& sample) const {
    const AlphaSigma t = alpha_sigma(sigmas_[static_cast<size_t>(i + 1)]);
    const AlphaSigma s0 = alpha_sigma(sigmas_[static_cast<size_t>(i)]);
    const AlphaSigma s1 = alpha_sigma(sigmas_[static_cast<size_t>(i - 1)]);
    const Tensor& m0 = model_outputs_[model_outputs_.size() - 1];
    const Tensor& m1 = model_outputs_[model_outputs_.size() - 2];
    const float h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda;
    const float r0 = h0 / h;
    const float inv_r0 = 1.0f / r0;
    float c1, c2, c3;
    bool plus_d1 = false;
    if (algorithm_ == "dpmsolver++") {
      c1 = t.sigma / s0.sigma;
      const float em1 = torch_exp(-h) - 1.0f;
      c2 = t.alpha * em1;
      if (solver_type_ == "midpoint") {
        c3 = 0.5f * (t.alpha * em1);
      } else {
        c3 = t.alpha * (em1 / h + 1.0f);
        plus_d1 = true;
      }
    } else {
      c1 = t.alpha / s0.alpha;
      const float ep1 = torch_exp(h) - 1.0f;
      c2 = t.sigma * ep1;
      c3 = solver_type_ == "midpoint" ? 0.5f * (t.sigma * ep1) : t.sigma * (ep1 / h - 1.0f);
    }
    return map3(sample, m0, m1, [&](float x, float d0, float d1m) {
      const float d1 = inv_r0 * (d0 - d1m);
      const float a = c1 * x - c2 * d0;
      return plus_d1 ? a + c3 * d1 : a - c3 * d1;
    });
  }

  Tensor third_order(int i, const Tensor& sample) const {
    const AlphaSigma t = alpha_sigma(sigmas_[static_cast<size_t>(i + 1)]);
    const AlphaSigma s0 = alpha_sigma(sigmas_[static_cast<size_t>(i)]);
    const AlphaSigma s1 = alpha_sigma(sigmas_[static_cast<size_t>(i - 1)]);
    const AlphaSigma s2 = alpha_sigma(sigmas_[static_cast<size_t>(i - 2)]);
    const size_t k = model_outputs_.size();
    const Tensor &m0 = model_outputs_[k - 1], &m1 = model_outputs_[k - 2], &m2 = model_outputs_[k - 3];
    const float h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda, h1 = s1.lambda - s2.lambda;
    const float r0 = h0 / h, r1 = h1 / h;
    const float inv_r0 = 1.0f / r0, inv_r1 = 1.0f / r1;
    const float w = r0 / (r0 + r1), inv_sum = 1.0f / (r0 + r1);
    float c1, c2, c3, c4;
    if (algorithm_ == "dpmsolver++") {
      const float em1 = torch_exp(-h) - 1.0f;
      c1 = t.sigma / s0.sigma;
      c2 = t.alpha * em1;
      c3 = t.alpha * (em1 / h + 1.0f);
      c4 = t.alpha * ((em1 + h) / (h * h) - 0.5f);
    } else {
      const float ep1 = torch_exp(h) - 1.0f;
      c1 = t.alpha / s0.alpha;
      c2 = t.sigma * ep1;
      c3 = t.sigma * (ep1 / h - 1.0f);
      c4 = t.sigma * ((ep1 - h) / (h * h) - 0.5f);
    }
    const bool pp = algorithm_ == "dpmsolver++";
    Tensor out = Tensor::empty(sample.shape(), DType::F32);
    const float *x = sample.data<float>(), *a = m0.data<float>(), *b = m1.data<float>(),
                *c = m2.data<float>();
    float* y = out.data<float>();
    for (int64_t e = 0, n = sample.numel(); e < n; ++e) {
      const float d10 = inv_r0 * (a[e] - b[e]), d11 = inv_r1 * (b[e] - c[e]);
      const float diff = d10 - d11;
      const float d1 = d10 + w * diff, d2 = inv_sum * diff;
      const float base = c1 * x[e] - c2 * a[e];
      y[e] = pp ? (base + c3 * d1) - c4 * d2 : (base - c3 * d1) - c4 * d2;
    }
    return out;
  }

  bool karras_name_;
  TrainSchedule train_;
  int solver_order_ = 2;
  std::string algorithm_, solver_type_, final_sigmas_type_, spacing_;
  bool lower_order_final_ = true, euler_at_final_ = false, use_karras_ = false;
  int steps_offset_ = 0;
  std::vector<Tensor> model_outputs_;
  int lower_order_nums_ = 0;
};

}  // namespace

std::unique_ptr<Scheduler> make_dpm_solver_multistep(const nlohmann::json& config, bool karras) {
  return std::make_unique<DpmSolverMultistep>(config, karras);
}

}  // namespace a2f::sched
