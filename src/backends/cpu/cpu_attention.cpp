// Memory-efficient fused attention (flash-style): per (batch, head, block of 64 queries) task, loop over blocks
// of keys computing the score tile, an online softmax (running max and sum per row) and the P·V update, so only
// a 64 x 64 score tile exists at a time. K is packed transposed and V padded per head once per call.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_util.h"
#include "backends/ref/ref_util.h"
#include "core/parallel.h"

namespace a2f {

namespace {
constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 64;
int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }
}  // namespace

Tensor CpuBackend::attention(const Tensor& q0, const Tensor& k0, const Tensor& v0, const AttentionParams& p) {
  ref::attention_check(q0, k0, v0, p);
  const Tensor q = cpu::to_f32_contiguous(q0), k = cpu::to_f32_contiguous(k0), v = cpu::to_f32_contiguous(v0);
  const int64_t bsz = q.dim(0), lq = q.dim(1), lk = k.dim(1), nh = p.heads;
  const int64_t d = q.dim(2) / nh, dv = v.dim(2) / nh;
  const int64_t lk_pad = round16(lk), dv_pad = round16(dv);
  const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d));
  const cpu::Kernels& kern = *k_;

  // K^T per head: [B*H][D][Lk_pad]; V per head: [B*H][Lk_pad][Dv_pad]; zero padded.
  std::vector<float> kt(static_cast<size_t>(bsz * nh * d * lk_pad), 0.0f);
  std::vector<float> vp(static_cast<size_t>(bsz * nh * lk_pad * dv_pad), 0.0f);
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  parallel_for(bsz * nh, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      const int64_t b = bh / nh, h = bh % nh;
      float* ktd = kt.data() + bh * d * lk_pad;
      float* vpd = vp.data() + bh * lk_pad * dv_pad;
      for (int64_t j = 0; j < lk; ++j) {
        const float* kr = pk + (b * lk + j) * nh * d + h * d;
        for (int64_t t = 0; t < d; ++t) ktd[t * lk_pad + j] = kr[t];
        std::copy(pv + (b * lk + j) * nh * dv + h * dv, pv + (b * lk + j) * nh * dv + h * dv + dv,
                  vpd + j * dv_pad);
      }
    }
  });

  Tensor out = Tensor::empty({bsz, lq, nh * dv}, DType::F32);
  float* po = out.data<float>();
  const float* pq = q.data<float>();
  const int64_t qblocks = (lq + kQueryBlock - 1) / kQueryBlock;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  parallel_for(bsz * nh * qblocks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> qs(kQueryBlock * d), s(kQueryBlock * kKeyBlock), o(kQueryBlock * dv_pad);
    std::vector<float> m(kQueryBlock), l(kQueryBlock), corr(kQueryBlock);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t bh = task / qblocks, b = bh / nh, h = bh % nh;
      const int64_t i0 = (task % qblocks) * kQueryBlock, rows = std::min(kQueryBlock, lq - i0);
      for (int64_t r = 0; r < rows; ++r) {
        const float* qr = pq + (b * lq + i0 + r) * nh * d + h * d;
        for (int64_t t = 0; t < d; ++t) qs[r * d + t] = qr[t] * scale;
      }
      std::fill(o.begin(), o.end(), 0.0f);
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(l.begin(), l.end(), 0.0f);
      const int64_t kend = p.causal ? std::min(lk, i0 + rows) : lk;
      const float* ktd = kt.data() + bh * d * lk_pad;
      const float* vpd = vp.data() + bh * lk_pad * dv_pad;
      for (int64_t j0 = 0; j0 < kend; j0 += kKeyBlock) {
        const int64_t kb = std::min(kKeyBlock, kend - j0), cols = round16(kb);
        kern.qk_tile(qs.data(), d, ktd + j0, lk_pad, s.data(), kKeyBlock, rows, cols, d);
        for (int64_t r = 0; r < rows; ++r) {
          float* sr = s.data() + r * kKeyBlock;
          // keys past the end (padding) and, when causal, keys after the query are masked
          const int64_t valid = p.causal ? std::min(kb, i0 + r + 1 - j0) : kb;
          for (int64_t c = std::max<int64_t>(valid, 0); c < cols; ++c) sr[c] = neg_inf;
          corr[r] = kern.softmax_online(sr, cols, &m[r], &l[r]);
        }
        kern.pv_tile(s.data(), kKeyBlock, vpd + j0 * dv_pad, dv_pad, o.data(), dv_pad, corr.data(), rows, cols,
                     dv_pad);
      }
      for (int64_t r = 0; r < rows; ++r) {
        float* dst = po + (b * lq + i0 + r) * nh * dv + h * dv;
        const float inv = 1.0f / l[r];
        for (int64_t t = 0; t < dv; ++t) dst[t] = o[r * dv_pad + t] * inv;
      }
    }
  });
  return cpu::from_f32_result(out, q0.dtype());
}

}  // namespace a2f
