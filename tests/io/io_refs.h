// Shared by the io tests: tests/fixtures/io/refs.json (written by scripts/gen_io_refs.py from torch.load and
// an independent Python safetensors/numpy reader) and checks of a loaded tensor against one of its entries.
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/test_util.h"
#include "core/tensor.h"
#include "io/json.h"

namespace a2f::test {

inline const nlohmann::json& io_refs() {
  static const nlohmann::json j = json_load(fixture("io/refs.json"));
  return j;
}

inline DType ref_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "F64") return DType::F64;
  if (s == "I64") return DType::I64;
  if (s == "I32") return DType::I32;
  if (s == "U8") return DType::U8;
  if (s == "I8") return DType::I8;
  if (s == "BOOL") return DType::Bool;
  ADD_FAILURE() << "unknown dtype " << s;
  return DType::F32;
}

// Element k of a contiguous tensor of any dtype as a double (exact for every dtype here).
inline double elem_at(const Tensor& c, int64_t k) {
  const char* p = static_cast<const char*>(c.raw_data());
  switch (c.dtype()) {
    case DType::F32:
      return reinterpret_cast<const float*>(p)[k];
    case DType::F64:
      return reinterpret_cast<const double*>(p)[k];
    case DType::F16:
      return f16_to_f32(reinterpret_cast<const uint16_t*>(p)[k]);
    case DType::BF16:
      return bf16_to_f32(reinterpret_cast<const uint16_t*>(p)[k]);
    case DType::I64:
      return static_cast<double>(reinterpret_cast<const int64_t*>(p)[k]);
    case DType::I32:
      return reinterpret_cast<const int32_t*>(p)[k];
    case DType::U8:
      return reinterpret_cast<const uint8_t*>(p)[k];
    case DType::I8:
      return reinterpret_cast<const int8_t*>(p)[k];
    case DType::Bool:
      return reinterpret_cast<const uint8_t*>(p)[k];
  }
  return 0;
}

inline std::vector<double> all_values(const Tensor& t) {
  Tensor c = t.contiguous();
  std::vector<double> v(static_cast<size_t>(c.numel()));
  for (int64_t k = 0; k < c.numel(); ++k) v[static_cast<size_t>(k)] = elem_at(c, k);
  return v;
}

// Checks dtype, shape and values: all values when the entry has "values", else the first values, the last
// value and the float64 sum (summation order differs from numpy's: relative 1e-9).
inline void expect_matches(const Tensor& t, const nlohmann::json& ref) {
  const std::string name = ref.at("name").get<std::string>();
  SCOPED_TRACE(name);
  ASSERT_TRUE(t.defined());
  EXPECT_EQ(t.dtype(), ref_dtype(ref.at("dtype").get<std::string>()));
  EXPECT_EQ(t.shape(), ref.at("shape").get<Shape>());
  ASSERT_EQ(t.numel(), ref.at("numel").get<int64_t>());
  const std::vector<double> got = all_values(t);
  if (ref.contains("values")) {
    EXPECT_EQ(got, ref.at("values").get<std::vector<double>>());
    return;
  }
  auto first = ref.at("first").get<std::vector<double>>();
  for (size_t k = 0; k < first.size(); ++k) EXPECT_EQ(got[k], first[k]) << "element " << k;
  EXPECT_EQ(got.back(), ref.at("last").get<double>());
  double sum = 0;
  for (double v : got) sum += v;
  const double want = ref.at("sum").get<double>();
  EXPECT_NEAR(sum, want, 1e-9 * std::max(1.0, std::fabs(want)));
}

}  // namespace a2f::test
