#include <gtest/gtest.h>

#include <numeric>

#include "common/test_util.h"
#include "core/arena.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace {
using a2f::Tensor;

Tensor iota(const a2f::Shape& s) {
  Tensor t = Tensor::empty(s);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(i);
  return t;
}

TEST(Tensor, ReshapeInfersAndChecks) {
  Tensor t = iota({2, 3, 4});
  A2F_EXPECT_SHAPE(t.reshape({6, -1}), 6, 4);
  EXPECT_THROW(t.reshape({5, -1}), a2f::Error);
  EXPECT_THROW(t.reshape({-1, -1}), a2f::Error);
}

TEST(Tensor, HugeShapesWithAZeroDimensionAreErrorsNotOverflows) {
  // A zero dimension makes numel 0, but contiguous strides still multiply the others (found by fuzz_onnx).
  const int64_t big = int64_t{1} << 40;
  EXPECT_THROW(Tensor::empty({0, big, big}), a2f::Error);
  EXPECT_THROW(Tensor::empty({big, big, 0}), a2f::Error);
  EXPECT_THROW(Tensor::empty({0, 3}).reshape({0, big, big}), a2f::Error);
  EXPECT_THROW(Tensor::empty({0, 3}).reshape({-1, big, big}), a2f::Error);
  EXPECT_EQ(Tensor::empty({0, big}).numel(), 0);  // large but representable: fine
  EXPECT_EQ(Tensor::empty({0, big}).strides(), (std::vector<int64_t>{big, 1}));
}

TEST(Tensor, PermuteIsAViewAndContiguousCopies) {
  Tensor t = iota({2, 3, 4});
  Tensor p = t.permute({2, 0, 1});  // [4, 2, 3]
  EXPECT_FALSE(p.is_contiguous());
  Tensor c = p.contiguous();
  ASSERT_TRUE(c.is_contiguous());
  // c[k, i, j] = t[i, j, k] = i*12 + j*4 + k
  const float* d = c.data<float>();
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) EXPECT_EQ(d[(k * 2 + i) * 3 + j], i * 12 + j * 4 + k);
}

TEST(Tensor, NarrowAndItem) {
  Tensor t = iota({4, 5});
  Tensor n = t.narrow(1, 2, 2);  // columns 2,3
  A2F_EXPECT_SHAPE(n, 4, 2);
  EXPECT_EQ(n.item_f32(3), 1 * 5 + 3);
  EXPECT_THROW(t.narrow(1, 4, 2), a2f::Error);
  EXPECT_THROW(t.dim(2), a2f::Error);
}

TEST(Tensor, DtypeRoundTrip) {
  Tensor t = Tensor::from_data({3}, std::vector<float>{1.0f, -2.5f, 65504.0f});
  EXPECT_EQ(t.to(a2f::DType::F16).to(a2f::DType::F32).to_vector(), t.to_vector());
  EXPECT_EQ(t.to(a2f::DType::BF16).to_vector()[1], -2.5f);
  EXPECT_THROW(t.data<int64_t>(), a2f::Error);
}

TEST(Tensor, StorageBoundsChecked) {
  auto st = a2f::storage_alloc_host(16);
  EXPECT_THROW(Tensor::from_storage(st, 8, {3}, a2f::DType::F32), a2f::Error);
  EXPECT_NO_THROW(Tensor::from_storage(st, 8, {2}, a2f::DType::F32));
}

TEST(Arena, ReusesBlocksAfterReset) {
  a2f::Arena arena(1024);
  void* a = arena.alloc(100);
  arena.alloc(2000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  size_t cap = arena.capacity();
  arena.reset();
  EXPECT_EQ(arena.alloc(100), a);
  arena.alloc(2000);
  EXPECT_EQ(arena.capacity(), cap);
}

TEST(Parallel, CoversRangeAndPropagatesErrors) {
  std::vector<int> hits(1000, 0);
  a2f::parallel_for(1000, 10, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  EXPECT_EQ(std::accumulate(hits.begin(), hits.end(), 0), 1000);
  EXPECT_THROW(a2f::parallel_for(100, 1, [](int64_t, int64_t) { throw a2f::Error("boom"); }), a2f::Error);
}

}  // namespace
