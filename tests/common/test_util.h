// Helpers shared by the tests: fixture paths and numeric comparisons.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "core/tensor.h"

namespace a2f::test {

inline std::filesystem::path fixture(const std::string& rel) { return std::filesystem::path(A2F_FIXTURES_DIR) / rel; }

// Normalised mean squared error: sum (a-b)^2 / sum b^2 (b is the reference).
inline double nmse(const Tensor& a, const Tensor& ref) {
  auto x = a.to_vector(), y = ref.to_vector();
  if (x.size() != y.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double d = double(x[i]) - double(y[i]);
    num += d * d;
    den += double(y[i]) * double(y[i]);
  }
  return den == 0 ? num : num / den;
}

inline double max_abs_diff(const Tensor& a, const Tensor& ref) {
  auto x = a.to_vector(), y = ref.to_vector();
  if (x.size() != y.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double d = std::fabs(double(x[i]) - double(y[i]));
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// max |a-b| / max |ref|
inline double rel_error(const Tensor& a, const Tensor& ref) {
  auto y = ref.to_vector();
  double m = 0;
  for (float v : y) m = std::max(m, double(std::fabs(v)));
  return max_abs_diff(a, ref) / (m == 0 ? 1 : m);
}

#define A2F_EXPECT_SHAPE(t, ...) EXPECT_EQ((t).shape(), (::a2f::Shape{__VA_ARGS__})) << (t).desc()

}  // namespace a2f::test
