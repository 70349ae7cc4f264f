// The reference backend against independent expectations: hand-computed cases and PyTorch-computed fixtures
// (tests/fixtures/ops, made by scripts/gen_op_refs.py in float64 from f32 inputs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backends/ref/ref_backend.h"
#include "ops/op_util.h"

namespace {
using a2f::Act;
using a2f::DType;
using a2f::Tensor;
using a2f::test::load_op_fixture;
using a2f::test::max_abs_diff;
using a2f::test::nmse;

Tensor fx(const std::string& n) {
  return load_op_fixture(n);
}
Tensor vec(const a2f::Shape& s, std::vector<float> v) {
  return Tensor::from_data(s, v);
}

// Fixture outputs are f64 results rounded to f32; the ref kernels sum in double and round once, but apply
// activations / exp / sqrt in f32, so they agree to a few f32 ulps: NMSE <= 1e-12 (ulp^2 ~ 1.4e-14).
constexpr double kFixtureNmse = 1e-12;

class RefOps : public ::testing::Test {
 protected:
  std::unique_ptr<a2f::Backend> be = a2f::make_ref_backend();
};

TEST_F(RefOps, Conv2dHand) {
  Tensor x = vec({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = Tensor::full({1, 1, 2, 2}, 1.0f);
  Tensor y = be->conv2d(x, w, vec({1}, {0.5f}), {});
  A2F_EXPECT_SHAPE(y, 1, 1, 2, 2);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{12.5f, 16.5f, 24.5f, 28.5f}));
  // padding 1 everywhere: the corner sees only x[0,0], x[0,1], x[1,0], x[1,1]
  Tensor yp = be->conv2d(x, w, Tensor(), a2f::Conv2dParams::same(2, 1));
  A2F_EXPECT_SHAPE(yp, 1, 1, 2, 2);
  EXPECT_EQ(yp.to_vector(), (std::vector<float>{1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9}));
}

TEST_F(RefOps, Conv2dFixtures) {
  a2f::Conv2dParams p;
  p.stride_h = 2;
  p.dilation_w = 2;
  p.pad_left = 1;
  p.pad_top = 2;
  p.pad_bottom = 1;
  p.groups = 2;
  p.act = Act::Silu;
  Tensor y = be->conv2d(fx("conv_a_x"), fx("conv_a_w"), fx("conv_a_b"), p);
  ASSERT_EQ(y.shape(), fx("conv_a_y").shape());
  EXPECT_LE(nmse(y, fx("conv_a_y")), kFixtureNmse);
  EXPECT_LE(nmse(be->conv2d(fx("conv_b_x"), fx("conv_b_w"), Tensor(), {}), fx("conv_b_y")), kFixtureNmse);
  a2f::Conv2dParams dw = a2f::Conv2dParams::same(2, 1);
  dw.groups = 4;
  dw.act = Act::Relu;
  Tensor ydw = be->conv2d(fx("conv_dw_x"), fx("conv_dw_w"), fx("conv_dw_b"), dw);
  ASSERT_EQ(ydw.shape(), fx("conv_dw_y").shape());
  EXPECT_LE(nmse(ydw, fx("conv_dw_y")), kFixtureNmse);
}

TEST_F(RefOps, Conv2dShapeErrors) {
  Tensor x = Tensor::zeros({1, 4, 5, 5});
  EXPECT_THROW(be->conv2d(x, Tensor::zeros({2, 3, 3, 3}), Tensor(), {}), a2f::Error);
  EXPECT_THROW(be->conv2d(x, Tensor::zeros({2, 4, 3, 3}), Tensor::zeros({3}), {}), a2f::Error);
  EXPECT_THROW(be->conv2d(Tensor::zeros({4, 5, 5}), Tensor::zeros({2, 4, 3, 3}), Tensor(), {}), a2f::Error);
  try {
    be->conv2d(x, Tensor::zeros({2, 3, 3, 3}), Tensor(), {});
  } catch (const a2f::Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 3, 3, 3]"), std::string::npos) << e.what();
  }
}

