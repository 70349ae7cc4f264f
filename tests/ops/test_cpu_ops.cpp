// The CPU backend against the reference backend: every op, odd shapes, broadcasts, non-contiguous inputs,
// f32 and bf16; the kernel-table ops once per ISA this CPU supports (generic, avx2, avx512).
//
// NMSE bounds (sum (cpu - ref)^2 / sum ref^2):
// - kF32Exact 0: layout ops copy values.
// - kF32Sum 1e-10: f32 results that differ from the reference (double sums) only by f32 rounding and
// summation
//   order; K-term f32 sums have relative error ~ sqrt(K) 2^-24, so NMSE ~ K 2^-48 = 1e-11 for K = 2880.
// - kF32Approx 1e-11: our vectorised exp / erf are within ~2 ulp (exp) / 1.5e-7 absolute (erf).
// - kBf16 5e-5: bf16 compute rounds the activation to bf16 (rms relative error 2^-9 / sqrt 3 = 1.1e-3,
//   NMSE ~1.3e-6) and bf16 outputs round again; fused SiLU / GELU / QuickGELU shrink negative outputs more
//   than their errors, and some cases have only 30 outputs: measured up to 1e-5. A wrong kernel (one missing
//   channel of 320 already gives 3e-3) is far above.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "backends/cpu/cpu_alloc.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "ops/cpu_isa_test.h"
#include "ops/op_util.h"

