#include "core/backend.h"

#include <algorithm>

namespace a2f {

const char* act_name(Act a) {
  switch (a) {
    case Act::None: return "none";
    case Act::Relu: return "relu";
    case Act::Silu: return "silu";
    case Act::GeluErf: return "gelu";
    case Act::GeluTanh: return "gelu_tanh";
    case Act::QuickGelu: return "quick_gelu";
    case Act::Sigmoid: return "sigmoid";
  }
  return "?";
}

Tensor Backend::empty(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype); }
Tensor Backend::to_device(const Tensor& host) { return host; }
Tensor Backend::to_host(const Tensor& t) { return t; }
Tensor Backend::prepare_weight(const Tensor& w, DType dtype) {
  Tensor p = w.to(dtype).contiguous();
  // A converted copy replaces the checkpoint's values: a weight mapped from its file need not stay resident.
  if (p.storage() != w.storage()) w.release_pages();
  return p;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    A2F_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t conv_out_size(int64_t in, int kernel, int stride, int pad_begin, int pad_end, int dilation,
                      bool ceil_mode) {
  const int64_t eff = static_cast<int64_t>(dilation) * (kernel - 1) + 1;
  const int64_t span = in + pad_begin + pad_end - eff;
  if (span < 0) return 0;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // PyTorch/ONNX ceil_mode: the last window must start inside the input or left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

}  // namespace a2f