TEST_F(RefOps, LinearAndMatmulFixtures) {
  EXPECT_LE(nmse(be->linear(fx("linear_x"), fx("linear_w"), fx("linear_b"), Act::GeluTanh), fx("linear_y")),
            kFixtureNmse);
  Tensor y = be->matmul(fx("matmul_a"), fx("matmul_b"), false, 0.5f);
  A2F_EXPECT_SHAPE(y, 2, 3, 3, 5);
  EXPECT_LE(nmse(y, fx("matmul_y")), kFixtureNmse);
  Tensor yt = be->matmul(fx("matmul_tb_a"), fx("matmul_tb_b"), true);
  A2F_EXPECT_SHAPE(yt, 3, 2, 4);
  EXPECT_LE(nmse(yt, fx("matmul_tb_y")), kFixtureNmse);
  EXPECT_THROW(be->linear(Tensor::zeros({2, 6}), Tensor::zeros({5, 7}), Tensor(), Act::None), a2f::Error);
  EXPECT_THROW(be->matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5})), a2f::Error);  // batch 2 vs 3
  EXPECT_THROW(be->matmul(Tensor::zeros({3, 4}), Tensor::zeros({5, 4})), a2f::Error);
}

TEST_F(RefOps, LinearHand) {
  Tensor x = vec({1, 2}, {1, 2});
  Tensor w = vec({3, 2}, {1, 0, 0, 1, 1, -1});
  EXPECT_EQ(be->linear(x, w, vec({3}, {0, 0, 0.5f})).to_vector(), (std::vector<float>{1, 2, -0.5f}));
  EXPECT_EQ(be->linear(x, w, Tensor(), Act::Relu).to_vector(), (std::vector<float>{1, 2, 0}));
}

TEST_F(RefOps, ActivationsFixture) {
  Tensor x = fx("act_x");
  const std::pair<Act, const char*> acts[] = {{Act::Relu, "relu"},
                                              {Act::Silu, "silu"},
                                              {Act::GeluErf, "gelu"},
                                              {Act::GeluTanh, "gelu_tanh"},
                                              {Act::QuickGelu, "quick_gelu"},
                                              {Act::Sigmoid, "sigmoid"}};
  for (auto [a, n] : acts) {
    auto y = be->unary(a, x).to_vector(), r = fx(std::string("act_") + n).to_vector();
    // f32 transcendental functions: within 2 f32 ulps (2^-22 relative) of the f64 answer, or 2^-22 absolute
    // near zero
    for (size_t i = 0; i < y.size(); ++i)
      EXPECT_LE(std::fabs(y[i] - r[i]), std::ldexp(std::max(1.0f, std::fabs(r[i])), -22)) << n << " at " << i;
  }
  EXPECT_EQ(be->scale(vec({2}, {1, -2}), 3.0f, 0.5f).to_vector(), (std::vector<float>{3.5f, -5.5f}));
}

TEST_F(RefOps, GegluPreluFixtures) {
  Tensor y = be->geglu(fx("geglu_x"));
  A2F_EXPECT_SHAPE(y, 2, 3, 4);
  EXPECT_LE(nmse(y, fx("geglu_y")), kFixtureNmse);
  EXPECT_LE(nmse(be->prelu(fx("prelu_x"), fx("prelu_s")), fx("prelu_y")), kFixtureNmse);
  EXPECT_THROW(be->geglu(Tensor::zeros({2, 5})), a2f::Error);
  EXPECT_THROW(be->prelu(Tensor::zeros({2, 3, 2}), Tensor::zeros({2})), a2f::Error);
}

TEST_F(RefOps, BinaryBroadcast) {
  Tensor a = vec({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = vec({2, 1}, {10, 20});
  Tensor y = be->add(a, b);
  A2F_EXPECT_SHAPE(y, 2, 2, 3);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26}));
  EXPECT_EQ(be->sub(b, vec({1}, {1})).to_vector(), (std::vector<float>{9, 19}));
  EXPECT_EQ(be->mul(a, vec({3}, {1, 0, -1})).to_vector(), (std::vector<float>{1, 0, -3, 4, 0, -6}));
  EXPECT_EQ(be->div(vec({2}, {1, 3}), vec({2}, {4, 2})).to_vector(), (std::vector<float>{0.25f, 1.5f}));
  EXPECT_THROW(be->add(a, vec({2}, {1, 2})), a2f::Error);
}