namespace {
using a2f::Act;
using a2f::BinaryOp;
using a2f::DType;
using a2f::Shape;
using a2f::Tensor;
using a2f::test::nmse;
using a2f::test::non_contiguous;
using a2f::test::randn;

constexpr double kF32Sum = 1e-10;
constexpr double kF32Approx = 1e-11;
constexpr double kBf16 = 5e-5;

const Act kActs[] = {Act::None,     Act::Relu,      Act::Silu,   Act::GeluErf,
                     Act::GeluTanh, Act::QuickGelu, Act::Sigmoid};

class CpuOps : public ::testing::Test {
 protected:
  std::unique_ptr<a2f::Backend> ref = a2f::make_ref_backend();
  std::unique_ptr<a2f::Backend> cpu = a2f::make_cpu_backend();
};

// --- Dense ops (oneDNN; independent of our ISA tables) ---

struct ConvCase {
  Shape x, w;
  int stride_h, stride_w, pt, pl, pb, pr, dil_h, dil_w, groups;
  bool bias;
};

TEST_F(CpuOps, Conv2dMatchesRef) {
  const ConvCase cases[] = {
      {{1, 7, 3, 5}, {23, 7, 3, 3}, 1, 1, 1, 1, 1, 1, 1, 1, 1, true},
      {{2, 320, 5, 5}, {320, 320, 3, 3}, 1, 1, 1, 1, 1, 1, 1, 1, 1, true},
      {{2, 16, 9, 7}, {8, 16, 3, 3}, 2, 2, 0, 0, 1, 1, 1, 1, 1, true},    // Downsample2D-style asymmetric pad
      {{1, 23, 6, 7}, {23, 1, 3, 3}, 1, 2, 1, 1, 1, 1, 1, 1, 23, false},  // depthwise
      {{1, 12, 8, 8}, {6, 4, 3, 2}, 1, 1, 2, 1, 0, 2, 2, 2, 3, true},     // groups + dilation + odd pads
      {{2, 77, 3, 5}, {1, 77, 1, 1}, 1, 1, 0, 0, 0, 0, 1, 1, 1, true},    // 1x1 to one channel
  };
  int i = 0;
  for (const ConvCase& c : cases) {
    a2f::Conv2dParams p;
    p.stride_h = c.stride_h;
    p.stride_w = c.stride_w;
    p.pad_top = c.pt;
    p.pad_left = c.pl;
    p.pad_bottom = c.pb;
    p.pad_right = c.pr;
    p.dilation_h = c.dil_h;
    p.dilation_w = c.dil_w;
    p.groups = c.groups;
    p.act = kActs[i % 7];
    const Tensor x = randn(c.x, 10 + i), w = randn(c.w, 20 + i, 0.2f);
    const Tensor b = c.bias ? randn({c.w[0]}, 30 + i) : Tensor();
    const Tensor r = ref->conv2d(x, w, b, p);
    const Tensor y = cpu->conv2d(x, w, b, p);
    ASSERT_EQ(y.shape(), r.shape()) << "case " << i;
    EXPECT_LE(nmse(y, r), kF32Sum) << "case " << i;
    // Same again: cached primitive and weights.
    EXPECT_EQ(cpu->conv2d(x, w, b, p).to_vector(), y.to_vector()) << "case " << i;
    // Non-contiguous input.
    EXPECT_LE(nmse(cpu->conv2d(non_contiguous(x), w, b, p), r), kF32Sum) << "case " << i;
    // bf16 weights (f32 activations), and bf16 activations + bf16 weights.
    const Tensor wb = w.to(DType::BF16);
    const Tensor rb = ref->conv2d(x, wb, b, p);
    const Tensor yb = cpu->conv2d(x, wb, b, p);
    EXPECT_EQ(yb.dtype(), DType::F32);
    EXPECT_LE(nmse(yb, rb), kBf16) << "case " << i;
    const Tensor ybb = cpu->conv2d(x.to(DType::BF16), wb, b, p);
    EXPECT_EQ(ybb.dtype(), DType::BF16);
    EXPECT_LE(nmse(ybb, ref->conv2d(x.to(DType::BF16), wb, b, p)), kBf16) << "case " << i;
    ++i;
  }
}

TEST_F(CpuOps, Conv2dWinogradMatchesRef) {
  // oneDNN's f32 Winograd F(2x2 / 4x4, 3x3) for 3x3 stride-1 convolutions: measured NMSE <= 1.4e-12 against
  // the reference (direct: ~3e-13), inside the f32 bound. Used from 16x16 outputs (f32) / 32x32 (bf16
  // inputs).
  a2f::CpuBackend wcpu;
  wcpu.set_winograd_max_weight_bytes(SIZE_MAX);
  const std::pair<Shape, Act> cases[] = {{{1, 32, 17, 19}, Act::None},  // f32 only
                                         {{2, 64, 16, 16}, Act::Relu},  // f32 only
                                         {{1, 16, 40, 32}, Act::None},  // f32 and bf16
                                         {{2, 32, 8, 8}, Act::None},    // too small: direct
                                         {{1, 7, 5, 3}, Act::None}};    // direct
  int i = 0;
  for (const auto& [xs, act] : cases) {
    a2f::Conv2dParams p = a2f::Conv2dParams::same(1, 1);
    p.act = act;
    const Tensor x = randn(xs, 700 + i), w = randn({xs[1], xs[1], 3, 3}, 710 + i, 0.1f),
                 b = randn({xs[1]}, 720 + i);
    const Tensor y = wcpu.conv2d(x, w, b, p);
    EXPECT_LE(nmse(y, ref->conv2d(x, w, b, p)), kF32Sum) << "case " << i;
    const bool avx512 = a2f::cpu::isa_supported(a2f::cpu::Isa::Avx512) && xs[1] % 16 == 0;
    const int64_t pixels = xs[2] * xs[3];
    const std::string impl = wcpu.conv_impl(x, w, true, p);
    if (avx512) {
      EXPECT_EQ(impl.find("wino") != std::string::npos, pixels >= 256) << "case " << i << ": " << impl;
    }
    // bf16 inputs take the same f32 Winograd (widened exactly) on large images; only the bf16 output rounds.
    const Tensor xb = x.to(DType::BF16), wb = w.to(DType::BF16);
    const Tensor yb = wcpu.conv2d(xb, wb, b, p);
    EXPECT_EQ(yb.dtype(), DType::BF16);
    EXPECT_LE(nmse(yb, ref->conv2d(xb, wb, b, p)), kBf16) << "case " << i;
    const std::string impl_b = wcpu.conv_impl(xb, wb, true, p);
    if (avx512) {
      EXPECT_EQ(impl_b.find("wino") != std::string::npos, pixels >= 1024) << "case " << i << ": " << impl_b;
    }
    ++i;
  }
  // The default backend uses direct convolution.
  const Tensor x = randn({1, 16, 40, 32}, 730), w = randn({16, 16, 3, 3}, 731, 0.1f);
  a2f::CpuBackend dcpu;
  dcpu.conv2d(x, w, Tensor(), a2f::Conv2dParams::same(1, 1));
  if (!std::getenv("A2F_CPU_WINOGRAD")) {
    EXPECT_EQ(dcpu.conv_impl(x, w, false, a2f::Conv2dParams::same(1, 1)).find("wino"), std::string::npos);
  }
}

TEST_F(CpuOps, Conv2dFewInputChannelsAvoidsTheReferenceKernel) {
  // SCRFD's stem: 3 -> 28 channels, 3x3 stride 2 on the 640x640 detector input (and ArcFace's 3 -> 64 3x3
  // stride 1 at 112x112). oneDNN has jit kernels for plain-layout inputs with few channels; a blocked input
  // layout (nChw16c) would pad 3 channels to 16 and fall to its slow reference kernel (~8x slower detection).
  a2f::CpuBackend c;
  struct Stem {
    Shape x, w;
    int stride;
  };
  for (const Stem& st :
       {Stem{{1, 3, 640, 640}, {28, 3, 3, 3}, 2}, Stem{{1, 3, 112, 112}, {64, 3, 3, 3}, 1}}) {
    a2f::Conv2dParams p = a2f::Conv2dParams::same(st.stride, 1);
    p.act = Act::Relu;
    const Tensor x = randn(st.x, 40), w = randn(st.w, 41, 0.2f), b = randn({st.w[0]}, 42);
    c.conv2d(x, w, b, p);
    const std::string impl = c.conv_impl(x, w, true, p);
    EXPECT_FALSE(impl.empty());
    EXPECT_EQ(impl.find("ref"), std::string::npos) << impl;
    // Values on a corner of the image (the reference convolution of all of it takes a while).
    const Tensor xs = ref->slice(ref->slice(x, 2, 0, 48), 3, 0, 40);
    EXPECT_LE(nmse(c.conv2d(xs, w, b, p), ref->conv2d(xs, w, b, p)), kF32Sum);
  }
}

TEST_F(CpuOps, Conv2dWeightCacheFollowsTheStorage) {
  // A new weight tensor (maybe at a freed one's address) is never served a stale cached reorder.
  const Tensor x = randn({1, 7, 5, 5}, 1);
  for (int i = 0; i < 4; ++i) {
    const Tensor w = randn({5, 7, 3, 3}, 100 + i);
    EXPECT_LE(nmse(cpu->conv2d(x, w, Tensor(), a2f::Conv2dParams::same(1, 1)),
                   ref->conv2d(x, w, Tensor(), a2f::Conv2dParams::same(1, 1))),
              kF32Sum);
  }
  // In-place change + release_caches.
  Tensor w = randn({5, 7, 3, 3}, 7);
  const Tensor y0 = cpu->conv2d(x, w, Tensor(), {});
  w.data<float>()[0] += 1.0f;
  cpu->release_caches();
  EXPECT_LE(nmse(cpu->conv2d(x, w, Tensor(), {}), ref->conv2d(x, w, Tensor(), {})), kF32Sum);
  EXPECT_GT(nmse(cpu->conv2d(x, w, Tensor(), {}), y0), 0.0);
}

TEST_F(CpuOps, LinearMatchesRef) {
  struct L {
    Shape x;
    int64_t n;
    bool bias;
  };
  const L cases[] = {
      {{1, 7}, 23, true}, {{2, 77, 320}, 1280, true}, {{3, 5, 23}, 1, false}, {{77, 768}, 7, true}};
  int i = 0;
  for (const L& c : cases) {
    const Act act = kActs[(i * 3) % 7];
    const Tensor x = randn(c.x, 40 + i), w = randn({c.n, c.x.back()}, 50 + i, 0.1f);
    const Tensor b = c.bias ? randn({c.n}, 60 + i) : Tensor();
    const Tensor r = ref->linear(x, w, b, act);
    const Tensor y = cpu->linear(x, w, b, act);
    ASSERT_EQ(y.shape(), r.shape());
    EXPECT_LE(nmse(y, r), kF32Sum) << "case " << i;
    EXPECT_LE(nmse(cpu->linear(non_contiguous(x), non_contiguous(w), b, act), r), kF32Sum) << "case " << i;
    const Tensor wb = w.to(DType::BF16);
    EXPECT_LE(nmse(cpu->linear(x, wb, b, act), ref->linear(x, wb, b, act)), kBf16) << "case " << i;
    const Tensor yb = cpu->linear(x.to(DType::BF16), wb, b, act);
    EXPECT_EQ(yb.dtype(), DType::BF16);
    EXPECT_LE(nmse(yb, ref->linear(x.to(DType::BF16), wb, b, act)), kBf16) << "case " << i;
    EXPECT_EQ(cpu->linear(x.to(DType::F16), w, b, act).dtype(), DType::F16);
    ++i;
  }
}

TEST_F(CpuOps, MatmulMatchesRef) {
  struct M {
    Shape a, b;
    bool tb;
    float alpha;
  };
  const M cases[] = {{{7, 23}, {23, 5}, false, 1.0f},
                     {{2, 1, 7, 23}, {3, 23, 5}, false, 0.5f},
                     {{3, 77, 40}, {3, 77, 40}, true, 0.125f},
                     {{1, 320}, {2, 320, 7}, false, 1.0f},
                     {{2, 3, 1, 8}, {2, 1, 9, 8}, true, 2.0f}};
  int i = 0;
  for (const M& c : cases) {
    const Tensor a = randn(c.a, 70 + i), b = randn(c.b, 80 + i);
    const Tensor r = ref->matmul(a, b, c.tb, c.alpha);
    const Tensor y = cpu->matmul(a, b, c.tb, c.alpha);
    ASSERT_EQ(y.shape(), r.shape()) << "case " << i;
    EXPECT_LE(nmse(y, r), kF32Sum) << "case " << i;
    EXPECT_LE(nmse(cpu->matmul(non_contiguous(a), non_contiguous(b), c.tb, c.alpha), r), kF32Sum)
        << "case " << i;
    const Tensor bb = b.to(DType::BF16);
    EXPECT_LE(nmse(cpu->matmul(a, bb, c.tb, c.alpha), ref->matmul(a, bb, c.tb, c.alpha)), kBf16)
        << "case " << i;
    ++i;
  }
  EXPECT_THROW(cpu->matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5})), a2f::Error);
}

