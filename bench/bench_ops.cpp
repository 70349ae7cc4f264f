// Op benchmarks of the CPU backend at the shapes the SD1.5 UNet / VAE / CLIP run (batch 2 = CFG). Reports
// GFLOP/s (counter "GFLOP/s", multiply-add = 2 FLOP) for conv / linear / matmul / attention.
// bench/compare_torch.py runs this binary with --benchmark_format=json and times the same ops in PyTorch in
// the same run.
//
// Names: <op>/<shape>/<dtype>; dtype f32 = f32 activations and weights, bf16 = bf16 activations and weights.
// matmul/BxMxKxN: [B, M, K] x [K, N] (weight broadcast over the batch); bmm/BxMxKxN: [B, M, K] x [B, K, N].
// Convolutions report the oneDNN implementation as their label; conv3x3 uses the backend's default (direct,
// or Winograd per A2F_CPU_WINOGRAD), conv3x3_wino a backend with Winograd for every 3x3 convolution.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "backends/cpu/cpu_backend.h"
#include "core/parallel.h"

namespace {
using a2f::DType;
using a2f::Shape;
using a2f::Tensor;

a2f::Backend& backend() {
  static std::unique_ptr<a2f::Backend> be = a2f::make_cpu_backend();
  return *be;
}

// The CPU backend with Winograd enabled for every 3x3 stride-1 convolution (A2F_CPU_WINOGRAD=all).
a2f::CpuBackend& wino_backend() {
  static std::unique_ptr<a2f::CpuBackend> be = [] {
    auto b = std::make_unique<a2f::CpuBackend>();
    b->set_winograd_max_weight_bytes(SIZE_MAX);
    return b;
  }();
  return *be;
}

Tensor rnd(const Shape& s, uint32_t seed, float scale, DType dt) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  Tensor t = Tensor::empty(s);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = nd(gen);
  return t.to(dt);
}

void set_flops(benchmark::State& st, double flops) {
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void conv3x3(benchmark::State& st, a2f::Backend& be, int64_t hw, int64_t c, DType dt) {
  const Tensor x = rnd({2, c, hw, hw}, 1, 1.0f, dt), w = rnd({c, c, 3, 3}, 2, 0.02f, dt),
               b = rnd({c}, 3, 0.1f, dt);
  const auto p = a2f::Conv2dParams::same(1, 1);
  be.conv2d(x, w, b, p);  // primitive + weight reorder, cached
  if (auto* cpu = dynamic_cast<a2f::CpuBackend*>(&be)) st.SetLabel(cpu->conv_impl(x, w, true, p));
  for (auto _ : st) benchmark::DoNotOptimize(be.conv2d(x, w, b, p));
  set_flops(st, 2.0 * 2 * c * hw * hw * c * 9);
}

void linear(benchmark::State& st, int64_t m, int64_t k, int64_t n, DType dt) {
  const Tensor x = rnd({m, k}, 1, 1.0f, dt), w = rnd({n, k}, 2, 0.05f, dt), b = rnd({n}, 3, 0.1f, dt);
  backend().linear(x, w, b);
  for (auto _ : st) benchmark::DoNotOptimize(backend().linear(x, w, b));
  set_flops(st, 2.0 * m * k * n);
}

// a [batch, m, k] times b [k, n] (broadcast over the batch) or [batch, k, n].
void matmul(benchmark::State& st, int64_t batch, int64_t m, int64_t k, int64_t n, bool b_batched, DType dt) {
  const Tensor a = rnd({batch, m, k}, 1, 1.0f, dt);
  const Tensor b = b_batched ? rnd({batch, k, n}, 2, 0.05f, dt) : rnd({k, n}, 2, 0.05f, dt);
  backend().matmul(a, b);
  for (auto _ : st) benchmark::DoNotOptimize(backend().matmul(a, b));
  set_flops(st, 2.0 * batch * m * k * n);
}

void attention(benchmark::State& st, int64_t b, int64_t lq, int64_t lk, int64_t heads, int64_t d, bool causal,
               DType dt) {
  const Tensor q = rnd({b, lq, heads * d}, 1, 1.0f, dt), k = rnd({b, lk, heads * d}, 2, 1.0f, dt);
  const Tensor v = rnd({b, lk, heads * d}, 3, 1.0f, dt);
  a2f::AttentionParams p;
  p.heads = static_cast<int>(heads);
  p.causal = causal;
  backend().attention(q, k, v, p);
  for (auto _ : st) benchmark::DoNotOptimize(backend().attention(q, k, v, p));
  set_flops(st, 4.0 * b * heads * lq * lk * d);  // QK^T and PV
}

void group_norm_silu(benchmark::State& st, int64_t c, int64_t hw, DType dt) {
  const Tensor x = rnd({2, c, hw, hw}, 1, 1.0f, dt), g = rnd({c}, 2, 1.0f, dt), b = rnd({c}, 3, 1.0f, dt);
  for (auto _ : st) benchmark::DoNotOptimize(backend().group_norm(x, 32, g, b, 1e-5f, a2f::Act::Silu));
  st.SetBytesProcessed(st.iterations() * x.nbytes() * 2);
}

void group_norm(benchmark::State& st, int64_t c, int64_t hw, DType dt) {
  const Tensor x = rnd({2, c, hw, hw}, 1, 1.0f, dt), g = rnd({c}, 2, 1.0f, dt), b = rnd({c}, 3, 1.0f, dt);
  for (auto _ : st) benchmark::DoNotOptimize(backend().group_norm(x, 32, g, b, 1e-5f));
  st.SetBytesProcessed(st.iterations() * x.nbytes() * 2);
}

void layer_norm(benchmark::State& st, int64_t rows, int64_t d, DType dt) {
  const Tensor x = rnd({2, rows, d}, 1, 1.0f, dt), g = rnd({d}, 2, 1.0f, dt), b = rnd({d}, 3, 1.0f, dt);
  for (auto _ : st) benchmark::DoNotOptimize(backend().layer_norm(x, g, b, 1e-5f));
  st.SetBytesProcessed(st.iterations() * x.nbytes() * 2);
}

// x [2, rows, 2h] -> [2, rows, h]
void geglu(benchmark::State& st, int64_t rows, int64_t h2, DType dt) {
  const Tensor x = rnd({2, rows, h2}, 1, 1.0f, dt);
  for (auto _ : st) benchmark::DoNotOptimize(backend().geglu(x));
  st.SetBytesProcessed(st.iterations() * x.nbytes() * 3 / 2);
}

void silu(benchmark::State& st, const Shape& s, DType dt) {
  const Tensor x = rnd(s, 1, 1.0f, dt);
  for (auto _ : st) benchmark::DoNotOptimize(backend().unary(a2f::Act::Silu, x));
  st.SetBytesProcessed(st.iterations() * x.nbytes() * 2);
}

// a + b, b the same shape (residual) or broadcast (time embedding [B, C, 1, 1]).
void add(benchmark::State& st, const Shape& sa, const Shape& sb, DType dt) {
  const Tensor a = rnd(sa, 1, 1.0f, dt), b = rnd(sb, 2, 1.0f, dt);
  for (auto _ : st) benchmark::DoNotOptimize(backend().add(a, b));
  st.SetBytesProcessed(st.iterations() * (a.nbytes() * 2 + b.nbytes()));
}

void reg(const std::string& name, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) { fn(st); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MinTime(0.5);
}

}  // namespace

