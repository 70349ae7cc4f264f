#include "backends/ref/ref_util.h"

#include <cmath>

#include "backends/ref/ref_backend.h"

namespace a2f {

float act_apply(Act act, float x) {
  switch (act) {
    case Act::None:
      return x;
    case Act::Relu:
      return x > 0.0f ? x : 0.0f;
    case Act::Silu:
      return x / (1.0f + std::exp(-x));
    case Act::GeluErf:
      return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Act::GeluTanh: {
      const float k = 0.79788456080286536f;  // sqrt(2 / pi)
      return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
    }
    case Act::QuickGelu:
      return x / (1.0f + std::exp(-1.702f * x));
    case Act::Sigmoid:
      return 1.0f / (1.0f + std::exp(-x));
  }
  return x;
}

std::unique_ptr<Backend> make_ref_backend() {
  return std::make_unique<RefBackend>();
}

namespace ref {

std::vector<float> to_f32(const Tensor& t) {
  return t.to_vector();
}

Tensor from_f32(const std::vector<float>& v, const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, DType::F32);
  A2F_ASSERT(static_cast<int64_t>(v.size()) == t.numel());
  float* p = t.data<float>();
  for (size_t i = 0; i < v.size(); ++i) p[i] = v[i];
  return dtype == DType::F32 ? t : t.to(dtype);
}

void check_float(const Tensor& t, const char* op, const char* arg) {
  A2F_CHECK(t.defined(), op, ": ", arg, " is undefined");
  A2F_CHECK(dtype_is_float(t.dtype()), op, ": ", arg, " must be a float tensor, got ", t.desc());
  A2F_CHECK(t.device() == Device::CPU, op, ": ", arg, " is on ", device_name(t.device()),
            ", the CPU backend needs host tensors");
}

int norm_dim(int dim, int ndim, const char* op) {
  int d = dim < 0 ? dim + ndim : dim;
  A2F_CHECK(d >= 0 && d < ndim, op, ": dimension ", dim, " out of range for ", ndim, " dimensions");
  return d;
}

}  // namespace ref
}  // namespace a2f