TEST_F(RefOps, NormFixtures) {
  Tensor y = be->group_norm(fx("group_norm_x"), 3, fx("group_norm_g"), fx("group_norm_b"), 1e-5f, Act::Silu);
  EXPECT_LE(nmse(y, fx("group_norm_y")), kFixtureNmse);
  EXPECT_LE(nmse(be->layer_norm(fx("layer_norm_x"), fx("layer_norm_g"), fx("layer_norm_b"), 1e-5f),
                 fx("layer_norm_y")),
            kFixtureNmse);
  EXPECT_LE(nmse(be->batch_norm(fx("batch_norm_x"), fx("batch_norm_m"), fx("batch_norm_v"),
                                fx("batch_norm_g"), fx("batch_norm_b"), 1e-3f),
                 fx("batch_norm_y")),
            kFixtureNmse);
  EXPECT_LE(nmse(be->softmax(fx("softmax_x")), fx("softmax_y")), kFixtureNmse);
  EXPECT_THROW(be->group_norm(Tensor::zeros({1, 6, 2}), 4, Tensor(), Tensor(), 1e-5f), a2f::Error);
  EXPECT_THROW(be->layer_norm(Tensor::zeros({2, 6}), Tensor::zeros({5}), Tensor(), 1e-5f), a2f::Error);
}

TEST_F(RefOps, GroupNormHand) {
  // one group of [1, 2, 3, 4]: mean 2.5, biased variance 1.25
  Tensor y = be->group_norm(vec({1, 2, 2}, {1, 2, 3, 4}), 1, Tensor(), Tensor(), 0.0f);
  const float s = 1.0f / std::sqrt(1.25f);
  auto v = y.to_vector();
  const float e[] = {-1.5f * s, -0.5f * s, 0.5f * s, 1.5f * s};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(v[i], e[i], 1e-6f);
}

TEST_F(RefOps, AttentionFixtures) {
  a2f::AttentionParams p;
  p.heads = 3;
  Tensor y = be->attention(fx("attn_q"), fx("attn_k"), fx("attn_v"), p);
  A2F_EXPECT_SHAPE(y, 2, 5, 18);
  EXPECT_LE(nmse(y, fx("attn_y")), kFixtureNmse);
  a2f::AttentionParams pc;
  pc.heads = 2;
  pc.causal = true;
  pc.scale = 0.3f;
  EXPECT_LE(nmse(be->attention(fx("attn_causal_q"), fx("attn_causal_k"), fx("attn_causal_v"), pc),
                 fx("attn_causal_y")),
            kFixtureNmse);
  EXPECT_THROW(be->attention(Tensor::zeros({1, 2, 6}), Tensor::zeros({1, 3, 4}), Tensor::zeros({1, 3, 6}), p),
               a2f::Error);
}

TEST_F(RefOps, AttentionHand) {
  // equal keys: uniform weights, the output is the mean of the values; causal: row i averages values 0..i
  Tensor q = vec({1, 3, 1}, {1, 2, 3}), k = Tensor::full({1, 3, 1}, 1.0f), v = vec({1, 3, 1}, {3, 6, 9});
  a2f::AttentionParams p;
  EXPECT_EQ(be->attention(q, Tensor::zeros({1, 3, 1}), v, p).to_vector(), (std::vector<float>{6, 6, 6}));
  p.causal = true;
  auto c = be->attention(q, Tensor::zeros({1, 3, 1}), v, p).to_vector();
  EXPECT_FLOAT_EQ(c[0], 3);
  EXPECT_FLOAT_EQ(c[1], 4.5f);
  EXPECT_FLOAT_EQ(c[2], 6);
  (void)k;
}

TEST_F(RefOps, UpsampleFixtures) {
  Tensor y = be->upsample_nearest(fx("upsample_x"), 7, 4);
  EXPECT_EQ(y.to_vector(), fx("upsample_y").to_vector());
  EXPECT_EQ(be->upsample_nearest(fx("upsample_x"), 6, 10).to_vector(), fx("upsample_y2").to_vector());
}

