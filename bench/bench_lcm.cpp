// LCM-LoRA at SD1.5 size: the real SD1.5 UNet config with random weights generated in memory (as
// bench/bench_unet.cpp builds it) and a random rank-64 LoRA on the 278 layers
// latent-consistency/lcm-lora-sdv1-5 adapts (attention q/k/v/out, proj_in/out, feed-forward, resnet convs +
// time_emb_proj + shortcuts, down/up samplers), stored f16 like the released file. Latents 64x64 (512x512
// images), 77 context tokens, cpu backend.
//
//   unet_step/{base,merged,unmerged}   one UNet call, batch 1 (an LCM step: guidance 1.0, no CFG batch), with
//                                      the LoRA off / merged into a second weight copy / as low-rank side
//                                      paths
//   lora_merge                         building the merged copies (once, on the first LCM request)
//   lora_toggle                        enable + disable of the merged LoRA (what a per-request toggle costs)
//   denoise/lcm3, denoise/dpm25        the whole denoising loop of one 512x512 image: LCMScheduler 3 steps
//                                      (batch 1) vs DPM-Solver++ 25 steps with CFG (batch 2), scheduler
//                                      included; text encoding and VAE decoding are the same for both and not
//                                      included
// Counters: rss_gb = resident memory after the case (weights, merged copies, oneDNN's reordered weights).
// unet_step reports the CPU time of all threads next to the wall time: on a shared machine the wall time
// varies with the load, the CPU time much less (run with OMP_WAIT_POLICY=passive so idle threads do not
// spin).
//
//   a2f_bench_lcm --benchmark_filter=bf16    (one dtype per process keeps the memory readable)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "models/lora.h"
#include "models/unet2d.h"
#include "sd15_random.h"
#include "pipeline/rng.h"
#include "pipeline/schedulers/scheduler.h"

namespace {

using namespace a2f;
using bench::random_tensor;

// stable-diffusion-v1-5/scheduler/scheduler_config.json
const char* kSd15SchedulerConfig = R"({
  "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
  "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
  "trained_betas": null, "clip_sample": false
})";