TEST_F(CpuOps, EmptyTensors) {
  // Zero-length reductions give the bias (or zero), like the reference.
  const Tensor b = randn({3}, 1);
  EXPECT_EQ(cpu->linear(Tensor::zeros({2, 0}), Tensor::zeros({3, 0}), b).to_vector(),
            ref->linear(Tensor::zeros({2, 0}), Tensor::zeros({3, 0}), b).to_vector());
  A2F_EXPECT_SHAPE(cpu->linear(Tensor::zeros({0, 4}), Tensor::zeros({3, 4}), b), 0, 3);
  EXPECT_EQ(cpu->matmul(Tensor::zeros({2, 0}), Tensor::zeros({0, 3})).to_vector(),
            std::vector<float>(6, 0.0f));
  A2F_EXPECT_SHAPE(cpu->group_norm(Tensor::zeros({0, 4, 2}), 2, Tensor(), Tensor(), 1e-5f), 0, 4, 2);
  a2f::AttentionParams p;
  A2F_EXPECT_SHAPE(
      cpu->attention(Tensor::zeros({1, 0, 8}), Tensor::zeros({1, 3, 8}), Tensor::zeros({1, 3, 8}), p), 1, 0,
      8);
}

// --- Layout ops (dtype-preserving copies) ---

TEST_F(CpuOps, LayoutOpsMatchRef) {
  for (DType dt : {DType::F32, DType::BF16}) {
    const Tensor x = randn({2, 7, 3, 5}, 90, 1.0f, 0.0f, dt);
    const Tensor nc = non_contiguous(x);
    for (const std::vector<int>& perm : {std::vector<int>{0, 2, 3, 1}, {3, 2, 1, 0}, {0, 1, 2, 3}}) {
      const Tensor y = cpu->permute(nc, perm);
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_EQ(y.shape(), ref->permute(x, perm).shape());
      EXPECT_EQ(y.to_vector(), ref->permute(x, perm).to_vector());
    }
    const Tensor z = randn({2, 4, 3, 5}, 91, 1.0f, 0.0f, dt);
    EXPECT_EQ(cpu->concat({x, nc, z}, 1).to_vector(), ref->concat({x, nc, z}, 1).to_vector());
    EXPECT_EQ(cpu->concat({x, nc}, -1).to_vector(), ref->concat({x, nc}, -1).to_vector());
    EXPECT_EQ(cpu->concat({x, x}, 0).dtype(), dt);
    EXPECT_EQ(cpu->slice(nc, 1, 2, 6).to_vector(), ref->slice(x, 1, 2, 6).to_vector());
    EXPECT_EQ(cpu->slice(x, -1, -4, 100, 2).to_vector(), ref->slice(x, -1, -4, 100, 2).to_vector());
    EXPECT_EQ(cpu->upsample_nearest(nc, 6, 10).to_vector(), ref->upsample_nearest(x, 6, 10).to_vector());
    EXPECT_EQ(cpu->upsample_nearest(x, 7, 4).to_vector(), ref->upsample_nearest(x, 7, 4).to_vector());
    for (DType to : {DType::F32, DType::BF16, DType::F16}) {
      const Tensor c = cpu->cast(nc, to);
      EXPECT_EQ(c.dtype(), to);
      EXPECT_EQ(c.to_vector(), ref->cast(x, to).to_vector());
    }
  }
}

