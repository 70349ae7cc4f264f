// src/nn: WeightLoader checks and preparation, layer wiring (weights used as torch.nn does: Linear W [out,
// in], 1x1 conv kernels as Linear, legacy attention names), computed against hand-written scalar formulas.
#include <cmath>
#include <filesystem>

#include "io/safetensors.h"
#include "io/weights.h"
#include "model_test_util.h"
#include "nn/attention.h"

namespace a2f::test {
namespace {

StateDict small_state_dict() {
  StateDict sd;
  sd["lin.weight"] = Tensor::from_data({2, 3}, std::vector<float>{1, 2, 3, -1, 0, 1});
  sd["lin.bias"] = Tensor::from_data({2}, std::vector<float>{0.5f, -0.5f});
  sd["conv.weight"] = Tensor::from_data({2, 3, 1, 1}, std::vector<float>{1, 2, 3, -1, 0, 1});
  sd["conv.bias"] = Tensor::from_data({2}, std::vector<float>{0.5f, -0.5f});
  sd["ids"] = Tensor::zeros({4}, DType::I64);
  sd["extra.position_ids"] = Tensor::zeros({4});
  return sd;
}

TEST(WeightLoader, ChecksPresenceShapeAndDtype) {
  StateDict sd = small_state_dict();
  nn::WeightLoader w(sd, "w.safetensors", ref_backend(), DType::F32);
  expect_error(
      [&] {
        w.matrix("nope.weight", {2, 3});
      },
      {"w.safetensors", "nope.weight", "missing", "[2, 3]"});
  expect_error([&] { w.matrix("lin.weight", {3, 2}); }, {"w.safetensors", "lin.weight", "[2, 3]", "[3, 2]"});
  expect_error([&] { w.vector("ids", 4); }, {"ids", "i64", "float"});
  Tensor b = w.vector("lin.bias", 2);
  EXPECT_EQ(b.name(), "lin.bias");
  EXPECT_EQ(b.dtype(), DType::F32);
  auto unused = w.unused();
  EXPECT_EQ(unused, (std::vector<std::string>{"conv.bias", "conv.weight", "extra.position_ids", "ids",
                                              "lin.weight"}));
}

TEST(WeightLoader, PreparesMatricesInTheComputeDtype) {
  StateDict sd = small_state_dict();
  nn::WeightLoader w(sd, "w", ref_backend(), DType::BF16);
  EXPECT_EQ(w.matrix("lin.weight", {2, 3}).dtype(), DType::BF16);
  EXPECT_EQ(w.vector("lin.bias", 2).dtype(), DType::F32);
}

TEST(WeightLoader, Bf16DenseWeightsMappedFromTheirFileAreRoundedOnceByTheCpuBackend) {
  // A bf16 model on the cpu backend keeps an f32 Linear / Conv2d weight in its file's mapping (the reorder into
  // oneDNN's layout rounds it to bf16 and the mapped pages are released): results bit-identical to a weight
  // rounded to bf16 up front (Tensor::to, round to nearest even), and no plain bf16 copy.
  const auto path = std::filesystem::temp_directory_path() / "a2f_nn_dense_bf16.safetensors";
  std::vector<float> wl(64 * 48), wc(32 * 16 * 3 * 3);
  for (size_t i = 0; i < wl.size(); ++i) wl[i] = std::sin(0.37f * float(i)) * 0.3f + 1e-3f * float(i % 7);
  for (size_t i = 0; i < wc.size(); ++i) wc[i] = std::cos(0.11f * float(i)) * 0.2f;
  safetensors_write(path, {{"lin.weight", Tensor::from_data({64, 48}, wl)},
                           {"conv.weight", Tensor::from_data({32, 16, 3, 3}, wc)}},
                    {});
  StateDict sd = load_state_dict(path);
  std::filesystem::remove(path);
  auto cpu = make_cpu_backend();
  nn::WeightLoader w(sd, "w", *cpu, DType::BF16);
  const nn::Linear lin = nn::Linear::load(w, "lin", 48, 64, false);
  const nn::Conv2d conv = nn::Conv2d::load(w, "conv", 16, 32, 3, Conv2dParams::same(1, 1), false);
  EXPECT_EQ(lin.weight.dtype(), DType::F32);  // kept as mapped
  EXPECT_EQ(lin.weight.storage(), sd.at("lin.weight").storage());
  EXPECT_EQ(w.matrix("lin.weight", {64, 48}).dtype(), DType::BF16);  // matrix() still converts
  // The same values rounded up front, in heap memory (what the ref backend and other backends get).
  const Tensor lin_bf16 = sd.at("lin.weight").to(DType::BF16), conv_bf16 = sd.at("conv.weight").to(DType::BF16);
  EXPECT_EQ(cpu->prepare_dense_weight(Tensor::from_data({64, 48}, wl), DType::BF16).dtype(), DType::BF16);
  nn::Ctx c{*cpu};
  auto wave = [](const Shape& s, float f) {  // [s]
    std::vector<float> v(static_cast<size_t>(shape_numel(s)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(f * float(i + 1));
    return Tensor::from_data(s, v).to(DType::BF16);
  };
  const Tensor x = wave({2, 5, 48}, 0.71f), xi = wave({2, 16, 9, 7}, 0.53f);
  EXPECT_EQ(lin(c, x).to(DType::F32).to_vector(), cpu->linear(x, lin_bf16, Tensor()).to(DType::F32).to_vector());
  EXPECT_EQ(conv(c, xi).to(DType::F32).to_vector(),
            cpu->conv2d(xi, conv_bf16, Tensor(), Conv2dParams::same(1, 1)).to(DType::F32).to_vector());
}

TEST(Layers, LinearAndConv1x1AsLinearComputeXWtPlusB) {
  StateDict sd = small_state_dict();
  nn::WeightLoader w(sd, "w", ref_backend(), DType::F32);
  nn::Ctx c{ref_backend()};
  auto lin = nn::Linear::load(w, "lin", 3, 2);
  auto conv = nn::Linear::load_conv1x1(w, "conv", 3, 2);
  Tensor x = Tensor::from_data({1, 3}, std::vector<float>{1, 1, 2});
  // [1*1 + 2*1 + 3*2 + 0.5, -1*1 + 0 + 1*2 - 0.5]
  const std::vector<float> want{9.5f, 0.5f};
  EXPECT_EQ(lin(c, x).to_vector(), want);
  EXPECT_EQ(conv(c, x).to_vector(), want);
}

TEST(Layers, AttentionAcceptsLegacyNames) {
  // One head of dim 1 over 2 tokens: q = 1*x, k = 1*x, v = 2*x + 1, out = 3*h; softmax over x_i * x_j.
  StateDict sd;
  for (auto [n, v] :
       std::vector<std::pair<std::string, float>>{{"query", 1}, {"key", 1}, {"value", 2}, {"proj_attn", 3}}) {
    sd["a." + n + ".weight"] = Tensor::from_data({1, 1}, std::vector<float>{v});
    sd["a." + n + ".bias"] = Tensor::from_data({1}, std::vector<float>{n == "value" ? 1.0f : 0.0f});
  }
  nn::WeightLoader w(sd, "vae", ref_backend(), DType::F32);
  nn::Attention::Options o;
  o.query_dim = 1;
  o.heads = 1;
  o.dim_head = 1;
  o.bias = true;
  auto a = nn::Attention::load(w, "a", o);
  EXPECT_TRUE(w.unused().empty());
  nn::Ctx c{ref_backend()};
  Tensor x = Tensor::from_data({1, 2, 1}, std::vector<float>{1, 2});
  auto y = a(c, x).to_vector();
  for (int i = 0; i < 2; ++i) {
    const double xi = i + 1;
    const double e1 = std::exp(xi * 1), e2 = std::exp(xi * 2);
    const double h = (e1 * 3 + e2 * 5) / (e1 + e2);
    EXPECT_NEAR(y[static_cast<size_t>(i)], 3 * h, 1e-5);
  }
}

}  // namespace
}  // namespace a2f::test
