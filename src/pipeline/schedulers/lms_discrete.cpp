// Mirrors diffusers 0.29.2 LMSDiscreteScheduler (src/diffusers/schedulers/scheduling_lms_discrete.py): linear
// multistep (order 4) over the sigma schedule, epsilon prediction. diffusers integrates the Lagrange basis
// with scipy.integrate.quad (QUADPACK QAGS); for these low-degree polynomials QAGS stops after its first
// 21-point Gauss-Kronrod pass, which is what is evaluated here, with the integrand in float32 torch
// arithmetic as diffusers evaluates it.
#include "pipeline/schedulers/common.h"

namespace a2f::sched {
namespace {

// 21-point Gauss-Kronrod rule on [-1, 1] (QUADPACK dqk21): abscissae (positive half, the last is 0) and
// weights.
constexpr double kXgk[11] = {0.995657163025808080735527280689003,
                             0.973906528517171720077964012084452,
                             0.930157491355708226001207180059508,
                             0.865063366688984510732096688423493,
                             0.780817726586416897063717578345042,
                             0.679409568299024406234327365114874,
                             0.562757134668604683339000099272694,
                             0.433395394129247190799265943165784,
                             0.294392862701460198131126603103866,
                             0.148874338981631210884826001129720,
                             0.0};
constexpr double kWgk[11] = {0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
                             0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
                             0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
                             0.123491976262065851077958109831074, 0.134709217311473325928054001771707,
                             0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
                             0.149445554002916905664936468389821};

template <class F>
double kronrod21(F f, double a, double b) {
  const double centr = 0.5 * (a + b), hlgth = 0.5 * (b - a);
  double resk = kWgk[10] * f(centr);
  for (int j = 1; j <= 5; ++j) {  // Gauss abscissae first, then the Kronrod extension, as dqk21 sums them
    const int jtw = 2 * j - 1;    // 0-based index of xgk(2j)
    const double absc = hlgth * kXgk[jtw];
    resk = resk + kWgk[jtw] * (f(centr - absc) + f(centr + absc));
  }
  for (int j = 1; j <= 5; ++j) {
    const int jtwm1 = 2 * j - 2;  // 0-based index of xgk(2j-1)
    const double absc = hlgth * kXgk[jtwm1];
    resk = resk + kWgk[jtwm1] * (f(centr - absc) + f(centr + absc));
  }
  return resk * hlgth;
}

class LmsDiscrete final : public DiscreteSigmaScheduler {
 public:
  explicit LmsDiscrete(const nlohmann::json& config)
      : LmsDiscrete(ConfigReader(config, "LMSDiscreteScheduler")) {}
  explicit LmsDiscrete(const ConfigReader& cfg) : DiscreteSigmaScheduler(cfg) {
    cfg.require(!cfg.get_bool("use_karras_sigmas", false), "use_karras_sigmas", "true");
  }

  std::string_view name() const override { return "lms"; }

  void set_timesteps(int n) override {
    derivatives_.clear();
    set_sigma_schedule(n, 0.0f);
  }

  Tensor step(const Tensor& model_output_in, int i, const Tensor& sample_in, TorchGenerator*) override {
    constexpr int kOrder = 4;
    check_step(i, model_output_in, sample_in);
    const Tensor model_output = as_f32_host(model_output_in, "model output");
    const Tensor sample = as_f32_host(sample_in, "sample");
    const float sigma = sigmas_[static_cast<size_t>(i)];
    pred_original_ = map2(sample, model_output, [&](float x, float e) { return x - sigma * e; });
    derivatives_.push_back(map2(sample, pred_original_, [&](float x, float p) { return (x - p) / sigma; }));
    if (derivatives_.size() > static_cast<size_t>(kOrder)) derivatives_.erase(derivatives_.begin());
    const int order = std::min(i + 1, kOrder);
    std::vector<float> coeffs;
    for (int k = 0; k < order; ++k) coeffs.push_back(static_cast<float>(lms_coefficient(order, i, k)));
    // sample + sum(coeff * derivative for coeff, derivative in zip(coeffs, reversed(derivatives)))
    Tensor out = Tensor::empty(sample.shape(), DType::F32);
    const float* x = sample.data<float>();
    float* y = out.data<float>();
    const size_t nd = derivatives_.size();
    for (int64_t e = 0, n = sample.numel(); e < n; ++e) {
      float acc = 0.0f;
      for (int k = 0; k < order; ++k)
        acc = acc +
              coeffs[static_cast<size_t>(k)] * derivatives_[nd - 1 - static_cast<size_t>(k)].data<float>()[e];
      y[e] = x[e] + acc;
    }
    return out;
  }

 private:
  // get_lms_coefficient: integral over [sigma_t, sigma_{t+1}] of the Lagrange basis polynomial for `current`.
  double lms_coefficient(int order, int t, int current) const {
    auto s = [&](int idx) { return sigmas_[static_cast<size_t>(idx)]; };
    auto basis = [&](double tau) -> double {
      if (order == 1) return 1.0;  // prod stays the Python float 1.0
      float prod = 1.0f;
      for (int k = 0; k < order; ++k) {
        if (k == current) continue;
        prod = prod * ((static_cast<float>(tau) - s(t - k)) / (s(t - current) - s(t - k)));
      }
      return prod;
    };
    return kronrod21(basis, s(t), s(t + 1));
  }

  std::vector<Tensor> derivatives_;
};

}  // namespace

std::unique_ptr<Scheduler> make_lms_discrete(const nlohmann::json& config) {
  return std::make_unique<LmsDiscrete>(config);
}

}  // namespace a2f::sched
