// Mirrors diffusers 0.29.2 UniPCMultistepScheduler (src/diffusers/schedulers/scheduling_unipc_multistep.py):
// UniP predictor + UniC corrector, B(h) = expm1(h) ("bh2") or h ("bh1"), data prediction (predict_x0),
// solver orders 1-2, epsilon prediction.
#include "pipeline/schedulers/common.h"

namespace a2f::sched {
namespace {

struct AlphaSigma {
  float alpha, sigma, lambda;
};

AlphaSigma alpha_sigma(float sigma) {
  const float alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
  const float sigma_t = sigma * alpha;
  return {alpha, sigma_t, torch_log(alpha) - torch_log(sigma_t)};
}

// The B(h) coefficients b_k of UniPC for `order` (R and b of the reference), k = 1..order.
struct Phi {
  float hh, h_phi_1, b_h;
  std::vector<float> b;
};

Phi phi(float h, int order, bool bh2) {
  Phi p;
  p.hh = -h;  // predict_x0
  p.h_phi_1 = torch_expm1(p.hh);
  float h_phi_k = p.h_phi_1 / p.hh - 1.0f;
  p.b_h = bh2 ? torch_expm1(p.hh) : p.hh;
  int64_t factorial = 1;
  for (int k = 1; k <= order; ++k) {
    p.b.push_back(h_phi_k * static_cast<float>(factorial) / p.b_h);
    factorial *= k + 1;
    h_phi_k = h_phi_k / p.hh - static_cast<float>(1.0 / static_cast<double>(factorial));
  }
  return p;
}

// torch.linalg.solve([[1, 1], [r, 1]], [b0, b1]) as the reference computes it: LU of A^T (no pivoting needed,
// equal first column), then the transposed triangular solves.
void solve2(float r, float b0, float b1, float* x0, float* x1) {
  const float u22 = 1.0f - r;
  *x1 = (b1 - r * b0) / u22;
  *x0 = b0 - *x1;
}

class UniPcMultistep final : public Scheduler {
 public:
  explicit UniPcMultistep(const nlohmann::json& config) {
    ConfigReader cfg(config, "UniPCMultistepScheduler");
    train_ = read_train_schedule(cfg);
    solver_order_ = cfg.get_int("solver_order", 2);
    cfg.require(solver_order_ == 1 || solver_order_ == 2, "solver_order", std::to_string(solver_order_));
    const std::string prediction = cfg.get_string("prediction_type", "epsilon");
    cfg.require(prediction == "epsilon", "prediction_type", prediction);
    cfg.require(!cfg.get_bool("thresholding", false), "thresholding", "true");
    cfg.require(cfg.get_bool("predict_x0", true), "predict_x0", "false");
    std::string solver_type = cfg.get_string("solver_type", "bh2");
    if (solver_type == "midpoint" || solver_type == "heun" || solver_type == "logrho") solver_type = "bh2";
    cfg.require(solver_type == "bh1" || solver_type == "bh2", "solver_type", solver_type);
    bh2_ = solver_type == "bh2";
    lower_order_final_ = cfg.get_bool("lower_order_final", true);
    if (config.is_object() && config.contains("disable_corrector") &&
        config["disable_corrector"].is_array()) {
      for (const auto& v : config["disable_corrector"]) {
        A2F_CHECK(v.is_number_integer(),
                  "UniPCMultistepScheduler config: disable_corrector must list step indices");
        disable_corrector_.push_back(v.get<int>());
      }
    }
    cfg.require(!config.is_object() || !config.contains("solver_p") || config["solver_p"].is_null(),
                "solver_p", "a scheduler");
    cfg.require(!cfg.get_bool("use_karras_sigmas", false), "use_karras_sigmas", "true");
    spacing_ = cfg.get_string("timestep_spacing", "linspace");
    cfg.require(spacing_ == "linspace" || spacing_ == "leading" || spacing_ == "trailing", "timestep_spacing",
                spacing_);
    steps_offset_ = cfg.get_int("steps_offset", 0);
    final_sigmas_type_ = cfg.get_string("final_sigmas_type", "zero");
    cfg.require(final_sigmas_type_ == "zero" || final_sigmas_type_ == "sigma_min", "final_sigmas_type",
                final_sigmas_type_);
  }

  std::string_view name() const override { return "unipc"; }

  void set_timesteps(int n) override {
    const int T = train_.num_train_timesteps;
    A2F_CHECK(n >= 1 && n <= T, "unipc: number of steps must be in [1, ", T, "], got ", n);
    std::vector<double> ts;
    if (spacing_ == "linspace") {
      const std::vector<double> lin = np_linspace(0, T - 1, n + 1);
      for (int i = n; i >= 1; --i) ts.push_back(np_round(lin[static_cast<size_t>(i)]));
    } else if (spacing_ == "leading") {
      const int ratio = T / (n + 1);
      for (int i = n; i >= 1; --i) ts.push_back(static_cast<double>(i * ratio + steps_offset_));
    } else {
      for (double v : np_arange(T, 0, -static_cast<double>(T) / n)) ts.push_back(np_round(v) - 1);
    }
    std::vector<float> base(train_.alphas_cumprod.size());
    for (size_t i = 0; i < base.size(); ++i) base[i] = sigma_from_alpha_cumprod(train_.alphas_cumprod[i]);
    sigmas_.clear();
    for (double t : ts) sigmas_.push_back(static_cast<float>(np_interp_index(t, base)));
    sigmas_.push_back(final_sigmas_type_ == "zero" ? 0.0f : base.front());
    timesteps_ = ts;
    model_outputs_.assign(static_cast<size_t>(solver_order_), Tensor());
    lower_order_nums_ = 0;
    this_order_ = 0;
    last_sample_ = Tensor();
    begin_schedule();
  }