// The module kinds lcm-lora-sdv1-5 adapts (278 layers in SD1.5).
bool lcm_target(const std::string& module) {
  for (const char* s :
       {".to_q", ".to_k", ".to_v", ".to_out.0", ".proj_in", ".proj_out", ".ff.net.0.proj", ".ff.net.2",
        ".conv1", ".conv2", ".conv_shortcut", "samplers.0.conv", ".time_emb_proj"}) {
    const std::string suffix = s;
    if (module.size() >= suffix.size() &&
        module.compare(module.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  }
  return false;
}

LoraWeights random_lcm_lora(UNet2DConditionModel& unet, int64_t rank) {
  LoraWeights w;
  w.file = "random rank-64 LCM-LoRA";
  w.format = "kohya";
  auto add = [&](const Tensor& weight) {
    const std::string module = weight.name().substr(0, weight.name().size() - 7);  // drop ".weight"
    if (!lcm_target(module)) return;
    LoraModuleWeights m;
    m.module = module;
    m.rank = rank;
    m.alpha = 8.0;
    const Shape& s = weight.shape();
    const uint64_t seed = std::hash<std::string>{}(module);
    const Shape down = s.size() == 4 ? Shape{rank, s[1], s[2], s[3]} : Shape{rank, s[1]};
    const Shape up = s.size() == 4 ? Shape{s[0], rank, 1, 1} : Shape{s[0], rank};
    m.down = random_tensor(down, 1.0f / std::sqrt(static_cast<float>(shape_numel(down) / rank)), 0.0f, seed)
                 .to(DType::F16);
    m.up = random_tensor(up, 0.01f, 0.0f, seed + 1).to(DType::F16);
    w.unet.push_back(m);
  };
  unet.for_each_layer([&](nn::Linear& l) { add(l.weight); }, [&](nn::Conv2d& c) { add(c.weight); });
  return w;
}

double rss_gb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / (1024.0 * 1024.0);
  return 0;
}

struct Setup {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<UNet2DConditionModel> unet;
  std::unique_ptr<LoraAdapter> merged, unmerged;
  Tensor sample1, sample2, context1, context2;
};

Setup& setup(DType dtype) {
  static std::unique_ptr<Setup> s;
  static DType made = DType::F32;
  if (!s || made != dtype) {
    s.reset();
    s = std::make_unique<Setup>();
    made = dtype;
    s->backend = make_cpu_backend();
    s->unet = bench::random_sd15_unet(*s->backend, dtype);
    LoraWeights lora = random_lcm_lora(*s->unet, 64);
    s->merged = std::make_unique<LoraAdapter>(*s->unet, lora, 1.0f, LoraMode::Merged);
    s->unmerged = std::make_unique<LoraAdapter>(*s->unet, lora, 1.0f, LoraMode::Unmerged);
    s->sample1 = random_tensor({1, 4, 64, 64}, 1.0f, 0.0f, 1);  // [1, 4, 64, 64]
    s->sample2 = random_tensor({2, 4, 64, 64}, 1.0f, 0.0f, 1);  // [2, 4, 64, 64]
    s->context1 = random_tensor({1, 77, 768}, 1.0f, 0.0f, 2);   // [1, 77, 768]
    s->context2 = random_tensor({2, 77, 768}, 1.0f, 0.0f, 2);   // [2, 77, 768]
  }
  return *s;
}

Tensor step_t(float t) {
  return Tensor::from_data({1}, std::vector<float>{t});
}

enum class Variant { Base, Merged, Unmerged };

void BM_unet_step(benchmark::State& state, DType dtype, Variant v) {
  Setup& s = setup(dtype);
  LoraAdapter* lora = v == Variant::Merged     ? s.merged.get()
                      : v == Variant::Unmerged ? s.unmerged.get()
                                               : nullptr;
  LoraScope scope(lora, true);
  s.unet->forward(s.sample1, step_t(499), s.context1);  // warm-up: primitives, weight reorders
  for (auto _ : state) {
    Tensor out = s.unet->forward(s.sample1, step_t(499), s.context1);
    benchmark::DoNotOptimize(out.raw_data());
  }
  state.counters["rss_gb"] = rss_gb();
}

void BM_lora_merge(benchmark::State& state, DType dtype) {
  Setup& s = setup(dtype);
  LoraWeights lora = random_lcm_lora(*s.unet, 64);
  for (auto _ : state) {
    LoraAdapter a(*s.unet, lora, 1.0f, LoraMode::Merged);
    a.set_enabled(true);  // computes every merged copy
    a.set_enabled(false);
  }
  state.counters["modules"] = static_cast<double>(lora.unet.size());
}

void BM_lora_toggle(benchmark::State& state, DType dtype) {
  Setup& s = setup(dtype);
  s.merged->set_enabled(true);  // merged copies exist from here on
  s.merged->set_enabled(false);
  for (auto _ : state) {
    s.merged->set_enabled(true);
    s.merged->set_enabled(false);
  }
}

// One image: LCM 3 steps (batch 1, noise between steps) or DPM-Solver++ 25 steps with CFG (batch 2).
void BM_denoise(benchmark::State& state, DType dtype, bool lcm) {
  Setup& s = setup(dtype);
  const nlohmann::json sched_cfg = nlohmann::json::parse(kSd15SchedulerConfig);
  LoraScope scope(s.merged.get(), lcm);
  for (auto _ : state) {
    auto sched = make_scheduler(lcm ? "lcm" : "dpm++2m", sched_cfg);
    sched->set_timesteps(lcm ? 3 : 25);
    TorchGenerator gen(1234);
    Tensor latents = gen.randn({1, 4, 64, 64});  // [1, 4, 64, 64]
    for (int k = 0; k < sched->num_steps(); ++k) {
      Tensor in = sched->scale_model_input(lcm ? latents : s.backend->concat({latents, latents}, 0), k);
      const Tensor& ctx = lcm ? s.context1 : s.context2;
      Tensor eps = s.unet->forward(in, step_t(static_cast<float>(sched->timesteps()[k])), ctx);
      if (!lcm) {
        Tensor eu = eps.narrow(0, 0, 1), ec = eps.narrow(0, 1, 1);
        eps = s.backend->add(eu, s.backend->mul(Tensor::full({1}, 3.0f), s.backend->sub(ec, eu)));
      }
      latents = sched->step(eps, k, latents, &gen);
    }
    benchmark::DoNotOptimize(latents.raw_data());
  }
  state.counters["steps"] = lcm ? 3 : 25;
  state.counters["rss_gb"] = rss_gb();
}

// Wall time and the CPU time of all threads (MeasureProcessCPUTime).
#define A2F_LCM_CASE(fn, name, ...) \
  BENCHMARK_CAPTURE(fn, name, __VA_ARGS__)->UseRealTime()->MeasureProcessCPUTime()
#define A2F_LCM_BENCH(dt, DT)                                                                         \
  A2F_LCM_CASE(BM_unet_step, base_##dt, DType::DT, Variant::Base)                                     \
      ->Unit(benchmark::kMillisecond)                                                                 \
      ->Iterations(3);                                                                                \
  A2F_LCM_CASE(BM_unet_step, merged_##dt, DType::DT, Variant::Merged)                                 \
      ->Unit(benchmark::kMillisecond)                                                                 \
      ->Iterations(3);                                                                                \
  A2F_LCM_CASE(BM_unet_step, unmerged_##dt, DType::DT, Variant::Unmerged)                             \
      ->Unit(benchmark::kMillisecond)                                                                 \
      ->Iterations(3);                                                                                \
  A2F_LCM_CASE(BM_lora_merge, dt, DType::DT)->Unit(benchmark::kMillisecond)->Iterations(1);           \
  A2F_LCM_CASE(BM_lora_toggle, dt, DType::DT)->Unit(benchmark::kMicrosecond);                         \
  A2F_LCM_CASE(BM_denoise, lcm3_##dt, DType::DT, true)->Unit(benchmark::kMillisecond)->Iterations(1); \
  A2F_LCM_CASE(BM_denoise, dpm25_##dt, DType::DT, false)->Unit(benchmark::kMillisecond)->Iterations(1);

A2F_LCM_BENCH(f32, F32)
A2F_LCM_BENCH(bf16, BF16)

}  // namespace

BENCHMARK_MAIN();
