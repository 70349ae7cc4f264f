// Helpers of the op tests: the op fixtures (tests/fixtures/ops, written by scripts/gen_op_refs.py), seeded
// random tensors, and a non-contiguous copy of a tensor.
#pragma once
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "core/tensor.h"
#include "io/npy.h"

namespace a2f::test {

inline Tensor load_op_fixture(const std::string& name) {
  return npy_read(fixture("ops/" + name + ".npy"));
}

// offset + scale * N(0, 1), seeded (std::mt19937; libstdc++'s normal_distribution is deterministic here).
inline Tensor randn(const Shape& shape, uint32_t seed, float scale = 1.0f, float offset = 0.0f,
                    DType dtype = DType::F32) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = offset + scale * nd(gen);
  return dtype == DType::F32 ? t : t.to(dtype);
}

// The same values as t, held in a non-contiguous view (a transposed copy transposed back over the last two
// dimensions, or every other element of a wider buffer for 1-d tensors).
inline Tensor non_contiguous(const Tensor& t) {
  if (t.ndim() < 2) {
    Tensor wide = Tensor::zeros({t.numel(), 2}, t.dtype());
    Tensor view = wide.narrow(1, 0, 1).squeeze(1);  // [n], stride 2
    view.copy_from(t.reshape({t.numel()}));
    return t.ndim() == 1 ? view : t.clone();
  }
  std::vector<int> perm(t.ndim());
  for (int i = 0; i < t.ndim(); ++i) perm[i] = i;
  std::swap(perm[t.ndim() - 1], perm[t.ndim() - 2]);
  Tensor tr = t.permute(perm).contiguous();  // transposed storage
  return tr.permute(perm);                   // same logical values, strides swapped
}

}  // namespace a2f::test