TEST_F(CpuOps, LargeOutputBlocksAreRecycled) {
  a2f::cpu::release_idle_blocks();
  const Tensor x = randn({1024, 1024}, 900);  // 4 MiB
  const void* first;
  {
    const Tensor y = cpu->scale(x, 2.0f);
    first = y.raw_data();
    EXPECT_EQ(a2f::cpu::idle_block_bytes(), 0u);
  }
  EXPECT_EQ(a2f::cpu::idle_block_bytes(), size_t(4) << 20);
  const Tensor z = cpu->scale(x, 3.0f);  // same size class: the same block, warm
  EXPECT_EQ(z.raw_data(), first);
  EXPECT_EQ(a2f::cpu::idle_block_bytes(), 0u);
  EXPECT_EQ(z.to_vector(), ref->scale(x, 3.0f).to_vector());
  // A tensor may outlive the backend that made it.
  Tensor kept;
  {
    auto b = a2f::make_cpu_backend();
    kept = b->scale(x, 4.0f);
  }
  EXPECT_EQ(kept.to_vector()[5], 4.0f * x.to_vector()[5]);
  cpu->release_caches();
  EXPECT_EQ(a2f::cpu::idle_block_bytes(), 0u);
}

TEST_F(CpuOps, TrimMemoryFreesIdleBlocksButKeepsCachedWeights) {
  a2f::cpu::release_idle_blocks();
  const Tensor x = randn({1, 16, 64, 64}, 910), w = randn({16, 16, 3, 3}, 911);
  const Tensor y0 = cpu->conv2d(x, w, Tensor(), a2f::Conv2dParams::same(1, 1));
  { const Tensor y = cpu->scale(randn({1024, 1024}, 912), 2.0f); }  // 4 MiB block, now idle
  EXPECT_GE(a2f::cpu::idle_block_bytes(), size_t(4) << 20);
  cpu->trim_memory();
  EXPECT_EQ(a2f::cpu::idle_block_bytes(), 0u);
  // The reordered weight is still cached: a change of w in place is not seen until release_caches().
  w.data<float>()[0] += 1.0f;
  EXPECT_EQ(cpu->conv2d(x, w, Tensor(), a2f::Conv2dParams::same(1, 1)).to_vector(), y0.to_vector());
  cpu->release_caches();
  EXPECT_NE(cpu->conv2d(x, w, Tensor(), a2f::Conv2dParams::same(1, 1)).to_vector(), y0.to_vector());
}

