// Memory-efficient fused attention (flash-style): per (batch, head, block of 48 queries) task, loop over
// blocks of keys computing the score tile, an online softmax (running max and sum per row) and the P·V
// update, so only a 48 x 128 score tile exists at a time. K is packed transposed and V padded per head once
// per call. bf16 inputs take a bf16 path (bf16 dot products, f32 softmax and accumulation).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/cpu_alloc.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_util.h"
#include "backends/ref/ref_util.h"
#include "core/parallel.h"

namespace a2f {

namespace {
constexpr int64_t kKeyBlock = 128;
// Queries per task: 48 for small heads (UNet 40, CLIP 64); 96 for wide ones (VAE 512), where the longer score
// rows amortise better (measured 5-10% faster there, slower on the UNet shapes).
int64_t query_block(int64_t d) {
  return d >= 256 ? 96 : 48;
}
int64_t round16(int64_t n) {
  return (n + 15) / 16 * 16;
}
Tensor zeroed(const Shape& shape, DType dt) {
  Tensor t = cpu::new_tensor(shape, dt);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}
}  // namespace

namespace {
// The bf16 path: q, k, v bf16; K, V and the probabilities packed in bf16 pairs for the dot-product tiles;
// scores, softmax statistics and the output accumulator stay f32.
Tensor attention_bf16(const cpu::Kernels& kern, const Tensor& q0, const Tensor& k0, const Tensor& v0,
                      const AttentionParams& p) {
  const Tensor q = q0.contiguous(), k = k0.contiguous(), v = v0.contiguous();
  const int64_t bsz = q.dim(0), lq = q.dim(1), lk = k.dim(1), nh = p.heads;
  const int64_t d = q.dim(2) / nh, dv = v.dim(2) / nh, d2 = (d + 1) / 2, qblock = query_block(d);
  const int64_t lk_pad = round16(lk), dv_pad = round16(dv);
  const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d));

  // K as [B*H][d2][Lk_pad][2], V as [B*H][Lk_pad/2][Dv_pad][2]; zero padded.
  Tensor kt_t = zeroed({bsz * nh * d2 * lk_pad * 2}, DType::BF16),
         vp_t = zeroed({bsz * nh * lk_pad * dv_pad}, DType::BF16);
  uint16_t* kt = kt_t.data<uint16_t>();
  uint16_t* vp = vp_t.data<uint16_t>();
  const uint16_t* pk = k.data<uint16_t>();
  const uint16_t* pv = v.data<uint16_t>();
  parallel_for(bsz * nh, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      const int64_t b = bh / nh, h = bh % nh;
      uint16_t* ktd = kt + bh * d2 * lk_pad * 2;
      uint16_t* vpd = vp + bh * lk_pad * dv_pad;
      for (int64_t j = 0; j < lk; ++j) {
        const uint16_t* kr = pk + (b * lk + j) * nh * d + h * d;
        for (int64_t t = 0; t < d; ++t) ktd[((t / 2) * lk_pad + j) * 2 + t % 2] = kr[t];
        const uint16_t* vr = pv + (b * lk + j) * nh * dv + h * dv;
        for (int64_t c = 0; c < dv; ++c) vpd[((j / 2) * dv_pad + c) * 2 + j % 2] = vr[c];
      }
    }
  });

  Tensor out = cpu::new_tensor({bsz, lq, nh * dv}, DType::BF16);
  uint16_t* po = out.data<uint16_t>();
  const uint16_t* pq = q.data<uint16_t>();
  const int64_t qblocks = (lq + qblock - 1) / qblock;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  parallel_for(bsz * nh * qblocks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<uint32_t> q2(qblock * d2), p2(qblock * kKeyBlock / 2);
    std::vector<float> s(qblock * kKeyBlock), o(qblock * dv_pad), m(qblock), l(qblock);
    std::vector<float> corr(qblock);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t bh = task / qblocks, b = bh / nh, h = bh % nh;
      const int64_t i0 = (task % qblocks) * qblock, rows = std::min(qblock, lq - i0);
      for (int64_t r = 0; r < rows; ++r) {
        const uint16_t* qr = pq + (b * lq + i0 + r) * nh * d + h * d;
        for (int64_t t = 0; t < d2; ++t) {
          const uint32_t lo = qr[2 * t], hi = 2 * t + 1 < d ? qr[2 * t + 1] : 0;
          q2[r * d2 + t] = lo | (hi << 16);
        }
      }
      std::fill(o.begin(), o.end(), 0.0f);
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(l.begin(), l.end(), 0.0f);
      const int64_t kend = p.causal ? std::min(lk, i0 + rows) : lk;
      const uint16_t* ktd = kt + bh * d2 * lk_pad * 2;
      const uint16_t* vpd = vp + bh * lk_pad * dv_pad;
      for (int64_t j0 = 0; j0 < kend; j0 += kKeyBlock) {
        const int64_t kb = std::min(kKeyBlock, kend - j0), cols = round16(kb);
        kern.qk_tile_bf16(q2.data(), d2, ktd + j0 * 2, lk_pad, s.data(), kKeyBlock, rows, cols, d2, scale);
        for (int64_t r = 0; r < rows; ++r) {
          float* sr = s.data() + r * kKeyBlock;
          const int64_t valid = p.causal ? std::min(kb, i0 + r + 1 - j0) : kb;
          for (int64_t c = std::max<int64_t>(valid, 0); c < cols; ++c) sr[c] = neg_inf;
          corr[r] = kern.softmax_online(sr, cols, &m[r], &l[r]);
          kern.to_bf16(sr, reinterpret_cast<uint16_t*>(p2.data() + r * kKeyBlock / 2), cols);
        }
        kern.pv_tile_bf16(p2.data(), kKeyBlock / 2, vpd + (j0 / 2) * dv_pad * 2, dv_pad, o.data(), dv_pad,
                          corr.data(), rows, cols / 2, dv_pad);
      }
      for (int64_t r = 0; r < rows; ++r) {
        float* orow = o.data() + r * dv_pad;
        const float inv = 1.0f / l[r];
        for (int64_t t = 0; t < dv; ++t) orow[t] *= inv;
        kern.to_bf16(orow, po + (b * lq + i0 + r) * nh * dv + h * dv, dv);
      }
    }
  });
  return out;
}
}  // namespace

