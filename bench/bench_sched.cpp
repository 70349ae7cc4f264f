// Host-side cost of the model-independent pipeline pieces: one scheduler step on the latents of a 2-image
// 512x512 request ([2, 4, 64, 64]), the initial-noise draw, and prompt tokenisation.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "pipeline/rng.h"
#include "pipeline/schedulers/scheduler.h"
#include "pipeline/tokenizer.h"

namespace {

nlohmann::json sd15_scheduler_config() {
  return {{"_class_name", "PNDMScheduler"},   {"beta_end", 0.012},
          {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085},
          {"num_train_timesteps", 1000},      {"set_alpha_to_one", false},
          {"skip_prk_steps", true},           {"steps_offset", 1},
          {"trained_betas", nullptr},         {"clip_sample", false}};
}

void BM_SchedulerFullSchedule(benchmark::State& state, const char* name, int steps) {
  auto sched = a2f::make_scheduler(name, sd15_scheduler_config());
  a2f::TorchGenerator gen(0);
  const a2f::Tensor x0 = gen.randn({2, 4, 64, 64});
  const a2f::Tensor eps = gen.randn({2, 4, 64, 64});
  for (auto _ : state) {
    sched->set_timesteps(steps);
    a2f::Tensor x = x0;
    for (int i = 0; i < sched->num_steps(); ++i) {
      const a2f::Tensor in = sched->scale_model_input(x, i);
      benchmark::DoNotOptimize(in.raw_data());
      x = sched->step(eps, i, x, &gen);
    }
    benchmark::DoNotOptimize(x.raw_data());
  }
  state.counters["per_step_us"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * sched->num_steps(),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}
BENCHMARK_CAPTURE(BM_SchedulerFullSchedule, dpm_25, "dpm++2m", 25)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SchedulerFullSchedule, euler_a_25, "euler-a", 25)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SchedulerFullSchedule, unipc_25, "unipc", 25)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SchedulerFullSchedule, lms_25, "lms", 25)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SchedulerFullSchedule, lcm_4, "lcm", 4)->Unit(benchmark::kMillisecond);

void BM_RandnLatents(benchmark::State& state) {
  a2f::TorchGenerator gen(42);
  for (auto _ : state) benchmark::DoNotOptimize(gen.randn({2, 4, 64, 64}).raw_data());
}
BENCHMARK(BM_RandnLatents)->Unit(benchmark::kMicrosecond);

void BM_TokenizePrompt(benchmark::State& state) {
  // The real SD1.5 tokenizer files in the fixtures, found from this source file's location.
  const std::filesystem::path dir =
      std::filesystem::path(__FILE__).parent_path().parent_path() / "tests/fixtures/models/sd15/tokenizer";
  const a2f::ClipTokenizer tok = a2f::ClipTokenizer::load(dir);
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode("photo of a id person, smiling, outdoors").data());
}
BENCHMARK(BM_TokenizePrompt)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
