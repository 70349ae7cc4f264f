// CpuBackend layout ops: parallel copies that keep the dtype (no f32 round trip).
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_alloc.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_util.h"
#include "backends/ref/ref_util.h"
#include "core/parallel.h"

namespace a2f {

namespace {
template <class T>
void upsample_rows(const char* src, char* dst, int64_t nc, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  std::vector<int64_t> sx(ow);
  for (int64_t x = 0; x < ow; ++x) sx[x] = std::min(x * w / ow, w - 1);
  const T* s = reinterpret_cast<const T*>(src);
  T* d = reinterpret_cast<T*>(dst);
  parallel_for(nc * oh, 64, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t i = r / oh, y = r % oh, syy = std::min(y * h / oh, h - 1);
      const T* srow = s + (i * h + syy) * w;
      T* drow = d + r * ow;
      for (int64_t x = 0; x < ow; ++x) drow[x] = srow[sx[x]];
    }
  });
}
}  // namespace

Tensor CpuBackend::upsample_nearest(const Tensor& x0, int64_t out_h, int64_t out_w) {
  const ScopedNumThreads nt(threads_);
  ref::check_float(x0, "upsample_nearest", "x");
  A2F_CHECK(x0.ndim() == 4 && out_h > 0 && out_w > 0, "upsample_nearest: x ", x0.desc(), " to ", out_h, "x",
            out_w, " (expected x [N, C, H, W] and a positive size)");
  const Tensor x = x0.contiguous();
  const int64_t nc = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  A2F_CHECK(h > 0 && w > 0, "upsample_nearest: empty input ", x.desc());
  Tensor out = cpu::new_tensor({x.dim(0), x.dim(1), out_h, out_w}, x.dtype());
  const char* s = static_cast<const char*>(x.raw_data());
  char* d = static_cast<char*>(out.raw_data());
  if (dtype_size(x.dtype()) == 4) {
    upsample_rows<uint32_t>(s, d, nc, h, w, out_h, out_w);
  } else if (dtype_size(x.dtype()) == 2) {
    upsample_rows<uint16_t>(s, d, nc, h, w, out_h, out_w);
  } else {
    return RefBackend::upsample_nearest(x0, out_h, out_w);
  }
  return out;
}

Tensor CpuBackend::concat(const std::vector<Tensor>& xs, int dim) {
  const ScopedNumThreads nt(threads_);
  A2F_CHECK(!xs.empty(), "concat: no inputs");
  for (const Tensor& t : xs) ref::check_float(t, "concat", "input");
  const int nd = xs[0].ndim();
  const int d = ref::norm_dim(dim, nd, "concat");
  Shape os = xs[0].shape();
  os[d] = 0;
  for (const Tensor& t : xs) {
    bool ok = t.ndim() == nd;
    for (int i = 0; ok && i < nd; ++i) ok = i == d || t.dim(i) == xs[0].dim(i);
    A2F_CHECK(ok, "concat: ", t.desc(), " does not match ", xs[0].desc(), " along dimension ", dim);
    os[d] += t.dim(d);
  }
  const DType dt = xs[0].dtype();
  const size_t es = dtype_size(dt);
  Tensor out = cpu::new_tensor(os, dt);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= os[i];
  for (int i = d + 1; i < nd; ++i) inner *= os[i];
  char* dp = static_cast<char*>(out.raw_data());
  int64_t offset = 0;
  for (const Tensor& t0 : xs) {
    Tensor t = t0;
    if (t.dtype() != dt || !t.is_contiguous()) {
      t = cpu::new_tensor(t0.shape(), dt);
      cpu::copy_strided(t0, t);
    }
    const int64_t chunk = t.dim(d) * inner;
    const char* sp = static_cast<const char*>(t.raw_data());
    parallel_for(outer, (1 << 16) / (chunk + 1) + 1, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o)
        std::memcpy(dp + (o * os[d] * inner + offset * inner) * es, sp + o * chunk * es, chunk * es);
    });
    offset += t.dim(d);
  }
  return out;
}

Tensor CpuBackend::slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step) {
  const ScopedNumThreads nt(threads_);
  A2F_CHECK(x.defined(), "slice: undefined input");
  const int d = ref::norm_dim(dim, x.ndim(), "slice");
  if (step != 1) return RefBackend::slice(x, dim, start, end, step);
  const int64_t n = x.dim(d);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, 0, n);
  const Tensor view = x.narrow(d, start, std::max<int64_t>(0, end - start));
  Tensor out = cpu::new_tensor(view.shape(), x.dtype());
  cpu::copy_strided(view, out);
  return out;
}

Tensor CpuBackend::permute(const Tensor& x, const std::vector<int>& perm) {
  const ScopedNumThreads nt(threads_);
  A2F_CHECK(x.defined(), "permute: undefined input");
  const Tensor view = x.permute(perm);
  Tensor out = cpu::new_tensor(view.shape(), x.dtype());
  cpu::copy_strided(view, out);
  return out;
}

Tensor CpuBackend::cast(const Tensor& x, DType dtype) {
  const ScopedNumThreads nt(threads_);
  A2F_CHECK(x.defined(), "cast: undefined input");
  Tensor out = cpu::new_tensor(x.shape(), dtype);
  cpu::copy_strided(x, out);
  return out;
}

}  // namespace a2f