TEST_F(CpuOps, InheritedOpsMatchRef) {
  // Ops the CPU backend takes from the reference backend (small in every model): same results.
  const Tensor x = randn({2, 7, 5, 7}, 800);
  EXPECT_EQ(cpu->prelu(x, randn({7}, 801)).to_vector(), ref->prelu(x, randn({7}, 801)).to_vector());
  const Tensor var = cpu->unary(Act::Relu, randn({7}, 802)), mean = randn({7}, 803);
  EXPECT_EQ(cpu->batch_norm(x, mean, var, randn({7}, 804), Tensor(), 1e-3f).to_vector(),
            ref->batch_norm(x, mean, var, randn({7}, 804), Tensor(), 1e-3f).to_vector());
  a2f::Pool2dParams pp;
  pp.kernel_h = pp.kernel_w = 3;
  pp.pad_top = pp.pad_left = pp.pad_bottom = pp.pad_right = 1;
  pp.ceil_mode = true;
  EXPECT_EQ(cpu->pool2d(x, pp).to_vector(), ref->pool2d(x, pp).to_vector());
  const Tensor t = Tensor::from_data({3}, std::vector<float>{999, 500.5f, 0});
  EXPECT_EQ(cpu->timestep_embedding(t, 320, true, 0.0f).to_vector(),
            ref->timestep_embedding(t, 320, true, 0.0f).to_vector());
  Tensor ids = Tensor::empty({2}, DType::I64);
  ids.data<int64_t>()[0] = 3;
  ids.data<int64_t>()[1] = 0;
  const Tensor table = randn({5, 23}, 805);
  EXPECT_EQ(cpu->embedding(ids, table).to_vector(), ref->embedding(ids, table).to_vector());
}

