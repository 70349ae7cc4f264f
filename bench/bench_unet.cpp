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

#if __has_include("backends/cpu/cpu_backend.h")
#include "backends/cpu/cpu_backend.h"
#define A2F_BENCH_HAVE_CPU 1
#endif

namespace {

using namespace a2f;

// stable-diffusion-v1-5/unet/config.json
const char* kSd15UnetConfig = R"({
  "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
  "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
  "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
})";

// Fast deterministic uniform numbers with unit variance (values only need to be sane, not Gaussian).
struct Rng {
  uint64_t s;
  float next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const float u = static_cast<float>((s >> 40) & 0xffffff) / 16777216.0f;  // [0, 1)
    return (2.0f * u - 1.0f) * 1.7320508f;
  }
};

Tensor random_tensor(const Shape& shape, float scale, float offset, uint64_t seed) {
  Tensor t = Tensor::empty(shape);  // [shape]
  float* p = t.data<float>();
  Rng r{seed * 0x9e3779b97f4a7c15ull + 1};
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = offset + scale * r.next();
  return t;
}

// Like the fixture generator: weights N(0,1)/sqrt(fan_in), biases 0.02, norm scales 1 + 0.1.
Tensor random_weight(const std::string& name, const Shape& shape) {
  const uint64_t seed = std::hash<std::string>{}(name);
  if (shape.size() == 1) {
    const bool norm_scale = name.find("norm") != std::string::npos && name.ends_with(".weight");
    return norm_scale ? random_tensor(shape, 0.1f, 1.0f, seed) : random_tensor(shape, 0.02f, 0.0f, seed);
  }
  const int64_t fan_in = shape_numel(shape) / shape[0];
  return random_tensor(shape, 1.0f / std::sqrt(static_cast<float>(fan_in)), 0.0f, seed);
}

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
    auto cfg =
        UNet2DConditionConfig::from_reader(ConfigReader(nlohmann::json::parse(kSd15UnetConfig), "sd15"));
    StateDict none;
    nn::WeightLoader w(none, "random SD1.5 UNet", *s->backend, dtype);
    w.set_missing_handler(random_weight);
    s->unet = std::make_unique<UNet2DConditionModel>(cfg, w);
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