namespace a2f::ref {

Shape conv2d_check(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_float(x, "conv2d", "x");
  check_float(w, "conv2d", "w");
  A2F_CHECK(x.ndim() == 4 && w.ndim() == 4,
            "conv2d: expected x [N, C, H, W] and w [O, C/groups, kh, kw], got x ", x.desc(), ", w ",
            w.desc());
  const int64_t c = x.dim(1), o = w.dim(0), cg = w.dim(1);
  const int g = p.groups;
  A2F_CHECK(g >= 1 && c % g == 0 && o % g == 0 && cg == c / g, "conv2d: x ", x.desc(), " and w ", w.desc(),
            " do not match with groups=", g);
  A2F_CHECK(p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1 && p.pad_top >= 0 &&
                p.pad_left >= 0 && p.pad_bottom >= 0 && p.pad_right >= 0,
            "conv2d: bad stride/dilation/padding for x ", x.desc());
  if (bias.defined()) {
    check_float(bias, "conv2d", "bias");
    A2F_CHECK(bias.numel() == o, "conv2d: bias ", bias.desc(), " does not match ", o, " output channels");
  }
  const int64_t ho = conv_out_size(x.dim(2), static_cast<int>(w.dim(2)), p.stride_h, p.pad_top, p.pad_bottom,
                                   p.dilation_h, false);
  const int64_t wo = conv_out_size(x.dim(3), static_cast<int>(w.dim(3)), p.stride_w, p.pad_left, p.pad_right,
                                   p.dilation_w, false);
  A2F_CHECK(ho > 0 && wo > 0, "conv2d: kernel ", w.desc(), " larger than padded input ", x.desc());
  return {x.dim(0), o, ho, wo};
}

void linear_check(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_float(x, "linear", "x");
  check_float(w, "linear", "w");
  A2F_CHECK(x.ndim() >= 1 && w.ndim() == 2 && x.dim(-1) == w.dim(1), "linear: x ", x.desc(),
            " does not match weight ", w.desc(), " (expected x [..., K], w [N, K])");
  if (bias.defined()) {
    check_float(bias, "linear", "bias");
    A2F_CHECK(bias.numel() == w.dim(0), "linear: bias ", bias.desc(), " does not match weight ", w.desc());
  }
}

Shape matmul_check(const Tensor& a, const Tensor& b, bool trans_b) {
  check_float(a, "matmul", "a");
  check_float(b, "matmul", "b");
  A2F_CHECK(a.ndim() >= 2 && b.ndim() >= 2, "matmul: needs at least 2 dimensions, got a ", a.desc(), ", b ",
            b.desc());
  const int64_t kb = trans_b ? b.dim(-1) : b.dim(-2), n = trans_b ? b.dim(-2) : b.dim(-1);
  A2F_CHECK(a.dim(-1) == kb, "matmul: inner dimensions differ: a ", a.desc(), ", b ", b.desc(),
            trans_b ? " (b transposed)" : "");
  const Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape os;
  try {
    os = broadcast_shapes(ab, bb);
  } catch (const Error&) {
    fail("matmul: batch dimensions of a ", a.desc(), " and b ", b.desc(), " do not broadcast");
  }
  os.push_back(a.dim(-2));
  os.push_back(n);
  return os;
}

void attention_check(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  check_float(q, "attention", "q");
  check_float(k, "attention", "k");
  check_float(v, "attention", "v");
  A2F_CHECK(q.ndim() == 3 && k.ndim() == 3 && v.ndim() == 3,
            "attention: expected q [B, Lq, H*D], k [B, Lk, H*D], ", "v [B, Lk, H*Dv], got ", q.desc(), ", ",
            k.desc(), ", ", v.desc());
  A2F_CHECK(p.heads >= 1 && q.dim(2) % p.heads == 0 && v.dim(2) % p.heads == 0, "attention: ", p.heads,
            " heads do not divide q ", q.desc(), " / v ", v.desc());
  A2F_CHECK(k.dim(0) == q.dim(0) && v.dim(0) == q.dim(0) && k.dim(2) == q.dim(2) && v.dim(1) == k.dim(1) &&
                k.dim(1) >= 1,
            "attention: shapes do not match: q ", q.desc(), ", k ", k.desc(), ", v ", v.desc());
}

void group_norm_check(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta) {
  check_float(x, "group_norm", "x");
  A2F_CHECK(x.ndim() >= 2, "group_norm: x ", x.desc(), " needs [N, C, ...]");
  const int64_t c = x.dim(1);
  A2F_CHECK(groups >= 1 && c % groups == 0, "group_norm: ", groups, " groups do not divide the channels of ",
            x.desc());
  if (gamma.defined()) {
    check_float(gamma, "group_norm", "gamma");
    A2F_CHECK(gamma.numel() == c, "group_norm: gamma ", gamma.desc(), " does not match x ", x.desc());
  }
  if (beta.defined()) {
    check_float(beta, "group_norm", "beta");
    A2F_CHECK(beta.numel() == c, "group_norm: beta ", beta.desc(), " does not match x ", x.desc());
  }
}

void layer_norm_check(const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  check_float(x, "layer_norm", "x");
  A2F_CHECK(x.ndim() >= 1, "layer_norm: x ", x.desc(), " has no dimension");
  const int64_t d = x.dim(-1);
  if (gamma.defined()) {
    check_float(gamma, "layer_norm", "gamma");
    A2F_CHECK(gamma.numel() == d, "layer_norm: gamma ", gamma.desc(), " does not match x ", x.desc());
  }
  if (beta.defined()) {
    check_float(beta, "layer_norm", "beta");
    A2F_CHECK(beta.numel() == d, "layer_norm: beta ", beta.desc(), " does not match x ", x.desc());
  }
}

}  // namespace a2f::ref