// --- Kernel-table ops, once per ISA ---

class CpuIsaOps : public a2f::test::CpuIsaTest {};

TEST_P(CpuIsaOps, UnaryScaleGeglu) {
  const Tensor x = randn({7, 23}, 1, 4.0f);
  for (Act a : kActs) {
    EXPECT_LE(nmse(cpu->unary(a, x), ref->unary(a, x)), kF32Approx) << a2f::act_name(a);
    EXPECT_LE(nmse(cpu->unary(a, non_contiguous(x)), ref->unary(a, x)), kF32Approx) << a2f::act_name(a);
    const Tensor xb = x.to(DType::BF16);
    const Tensor yb = cpu->unary(a, xb);
    EXPECT_EQ(yb.dtype(), DType::BF16);
    EXPECT_LE(nmse(yb, ref->unary(a, xb)), kBf16) << a2f::act_name(a);
  }
  // extremes: saturation without NaN
  const Tensor big = Tensor::from_data({6}, std::vector<float>{-200, -90, -20, 20, 90, 200});
  for (Act a : kActs) EXPECT_LE(nmse(cpu->unary(a, big), ref->unary(a, big)), kF32Approx) << a2f::act_name(a);
  EXPECT_LE(nmse(cpu->scale(x, -0.7f, 0.25f), ref->scale(x, -0.7f, 0.25f)), kF32Approx);
  const Tensor g = randn({2, 7, 46}, 2, 3.0f);
  EXPECT_LE(nmse(cpu->geglu(g), ref->geglu(g)), kF32Approx);
  EXPECT_LE(nmse(cpu->geglu(non_contiguous(g)), ref->geglu(g)), kF32Approx);
  const Tensor g2 = randn({3, 2 * 1280}, 3, 2.0f);
  EXPECT_LE(nmse(cpu->geglu(g2), ref->geglu(g2)), kF32Approx);
}

