// TorchGenerator vs torch 1.13 CPU draws (tests/fixtures/common/rng_*.npy, see common/refs.json): bit exact.
#include <cstring>

#include "common/test_util.h"
#include "io/npy.h"
#include "pipeline/rng.h"

namespace a2f {
namespace {

Tensor load(const std::string& name) {
  return npy_read(test::fixture("common/" + name + ".npy"));
}

// Number of elements whose bits differ (0 = bit exact).
template <class T>
int64_t count_mismatches(const Tensor& got, const Tensor& ref) {
  EXPECT_EQ(got.shape(), ref.shape()) << got.desc() << " vs " << ref.desc();
  if (got.shape() != ref.shape()) return -1;
  int64_t bad = 0;
  const T* a = got.data<T>();
  const T* b = ref.data<T>();
  for (int64_t i = 0; i < got.numel(); ++i) bad += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return bad;
}

TEST(TorchGenerator, Mt19937MatchesTheStandardTestVectors) {
  // MT19937 reference values: first output for seed 5489, and the 10000th (C++ [rand.predef]).
  TorchGenerator g(5489);
  EXPECT_EQ(g.random(), 3499211612u);
  for (int i = 1; i < 9999; ++i) g.random();
  EXPECT_EQ(g.random(), 4123659995u);
}

TEST(TorchGenerator, RandnMatchesTorchForSeveralSeeds) {
  for (auto [seed, name] : {std::pair<uint64_t, const char*>{0, "rng_randn_seed0_1x4x64x64"},
                            {42, "rng_randn_seed42_1x4x64x64"},
                            {2147483647, "rng_randn_seed2147483647_1x4x64x64"}}) {
    TorchGenerator g(seed);
    Tensor t = g.randn({1, 4, 64, 64});
    EXPECT_EQ(t.dtype(), DType::F32);
    EXPECT_EQ(count_mismatches<float>(t, load(name)), 0) << name;
  }
}

TEST(TorchGenerator, RandnOfTwoImagesIsOneDraw) {
  TorchGenerator g(42);
  EXPECT_EQ(count_mismatches<float>(g.randn({2, 4, 64, 64}), load("rng_randn_seed42_2x4x64x64")), 0);
}

TEST(TorchGenerator, RandnFloat64) {
  TorchGenerator g(0);
  Tensor t = g.randn({16}, DType::F64);
  EXPECT_EQ(t.dtype(), DType::F64);
  EXPECT_EQ(count_mismatches<double>(t, load("rng_randn_seed0_float64_16")), 0);
}

TEST(TorchGenerator, Rand) {
  TorchGenerator g(0);
  EXPECT_EQ(count_mismatches<float>(g.rand({1, 4, 8, 8}), load("rng_rand_seed0_1x4x8x8")), 0);
}

TEST(TorchGenerator, SequenceOfDrawsContinuesLikeTorch) {
  // a: vectorised, b: vectorised, c: 3 elements (scalar Box-Muller path, leaves a cached sample),
  // d: 35 elements (vectorised blocks + a redrawn tail of 16).
  TorchGenerator g(42);
  Tensor a = g.randn({1, 4, 8, 8});
  Tensor b = g.randn({2, 4, 8, 8});
  Tensor c = g.randn({3});
  Tensor d = g.randn({5, 7});
  EXPECT_EQ(count_mismatches<float>(a, load("rng_seq_seed42_a_1x4x8x8")), 0);
  EXPECT_EQ(count_mismatches<float>(b, load("rng_seq_seed42_b_2x4x8x8")), 0);
  EXPECT_EQ(count_mismatches<float>(c, load("rng_seq_seed42_c_3")), 0);
  EXPECT_EQ(count_mismatches<float>(d, load("rng_seq_seed42_d_5x7")), 0);
}

TEST(TorchGenerator, ManualSeedResetsEngineAndCachedNormal) {
  TorchGenerator g(7);
  g.randn({3});  // leaves a cached sample behind
  g.manual_seed(42);
  EXPECT_EQ(g.initial_seed(), 42u);
  EXPECT_EQ(count_mismatches<float>(g.randn({1, 4, 8, 8}), load("rng_seq_seed42_a_1x4x8x8")), 0);
}

TEST(TorchGenerator, RejectsIntegerDtypes) {
  TorchGenerator g(0);
  EXPECT_THROW(g.randn({4}, DType::I64), Error);
  EXPECT_THROW(g.rand({4}, DType::F16), Error);
}

}  // namespace
}  // namespace a2f
