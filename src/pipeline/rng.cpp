// torch-compatible CPU generator; see rng.h for the exact semantics mirrored here.
#include "pipeline/rng.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numbers>

namespace a2f {

namespace {

constexpr uint32_t kMask24 = (1u << 24) - 1;
constexpr uint64_t kMask53 = (uint64_t{1} << 53) - 1;

float uniform_f32(uint32_t r) {
  return static_cast<float>(r & kMask24) * (1.0f / static_cast<float>(1u << 24));
}
double uniform_f64(uint64_t r) {
  return static_cast<double>(r & kMask53) * (1.0 / static_cast<double>(uint64_t{1} << 53));
}

// One lane of log256_ps (avx_mathfun.h, cephes logf) as the AVX2 build of torch computes it: GCC contracted
// each multiply whose only use is an add/sub into an FMA; the explicit std::fma calls below are exactly
// those.
float avx_log(float x) {
  if (!(x > 0.0f)) return std::numeric_limits<float>::quiet_NaN();
  x = std::max(x, std::bit_cast<float>(0x00800000u));
  uint32_t bits = std::bit_cast<uint32_t>(x);
  int32_t exponent = static_cast<int32_t>(bits >> 23) - 0x7f;
  x = std::bit_cast<float>((bits & ~0x7f800000u) | std::bit_cast<uint32_t>(0.5f));
  float e = static_cast<float>(exponent) + 1.0f;
  const bool below = x < 0.707106781186547524f;
  const float tmp = below ? x : 0.0f;
  x = x - 1.0f;
  e = e - (below ? 1.0f : 0.0f);
  x = x + tmp;
  const float z = x * x;
  float y = std::fma(7.0376836292E-2f, x, -1.1514610310E-1f);
  y = std::fma(y, x, 1.1676998740E-1f);
  y = std::fma(y, x, -1.2420140846E-1f);
  y = std::fma(y, x, 1.4249322787E-1f);
  y = std::fma(y, x, -1.6668057665E-1f);
  y = std::fma(y, x, 2.0000714765E-1f);
  y = std::fma(y, x, -2.4999993993E-1f);
  y = std::fma(y, x, 3.3333331174E-1f);
  y = y * x;
  y = std::fma(y, z, e * -2.12194440e-4f);
  y = std::fma(-z, 0.5f, y);
  return std::fma(e, 0.693359375f, x + y);
}

// One lane of sincos256_ps (avx_mathfun.h, cephes sinf/cosf), FMA contractions as in the reference build.
void avx_sincos(float x, float* s, float* c) {
  uint32_t sign_sin = std::bit_cast<uint32_t>(x) & 0x80000000u;
  x = std::fabs(x);
  float y = x * 1.27323954473516f;
  int32_t j = static_cast<int32_t>(y);  // cvttps: truncation
  j = (j + 1) & ~1;
  y = static_cast<float>(j);
  const uint32_t swap_sin = static_cast<uint32_t>(j & 4) << 29;
  const bool poly_mask = (j & 2) == 0;
  x = std::fma(y, -0.78515625f, x);
  x = std::fma(y, -2.4187564849853515625e-4f, x);
  x = std::fma(y, -3.77489497744594108e-8f, x);
  const uint32_t sign_cos = static_cast<uint32_t>(~(j - 2) & 4) << 29;
  sign_sin ^= swap_sin;
  const float z = x * x;
  float yc = std::fma(2.443315711809948E-005f, z, -1.388731625493765E-003f);
  yc = std::fma(yc, z, 4.166664568298827E-002f);
  yc = yc * z;
  yc = std::fma(yc, z, -(z * 0.5f));
  yc = yc + 1.0f;
  float ys = std::fma(-1.9515295891E-4f, z, 8.3321608736E-3f);
  ys = std::fma(ys, z, -1.6666654611E-1f);
  ys = ys * z;
  ys = std::fma(ys, x, x);
  const float sin_v = poly_mask ? ys : yc;
  const float cos_v = poly_mask ? yc : ys;
  *s = std::bit_cast<float>(std::bit_cast<uint32_t>(sin_v) ^ sign_sin);
  *c = std::bit_cast<float>(std::bit_cast<uint32_t>(cos_v) ^ sign_cos);
}

// normal_fill_16_AVX2 with mean 0, std 1.
void normal_fill_16(float* data) {
  const float two_pi = static_cast<float>(2.0f * std::numbers::pi);
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];
    const float u2 = data[j + 8];
    const float radius = std::sqrt(-2.0f * avx_log(u1));
    const float theta = two_pi * u2;
    float s, c;
    avx_sincos(theta, &s, &c);
    data[j] = std::fma(radius * c, 1.0f, 0.0f);
    data[j + 8] = std::fma(radius * s, 1.0f, 0.0f);
  }
}

