// Shared scheduler pieces: config reading, training schedule, numpy/torch-exact numerics, the factory.
#include "pipeline/schedulers/common.h"

#include <algorithm>
#include <numbers>

#include "core/error.h"

namespace a2f {

// ---- Scheduler base ----

Tensor Scheduler::scale_model_input(const Tensor& sample, int step_index) const {
  check_index(step_index);
  return sample;
}

void Scheduler::begin_schedule() {
  next_step_ = 0;
  pred_original_ = Tensor();
}

void Scheduler::check_index(int step_index) const {
  A2F_CHECK(!timesteps_.empty(), "scheduler ", name(), ": set_timesteps() must be called before stepping");
  A2F_CHECK(step_index >= 0 && step_index < num_steps(), "scheduler ", name(), ": step index ", step_index,
            " is outside the schedule of ", num_steps(), " steps");
}

void Scheduler::check_step(int step_index, const Tensor& model_output, const Tensor& sample) {
  check_index(step_index);
  A2F_CHECK(step_index == next_step_, "scheduler ", name(), ": step ", step_index, " called, but step ",
            next_step_, " is next (steps must be taken in order after set_timesteps)");
  A2F_CHECK(model_output.shape() == sample.shape(), "scheduler ", name(), ": model output ",
            model_output.desc(), " and sample ", sample.desc(), " differ in shape");
  ++next_step_;
}

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names = {
      "dpm++2m", "dpm++2m-karras", "euler", "euler-a", "ddim", "pndm", "lms", "unipc", "lcm"};
  return names;
}

std::unique_ptr<Scheduler> make_scheduler(std::string_view name, const nlohmann::json& config) {
  A2F_CHECK(config.is_object() || config.is_null(), "scheduler config must be a JSON object");
  using namespace sched;
  if (name == "dpm++2m") return make_dpm_solver_multistep(config, false);
  if (name == "dpm++2m-karras") return make_dpm_solver_multistep(config, true);
  if (name == "euler") return make_euler_discrete(config);
  if (name == "euler-a") return make_euler_ancestral_discrete(config);
  if (name == "ddim") return make_ddim(config);
  if (name == "pndm") return make_pndm(config);
  if (name == "lms") return make_lms_discrete(config);
  if (name == "unipc") return make_unipc_multistep(config);
  if (name == "lcm") return make_lcm(config);
  std::string valid;
  for (const auto& n : scheduler_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown scheduler '", name, "'; valid names: ", valid);
}

namespace sched {

// ---- ConfigReader ----

ConfigReader::ConfigReader(const nlohmann::json& config, std::string scheduler)
    : config_(config), scheduler_(std::move(scheduler)) {}

const nlohmann::json* ConfigReader::find(const char* key) const {
  if (!config_.is_object()) return nullptr;
  auto it = config_.find(key);
  if (it == config_.end() || it->is_null()) return nullptr;
  return &*it;
}

int ConfigReader::get_int(const char* key, int def) const {
  const nlohmann::json* v = find(key);
  if (!v) return def;
  A2F_CHECK(
      v->is_number_integer() || (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>()),
      scheduler_, " config: '", key, "' must be an integer, got ", v->dump());
  const double d = v->get<double>();
  A2F_CHECK(d >= -1e9 && d <= 1e9, scheduler_, " config: '", key, "' is out of range: ", v->dump());
  return static_cast<int>(d);
}

double ConfigReader::get_double(const char* key, double def) const {
  const nlohmann::json* v = find(key);
  if (!v) return def;
  A2F_CHECK(v->is_number(), scheduler_, " config: '", key, "' must be a number, got ", v->dump());
  return v->get<double>();
}

bool ConfigReader::get_bool(const char* key, bool def) const {
  const nlohmann::json* v = find(key);
  if (!v) return def;
  A2F_CHECK(v->is_boolean(), scheduler_, " config: '", key, "' must be true or false, got ", v->dump());
  return v->get<bool>();
}

std::string ConfigReader::get_string(const char* key, const std::string& def) const {
  const nlohmann::json* v = find(key);
  if (!v) return def;
  A2F_CHECK(v->is_string(), scheduler_, " config: '", key, "' must be a string, got ", v->dump());
  return v->get<std::string>();
}

std::optional<double> ConfigReader::get_optional_double(const char* key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  A2F_CHECK(v->is_number(), scheduler_, " config: '", key, "' must be a number or null, got ", v->dump());
  return v->get<double>();
}

std::optional<std::vector<double>> ConfigReader::get_double_list(const char* key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  A2F_CHECK(v->is_array(), scheduler_, " config: '", key, "' must be a list of numbers or null");
  std::vector<double> out;
  for (const auto& e : *v) {
    A2F_CHECK(e.is_number(), scheduler_, " config: '", key, "' must be a list of numbers, got ", e.dump());
    out.push_back(e.get<double>());
  }
  return out;
}

void ConfigReader::require(bool ok, const char* key, const std::string& value) const {
  A2F_CHECK(ok, scheduler_, ": option ", key, " = ", value, " is not supported");
}

// ---- training schedule ----

namespace {
// diffusers betas_for_alpha_bar (cosine), float64 then float32.
std::vector<float> cosine_betas(int n) {
  auto alpha_bar = [](double t) {
    const double c = std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2);
    return c * c;
  };
  std::vector<float> betas(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const double t1 = static_cast<double>(i) / n, t2 = static_cast<double>(i + 1) / n;
    betas[static_cast<size_t>(i)] = static_cast<float>(std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999));
  }
  return betas;
}
}  // namespace