  Tensor step(const Tensor& model_output_in, int i, const Tensor& sample_in, TorchGenerator*) override {
    check_step(i, model_output_in, sample_in);
    const Tensor model_output = as_f32_host(model_output_in, "model output");
    Tensor sample = as_f32_host(sample_in, "sample");
    bool disabled = false;
    for (int d : disable_corrector_) disabled |= d == i - 1;
    const bool use_corrector = i > 0 && !disabled && last_sample_.defined();

    const AlphaSigma cur = alpha_sigma(sigmas_[static_cast<size_t>(i)]);
    const Tensor converted =
        map2(sample, model_output, [&](float x, float e) { return (x - cur.sigma * e) / cur.alpha; });
    pred_original_ = converted;
    if (use_corrector) sample = corrector(converted, i);
    for (int k = 0; k + 1 < solver_order_; ++k)
      model_outputs_[static_cast<size_t>(k)] = model_outputs_[static_cast<size_t>(k + 1)];
    model_outputs_.back() = converted;

    int order = lower_order_final_ ? std::min(solver_order_, num_steps() - i) : solver_order_;
    this_order_ = std::min(order, lower_order_nums_ + 1);
    last_sample_ = sample;
    const Tensor prev = predictor(i, sample, this_order_);
    if (lower_order_nums_ < solver_order_) ++lower_order_nums_;
    return prev;
  }

 private:
  // multistep_uni_p_bh_update
  Tensor predictor(int i, const Tensor& x, int order) const {
    const AlphaSigma t = alpha_sigma(sigmas_[static_cast<size_t>(i + 1)]);
    const AlphaSigma s0 = alpha_sigma(sigmas_[static_cast<size_t>(i)]);
    const Tensor& m0 = model_outputs_.back();
    const float h = t.lambda - s0.lambda;
    const Phi p = phi(h, order, bh2_);
    const float c1 = t.sigma / s0.sigma, c2 = t.alpha * p.h_phi_1, c3 = t.alpha * p.b_h;
    if (order == 1) {  // no history: pred_res = 0
      const float zero = c3 * 0.0f;
      return map2(x, m0, [&](float xs, float m) { return (c1 * xs - c2 * m) - zero; });
    }
    // order 2: rhos_p = [0.5], D1 = (m1 - m0) / rk
    const AlphaSigma s1 = alpha_sigma(sigmas_[static_cast<size_t>(i - 1)]);
    const float rk = (s1.lambda - s0.lambda) / h;
    const Tensor& m1 = model_outputs_[model_outputs_.size() - 2];
    return map3(x, m0, m1, [&](float xs, float a, float b) {
      const float d1 = (b - a) / rk;
      return (c1 * xs - c2 * a) - c3 * (0.5f * d1);
    });
  }

  // multistep_uni_c_bh_update, with the order of the previous predictor step
  Tensor corrector(const Tensor& model_t, int i) const {
    const int order = this_order_;
    const Tensor& x = last_sample_;
    const Tensor& m0 = model_outputs_.back();
    const AlphaSigma t = alpha_sigma(sigmas_[static_cast<size_t>(i)]);
    const AlphaSigma s0 = alpha_sigma(sigmas_[static_cast<size_t>(i - 1)]);
    const float h = t.lambda - s0.lambda;
    const Phi p = phi(h, order, bh2_);
    const float c1 = t.sigma / s0.sigma, c2 = t.alpha * p.h_phi_1, c3 = t.alpha * p.b_h;
    if (order == 1) {  // rhos_c = [0.5], corr_res = 0
      return map3(x, m0, model_t, [&](float xs, float a, float mt) {
        const float inner = 0.0f + 0.5f * (mt - a);
        return (c1 * xs - c2 * a) - c3 * inner;
      });
    }
    const AlphaSigma s1 = alpha_sigma(sigmas_[static_cast<size_t>(i - 2)]);
    const float rk = (s1.lambda - s0.lambda) / h;
    float rho0, rho1;
    solve2(rk, p.b[0], p.b[1], &rho0, &rho1);
    const Tensor& m1 = model_outputs_[model_outputs_.size() - 2];
    Tensor out = Tensor::empty(x.shape(), DType::F32);
    const float *xs = x.data<float>(), *a = m0.data<float>(), *b = m1.data<float>(),
                *mt = model_t.data<float>();
    float* y = out.data<float>();
    for (int64_t e = 0, n = x.numel(); e < n; ++e) {
      const float d1 = (b[e] - a[e]) / rk;
      const float corr = rho0 * d1;
      const float inner = corr + rho1 * (mt[e] - a[e]);
      y[e] = (c1 * xs[e] - c2 * a[e]) - c3 * inner;
    }
    return out;
  }

  TrainSchedule train_;
  int solver_order_ = 2;
  bool bh2_ = true, lower_order_final_ = true;
  std::vector<int> disable_corrector_;
  std::string spacing_, final_sigmas_type_;
  int steps_offset_ = 0;
  std::vector<Tensor> model_outputs_;
  int lower_order_nums_ = 0, this_order_ = 0;
  Tensor last_sample_;
};

}  // namespace

std::unique_ptr<Scheduler> make_unipc_multistep(const nlohmann::json& config) {
  return std::make_unique<UniPcMultistep>(config);
}

}  // namespace a2f::sched