TEST_P(CpuIsaOps, BinaryBroadcastPatterns) {
  const std::pair<Shape, Shape> cases[] = {
      {{2, 320, 3, 5}, {2, 320, 3, 5}},  // same shape
      {{2, 320, 3, 5}, {2, 320, 1, 1}},  // + temb per channel
      {{2, 77, 320}, {320}},             // + bias over the last dim
      {{7, 23}, {1}},                    // scalar
      {{1, 5}, {3, 1}},                  // both broadcast
      {{3, 1, 7}, {1, 5, 1}},            // inner scalar, outer vector
      {{1}, {7, 23}},                    // scalar a
      {{1}, {1}},
  };
  int i = 0;
  for (const auto& [sa, sb] : cases) {
    const Tensor a = randn(sa, 100 + i), b = randn(sb, 200 + i, 1.0f, 3.0f);  // b away from 0 for Div
    for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
      const Tensor r = ref->binary(op, a, b);
      const Tensor y = cpu->binary(op, a, b);
      ASSERT_EQ(y.shape(), r.shape()) << "case " << i;
      EXPECT_EQ(y.to_vector(), r.to_vector()) << "case " << i << " op " << int(op);  // one f32 op: exact
      EXPECT_EQ(cpu->binary(op, non_contiguous(a), non_contiguous(b)).to_vector(), r.to_vector())
          << "case " << i;
      const Tensor yb = cpu->binary(op, a.to(DType::BF16), b);
      EXPECT_EQ(yb.dtype(), DType::BF16);
      EXPECT_EQ(yb.to_vector(), ref->binary(op, a.to(DType::BF16), b).to_vector()) << "case " << i;
    }
    ++i;
  }
  EXPECT_THROW(cpu->add(Tensor::zeros({2, 3}), Tensor::zeros({4})), a2f::Error);
}

