// Helpers of the op tests: a minimal .npy loader for the op fixtures (f4 / i8, C order, format 1.0 — the files
// scripts/gen_op_refs.py writes), random tensors, and a non-contiguous copy of a tensor.
#pragma once
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "core/tensor.h"

namespace a2f::test {

inline Tensor load_op_fixture(const std::string& name) {
  const auto path = fixture("ops/" + name + ".npy");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open op fixture ", path.string());
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  A2F_CHECK(bytes.size() > 10 && bytes.compare(0, 6, "\x93NUMPY") == 0 && bytes[6] == 1, "bad npy ", path.string());
  const size_t hlen = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
  const std::string header = bytes.substr(10, hlen);
  DType dt;
  if (header.find("'<f4'") != std::string::npos) dt = DType::F32;
  else if (header.find("'<i8'") != std::string::npos) dt = DType::I64;
  else fail("unsupported dtype in ", path.string(), ": ", header);
  A2F_CHECK(header.find("'fortran_order': False") != std::string::npos, "fortran order in ", path.string());
  Shape shape;
  const size_t open = header.find('(', header.find("'shape'")), close = header.find(')', open);
  std::string dims = header.substr(open + 1, close - open - 1);
  for (size_t pos = 0; pos < dims.size();) {
    size_t comma = dims.find(',', pos);
    if (comma == std::string::npos) comma = dims.size();
    std::string tok = dims.substr(pos, comma - pos);
    if (tok.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoll(tok));
    pos = comma + 1;
  }
  Tensor t = Tensor::empty(shape, dt);
  A2F_CHECK(bytes.size() - 10 - hlen == t.nbytes(), "size mismatch in ", path.string());
  std::memcpy(t.raw_data(), bytes.data() + 10 + hlen, t.nbytes());
  return t;
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
  return tr.permute(perm);                    // same logical values, strides swapped
}

}  // namespace a2f::test
