// Reference elementwise ops, normalisations and softmax.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/ref/ref_backend.h"
#include "backends/ref/ref_util.h"

namespace a2f {

using ref::check_float;
using ref::from_f32;
using ref::to_f32;

Tensor RefBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_float(a, "binary", "a");
  check_float(b, "binary", "b");
  const Shape os = broadcast_shapes(a.shape(), b.shape());
  const int nd = static_cast<int>(os.size());
  // Strides of a and b over the output's dimensions (0 where broadcast).
  auto bstrides = [&](const Shape& s) {
    std::vector<int64_t> st(nd, 0);
    int64_t stride = 1;
    for (int i = static_cast<int>(s.size()); i-- > 0;) {
      st[nd - static_cast<int>(s.size()) + i] = s[i] == 1 ? 0 : stride;
      stride *= s[i];
    }
    return st;
  };
  const auto sa = bstrides(a.shape()), sb = bstrides(b.shape());
  const auto av = to_f32(a), bv = to_f32(b);
  std::vector<float> out(shape_numel(os));
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    int64_t rem = i, ia = 0, ib = 0;
    for (int d = nd; d-- > 0;) {
      const int64_t idx = rem % os[d];
      rem /= os[d];
      ia += idx * sa[d];
      ib += idx * sb[d];
    }
    const float x = av[ia], y = bv[ib];
    switch (op) {
      case BinaryOp::Add:
        out[i] = x + y;
        break;
      case BinaryOp::Sub:
        out[i] = x - y;
        break;
      case BinaryOp::Mul:
        out[i] = x * y;
        break;
      case BinaryOp::Div:
        out[i] = x / y;
        break;
    }
  }
  return from_f32(out, os, a.dtype());
}

Tensor RefBackend::scale(const Tensor& x, float alpha, float beta) {
  check_float(x, "scale", "x");
  auto v = to_f32(x);
  for (float& e : v) e = alpha * e + beta;
  return from_f32(v, x.shape(), x.dtype());
}

Tensor RefBackend::unary(Act act, const Tensor& x) {
  check_float(x, "unary", "x");
  auto v = to_f32(x);
  for (float& e : v) e = act_apply(act, e);
  return from_f32(v, x.shape(), x.dtype());
}

Tensor RefBackend::prelu(const Tensor& x, const Tensor& slope) {
  check_float(x, "prelu", "x");
  check_float(slope, "prelu", "slope");
  A2F_CHECK(x.ndim() >= 2 || slope.numel() == 1, "prelu: x ", x.desc(), " needs a channel dimension");
  const int64_t c = x.ndim() >= 2 ? x.dim(1) : 1;
  A2F_CHECK(slope.numel() == c || slope.numel() == 1, "prelu: slope ", slope.desc(), " does not match x ",
            x.desc());
  const int64_t inner = x.ndim() >= 2 ? x.numel() / std::max<int64_t>(1, x.dim(0) * c) : 1;
  auto v = to_f32(x);
  const auto sv = to_f32(slope);
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) {
    const float s = sv.size() == 1 ? sv[0] : sv[(i / inner) % c];
    v[i] = v[i] > 0.0f ? v[i] : s * v[i];
  }
  return from_f32(v, x.shape(), x.dtype());
}

Tensor RefBackend::geglu(const Tensor& x) {
  check_float(x, "geglu", "x");
  A2F_CHECK(x.ndim() >= 1 && x.dim(-1) % 2 == 0, "geglu: last dimension of ", x.desc(), " must be even");
  const int64_t h2 = x.dim(-1), h = h2 / 2, rows = x.numel() / std::max<int64_t>(1, h2);
  const auto v = to_f32(x);
  std::vector<float> out(rows * h);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < h; ++j)
      out[r * h + j] = v[r * h2 + j] * act_apply(Act::GeluErf, v[r * h2 + h + j]);
  Shape os = x.shape();
  os.back() = h;
  return from_f32(out, os, x.dtype());
}

