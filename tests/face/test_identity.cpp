// Combining several embeddings into one identity, and mixing two, on vectors whose results are known by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "pipeline/face/identity.h"

namespace a2f::face {
namespace {

std::vector<float> unit(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += double(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
  return v;
}

void expect_vec_near(const std::vector<float>& a, const std::vector<float>& b, double tol = 1e-6) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << i;
}

TEST(FaceIdentity, MeanMedianTrimmed) {
  const std::vector<std::vector<float>> e = {unit({1, 0, 0, 0}), unit({0.8f, 0.6f, 0, 0}),
                                             unit({0.8f, 0, 0.6f, 0})};
  CombineOptions o;
  o.drop_outliers = false;
  // Mean: (2.6, 0.6, 0.6, 0) / |.|
  expect_vec_near(combine_embeddings(e, o).embedding, unit({2.6f, 0.6f, 0.6f, 0}));
  // Median per element: (0.8, 0, 0, 0) -> (1, 0, 0, 0)
  o.method = CombineMethod::Median;
  expect_vec_near(combine_embeddings(e, o).embedding, {1, 0, 0, 0});
  // Trimmed mean with 5 vectors and trim 0.2: one value cut at each end per element.
  std::vector<std::vector<float>> f = {unit({1, 1, 0, 0}), unit({1, 0.5f, 0, 0}), unit({1, 0, 0, 0}),
                                       unit({1, -0.5f, 0, 0}), unit({0, 1, 0, 0})};
  o.method = CombineMethod::TrimmedMean;
  o.trim = 0.2;
  std::vector<float> want(4, 0.0f);
  for (int k = 0; k < 4; ++k) {
    std::vector<float> col;
    for (const auto& v : f) col.push_back(v[k]);
    std::sort(col.begin(), col.end());
    want[k] = (col[1] + col[2] + col[3]) / 3.0f;
  }
  expect_vec_near(combine_embeddings(f, o).embedding, unit(want));
  // One embedding: itself.
  expect_vec_near(combine_embeddings({unit({3, 4, 0, 0})}).embedding, {0.6f, 0.8f, 0, 0});
}

TEST(FaceIdentity, OutliersDropped) {
  // Three photos of one "person" around (1,0,0,0) and one of someone else along (0,0,0,1).
  std::vector<std::vector<float>> e = {unit({1, 0.1f, 0, 0}), unit({1, 0, 0.1f, 0}), unit({1, -0.1f, 0, 0}),
                                       unit({0, 0, 0, 1})};
  CombineResult r = combine_embeddings(e);
  EXPECT_EQ(r.dropped, (std::vector<int>{3}));
  EXPECT_EQ(r.used, (std::vector<int>{0, 1, 2}));
  EXPECT_NEAR(r.cosine_to_rest[3], 0.0, 1e-6);
  expect_vec_near(r.embedding, unit({3, 0, 0.1f, 0}));
  // Never more than half are dropped.
  std::vector<std::vector<float>> g = {unit({1, 0, 0, 0}), unit({0, 1, 0, 0}), unit({0, 0, 1, 0})};
  EXPECT_EQ(combine_embeddings(g).used.size(), 2u);
  CombineOptions keep;
  keep.drop_outliers = false;
  EXPECT_TRUE(combine_embeddings(e, keep).dropped.empty());
}

TEST(FaceIdentity, MixAndErrors) {
  const std::vector<float> a = {1, 0, 0}, b = {0, 1, 0};
  expect_vec_near(mix_embeddings(a, b, 0.0), a);
  expect_vec_near(mix_embeddings(a, b, 1.0), b);
  expect_vec_near(mix_embeddings(a, b, 0.5), unit({1, 1, 0}));
  expect_vec_near(mix_embeddings(a, b, 0.25), unit({0.75f, 0.25f, 0}));
  EXPECT_THROW(mix_embeddings(a, b, 1.5), Error);
  EXPECT_THROW(mix_embeddings(a, {1, 0}, 0.5), Error);
  EXPECT_THROW(mix_embeddings(a, {-1, 0, 0}, 0.5), Error);  // they cancel out
  EXPECT_THROW(combine_embeddings({}), Error);
  EXPECT_THROW(combine_embeddings({{1, 0}, {1, 0, 0}}), Error);
  EXPECT_THROW(combine_method_parse("mode"), Error);
  EXPECT_EQ(combine_method_parse("trimmed-mean"), CombineMethod::TrimmedMean);
  EXPECT_NEAR(cosine({1, 0}, {1, 1}), std::sqrt(0.5), 1e-12);
}

}  // namespace
}  // namespace a2f::face