TEST_F(RefOps, PoolHand) {
  Tensor x = vec({1, 1, 1, 6}, {1, 2, 3, 4, 5, 6});
  a2f::Pool2dParams p;
  p.kernel_h = 1;
  p.stride_h = 1;
  p.kernel_w = 3;
  p.stride_w = 2;
  p.ceil_mode = true;  // 3 windows: [0, 3), [2, 5), [4, 6) (partial)
  EXPECT_EQ(be->pool2d(x, p).to_vector(), (std::vector<float>{3, 5, 6}));
  p.kind = a2f::PoolKind::Avg;  // the partial window divides by 2 even with count_include_pad (PyTorch)
  EXPECT_EQ(be->pool2d(x, p).to_vector(), (std::vector<float>{2, 4, 5.5f}));
  // A window that would start in the right padding is dropped: 5 wide, kernel 2, stride 2, pad right 1.
  Tensor x5 = vec({1, 1, 1, 5}, {1, 2, 3, 4, 5});
  p.kernel_w = 2;
  p.pad_right = 1;
  EXPECT_EQ(be->pool2d(x5, p).to_vector(), (std::vector<float>{1.5f, 3.5f, 2.5f}));  // last: (5 + pad) / 2
  p.count_include_pad = false;
  EXPECT_EQ(be->pool2d(x5, p).to_vector(), (std::vector<float>{1.5f, 3.5f, 5}));
  p.kind = a2f::PoolKind::Max;
  p.pad_left = 1;
  p.pad_right = 0;  // padded values never win a max, even when all inputs are negative
  EXPECT_EQ(be->pool2d(be->scale(x5, -1.0f), p).to_vector(), (std::vector<float>{-1, -2, -4}));
}

TEST_F(RefOps, PoolFixtures) {
  a2f::Pool2dParams p;
  p.kernel_h = p.kernel_w = 3;
  p.stride_h = p.stride_w = 2;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  p.ceil_mode = true;
  Tensor y = be->pool2d(fx("maxpool_x"), p);
  ASSERT_EQ(y.shape(), fx("maxpool_y").shape());
  EXPECT_EQ(y.to_vector(), fx("maxpool_y").to_vector());
  p.kind = a2f::PoolKind::Avg;
  Tensor ya = be->pool2d(fx("avgpool_incl_x"), p);
  ASSERT_EQ(ya.shape(), fx("avgpool_incl_y").shape());
  EXPECT_LE(nmse(ya, fx("avgpool_incl_y")), kFixtureNmse);
  p.kernel_h = 2;
  p.count_include_pad = false;
  Tensor ye = be->pool2d(fx("avgpool_excl_x"), p);
  ASSERT_EQ(ye.shape(), fx("avgpool_excl_y").shape());
  EXPECT_LE(nmse(ye, fx("avgpool_excl_y")), kFixtureNmse);
}

TEST_F(RefOps, LayoutOps) {
  Tensor x = vec({2, 7}, {0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16});
  Tensor s = be->slice(x, 1, 1, 100, 3);
  A2F_EXPECT_SHAPE(s, 2, 2);
  EXPECT_EQ(s.to_vector(), (std::vector<float>{1, 4, 11, 14}));
  EXPECT_EQ(be->slice(x, -1, -3, 7).to_vector(), (std::vector<float>{4, 5, 6, 14, 15, 16}));
  A2F_EXPECT_SHAPE(be->slice(x, 0, 1, 1), 0, 7);
  EXPECT_THROW(be->slice(x, 2, 0, 1), a2f::Error);
  EXPECT_THROW(be->slice(x, 0, 0, 1, 0), a2f::Error);

  Tensor c = be->concat({vec({2, 1, 2}, {1, 2, 3, 4}), vec({2, 2, 2}, {5, 6, 7, 8, 9, 10, 11, 12})}, 1);
  A2F_EXPECT_SHAPE(c, 2, 3, 2);
  EXPECT_EQ(c.to_vector(), (std::vector<float>{1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12}));
  EXPECT_THROW(be->concat({Tensor::zeros({2, 1}), Tensor::zeros({3, 1})}, 1), a2f::Error);

  Tensor t = vec({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor pt = be->permute(t, {1, 0});
  A2F_EXPECT_SHAPE(pt, 3, 2);
  EXPECT_TRUE(pt.is_contiguous());
  EXPECT_EQ(pt.to_vector(), (std::vector<float>{1, 4, 2, 5, 3, 6}));

  Tensor h = be->cast(vec({3}, {1.0f, 1.00390625f, -3.0f}), DType::BF16);  // 1 + 2^-8 is a tie: rounds to 1
  EXPECT_EQ(h.dtype(), DType::BF16);
  EXPECT_EQ(h.to_vector(), (std::vector<float>{1.0f, 1.0f, -3.0f}));
  EXPECT_EQ(be->cast(h, DType::F16).dtype(), DType::F16);
}

TEST_F(RefOps, UpsampleHand) {
  Tensor y = be->upsample_nearest(vec({1, 1, 1, 2}, {1, 2}), 2, 4);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2}));
}