Tensor RefBackend::group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                              Act act) {
  ref::group_norm_check(x, groups, gamma, beta);
  const int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<int64_t>(1, n * c);
  auto v = to_f32(x);
  const auto gv = gamma.defined() ? to_f32(gamma) : std::vector<float>(c, 1.0f);
  const auto bv = beta.defined() ? to_f32(beta) : std::vector<float>(c, 0.0f);
  const int64_t cg = c / groups, len = cg * inner;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < groups; ++g) {
      float* p = v.data() + (i * c + g * cg) * inner;
      double sum = 0;
      for (int64_t t = 0; t < len; ++t) sum += p[t];
      const double mean = len ? sum / len : 0.0;
      double sq = 0;
      for (int64_t t = 0; t < len; ++t) sq += (p[t] - mean) * (p[t] - mean);
      const double rstd = 1.0 / std::sqrt((len ? sq / len : 0.0) + eps);
      for (int64_t t = 0; t < len; ++t) {
        const int64_t ch = g * cg + t / inner;
        p[t] = act_apply(act, static_cast<float>((p[t] - mean) * rstd * gv[ch] + bv[ch]));
      }
    }
  return from_f32(v, x.shape(), x.dtype());
}

Tensor RefBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  ref::layer_norm_check(x, gamma, beta);
  const int64_t d = x.dim(-1), rows = x.numel() / std::max<int64_t>(1, d);
  auto v = to_f32(x);
  const auto gv = gamma.defined() ? to_f32(gamma) : std::vector<float>(d, 1.0f);
  const auto bv = beta.defined() ? to_f32(beta) : std::vector<float>(d, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float* p = v.data() + r * d;
    double sum = 0;
    for (int64_t t = 0; t < d; ++t) sum += p[t];
    const double mean = sum / d;
    double sq = 0;
    for (int64_t t = 0; t < d; ++t) sq += (p[t] - mean) * (p[t] - mean);
    const double rstd = 1.0 / std::sqrt(sq / d + eps);
    for (int64_t t = 0; t < d; ++t) p[t] = static_cast<float>((p[t] - mean) * rstd * gv[t] + bv[t]);
  }
  return from_f32(v, x.shape(), x.dtype());
}

Tensor RefBackend::batch_norm(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& gamma,
                              const Tensor& beta, float eps) {
  check_float(x, "batch_norm", "x");
  check_float(mean, "batch_norm", "mean");
  check_float(var, "batch_norm", "var");
  A2F_CHECK(x.ndim() >= 2, "batch_norm: x ", x.desc(), " needs [N, C, ...]");
  const int64_t c = x.dim(1), inner = x.numel() / std::max<int64_t>(1, x.dim(0) * c);
  A2F_CHECK(mean.numel() == c && var.numel() == c, "batch_norm: mean ", mean.desc(), " / var ", var.desc(),
            " do not match x ", x.desc());
  A2F_CHECK(!gamma.defined() || gamma.numel() == c, "batch_norm: gamma ", gamma.desc(), " does not match x ",
            x.desc());
  A2F_CHECK(!beta.defined() || beta.numel() == c, "batch_norm: beta ", beta.desc(), " does not match x ",
            x.desc());
  auto v = to_f32(x);
  const auto mv = to_f32(mean), vv = to_f32(var);
  const auto gv = gamma.defined() ? to_f32(gamma) : std::vector<float>(c, 1.0f);
  const auto bv = beta.defined() ? to_f32(beta) : std::vector<float>(c, 0.0f);
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) {
    const int64_t ch = (i / inner) % c;
    v[i] = static_cast<float>((double(v[i]) - mv[ch]) / std::sqrt(double(vv[ch]) + eps) * gv[ch] + bv[ch]);
  }
  return from_f32(v, x.shape(), x.dtype());
}

Tensor RefBackend::softmax(const Tensor& x) {
  check_float(x, "softmax", "x");
  A2F_CHECK(x.ndim() >= 1, "softmax: x ", x.desc(), " has no dimension");
  const int64_t d = x.dim(-1), rows = d ? x.numel() / d : 0;
  auto v = to_f32(x);
  for (int64_t r = 0; r < rows; ++r) {
    float* p = v.data() + r * d;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < d; ++t) mx = std::max(mx, p[t]);
    double sum = 0;
    std::vector<double> e(d);
    for (int64_t t = 0; t < d; ++t) {
      e[t] = std::exp(double(p[t]) - mx);
      sum += e[t];
    }
    for (int64_t t = 0; t < d; ++t) p[t] = static_cast<float>(e[t] / sum);
  }
  return from_f32(v, x.shape(), x.dtype());
}

}  // namespace a2f
