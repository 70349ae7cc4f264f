// UNet2DConditionModel (diffusers 0.29.2) on the tiny fixture model (tests/fixtures/models/arc2face).
// References: tests/fixtures/ref/unet_out_* from diffusers itself (inputs in refs.json);
// tests/models/data/unet_* from scripts/make_model_refs.py (a PyTorch re-implementation of the diffusers
// modules that the script first checks against the diffusers fixtures to 1e-5) for the ControlNet-residual
// and odd-size paths.
#include <map>

#include "model_test_util.h"
#include "models/unet2d.h"

namespace a2f::test {
namespace {

const UNet2DConditionModel& unet(const std::string& backend = "ref", DType dtype = DType::F32) {
  static std::map<std::string, std::unique_ptr<UNet2DConditionModel>> cache;
  auto& m = cache[backend + dtype_name(dtype)];
  if (!m)
    m = UNet2DConditionModel::from_pretrained(fixture("models/arc2face"), backend_named(backend), dtype);
  return *m;
}

// Parity tests run on every backend.
class UNetParity : public ::testing::TestWithParam<std::string> {
 protected:
  const UNet2DConditionModel& model() const { return unet(GetParam()); }
  Backend& be() const { return backend_named(GetParam()); }
};
INSTANTIATE_TEST_SUITE_P(Backends, UNetParity, ::testing::Values("ref", "cpu"));

Tensor data_array(const std::string& name) {
  return npy_read(std::filesystem::path(A2F_SOURCE_DIR) / "tests/models/data" / (name + ".npy"));
}

Tensor scalar_t(float t) {
  return Tensor::from_data({1}, std::vector<float>{t});
}

nlohmann::json fixture_config() {
  return ConfigReader::load(fixture("models/arc2face/config.json")).json();
}

TEST(UNet, ConfigFromFile) {
  const auto& c = unet().config();
  EXPECT_EQ(c.block_out_channels, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(c.num_attention_heads, (std::vector<int64_t>{4, 4}));  // attention_head_dim 4 = 4 heads
  EXPECT_EQ(c.cross_attention_dim, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(c.time_embed_dim(), 64);
  EXPECT_EQ(c.mid_block_type, "UNetMidBlock2DCrossAttn");
}

TEST_P(UNetParity, Timestep999) {
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();  // [1, 77, 32]
  Tensor out = model().forward(ref_array("unet_in_latents"), scalar_t(999), pe);
  A2F_EXPECT_SHAPE(out, 1, 4, 8, 8);
  EXPECT_LE(rel_error(out, ref_array("unet_out_t999")), 1e-4);
}

TEST_P(UNetParity, Timestep500) {
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor t = Tensor::empty({1}, DType::I64);  // the pipelines pass int64 timesteps
  t.data<int64_t>()[0] = 500;
  Tensor out = model().forward(ref_array("unet_in_latents"), t, pe);
  EXPECT_LE(rel_error(out, ref_array("unet_out_t500")), 1e-4);
}

TEST_P(UNetParity, Batch2ClassifierFreeGuidanceLayout) {
  Backend& be = this->be();
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1);
  Tensor ehs = be.concat({ref_array("negative_prompt_embeds"), pe}, 0);  // [2, 77, 32]
  Tensor out = model().forward(ref_array("unet_in_latents_b2"), scalar_t(500), ehs);
  A2F_EXPECT_SHAPE(out, 2, 4, 8, 8);
  EXPECT_LE(rel_error(out, ref_array("unet_out_b2_t500")), 1e-4);
  // A [2] timestep tensor gives the same as the broadcast scalar.
  Tensor out2 = model().forward(ref_array("unet_in_latents_b2"),
                                Tensor::from_data({2}, std::vector<float>{500, 500}), ehs);
  EXPECT_EQ(max_abs_diff(out2, out), 0.0);
}

TEST_P(UNetParity, ControlNetResiduals) {
  UNetResiduals res;
  for (int i = 0; i < 6; ++i) res.down.push_back(ref_array(cat("controlnet_down_res_", i)));
  res.mid = ref_array("controlnet_mid_res");
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor x = ref_array("controlnet_in_latents");
  Tensor out = model().forward(x, scalar_t(500), pe, &res);
  Tensor want = data_array("unet_cn_out");
  EXPECT_LE(rel_error(out, want), 1e-4);
  // Without the residuals the output is far from it (the residuals are really applied).
  EXPECT_GT(rel_error(model().forward(x, scalar_t(500), pe), want), 0.05);

  UNetResiduals short_res = res;
  short_res.down.pop_back();
  expect_error([&] { model().forward(x, scalar_t(500), pe, &short_res); },
               {"5 down residuals", "expected 6"});
  UNetResiduals bad = res;
  bad.down[3] = Tensor::zeros({1, 16, 8, 8});
  expect_error([&] { model().forward(x, scalar_t(500), pe, &bad); }, {"residual 3", "[1, 16, 4, 4]"});
}

TEST_P(UNetParity, SizeNotMultipleOfUpsamplingFactor) {
  Tensor pe = ref_array("prompt_embeds").narrow(0, 1, 1).contiguous();
  Tensor out = model().forward(data_array("unet_odd_in"), scalar_t(321), pe);
  A2F_EXPECT_SHAPE(out, 1, 4, 7, 9);
  EXPECT_LE(rel_error(out, data_array("unet_odd_out")), 1e-4);
}

// time_cond_proj_dim (LCM-distilled UNets): cond_proj(condition) is added to the sinusoidal embedding.
TEST_P(UNetParity, TimeCondProj) {
  nlohmann::json j = fixture_config();
  j["time_cond_proj_dim"] = 8;
  auto cfg = UNet2DConditionConfig::from_reader(ConfigReader(j, "config.json"));
  StateDict sd = load_state_dict(fixture("models/arc2face/diffusion_pytorch_model.safetensors"));
  sd["time_embedding.cond_proj.weight"] = data_array("unet_cond_proj_w");
  UNet2DConditionModel m(cfg, sd, "unet+cond_proj", be());
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor out = m.forward(ref_array("unet_in_latents"), scalar_t(500), pe, nullptr, data_array("unet_cond"));
  EXPECT_LE(rel_error(out, data_array("unet_cond_out")), 1e-4);
  expect_error([&] { m.forward(ref_array("unet_in_latents"), scalar_t(500), pe); },
               {"time_cond_proj_dim = 8"});
}

// SD2-style variants: use_linear_projection, per-block attention_head_dim, transformer_layers_per_block 2,
// only_cross_attention (attn1 attends to the context).
TEST_P(UNetParity, LinearProjectionPerBlockHeadsTwoTransformerLayersOnlyCrossAttention) {
  auto m = UNet2DConditionModel::from_pretrained(
      std::filesystem::path(A2F_SOURCE_DIR) / "tests/models/data/unet_variant", be());
  EXPECT_EQ(m->config().num_attention_heads, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(m->config().transformer_layers_per_block[0], (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(m->config().reverse_transformer_layers_per_block[1], (std::vector<int64_t>{2, 2, 2}));
  Tensor ehs =
      be().concat({ref_array("negative_prompt_embeds"), ref_array("prompt_embeds").narrow(0, 2, 1)}, 0);
  Tensor out = m->forward(data_array("unet_variant_in"), scalar_t(77), ehs);
  EXPECT_LE(rel_error(out, data_array("unet_variant_out")), 1e-4);
}

// bf16 compute on the cpu backend stays close to the f32 reference (a sanity bound for the reduced precision,
// not a parity claim).
TEST(UNet, Bf16OnCpuStaysNearReference) {
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor out = unet("cpu", DType::BF16).forward(ref_array("unet_in_latents"), scalar_t(500), pe);
  EXPECT_EQ(out.dtype(), DType::F32);
  EXPECT_LE(rel_error(out, ref_array("unet_out_t500")), 3e-2);
}

TEST(UNet, RejectsBadInputs) {
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor x = ref_array("unet_in_latents");
  expect_error([&] { unet().forward(Tensor::zeros({1, 3, 8, 8}), scalar_t(1), pe); }, {"[1, 3, 8, 8]"});
  expect_error([&] { unet().forward(x, scalar_t(1), Tensor::zeros({1, 77, 16})); }, {"[1, 77, 16]", "32"});
  expect_error([&] { unet().forward(x, Tensor::zeros({3}), pe); }, {"timesteps", "[3]"});
  expect_error(
      [&] {
        unet().forward(x, scalar_t(1), pe, nullptr, Tensor::zeros({1, 8}));
      },
      {"time_cond_proj_dim"});
}

TEST(UNet, UnsupportedConfigValuesNameKeyAndValue) {
  auto expect_cfg_error = [](const std::string& key, nlohmann::json value,
                             std::initializer_list<std::string> parts) {
    nlohmann::json j = fixture_config();
    j[key] = value;
    expect_error([&] { UNet2DConditionConfig::from_reader(ConfigReader(j, "unet/config.json")); }, parts);
  };
  expect_cfg_error("class_embed_type", "timestep", {"unet/config.json", "class_embed_type", "\"timestep\""});
  expect_cfg_error("addition_embed_type", "text_time", {"addition_embed_type", "\"text_time\""});
  expect_cfg_error("num_attention_heads", 8, {"num_attention_heads", "8"});
  expect_cfg_error("encoder_hid_dim", 1024, {"encoder_hid_dim", "1024"});
  expect_cfg_error("down_block_types", nlohmann::json::array({"SimpleCrossAttnDownBlock2D", "DownBlock2D"}),
                   {"down_block_types", "SimpleCrossAttnDownBlock2D"});
  expect_cfg_error("mid_block_type", "UNetMidBlock2DSimpleCrossAttn", {"mid_block_type"});
  expect_cfg_error("resnet_time_scale_shift", "ada_group", {"resnet_time_scale_shift", "ada_group"});
  expect_cfg_error("time_embedding_type", "fourier", {"time_embedding_type", "fourier"});
  expect_cfg_error("dual_cross_attention", true, {"dual_cross_attention", "true"});
  expect_cfg_error("attention_type", "gated", {"attention_type", "gated"});
  expect_cfg_error("act_fn", "mish", {"mish"});
  expect_cfg_error("block_out_channels", nlohmann::json::array({16, 32, 64}),
                   {"block_out_channels", "[16,32,64]"});
  expect_cfg_error("layers_per_block", nlohmann::json::array({2, 2, 2}), {"layers_per_block"});
  expect_cfg_error("transformer_layers_per_block", nlohmann::json::array({nlohmann::json::array({1, 1}), 1}),
                   {"reverse_transformer_layers_per_block"});
}

TEST(UNet, LcmStyleTimeCondProjNeedsItsWeights) {
  // time_cond_proj_dim is supported (LCM-distilled UNets); the fixture file has no cond_proj, so the load
  // must fail naming the tensor.
  nlohmann::json j = fixture_config();
  j["time_cond_proj_dim"] = 8;
  auto cfg = UNet2DConditionConfig::from_reader(ConfigReader(j, "config.json"));
  StateDict sd = load_state_dict(fixture("models/arc2face/diffusion_pytorch_model.safetensors"));
  expect_error([&] { UNet2DConditionModel(cfg, sd, "unet.safetensors", ref_backend()); },
               {"time_embedding.cond_proj.weight", "[16, 8]", "missing", "unet.safetensors"});
}

TEST(UNet, MisshapedTensorIsNamed) {
  auto cfg = UNet2DConditionConfig::from_reader(ConfigReader(fixture_config(), "config.json"));
  StateDict sd = load_state_dict(fixture("models/arc2face/diffusion_pytorch_model.safetensors"));
  sd["up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.weight"] = Tensor::zeros({16, 16});
  expect_error([&] { UNet2DConditionModel(cfg, sd, "unet.safetensors", ref_backend()); },
               {"up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.weight", "[16, 16]", "[16, 32]",
                "unet.safetensors"});
}

TEST(UNet, DebugHookNamesFollowDiffusersModulePaths) {
  auto m = UNet2DConditionModel::from_pretrained(fixture("models/arc2face"), ref_backend());
  std::vector<std::string> names;
  m->set_debug_hook([&](const Tensor& t) { names.push_back(t.name()); });
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  m->forward(ref_array("unet_in_latents"), scalar_t(10), pe);
  for (const char* want : {"time_embedding", "conv_in", "down_blocks.0.resnets.1",
                           "down_blocks.0.attentions.0.transformer_blocks.0", "down_blocks.0.downsamplers.0",
                           "down_blocks.1", "mid_block.attentions.0", "mid_block", "up_blocks.0.upsamplers.0",
                           "up_blocks.1.attentions.2", "conv_out"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
}

}  // namespace
}  // namespace a2f::test
