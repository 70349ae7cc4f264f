// torch-compatible CPU random numbers: the draws of `torch.Generator('cpu').manual_seed(s)` followed by
// `torch.randn(shape, generator=g)` / `torch.rand(shape, generator=g)`, bit for bit (PyTorch 1.13 CPU
// kernels, aten/src/ATen/CPUGeneratorImpl.cpp, core/DistributionsHelper.h, core/TransformationHelper.h,
// native/cpu/DistributionTemplates.h, native/cpu/avx_mathfun.h).
//
// What torch does, and so what this class does:
// - The engine is MT19937 seeded with the low 32 bits of the seed; random() is one 32-bit output,
//   random64() joins two outputs (first = high word).
// - rand: float32 = (random() & (2^24-1)) * 2^-24, float64 = (random64() & (2^53-1)) * 2^-53, one each.
// - randn with 16 or more elements: every element first gets a uniform; then Box-Muller over blocks of 16
//   (u1 = 1 - data[j], u2 = data[j+8], j < 8); a tail that is not a multiple of 16 redraws 16 uniforms
//   into the last 16 elements and transforms those. float32 uses the AVX2 kernel of the reference build
//   (Pommier-style log/sincos polynomials with the FMA contractions GCC made), float64 the scalar kernel.
// - randn with fewer than 16 elements: per element a float64 Box-Muller pair (u1, u2 from random64),
//   returning r*cos(theta) and caching r*sin(theta) in the generator for the next scalar draw; the cache
//   survives vectorised draws and is cleared by manual_seed.
// Not thread-safe: use one generator per request.
#pragma once
#include <cstdint>
#include <optional>
#include <random>
#include <span>

#include "core/tensor.h"

namespace a2f {

class TorchGenerator {
 public:
  static constexpr uint64_t kDefaultSeed = 67280421310721ull;  // torch's default_rng_seed_val

  explicit TorchGenerator(uint64_t seed = kDefaultSeed) { manual_seed(seed); }

  void manual_seed(uint64_t seed);
  uint64_t initial_seed() const { return seed_; }

  uint32_t random() { return static_cast<uint32_t>(engine_()); }
  uint64_t random64();

  // New contiguous host tensors (F32 or F64), filled as torch fills a fresh contiguous tensor.
  Tensor randn(const Shape& shape, DType dtype = DType::F32);
  Tensor rand(const Shape& shape, DType dtype = DType::F32);

  void randn_fill(std::span<float> out);
  void randn_fill(std::span<double> out);
  void rand_fill(std::span<float> out);
  void rand_fill(std::span<double> out);

 private:
  double normal_scalar();  // at::normal_distribution<double>(0, 1) with the generator's cached sample

  std::mt19937 engine_;
  uint64_t seed_ = kDefaultSeed;
  std::optional<double> next_double_normal_;
};

}  // namespace a2f
