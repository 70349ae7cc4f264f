// CpuBackend: dense ops through oneDNN, norms / softmax / elementwise through the ISA kernel table.
#include "backends/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_dnnl.h"
#include "backends/cpu/cpu_util.h"
#include "backends/ref/ref_util.h"
#include "core/parallel.h"

namespace a2f {

using cpu::from_f32_result;
using cpu::to_f32_contiguous;

CpuBackend::CpuBackend(const cpu::Kernels* kernels)
    : k_(kernels ? kernels : cpu::kernels_best()), dnnl_(std::make_unique<cpu::DnnlContext>()) {}
CpuBackend::~CpuBackend() = default;

std::string CpuBackend::name() const { return cat("cpu (", k_->name, ", oneDNN ", cpu::DnnlContext::isa(), ")"); }

void CpuBackend::release_caches() { dnnl_->clear(); }

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }
std::unique_ptr<Backend> make_cpu_backend(cpu::Isa isa) {
  return std::make_unique<CpuBackend>(cpu::kernels_for(isa));
}

// --- Dense (oneDNN) ---

Tensor CpuBackend::conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const Shape os = ref::conv2d_check(x, w, bias, p);
  if (x.numel() == 0 || shape_numel(os) == 0) return RefBackend::conv2d(x, w, bias, p);
  return dnnl_->conv2d(x, w, bias, p, os);
}

Tensor CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act) {
  ref::linear_check(x, w, bias);
  return dnnl_->linear(x, w, bias, act);
}

Tensor CpuBackend::matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha) {
  const Shape os = ref::matmul_check(a, b, trans_b);
  return dnnl_->matmul(a, b, trans_b, alpha, os);
}

// --- Elementwise ---

Tensor CpuBackend::binary(BinaryOp op, const Tensor& a0, const Tensor& b0) {
  ref::check_float(a0, "binary", "a");
  ref::check_float(b0, "binary", "b");
  const Shape os = broadcast_shapes(a0.shape(), b0.shape());
  const Tensor a = to_f32_contiguous(a0), b = to_f32_contiguous(b0);
  Tensor out = Tensor::empty(os, DType::F32);
  const int64_t total = out.numel();
  if (total == 0) return from_f32_result(out, a0.dtype());
  // Broadcast strides over the output's dimensions (0 where broadcast), then coalesce dimensions.
  const int nd0 = static_cast<int>(os.size());
  auto bstrides = [&](const Shape& s) {
    std::vector<int64_t> st(nd0, 0);
    int64_t stride = 1;
    for (int i = static_cast<int>(s.size()); i-- > 0;) {
      st[nd0 - static_cast<int>(s.size()) + i] = s[i] == 1 ? 0 : stride;
      stride *= s[i];
    }
    return st;
  };
  const auto sa0 = bstrides(a.shape()), sb0 = bstrides(b.shape());
  Shape shape;
  std::vector<int64_t> sa, sb;
  for (int i = 0; i < nd0; ++i) {
    if (os[i] == 1) continue;
    if (!shape.empty() && sa.back() == sa0[i] * os[i] && sb.back() == sb0[i] * os[i]) {
      shape.back() *= os[i];
      sa.back() = sa0[i];
      sb.back() = sb0[i];
    } else {
      shape.push_back(os[i]);
      sa.push_back(sa0[i]);
      sb.push_back(sb0[i]);
    }
  }
  if (shape.empty()) {
    shape = {1};
    sa = {0};
    sb = {0};
  }
  const int nd = static_cast<int>(shape.size());
  const int64_t inner = shape[nd - 1], rows = total / inner;
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* py = out.data<float>();
  const cpu::Kernels& k = *k_;
  parallel_for(rows, (1 << 14) / inner + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, oa = 0, ob = 0;
      for (int d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      float* y = py + r * inner;
      const bool va = sa[nd - 1] != 0, vb = sb[nd - 1] != 0;
      if (va && vb) {
        k.binary_vv(op, pa + oa, pb + ob, y, inner);
      } else if (va) {
        k.binary_vs(op, pa + oa, pb[ob], y, inner);
      } else if (vb) {
        k.binary_sv(op, pa[oa], pb + ob, y, inner);
      } else {
        k.binary_vs(op, pa + oa, pb[ob], y, 1);
        std::fill(y + 1, y + inner, y[0]);
      }
    }
  });
  return from_f32_result(out, a0.dtype());
}