int main(int argc, char** argv) {
  for (DType dt : {DType::F32, DType::BF16}) {
    const std::string ds = a2f::dtype_name(dt);
    for (auto [hw, c] : {std::pair<int64_t, int64_t>{64, 320}, {32, 640}, {16, 1280}, {8, 1280}})
      reg(a2f::cat("conv3x3/2x", c, "x", hw, "x", hw, "/", ds),
          [=](auto& st) { conv3x3(st, backend(), hw, c, dt); });
    for (auto [hw, c] : {std::pair<int64_t, int64_t>{64, 320}, {32, 640}, {16, 1280}, {8, 1280}})
      reg(a2f::cat("conv3x3_wino/2x", c, "x", hw, "x", hw, "/", ds),
          [=](auto& st) { conv3x3(st, wino_backend(), hw, c, dt); });
    for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{8192, 320, 1280},
                           {8192, 320, 2560},
                           {8192, 1280, 320},
                           {8192, 320, 320},
                           {154, 768, 320}})
      reg(a2f::cat("linear/", m, "x", k, "x", n, "/", ds), [=](auto& st) { linear(st, m, k, n, dt); });
    reg(a2f::cat("matmul/2x4096x320x1280/", ds),
        [=](auto& st) { matmul(st, 2, 4096, 320, 1280, false, dt); });
    reg(a2f::cat("bmm/16x4096x40x77/", ds), [=](auto& st) { matmul(st, 16, 4096, 40, 77, true, dt); });
    reg(a2f::cat("attention/self_2x4096x8x40/", ds),
        [=](auto& st) { attention(st, 2, 4096, 4096, 8, 40, false, dt); });
    reg(a2f::cat("attention/cross_2x4096x77x8x40/", ds),
        [=](auto& st) { attention(st, 2, 4096, 77, 8, 40, false, dt); });
    reg(a2f::cat("attention/vae_1x4096x1x512/", ds),
        [=](auto& st) { attention(st, 1, 4096, 4096, 1, 512, false, dt); });
    reg(a2f::cat("attention/clip_2x77x12x64_causal/", ds),
        [=](auto& st) { attention(st, 2, 77, 77, 12, 64, true, dt); });
    reg(a2f::cat("group_norm_silu/2x320x64x64/", ds), [=](auto& st) { group_norm_silu(st, 320, 64, dt); });
    reg(a2f::cat("group_norm/2x320x64x64/", ds), [=](auto& st) { group_norm(st, 320, 64, dt); });
    reg(a2f::cat("layer_norm/2x4096x320/", ds), [=](auto& st) { layer_norm(st, 4096, 320, dt); });
    reg(a2f::cat("geglu/2x4096x2560/", ds), [=](auto& st) { geglu(st, 4096, 2560, dt); });
    reg(a2f::cat("silu/2x320x64x64/", ds), [=](auto& st) { silu(st, {2, 320, 64, 64}, dt); });
    reg(a2f::cat("add/2x320x64x64+2x320x64x64/", ds), [=](auto& st) {
      add(st, {2, 320, 64, 64}, {2, 320, 64, 64}, dt);
    });
    reg(a2f::cat("add/2x320x64x64+2x320x1x1/", ds), [=](auto& st) {
      add(st, {2, 320, 64, 64}, {2, 320, 1, 1}, dt);
    });
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("a2f_backend", backend().name());
  benchmark::AddCustomContext("a2f_threads", std::to_string(a2f::num_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
