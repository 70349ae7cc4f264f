#include "backends/cpu/cpu_util.h"

#include <cstring>

#include "core/parallel.h"

namespace a2f::cpu {

namespace {
template <class T>
void gather(const char* src, int64_t stride, char* dst, int64_t n) {
  const T* s = reinterpret_cast<const T*>(src);
  T* d = reinterpret_cast<T*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = s[i * stride];
}
}  // namespace

void copy_strided(const Tensor& src, Tensor& dst) {
  A2F_CHECK(dst.is_contiguous() && src.shape() == dst.shape(), "copy_strided: ", src.desc(), " -> ", dst.desc());
  const int64_t total = src.numel();
  if (total == 0) return;
  const DType st = src.dtype(), dt = dst.dtype();
  const size_t es = dtype_size(st), ed = dtype_size(dt);
  const char* sp = static_cast<const char*>(src.raw_data());
  char* dp = static_cast<char*>(dst.raw_data());
  if (src.is_contiguous()) {
    parallel_for(total, 1 << 16, [&](int64_t b, int64_t e) {
      convert(sp + b * es, st, dp + b * ed, dt, static_cast<size_t>(e - b));
    });
    return;
  }
  // Coalesce dimensions (dropping size-1 ones), innermost last.
  Shape shape;
  std::vector<int64_t> strides;
  for (int i = 0; i < src.ndim(); ++i) {
    if (src.shape()[i] == 1) continue;
    if (!shape.empty() && strides.back() == src.strides()[i] * src.shape()[i]) {
      shape.back() *= src.shape()[i];
      strides.back() = src.strides()[i];
    } else {
      shape.push_back(src.shape()[i]);
      strides.push_back(src.strides()[i]);
    }
  }
  const int nd = static_cast<int>(shape.size());
  const int64_t inner = shape[nd - 1], istride = strides[nd - 1], rows = total / inner;
  parallel_for(rows, (1 << 14) / inner + 1, [&](int64_t b, int64_t e) {
    std::vector<char> tmp(st == dt ? 0 : inner * es);
    for (int64_t r = b; r < e; ++r) {
      int64_t rem = r, off = 0;
      for (int d = nd - 2; d >= 0; --d) {
        off += (rem % shape[d]) * strides[d];
        rem /= shape[d];
      }
      const char* s = sp + off * static_cast<int64_t>(es);
      char* d = dp + r * inner * static_cast<int64_t>(ed);
      char* g = st == dt ? d : tmp.data();
      if (istride == 1) {
        std::memcpy(g, s, inner * es);
      } else if (es == 4) {
        gather<uint32_t>(s, istride, g, inner);
      } else if (es == 2) {
        gather<uint16_t>(s, istride, g, inner);
      } else if (es == 8) {
        gather<uint64_t>(s, istride, g, inner);
      } else {
        for (int64_t i = 0; i < inner; ++i) std::memcpy(g + i * es, s + i * istride * es, es);
      }
      if (st != dt) convert(g, st, d, dt, static_cast<size_t>(inner));
    }
  });
}

Tensor to_f32_contiguous(const Tensor& t) {
  if (t.dtype() == DType::F32 && t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), DType::F32);
  copy_strided(t, out);
  return out;
}

Tensor from_f32_result(const Tensor& t, DType dtype) {
  if (dtype == DType::F32) return t;
  Tensor out = Tensor::empty(t.shape(), dtype);
  copy_strided(t, out);
  return out;
}

}  // namespace a2f::cpu
