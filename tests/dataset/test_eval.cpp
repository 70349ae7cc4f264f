// The evaluation helpers of include/arc2face/eval.h on hand-computed values (numpy's definitions).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "arc2face/eval.h"
#include "common/test_util.h"

namespace {

using arc2face::ImageScore;

ImageScore scored(double s) {
  ImageScore x;
  x.readable = x.detected = true;
  x.similarity = s;
  return x;
}

TEST(Eval, QuantileIsNumpyLinear) {
  // numpy.quantile([1, 2, 3, 4], q): 0.25 -> 1.75, 0.5 -> 2.5, 0.05 -> 1.15, 0.95 -> 3.85, 1 -> 4.
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(arc2face::quantile(v, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(arc2face::quantile(v, 0.5), 2.5);
  EXPECT_NEAR(arc2face::quantile(v, 0.05), 1.15, 1e-12);
  EXPECT_NEAR(arc2face::quantile(v, 0.95), 3.85, 1e-12);
  EXPECT_DOUBLE_EQ(arc2face::quantile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(arc2face::quantile(v, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(arc2face::quantile({7}, 0.3), 7.0);
  EXPECT_THROW(arc2face::quantile({}, 0.5), arc2face::Error);
  EXPECT_THROW(arc2face::quantile(v, 1.5), arc2face::Error);
}

TEST(Eval, SummaryCountsAndPopulationStd) {
  std::vector<ImageScore> s = {scored(0.2), scored(0.4), scored(0.9)};
  ImageScore noface;
  noface.readable = true;
  ImageScore unreadable;
  s.push_back(noface);
  s.push_back(unreadable);
  const auto sum = arc2face::summarize_scores(s);
  EXPECT_EQ(sum.images, 5);
  EXPECT_EQ(sum.readable, 4);
  EXPECT_EQ(sum.detected, 3);
  EXPECT_DOUBLE_EQ(sum.detection_rate, 0.75);
  EXPECT_NEAR(sum.mean, 0.5, 1e-12);
  // numpy.std([0.2, 0.4, 0.9]) = sqrt((0.09 + 0.01 + 0.16) / 3)
  EXPECT_NEAR(sum.std, std::sqrt(0.26 / 3), 1e-12);
  EXPECT_NEAR(sum.median, 0.4, 1e-12);
  EXPECT_NEAR(sum.p25, 0.3, 1e-12);
  EXPECT_NEAR(sum.min, 0.2, 1e-12);
  EXPECT_NEAR(sum.max, 0.9, 1e-12);
  const auto none = arc2face::summarize_scores({noface, unreadable});
  EXPECT_EQ(none.detected, 0);
  EXPECT_EQ(none.detection_rate, 0.0);
  EXPECT_EQ(none.mean, 0.0);
}

TEST(Eval, CosineSimilarity) {
  EXPECT_NEAR(arc2face::cosine_similarity({1, 0, 0}, {0.5f, 0.5f, 0}), std::sqrt(0.5), 1e-7);
  EXPECT_NEAR(arc2face::cosine_similarity({3, 4}, {-6, -8}), -1.0, 1e-12);
  EXPECT_THROW(arc2face::cosine_similarity({1, 2}, {1, 2, 3}), arc2face::Error);
  EXPECT_THROW(arc2face::cosine_similarity({0, 0}, {1, 2}), arc2face::Error);
}

TEST(Eval, BestOfPicksTheMostSimilarDetectedCandidate) {
  ImageScore noface;
  noface.readable = true;
  const std::vector<ImageScore> s = {scored(0.3), scored(0.7), noface,  // group 0 -> 1
                                     noface,      scored(-0.2), noface,  // group 1 -> 4 (only face)
                                     noface,      noface,      noface};  // group 2 -> 6 (first)
  EXPECT_EQ(arc2face::best_of(s, 3), (std::vector<size_t>{1, 4, 6}));
  EXPECT_EQ(arc2face::best_of(s, 1).size(), 9u);
  EXPECT_THROW(arc2face::best_of(s, 2), arc2face::Error);
}

TEST(Eval, ParametersWithScore) {
  EXPECT_EQ(arc2face::parameters_with_score("Steps: 25", scored(0.81234)), "Steps: 25, ID similarity: 0.8123");
  EXPECT_EQ(arc2face::parameters_with_score("Steps: 25", ImageScore{}), "Steps: 25, ID similarity: no face");
}

}  // namespace