TEST_P(CpuIsaOps, Norms) {
  struct G {
    Shape x;
    int groups;
    Act act;
  };
  const G gcases[] = {{{2, 320, 3, 5}, 32, Act::Silu},
                      {{1, 7, 23}, 7, Act::None},
                      {{2, 64, 1, 1}, 32, Act::Silu},
                      {{1, 23, 77}, 1, Act::GeluErf}};
  int i = 0;
  for (const G& c : gcases) {
    const Tensor x = randn(c.x, 300 + i, 2.0f, 5.0f);  // offset mean: the variance must be centred
    const Tensor g = randn({c.x[1]}, 310 + i, 0.5f, 1.0f), b = randn({c.x[1]}, 320 + i);
    EXPECT_LE(nmse(cpu->group_norm(x, c.groups, g, b, 1e-5f, c.act),
                   ref->group_norm(x, c.groups, g, b, 1e-5f, c.act)),
              kF32Approx)
        << "case " << i;
    EXPECT_LE(nmse(cpu->group_norm(non_contiguous(x), c.groups, Tensor(), Tensor(), 1e-6f),
                   ref->group_norm(x, c.groups, Tensor(), Tensor(), 1e-6f)),
              kF32Approx)
        << "case " << i;
    const Tensor xb = x.to(DType::BF16);
    EXPECT_LE(nmse(cpu->group_norm(xb, c.groups, g, b, 1e-5f, c.act),
                   ref->group_norm(xb, c.groups, g, b, 1e-5f, c.act)),
              kBf16)
        << "case " << i;
    ++i;
  }
  for (const Shape& s : {Shape{2, 77, 320}, Shape{3, 7}, Shape{1, 768}, Shape{5, 1}}) {
    const Tensor x = randn(s, 400, 3.0f, -2.0f);
    const Tensor g = randn({s.back()}, 401), b = randn({s.back()}, 402);
    EXPECT_LE(nmse(cpu->layer_norm(x, g, b, 1e-5f), ref->layer_norm(x, g, b, 1e-5f)), kF32Approx);
    EXPECT_LE(
        nmse(cpu->layer_norm(non_contiguous(x), Tensor(), b, 1e-5f), ref->layer_norm(x, Tensor(), b, 1e-5f)),
        kF32Approx);
    EXPECT_LE(nmse(cpu->layer_norm(x.to(DType::BF16), g, b, 1e-5f),
                   ref->layer_norm(x.to(DType::BF16), g, b, 1e-5f)),
              kBf16);
  }
  for (const Shape& s : {Shape{7, 23}, Shape{2, 3, 77}, Shape{4, 1}, Shape{2, 4096}}) {
    const Tensor x = randn(s, 500, 8.0f, 50.0f);  // large values: max subtraction
    EXPECT_LE(nmse(cpu->softmax(x), ref->softmax(x)), kF32Approx);
    EXPECT_LE(nmse(cpu->softmax(non_contiguous(x)), ref->softmax(x)), kF32Approx);
  }
}

TEST_P(CpuIsaOps, AttentionMatchesRef) {
  struct A {
    int64_t b, lq, lk, heads, d, dv;
    bool causal;
    float scale;
  };
  const A cases[] = {
      {2, 77, 77, 3, 8, 8, true, 0.0f},         // CLIP-like, causal, 16-wide heads after padding
      {2, 100, 77, 8, 40, 40, false, 0.0f},     // UNet cross-attention head size
      {1, 130, 130, 1, 512, 512, false, 0.0f},  // VAE-like single head
      {1, 70, 70, 2, 64, 64, true, 0.3f},       // 64-wide heads, causal with a block boundary
      {2, 1, 1, 1, 5, 24, false, 0.0f},         // one key
      {1, 65, 129, 4, 16, 32, false, 0.0f},
  };
  int i = 0;
  for (const A& c : cases) {
    a2f::AttentionParams p;
    p.heads = static_cast<int>(c.heads);
    p.causal = c.causal;
    p.scale = c.scale;
    const Tensor q = randn({c.b, c.lq, c.heads * c.d}, 600 + i),
                 k = randn({c.b, c.lk, c.heads * c.d}, 610 + i);
    const Tensor v = randn({c.b, c.lk, c.heads * c.dv}, 620 + i);
    const Tensor r = ref->attention(q, k, v, p);
    const Tensor y = cpu->attention(q, k, v, p);
    ASSERT_EQ(y.shape(), r.shape()) << "case " << i;
    EXPECT_LE(nmse(y, r), kF32Approx) << "case " << i;
    EXPECT_LE(nmse(cpu->attention(non_contiguous(q), non_contiguous(k), non_contiguous(v), p), r), kF32Approx)
        << "case " << i;
    const Tensor qb = q.to(DType::BF16), kb = k.to(DType::BF16), vb = v.to(DType::BF16);
    const Tensor yb = cpu->attention(qb, kb, vb, p);
    EXPECT_EQ(yb.dtype(), DType::BF16);
    EXPECT_LE(nmse(yb, ref->attention(qb, kb, vb, p)), kBf16) << "case " << i;
    ++i;
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, CpuIsaOps, a2f::test::kAllIsas, a2f::test::isa_test_name);

}  // namespace
