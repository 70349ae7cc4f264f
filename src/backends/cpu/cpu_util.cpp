#include "backends/cpu/cpu_util.h"

#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_alloc.h"
#include "core/parallel.h"

namespace a2f::cpu {

namespace {
template <class T>
void gather(const char* src, int64_t stride, char* dst, int64_t n) {
  const T* s = reinterpret_cast<const T*>(src);
  T* d = reinterpret_cast<T*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = s[i * stride];
}
// A transpose-like copy: the innermost dimension (length n_in, source stride s_in) and dimension k (length
// n_k, source stride 1, destination stride d_k) are copied in 32 x 32 tiles so both sides stay in cache.
template <class T>
void transpose_tiles(const char* src, char* dst, const Shape& shape, const std::vector<int64_t>& strides,
                     int k) {
  const int nd = static_cast<int>(shape.size());
  std::vector<int64_t> dstr(nd);
  int64_t acc = 1;
  for (int d = nd; d-- > 0;) {
    dstr[d] = acc;
    acc *= shape[d];
  }
  const int64_t n_in = shape[nd - 1], s_in = strides[nd - 1], n_k = shape[k], d_k = dstr[k];
  constexpr int64_t kTile = 32;
  const int64_t k_tiles = (n_k + kTile - 1) / kTile;
  int64_t outer = 1;
  for (int d = 0; d < nd - 1; ++d)
    if (d != k) outer *= shape[d];
  const T* s = reinterpret_cast<const T*>(src);
  T* o = reinterpret_cast<T*>(dst);
  parallel_for(outer * k_tiles, 4, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      int64_t rem = w / k_tiles, so = 0, doff = 0;
      for (int d = nd - 2; d >= 0; --d) {
        if (d == k) continue;
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        so += i * strides[d];
        doff += i * dstr[d];
      }
      const int64_t k0 = (w % k_tiles) * kTile, k1 = std::min(n_k, k0 + kTile);
      for (int64_t j0 = 0; j0 < n_in; j0 += kTile) {
        const int64_t j1 = std::min(n_in, j0 + kTile);
        for (int64_t i = k0; i < k1; ++i)
          for (int64_t j = j0; j < j1; ++j) o[doff + i * d_k + j] = s[so + i + j * s_in];
      }
    }
  });
}

}  // namespace

void copy_strided(const Tensor& src, Tensor& dst) {
  A2F_CHECK(dst.is_contiguous() && src.shape() == dst.shape(), "copy_strided: ", src.desc(), " -> ",
            dst.desc());
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
  if (st == dt && istride != 1 && (es == 4 || es == 2)) {
    for (int k = nd - 2; k >= 0; --k) {
      if (strides[k] != 1) continue;
      if (es == 4)
        transpose_tiles<uint32_t>(sp, dp, shape, strides, k);
      else
        transpose_tiles<uint16_t>(sp, dp, shape, strides, k);
      return;
    }
  }
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

Tensor to_contiguous(const Tensor& t, DType dt) {
  if (t.dtype() == dt && t.is_contiguous()) return t;
  Tensor out = new_tensor(t.shape(), dt);
  copy_strided(t, out);
  return out;
}

Tensor to_f32_contiguous(const Tensor& t) {
  return to_contiguous(t, DType::F32);
}

Tensor from_f32_result(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = new_tensor(t.shape(), dtype);
  copy_strided(t, out);
  return out;
}

}  // namespace a2f::cpu