TEST_F(RefOps, TimestepEmbeddingFixtures) {
  // Same f32 recipe as diffusers; std::exp/sin/cos may differ from torch's vectorised ones by an ulp, and an
  // ulp of an argument near 981 moves sin by up to 6e-5.
  Tensor a = be->timestep_embedding(fx("temb_a_t"), 320, true, 0.0f);
  A2F_EXPECT_SHAPE(a, 4, 320);
  EXPECT_LE(max_abs_diff(a, fx("temb_a_y")), 1.5e-4);
  EXPECT_LE(nmse(a, fx("temb_a_y")), 1e-10);
  Tensor b = be->timestep_embedding(fx("temb_b_t"), 7, false, 1.0f, 2.0f);
  A2F_EXPECT_SHAPE(b, 4, 7);
  EXPECT_LE(max_abs_diff(b, fx("temb_b_y")), 1.5e-4);
  EXPECT_EQ(b.item_f32(6), 0.0f);  // odd dim: zero pad
}

TEST_F(RefOps, TimestepEmbeddingHand) {
  // t = 0: sin = 0, cos = 1; flip puts cos first
  auto v = be->timestep_embedding(vec({1}, {0}), 4, true, 1.0f).to_vector();
  EXPECT_EQ(v, (std::vector<float>{1, 1, 0, 0}));
  // dim 4, shift 0, t = 1: frequencies exp(-ln(10000) * j / 2) = 1, 0.01
  auto w = be->timestep_embedding(vec({1}, {1}), 4, false, 0.0f).to_vector();
  EXPECT_NEAR(w[0], std::sin(1.0), 1e-6);
  EXPECT_NEAR(w[1], std::sin(0.01), 1e-6);
  EXPECT_NEAR(w[3], std::cos(0.01), 1e-6);
}

TEST_F(RefOps, EmbeddingFixtureAndBounds) {
  Tensor y = be->embedding(fx("embedding_ids"), fx("embedding_table"));
  A2F_EXPECT_SHAPE(y, 2, 3, 4);
  EXPECT_EQ(y.to_vector(), fx("embedding_y").to_vector());
  Tensor ids32 = Tensor::empty({2}, DType::I32);
  ids32.data<int32_t>()[0] = 5;
  ids32.data<int32_t>()[1] = 6;
  EXPECT_THROW(be->embedding(ids32, fx("embedding_table")), a2f::Error);
  ids32.data<int32_t>()[1] = 0;
  EXPECT_EQ(be->embedding(ids32, fx("embedding_table")).to_vector()[4], fx("embedding_table").item_f32(0));
  EXPECT_THROW(be->embedding(vec({1}, {0}), fx("embedding_table")), a2f::Error);  // float ids
}

TEST_F(RefOps, DtypesAndNonContiguousInputs) {
  // Output dtype follows the first activation input; 16-bit inputs are computed in f32.
  Tensor x = fx("conv_b_x"), w = fx("conv_b_w");
  Tensor yb = be->conv2d(x.to(DType::BF16), w, Tensor(), {});
  EXPECT_EQ(yb.dtype(), DType::BF16);
  EXPECT_EQ(be->conv2d(x, w.to(DType::BF16), Tensor(), {}).dtype(), DType::F32);
  EXPECT_EQ(be->layer_norm(x.to(DType::F16), Tensor(), Tensor(), 1e-5f).dtype(), DType::F16);
  // bf16 has 8 significant bits: relative error ~2^-9 per element
  EXPECT_LE(nmse(yb, fx("conv_b_y")), 1e-4);
  // Non-contiguous views give exactly the contiguous results.
  Tensor a = fx("linear_x"), lw = fx("linear_w");
  Tensor ref = be->linear(a, lw, fx("linear_b"));
  Tensor nc = a2f::test::non_contiguous(a);
  ASSERT_FALSE(nc.is_contiguous());
  EXPECT_EQ(
      be->linear(nc, a2f::test::non_contiguous(lw), a2f::test::non_contiguous(fx("linear_b"))).to_vector(),
      ref.to_vector());
  EXPECT_EQ(be->softmax(nc).to_vector(), be->softmax(a).to_vector());
  EXPECT_EQ(be->slice(nc, 2, 1, 5, 2).to_vector(), be->slice(a, 2, 1, 5, 2).to_vector());
}

}  // namespace