// normal_fill_16<double> (the scalar kernel), mean 0, std 1.
void normal_fill_16(double* data) {
  for (int j = 0; j < 8; ++j) {
    const double u1 = 1.0 - data[j];
    const double u2 = data[j + 8];
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0f * std::numbers::pi * u2;
    data[j] = radius * std::cos(theta);
    data[j + 8] = radius * std::sin(theta);
  }
}

template <class T, class Uniform>
void normal_fill(std::span<T> out, Uniform&& uniform) {
  const size_t n = out.size();
  for (size_t i = 0; i < n; ++i) out[i] = uniform();
  for (size_t i = 0; i + 16 <= n; i += 16) normal_fill_16(out.data() + i);
  if (n % 16 != 0) {
    T* tail = out.data() + n - 16;
    for (int i = 0; i < 16; ++i) tail[i] = uniform();
    normal_fill_16(tail);
  }
}

}  // namespace

void TorchGenerator::manual_seed(uint64_t seed) {
  seed_ = seed;
  engine_.seed(static_cast<std::mt19937::result_type>(seed & 0xffffffffu));
  next_double_normal_.reset();
}

uint64_t TorchGenerator::random64() {
  const uint64_t hi = random();
  const uint64_t lo = random();
  return (hi << 32) | lo;
}

double TorchGenerator::normal_scalar() {
  if (next_double_normal_) {
    const double v = *next_double_normal_;
    next_double_normal_.reset();
    return v;
  }
  const double u1 = uniform_f64(random64());
  const double u2 = uniform_f64(random64());
  const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
  const double theta = 2.0 * std::numbers::pi * u1;
  next_double_normal_ = r * std::sin(theta);
  return r * std::cos(theta);
}

void TorchGenerator::randn_fill(std::span<float> out) {
  if (out.size() >= 16) {
    normal_fill(out, [this] { return uniform_f32(random()); });
  } else {
    for (float& v : out) v = static_cast<float>(normal_scalar());
  }
}

void TorchGenerator::randn_fill(std::span<double> out) {
  if (out.size() >= 16) {
    normal_fill(out, [this] { return uniform_f64(random64()); });
  } else {
    for (double& v : out) v = normal_scalar();
  }
}

void TorchGenerator::rand_fill(std::span<float> out) {
  for (float& v : out) v = uniform_f32(random());
}

void TorchGenerator::rand_fill(std::span<double> out) {
  for (double& v : out) v = uniform_f64(random64());
}

Tensor TorchGenerator::randn(const Shape& shape, DType dtype) {
  A2F_CHECK(dtype == DType::F32 || dtype == DType::F64, "randn: dtype ", dtype_name(dtype),
            " is not supported (float32 or float64)");
  Tensor t = Tensor::empty(shape, dtype);
  const size_t n = static_cast<size_t>(t.numel());
  if (dtype == DType::F32) {
    randn_fill(std::span<float>(t.data<float>(), n));
  } else {
    randn_fill(std::span<double>(t.data<double>(), n));
  }
  return t;
}

Tensor TorchGenerator::rand(const Shape& shape, DType dtype) {
  A2F_CHECK(dtype == DType::F32 || dtype == DType::F64, "rand: dtype ", dtype_name(dtype),
            " is not supported (float32 or float64)");
  Tensor t = Tensor::empty(shape, dtype);
  const size_t n = static_cast<size_t>(t.numel());
  if (dtype == DType::F32) {
    rand_fill(std::span<float>(t.data<float>(), n));
  } else {
    rand_fill(std::span<double>(t.data<double>(), n));
  }
  return t;
}

}  // namespace a2f
