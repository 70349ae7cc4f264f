// Reference conv2d, linear, matmul and attention: direct loops, f32 inputs, double accumulation.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/ref/ref_backend.h"
#include "backends/ref/ref_util.h"

namespace a2f {

using ref::check_float;
using ref::from_f32;
using ref::to_f32;

Tensor RefBackend::conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const Shape os = ref::conv2d_check(x, w, bias, p);
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t o = w.dim(0), cg = w.dim(1), kh = w.dim(2), kw = w.dim(3), ho = os[2], wo = os[3];
  const int g = p.groups;
  const auto xv = to_f32(x), wv = to_f32(w);
  const auto bv = bias.defined() ? to_f32(bias) : std::vector<float>(o, 0.0f);
  std::vector<float> out(n * o * ho * wo);
  const int64_t og = o / g;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t oc = 0; oc < o; ++oc) {
      const int64_t grp = oc / og;
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          double acc = bv[oc];
          for (int64_t ic = 0; ic < cg; ++ic) {
            const int64_t xc = grp * cg + ic;
            for (int64_t ky = 0; ky < kh; ++ky) {
              const int64_t iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
              if (iy < 0 || iy >= h) continue;
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
                if (ix < 0 || ix >= wd) continue;
                acc +=
                    double(xv[((in * c + xc) * h + iy) * wd + ix]) * wv[((oc * cg + ic) * kh + ky) * kw + kx];
              }
            }
          }
          out[((in * o + oc) * ho + oy) * wo + ox] = act_apply(p.act, static_cast<float>(acc));
        }
    }
  return from_f32(out, os, x.dtype());
}

Tensor RefBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act) {
  ref::linear_check(x, w, bias);
  const int64_t k = w.dim(1), nout = w.dim(0), m = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  const auto xv = to_f32(x), wv = to_f32(w);
  const auto bv = bias.defined() ? to_f32(bias) : std::vector<float>(nout, 0.0f);
  std::vector<float> out(m * nout);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < nout; ++j) {
      double acc = bv[j];
      for (int64_t t = 0; t < k; ++t) acc += double(xv[i * k + t]) * wv[j * k + t];
      out[i * nout + j] = act_apply(act, static_cast<float>(acc));
    }
  Shape os = x.shape();
  os.back() = nout;
  return from_f32(out, os, x.dtype());
}

Tensor RefBackend::matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha) {
  const Shape os = ref::matmul_check(a, b, trans_b);
  const int64_t m = a.dim(-2), k = a.dim(-1), n = trans_b ? b.dim(-2) : b.dim(-1);
  const Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  const Shape batch(os.begin(), os.end() - 2);
  const int64_t nb = shape_numel(batch);
  // Index of a batch element of a (or b) for a broadcast batch index.
  auto batch_index = [&](const Shape& s, int64_t flat) {
    int64_t idx = 0, stride = 1, rem = flat;
    for (size_t i = batch.size(); i-- > 0;) {
      const int64_t bi = rem % batch[i];
      rem /= batch[i];
      const int64_t off = static_cast<int64_t>(i) - static_cast<int64_t>(batch.size() - s.size());
      if (off >= 0) {
        const int64_t d = s[off];
        idx += (d == 1 ? 0 : bi) * stride;
        stride *= d;
      }
    }
    return idx;
  };
  const auto av = to_f32(a), bv = to_f32(b);
  std::vector<float> out(nb * m * n);
  for (int64_t bi = 0; bi < nb; ++bi) {
    const float* pa = av.data() + batch_index(ab, bi) * m * k;
    const float* pb = bv.data() + batch_index(bb, bi) * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t t = 0; t < k; ++t)
          acc += double(pa[i * k + t]) * (trans_b ? pb[j * k + t] : pb[t * n + j]);
        out[(bi * m + i) * n + j] = static_cast<float>(alpha * acc);
      }
  }
  return from_f32(out, os, a.dtype());
}

Tensor RefBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  ref::attention_check(q, k, v, p);
  const int64_t bsz = q.dim(0), lq = q.dim(1), lk = k.dim(1), hh = p.heads;
  const int64_t d = q.dim(2) / hh, dv = v.dim(2) / hh;
  const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d));
  const auto qv = to_f32(q), kv = to_f32(k), vv = to_f32(v);
  std::vector<float> out(bsz * lq * hh * dv);
  std::vector<double> s(lk);  // one row of scores: memory does not grow with Lq * Lk
  for (int64_t b = 0; b < bsz; ++b)
    for (int64_t h = 0; h < hh; ++h)
      for (int64_t i = 0; i < lq; ++i) {
        const float* qi = &qv[(b * lq + i) * hh * d + h * d];
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < lk; ++j) {
          if (p.causal && j > i) {
            s[j] = -std::numeric_limits<double>::infinity();
            continue;
          }
          const float* kj = &kv[(b * lk + j) * hh * d + h * d];
          double acc = 0;
          for (int64_t t = 0; t < d; ++t) acc += double(qi[t]) * kj[t];
          s[j] = acc * scale;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < lk; ++j) {
          s[j] = std::isinf(s[j]) && s[j] < 0 ? 0.0 : std::exp(s[j] - mx);
          sum += s[j];
        }
        float* oi = &out[(b * lq + i) * hh * dv + h * dv];
        for (int64_t t = 0; t < dv; ++t) {
          double acc = 0;
          for (int64_t j = 0; j < lk; ++j) acc += s[j] * vv[(b * lk + j) * hh * dv + h * dv + t];
          oi[t] = static_cast<float>(acc / sum);
        }
      }
  return from_f32(out, {bsz, lq, hh * dv}, q.dtype());
}

}  // namespace a2f