TrainSchedule read_train_schedule(const ConfigReader& cfg, BetaDefaults defaults) {
  TrainSchedule s;
  s.num_train_timesteps = cfg.get_int("num_train_timesteps", 1000);
  const int n = s.num_train_timesteps;
  cfg.require(n >= 2 && n <= 100000, "num_train_timesteps", std::to_string(n));
  cfg.require(!cfg.get_bool("rescale_betas_zero_snr", false), "rescale_betas_zero_snr", "true");
  const double beta_start = cfg.get_double("beta_start", defaults.beta_start);
  const double beta_end = cfg.get_double("beta_end", defaults.beta_end);
  const std::string schedule = cfg.get_string("beta_schedule", defaults.beta_schedule);
  if (auto trained = cfg.get_double_list("trained_betas")) {
    cfg.require(static_cast<int>(trained->size()) == n, "trained_betas",
                cat("a list of ", trained->size(), " values for ", n, " train timesteps"));
    for (double b : *trained) s.betas.push_back(static_cast<float>(b));
  } else if (schedule == "linear") {
    s.betas = torch_linspace_f32(beta_start, beta_end, n);
  } else if (schedule == "scaled_linear") {
    s.betas = torch_linspace_f32(std::pow(beta_start, 0.5), std::pow(beta_end, 0.5), n);
    for (float& b : s.betas) b = b * b;
  } else if (schedule == "squaredcos_cap_v2") {
    s.betas = cosine_betas(n);
  } else {
    cfg.require(false, "beta_schedule", schedule);
  }
  // alphas = 1 - betas (float32); torch.cumprod accumulates float32 inputs in double on the CPU.
  s.alphas_cumprod.resize(s.betas.size());
  double acc = 1.0;
  for (size_t i = 0; i < s.betas.size(); ++i) {
    const float alpha = 1.0f - s.betas[i];
    acc *= static_cast<double>(alpha);
    s.alphas_cumprod[i] = static_cast<float>(acc);
  }
  return s;
}

// ---- numerics ----

std::vector<float> torch_linspace_f32(double start_d, double end_d, int64_t steps) {
  A2F_ASSERT(steps >= 1);
  const float start = static_cast<float>(start_d), end = static_cast<float>(end_d);
  if (steps == 1) return {start};
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int64_t halfway = steps / 2;
  // The AVX2 build contracts `start + step * idx` / `end - step * k` / `base + k * step` into FMAs.
  auto value = [&](int64_t idx) {
    return idx < halfway ? std::fma(step, static_cast<float>(idx), start)
                         : std::fma(-step, static_cast<float>(steps - idx - 1), end);
  };
  std::vector<float> out(static_cast<size_t>(steps));
  int64_t idx = 0;
  for (; idx + 16 <= steps; idx += 16) {  // the vectorised loop: two 8-wide vectors per iteration
    for (int64_t v = idx; v < idx + 16; v += 8) {
      const float base = value(v);
      out[static_cast<size_t>(v)] = base;
      for (int k = 1; k < 8; ++k)
        out[static_cast<size_t>(v + k)] = std::fma(static_cast<float>(k), step, base);
    }
  }
  for (; idx < steps; ++idx) out[static_cast<size_t>(idx)] = value(idx);
  return out;
}

