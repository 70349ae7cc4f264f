// One UNet2DConditionModel step at SD1.5 size: the real SD1.5 config (block_out_channels 320/640/1280/1280,
// cross_attention_dim 768, attention_head_dim 8), random weights generated in memory (no file), latents
// 2x4x64x64 (512x512 images, batch 2 = classifier-free guidance), 77 context tokens, on the cpu backend, f32
// and bf16. bench/compare_torch_unet.py runs this binary and the same step in PyTorch and prints the ratio.
//
//   a2f_bench_unet --benchmark_filter=/f32/ --benchmark_repetitions=3
// One step per repetition (after a warm-up step); on a shared machine the minimum over repetitions is the
// figure to compare. One dtype per process keeps the peak RSS per dtype readable.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "models/unet2d.h"
#include "sd15_random.h"

#if __has_include("backends/cpu/cpu_backend.h")
#include "backends/cpu/cpu_backend.h"
#define A2F_BENCH_HAVE_CPU 1
#endif

namespace {

using namespace a2f;
using bench::random_tensor;

struct Setup {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<UNet2DConditionModel> unet;
  Tensor sample, timesteps, context;
};

#ifdef A2F_BENCH_HAVE_CPU
Setup& setup(DType dtype) {
  static std::unique_ptr<Setup> s;
  static DType made = DType::F32;
  if (!s || made != dtype) {
    s.reset();
    s = std::make_unique<Setup>();
    made = dtype;
    s->backend = make_cpu_backend();
    s->unet = bench::random_sd15_unet(*s->backend, dtype);
    s->sample = random_tensor({2, 4, 64, 64}, 1.0f, 0.0f, 1);  // [2, 4, 64, 64]
    s->timesteps = Tensor::from_data({1}, std::vector<float>{500.0f});
    s->context = random_tensor({2, 77, 768}, 1.0f, 0.0f, 2);  // [2, 77, 768]
    s->unet->forward(s->sample, s->timesteps, s->context);    // warm-up (allocations, primitive creation)
  }
  return *s;
}

void BM_unet_step_sd15(benchmark::State& state, DType dtype) {
  Setup& s = setup(dtype);
  for (auto _ : state) {
    Tensor out = s.unet->forward(s.sample, s.timesteps, s.context);
    s.backend->synchronize();
    benchmark::DoNotOptimize(out.raw_data());
  }
  state.counters["images_per_s"] =
      benchmark::Counter(2.0 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_unet_step_sd15, f32, DType::F32)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_unet_step_sd15, bf16, DType::BF16)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