Tensor CpuBackend::attention(const Tensor& q0, const Tensor& k0, const Tensor& v0, const AttentionParams& p) {
  const ScopedNumThreads nt(threads_);
  ref::attention_check(q0, k0, v0, p);
  if (q0.dtype() == DType::BF16 && k0.dtype() == DType::BF16 && v0.dtype() == DType::BF16)
    return attention_bf16(*k_, q0, k0, v0, p);
  const Tensor q = cpu::to_f32_contiguous(q0), k = cpu::to_f32_contiguous(k0), v = cpu::to_f32_contiguous(v0);
  const int64_t bsz = q.dim(0), lq = q.dim(1), lk = k.dim(1), nh = p.heads;
  const int64_t d = q.dim(2) / nh, dv = v.dim(2) / nh, qblock = query_block(d);
  const int64_t lk_pad = round16(lk), dv_pad = round16(dv);
  const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d));
  const cpu::Kernels& kern = *k_;

  // K^T per head: [B*H][D][Lk_pad]; V per head: [B*H][Lk_pad][Dv_pad]; zero padded.
  Tensor kt_t = zeroed({bsz * nh * d * lk_pad}, DType::F32),
         vp_t = zeroed({bsz * nh * lk_pad * dv_pad}, DType::F32);
  float* kt = kt_t.data<float>();
  float* vp = vp_t.data<float>();
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  parallel_for(bsz * nh, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      const int64_t b = bh / nh, h = bh % nh;
      float* ktd = kt + bh * d * lk_pad;
      float* vpd = vp + bh * lk_pad * dv_pad;
      for (int64_t j = 0; j < lk; ++j) {
        const float* kr = pk + (b * lk + j) * nh * d + h * d;
        for (int64_t t = 0; t < d; ++t) ktd[t * lk_pad + j] = kr[t];
        std::copy(pv + (b * lk + j) * nh * dv + h * dv, pv + (b * lk + j) * nh * dv + h * dv + dv,
                  vpd + j * dv_pad);
      }
    }
  });

  Tensor out = cpu::new_tensor({bsz, lq, nh * dv}, DType::F32);
  float* po = out.data<float>();
  const float* pq = q.data<float>();
  const int64_t qblocks = (lq + qblock - 1) / qblock;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  parallel_for(bsz * nh * qblocks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> qs(qblock * d), s(qblock * kKeyBlock), o(qblock * dv_pad);
    std::vector<float> m(qblock), l(qblock), corr(qblock);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t bh = task / qblocks, b = bh / nh, h = bh % nh;
      const int64_t i0 = (task % qblocks) * qblock, rows = std::min(qblock, lq - i0);
      for (int64_t r = 0; r < rows; ++r) {
        const float* qr = pq + (b * lq + i0 + r) * nh * d + h * d;
        for (int64_t t = 0; t < d; ++t) qs[r * d + t] = qr[t] * scale;
      }
      std::fill(o.begin(), o.end(), 0.0f);
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(l.begin(), l.end(), 0.0f);
      const int64_t kend = p.causal ? std::min(lk, i0 + rows) : lk;
      const float* ktd = kt + bh * d * lk_pad;
      const float* vpd = vp + bh * lk_pad * dv_pad;
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
        kern.pv_tile(s.data(), kKeyBlock, vpd + j0 * dv_pad, dv_pad, o.data(), dv_pad, corr.data(), rows,
                     cols, dv_pad);
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