Tensor CpuBackend::scale(const Tensor& x0, float alpha, float beta) {
  ref::check_float(x0, "scale", "x");
  const Tensor x = to_f32_contiguous(x0);
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const float* px = x.data<float>();
  float* py = out.data<float>();
  parallel_for(x.numel(), 1 << 15, [&](int64_t b, int64_t e) {
    k_->affine_act(px + b, py + b, e - b, 0.0f, alpha, beta, Act::None);
  });
  return from_f32_result(out, x0.dtype());
}

Tensor CpuBackend::unary(Act act, const Tensor& x0) {
  ref::check_float(x0, "unary", "x");
  const Tensor x = to_f32_contiguous(x0);
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const float* px = x.data<float>();
  float* py = out.data<float>();
  parallel_for(x.numel(), 1 << 14, [&](int64_t b, int64_t e) { k_->act(act, px + b, py + b, e - b); });
  return from_f32_result(out, x0.dtype());
}

Tensor CpuBackend::geglu(const Tensor& x0) {
  ref::check_float(x0, "geglu", "x");
  A2F_CHECK(x0.ndim() >= 1 && x0.dim(-1) % 2 == 0, "geglu: last dimension of ", x0.desc(), " must be even");
  const Tensor x = to_f32_contiguous(x0);
  const int64_t h2 = x.dim(-1), h = h2 / 2, rows = h2 ? x.numel() / h2 : 0;
  Shape os = x.shape();
  os.back() = h;
  Tensor out = Tensor::empty(os, DType::F32);
  const float* px = x.data<float>();
  float* py = out.data<float>();
  parallel_for(rows, (1 << 13) / (h + 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) k_->geglu_row(px + r * h2, py + r * h, h);
  });
  return from_f32_result(out, x0.dtype());
}

// --- Normalisation ---

Tensor CpuBackend::group_norm(const Tensor& x0, int groups, const Tensor& gamma0, const Tensor& beta0, float eps,
                              Act act) {
  ref::group_norm_check(x0, groups, gamma0, beta0);
  const Tensor x = to_f32_contiguous(x0);
  const int64_t n = x.dim(0), c = x.dim(1), inner = c ? x.numel() / (n * c) : 0, cg = c / groups;
  const Tensor gamma = gamma0.defined() ? to_f32_contiguous(gamma0) : Tensor::full({c}, 1.0f);
  const Tensor beta = beta0.defined() ? to_f32_contiguous(beta0) : Tensor::zeros({c});
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const float* px = x.data<float>();
  const float* pg = gamma.data<float>();
  const float* pb = beta.data<float>();
  float* py = out.data<float>();
  parallel_for(n * groups, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t g = t % groups;
      const float* xs = px + t * cg * inner;
      float* ys = py + t * cg * inner;
      float mean, var;
      k_->mean_var(xs, cg * inner, &mean, &var);
      const float rstd = 1.0f / std::sqrt(var + eps);
      for (int64_t j = 0; j < cg; ++j) {
        const int64_t ch = g * cg + j;
        k_->affine_act(xs + j * inner, ys + j * inner, inner, mean, rstd * pg[ch], pb[ch], act);
      }
    }
  });
  return from_f32_result(out, x0.dtype());
}

Tensor CpuBackend::layer_norm(const Tensor& x0, const Tensor& gamma0, const Tensor& beta0, float eps) {
  ref::layer_norm_check(x0, gamma0, beta0);
  const Tensor x = to_f32_contiguous(x0);
  const int64_t d = x.dim(-1), rows = d ? x.numel() / d : 0;
  const Tensor gamma = gamma0.defined() ? to_f32_contiguous(gamma0) : Tensor();
  const Tensor beta = beta0.defined() ? to_f32_contiguous(beta0) : Tensor();
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const float* px = x.data<float>();
  const float* pg = gamma.defined() ? gamma.data<float>() : nullptr;
  const float* pb = beta.defined() ? beta.data<float>() : nullptr;
  float* py = out.data<float>();
  parallel_for(rows, (1 << 13) / (d + 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) k_->layer_norm_row(px + r * d, py + r * d, d, pg, pb, eps);
  });
  return from_f32_result(out, x0.dtype());
}

Tensor CpuBackend::softmax(const Tensor& x0) {
  ref::check_float(x0, "softmax", "x");
  A2F_CHECK(x0.ndim() >= 1, "softmax: x ", x0.desc(), " has no dimension");
  const Tensor x = to_f32_contiguous(x0);
  const int64_t d = x.dim(-1), rows = d ? x.numel() / d : 0;
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const float* px = x.data<float>();
  float* py = out.data<float>();
  parallel_for(rows, (1 << 13) / (d + 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) k_->softmax_row(px + r * d, py + r * d, d);
  });
  return from_f32_result(out, x0.dtype());
}

}  // namespace a2f