std::vector<double> np_linspace(double start, double stop, int64_t num, bool endpoint) {
  A2F_ASSERT(num >= 0);
  std::vector<double> y(static_cast<size_t>(num));
  const int64_t div = endpoint ? num - 1 : num;
  const double delta = stop - start;
  if (div > 0) {
    const double step = delta / static_cast<double>(div);
    for (int64_t i = 0; i < num; ++i) {
      y[static_cast<size_t>(i)] = step == 0
                                      ? static_cast<double>(i) / static_cast<double>(div) * delta + start
                                      : static_cast<double>(i) * step + start;
    }
  } else {
    for (int64_t i = 0; i < num; ++i) y[static_cast<size_t>(i)] = static_cast<double>(i) * delta + start;
  }
  if (endpoint && num > 1) y.back() = stop;
  return y;
}

std::vector<double> np_arange(double start, double stop, double step) {
  A2F_ASSERT(step != 0);
  const double n = std::ceil((stop - start) / step);
  std::vector<double> out;
  if (!(n > 0)) return out;
  const double delta = (start + step) - start;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i)
    out.push_back(i == 0 ? start : i == 1 ? start + step : start + static_cast<double>(i) * delta);
  return out;
}

double np_interp_index(double x, const std::vector<float>& fp) {
  A2F_ASSERT(!fp.empty());
  const int64_t n = static_cast<int64_t>(fp.size());
  if (std::isnan(x)) return x;
  if (x < 0) return fp.front();
  if (x >= static_cast<double>(n - 1)) return fp.back();
  const int64_t j = static_cast<int64_t>(std::floor(x));
  const double xj = static_cast<double>(j);
  if (xj == x) return fp[static_cast<size_t>(j)];
  const double yj = fp[static_cast<size_t>(j)], yj1 = fp[static_cast<size_t>(j + 1)];
  const double slope = (yj1 - yj) / ((xj + 1.0) - xj);
  return slope * (x - xj) + yj;
}

double np_round(double x) {
  return std::nearbyint(x);
}

float sigma_from_alpha_cumprod(float alpha_cumprod) {
  const float ratio = (1.0f - alpha_cumprod) / alpha_cumprod;
  return std::sqrt(ratio);
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int n) {
  const double rho = 7.0;
  const std::vector<double> ramp = np_linspace(0, 1, n);
  const double min_inv_rho = std::pow(sigma_min, 1 / rho);
  const double max_inv_rho = std::pow(sigma_max, 1 / rho);
  std::vector<double> out(ramp.size());
  for (size_t i = 0; i < ramp.size(); ++i)
    out[i] = std::pow(max_inv_rho + ramp[i] * (min_inv_rho - max_inv_rho), rho);
  return out;
}

void discrete_sigma_schedule(const TrainSchedule& train, const std::string& spacing, int steps_offset, int n,
                             std::vector<double>& timesteps, std::vector<double>& sigmas) {
  const int T = train.num_train_timesteps;
  std::vector<float> ts;  // float32, as diffusers keeps them
  if (spacing == "linspace") {
    const std::vector<double> lin = np_linspace(0, T - 1, n);
    for (int i = n - 1; i >= 0; --i) ts.push_back(static_cast<float>(lin[static_cast<size_t>(i)]));
  } else if (spacing == "leading") {
    const int ratio = T / n;
    for (int i = n - 1; i >= 0; --i)
      ts.push_back(static_cast<float>(static_cast<int64_t>(i) * ratio) + static_cast<float>(steps_offset));
  } else if (spacing == "trailing") {
    for (double v : np_arange(T, 0, -static_cast<double>(T) / n))
      ts.push_back(static_cast<float>(np_round(v)) - 1.0f);
  } else {
    fail("timestep_spacing '", spacing, "' is not supported (linspace, leading or trailing)");
  }
  std::vector<float> base(train.alphas_cumprod.size());
  for (size_t i = 0; i < base.size(); ++i) base[i] = sigma_from_alpha_cumprod(train.alphas_cumprod[i]);
  timesteps.assign(ts.begin(), ts.end());
  sigmas.clear();
  for (float t : ts) sigmas.push_back(np_interp_index(t, base));
}

float sigma_init_noise(const std::vector<float>& sigmas, const std::string& spacing) {
  const float max_sigma = *std::max_element(sigmas.begin(), sigmas.end());
  if (spacing == "linspace" || spacing == "trailing") return max_sigma;
  return std::sqrt(max_sigma * max_sigma + 1.0f);
}

