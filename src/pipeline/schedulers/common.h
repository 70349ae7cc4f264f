// Shared pieces of the schedulers (internal): config reading with diffusers' from_config semantics, the
// training noise schedule, numpy/torch-exact numeric helpers and float32 elementwise maps.
#pragma once
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "pipeline/schedulers/scheduler.h"

namespace a2f::sched {

// Reads keys of a scheduler_config.json. A key that is absent or null takes the class default; a key of the
// wrong type throws. Keys never asked for are ignored (as from_config ignores keys the class does not know).
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& config, std::string scheduler);
  int get_int(const char* key, int def) const;
  double get_double(const char* key, double def) const;
  bool get_bool(const char* key, bool def) const;
  std::string get_string(const char* key, const std::string& def) const;
  std::optional<double> get_optional_double(const char* key) const;
  std::optional<std::vector<double>> get_double_list(const char* key) const;
  // Throws "option not supported" when `ok` is false.
  void require(bool ok, const char* key, const std::string& value) const;

 private:
  const nlohmann::json* find(const char* key) const;
  const nlohmann::json& config_;
  std::string scheduler_;
};

// betas / alphas_cumprod as diffusers' __init__ builds them (float32 torch ops; cumprod accumulates in
// double).
struct TrainSchedule {
  int num_train_timesteps = 1000;
  std::vector<float> betas;
  std::vector<float> alphas_cumprod;
};
struct BetaDefaults {
  double beta_start = 0.0001, beta_end = 0.02;
  const char* beta_schedule = "linear";
};
TrainSchedule read_train_schedule(const ConfigReader& cfg, BetaDefaults defaults = {});

// ---- numerics mirroring numpy (float64) and torch (float32) ----

// torch.linspace(start, end, steps, dtype=float32) of the AVX2 CPU kernel (halfway split, FMA-contracted
// bases).
std::vector<float> torch_linspace_f32(double start, double end, int64_t steps);
// np.linspace(start, stop, num[, endpoint]) in float64.
std::vector<double> np_linspace(double start, double stop, int64_t num, bool endpoint = true);
// np.arange(start, stop, step) in float64 (numpy fills start + i * ((start + step) - start)).
std::vector<double> np_arange(double start, double stop, double step);
// np.interp(x, arange(len(fp)), fp) for one x (fp given in float32, as diffusers passes it).
double np_interp_index(double x, const std::vector<float>& fp);
// np.round / np.rint: round half to even.
double np_round(double x);
// float32 (1 - ac) / ac, then sqrt: the sigma of one alphas_cumprod entry as diffusers' torch expression
// gives it.
float sigma_from_alpha_cumprod(float alpha_cumprod);
// Karras et al. (2022) sigmas, rho 7 (diffusers _convert_to_karras, float64).
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int n);
// diffusers _sigma_to_t: fractional timestep of a sigma given log(sigmas) of the training schedule.
double sigma_to_t(double sigma, const std::vector<float>& log_sigmas);

// The sigma schedule of Euler / Euler-a / LMS set_timesteps: float32 timesteps by `spacing` (linspace,
// leading, trailing) and sigmas np.interp'ed from the training sigmas at those timesteps (float64, not yet
// terminated).
void discrete_sigma_schedule(const TrainSchedule& train, const std::string& spacing, int steps_offset, int n,
                             std::vector<double>& timesteps, std::vector<double>& sigmas);
// init_noise_sigma of the sigma schedulers: max sigma for linspace/trailing, else sqrt(max^2 + 1) (float32).
float sigma_init_noise(const std::vector<float>& sigmas, const std::string& spacing);
// sample / ((sigma**2 + 1) ** 0.5), the Euler-family scale_model_input.
Tensor scale_by_sigma(const Tensor& sample, float sigma);

// The part shared by the sigma schedulers Euler, Euler-a and LMS: epsilon prediction, timestep_spacing and
// steps_offset from the config, the discrete sigma schedule plus a final sigma (float32), init_noise_sigma
// and scale_model_input's sample / sqrt(sigma^2 + 1).
class DiscreteSigmaScheduler : public Scheduler {
 public:
  Tensor scale_model_input(const Tensor& sample, int i) const override;

 protected:
  // Reads the training schedule, prediction_type (epsilon only), timestep_spacing and steps_offset.
  explicit DiscreteSigmaScheduler(const ConfigReader& cfg);
  // n steps: timesteps_, sigmas_ (terminated by final_sigma), init_noise_sigma_, then begin_schedule().
  void set_sigma_schedule(int n, float final_sigma);

  TrainSchedule train_;
  std::string spacing_;
  int steps_offset_ = 0;
};

// torch ops on 0-dim float32 tensors.
float torch_log(float x);
float torch_exp(float x);
float torch_expm1(float x);

// ---- float32 elementwise maps over host tensors (each element rounded as torch's chain of ops) ----

Tensor as_f32_host(const Tensor& t, const char* what);  // contiguous host F32 (converting when needed)

template <class F>
Tensor map1(const Tensor& a, F f) {
  Tensor out = Tensor::empty(a.shape(), DType::F32);
  const float* x = a.data<float>();
  float* y = out.data<float>();
  for (int64_t i = 0, n = a.numel(); i < n; ++i) y[i] = f(x[i]);
  return out;
}
template <class F>
Tensor map2(const Tensor& a, const Tensor& b, F f) {
  Tensor out = Tensor::empty(a.shape(), DType::F32);
  const float *x = a.data<float>(), *z = b.data<float>();
  float* y = out.data<float>();
  for (int64_t i = 0, n = a.numel(); i < n; ++i) y[i] = f(x[i], z[i]);
  return out;
}
template <class F>
Tensor map3(const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  Tensor out = Tensor::empty(a.shape(), DType::F32);
  const float *x = a.data<float>(), *z = b.data<float>(), *w = c.data<float>();
  float* y = out.data<float>();
  for (int64_t i = 0, n = a.numel(); i < n; ++i) y[i] = f(x[i], z[i], w[i]);
  return out;
}

// ---- constructors used by make_scheduler ----
std::unique_ptr<Scheduler> make_dpm_solver_multistep(const nlohmann::json& config, bool karras);
std::unique_ptr<Scheduler> make_euler_discrete(const nlohmann::json& config);
std::unique_ptr<Scheduler> make_euler_ancestral_discrete(const nlohmann::json& config);
std::unique_ptr<Scheduler> make_ddim(const nlohmann::json& config);
std::unique_ptr<Scheduler> make_pndm(const nlohmann::json& config);
std::unique_ptr<Scheduler> make_lms_discrete(const nlohmann::json& config);
std::unique_ptr<Scheduler> make_unipc_multistep(const nlohmann::json& config);
std::unique_ptr<Scheduler> make_lcm(const nlohmann::json& config);

}  // namespace a2f::sched
