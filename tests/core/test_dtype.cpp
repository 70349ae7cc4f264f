// dtype conversions against the CPU's own conversion instructions (F16C, AVX512_BF16 VCVTNEPS2BF16), which
// round to nearest even as IEEE and PyTorch do.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <random>

#include "core/dtype.h"
#include "core/error.h"

namespace {

__attribute__((target("f16c"))) uint16_t hw_f32_to_f16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

TEST(DType, F16AllBitPatternsRoundTrip) {
  ASSERT_TRUE(__builtin_cpu_supports("f16c"));
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = a2f::f16_to_f32(static_cast<uint16_t>(h));
    float hw = hw_f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(hw)) {
      EXPECT_TRUE(std::isnan(f)) << h;
      continue;
    }
    EXPECT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(hw)) << h;
    EXPECT_EQ(a2f::f32_to_f16(f), h) << h;
  }
}

TEST(DType, F32ToF16MatchesHardwareOnRandomBits) {
  std::mt19937 rng(123);
  for (int i = 0; i < 2000000; ++i) {
    uint32_t bits = static_cast<uint32_t>(rng());
    float f = std::bit_cast<float>(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(a2f::f32_to_f16(f), hw_f32_to_f16(f)) << std::hex << bits;
  }
  // Ties and edges chosen by construction.
  EXPECT_EQ(a2f::f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(a2f::f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(a2f::f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);      // tie to even: 0
  EXPECT_EQ(a2f::f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(a2f::f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);      // 1.5 ulp: tie to even 2
}

// Independent reference: the two bf16 neighbours of the exact value (in double; the upper one may be past the
// largest finite bf16, then it stands for infinity), nearest wins, ties go to the even pattern.
uint16_t bf16_reference(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  uint16_t lo = static_cast<uint16_t>(u >> 16);
  if ((u & 0xffff) == 0) return lo;
  int exp = static_cast<int>((u >> 23) & 0xff);
  double ulp = std::ldexp(1.0, (exp == 0 ? 1 : exp) - 127 - 7);
  double v = f, a = std::bit_cast<float>(static_cast<uint32_t>(lo) << 16);
  double b = a + std::copysign(ulp, v);
  double da = std::fabs(v - a), db = std::fabs(b - v);
  uint16_t hi = static_cast<uint16_t>(lo + 1);
  if (da == db) return (lo & 1) ? hi : lo;
  return da < db ? lo : hi;
}

TEST(DType, Bf16RoundToNearestEven) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f) || std::isinf(f)) continue;
    ASSERT_EQ(a2f::f32_to_bf16(f), bf16_reference(f)) << std::hex << std::bit_cast<uint32_t>(f);
  }
  EXPECT_EQ(a2f::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(a2f::f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(a2f::f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_TRUE(std::isnan(a2f::bf16_to_f32(a2f::f32_to_bf16(NAN))));
  EXPECT_EQ(a2f::f32_to_bf16(INFINITY), 0x7f80);
}

TEST(DType, Bf16TiesSweep) {
  for (uint32_t hi = 0x0080; hi < 0x7f00; hi += 7) {
    uint32_t bits = (hi << 16) | 0x8000u;
    float f = std::bit_cast<float>(bits);
    uint16_t want = (hi & 1) ? static_cast<uint16_t>(hi + 1) : static_cast<uint16_t>(hi);
    EXPECT_EQ(a2f::f32_to_bf16(f), want);
  }
}

TEST(DType, Parse) {
  EXPECT_EQ(a2f::dtype_parse("fp32"), a2f::DType::F32);
  EXPECT_EQ(a2f::dtype_parse("bf16"), a2f::DType::BF16);
  EXPECT_THROW(a2f::dtype_parse("int4"), a2f::Error);
}

}  // namespace