Tensor scale_by_sigma(const Tensor& sample_in, float sigma) {
  const Tensor sample = as_f32_host(sample_in, "sample");
  const float denom = std::sqrt(sigma * sigma + 1.0f);
  return map1(sample, [&](float x) { return x / denom; });
}

double sigma_to_t(double sigma, const std::vector<float>& log_sigmas) {
  // numpy value-based casting makes every step after log(sigma) float32 until the int64 indices enter.
  const float log_sigma = static_cast<float>(std::log(std::max(sigma, 1e-10)));
  const int64_t n = static_cast<int64_t>(log_sigmas.size());
  int64_t low_idx = 0;
  for (int64_t i = 0; i < n; ++i)
    if (log_sigma - log_sigmas[static_cast<size_t>(i)] >= 0.0f) low_idx = i;
  low_idx = std::min(low_idx, n - 2);
  const int64_t high_idx = low_idx + 1;
  const float low = log_sigmas[static_cast<size_t>(low_idx)],
              high = log_sigmas[static_cast<size_t>(high_idx)];
  float w = (low - log_sigma) / (low - high);
  w = std::clamp(w, 0.0f, 1.0f);
  return static_cast<double>(1.0f - w) * static_cast<double>(low_idx) +
         static_cast<double>(w) * static_cast<double>(high_idx);
}

// torch.log/exp/expm1 of a float32 CPU tensor run SLEEF's u10 kernels (AVX2 build: Sleef_*f8_u10avx2), even
// for one element. SLEEF's scalar FMA variant computes the same lanes bit for bit; it needs a CPU with FMA,
// without which libm stands in (then results can differ from torch by an ulp). libsleef (Debian libsleef-dev)
// exports these; sleef.h declares them only when compiling with -mfma.
extern "C" {
float Sleef_logf1_u10purecfma(float);
float Sleef_expf1_u10purecfma(float);
float Sleef_expm1f1_u10purecfma(float);
}
namespace {
bool sleef_fma_usable() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool ok = __builtin_cpu_supports("fma");
  return ok;
#else
  return true;
#endif
}
}  // namespace

float torch_log(float x) {
  return sleef_fma_usable() ? Sleef_logf1_u10purecfma(x) : std::log(x);
}
float torch_exp(float x) {
  return sleef_fma_usable() ? Sleef_expf1_u10purecfma(x) : std::exp(x);
}
float torch_expm1(float x) {
  return sleef_fma_usable() ? Sleef_expm1f1_u10purecfma(x) : std::expm1(x);
}

Tensor as_f32_host(const Tensor& t, const char* what) {
  A2F_CHECK(t.defined(), "scheduler: ", what, " is undefined");
  A2F_CHECK(t.device() == Device::CPU, "scheduler: ", what, " ", t.desc(), " must be on the host");
  A2F_CHECK(dtype_is_float(t.dtype()), "scheduler: ", what, " ", t.desc(), " must be a float tensor");
  Tensor c = t.to(DType::F32);
  return c.is_contiguous() ? c : c.contiguous();
}

DiscreteSigmaScheduler::DiscreteSigmaScheduler(const ConfigReader& cfg) : train_(read_train_schedule(cfg)) {
  const std::string prediction = cfg.get_string("prediction_type", "epsilon");
  cfg.require(prediction == "epsilon", "prediction_type", prediction);
  spacing_ = cfg.get_string("timestep_spacing", "linspace");
  cfg.require(spacing_ == "linspace" || spacing_ == "leading" || spacing_ == "trailing", "timestep_spacing",
              spacing_);
  steps_offset_ = cfg.get_int("steps_offset", 0);
}

void DiscreteSigmaScheduler::set_sigma_schedule(int n, float final_sigma) {
  A2F_CHECK(n >= 1 && n <= train_.num_train_timesteps, name(), ": number of steps must be in [1, ",
            train_.num_train_timesteps, "], got ", n);
  std::vector<double> sig;
  discrete_sigma_schedule(train_, spacing_, steps_offset_, n, timesteps_, sig);
  sigmas_.assign(sig.begin(), sig.end());  // float64 -> float32
  sigmas_.push_back(final_sigma);
  init_noise_sigma_ = sigma_init_noise(sigmas_, spacing_);
  begin_schedule();
}

Tensor DiscreteSigmaScheduler::scale_model_input(const Tensor& sample, int i) const {
  check_index(i);
  return scale_by_sigma(sample, sigmas_[static_cast<size_t>(i)]);
}

}  // namespace sched
}  // namespace a2f
