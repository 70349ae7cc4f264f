// ControlNetModel (diffusers 0.29.2) on the tiny fixture ControlNet (tests/fixtures/models/controlnet), and
// the control image preprocessing (pipeline/control_image.h). References: tests/fixtures/ref/controlnet_*
// from diffusers itself (refs.json: controlnet(x, t=500, pe0, cond) residuals);
// tests/models/data/control_resize_* from scripts/make_control_image_refs.py (Pillow 9.4's Image.resize(...,
// LANCZOS), what diffusers' control image processor calls).
#include <map>

#include "model_test_util.h"
#include "models/controlnet.h"
#include "pipeline/control_image.h"

namespace a2f::test {
namespace {

const ControlNetModel& controlnet(const std::string& backend) {
  static std::map<std::string, std::unique_ptr<ControlNetModel>> cache;
  auto& m = cache[backend];
  if (!m) m = ControlNetModel::from_pretrained(fixture("models/controlnet"), backend_named(backend));
  return *m;
}

Tensor data_array(const std::string& name) {
  return npy_read(std::filesystem::path(A2F_SOURCE_DIR) / "tests/models/data" / (name + ".npy"));
}

Image8 image_from_hwc(const Tensor& t) {
  Tensor c = t.contiguous();
  Image8 img{static_cast<int>(t.dim(1)), static_cast<int>(t.dim(0)), static_cast<int>(t.dim(2)), {}};
  img.pixels.assign(c.data<uint8_t>(), c.data<uint8_t>() + c.numel());
  return img;
}

TEST(ControlNet, ConfigFromFile) {
  const ControlNetConfig& c = controlnet("ref").config();
  EXPECT_EQ(c.unet.block_out_channels, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(c.conditioning_embedding_out_channels, (std::vector<int64_t>{8, 8, 16, 16}));
  EXPECT_EQ(c.conditioning_channels, 3);
  EXPECT_FALSE(c.bgr);
  EXPECT_EQ(c.unet.num_attention_heads, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(c.unet.mid_block_type, "UNetMidBlock2DCrossAttn");
}

class ControlNetParity : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Backends, ControlNetParity, ::testing::Values("ref", "cpu"));

TEST_P(ControlNetParity, Residuals) {
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();  // [1, 77, 32]
  Tensor t = Tensor::empty({1}, DType::I64);
  t.data<int64_t>()[0] = 500;
  UNetResiduals r =
      controlnet(GetParam())
          .forward(ref_array("controlnet_in_latents"), t, pe, ref_array("controlnet_cond_tensor"));
  ASSERT_EQ(r.down.size(), 6u);
  for (size_t i = 0; i < r.down.size(); ++i)
    EXPECT_LE(rel_error(r.down[i], ref_array(cat("controlnet_down_res_", i))), 1e-4) << "down residual " << i;
  EXPECT_LE(rel_error(r.mid, ref_array("controlnet_mid_res")), 1e-4);
}

// conditioning_scale multiplies every residual; 0 gives zeros.
TEST_P(ControlNetParity, ConditioningScale) {
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor x = ref_array("controlnet_in_latents"), cond = ref_array("controlnet_cond_tensor");
  Tensor t = Tensor::from_data({1}, std::vector<float>{500.0f});
  UNetResiduals half = controlnet(GetParam()).forward(x, t, pe, cond, 0.5f);
  for (size_t i = 0; i < half.down.size(); ++i) {
    auto a = half.down[i].to_vector(), b = ref_array(cat("controlnet_down_res_", i)).to_vector();
    double worst = 0, ref_max = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      worst = std::max(worst, std::fabs(double(a[k]) - 0.5 * b[k]));
      ref_max = std::max(ref_max, std::fabs(0.5 * b[k]));
    }
    EXPECT_LE(worst / ref_max, 1e-4) << i;
  }
  UNetResiduals zero = controlnet(GetParam()).forward(x, t, pe, cond, 0.0f);
  EXPECT_EQ(max_abs_diff(zero.mid, Tensor::zeros(zero.mid.shape())), 0.0);
}

TEST(ControlNet, RejectsBadInputs) {
  const ControlNetModel& cn = controlnet("ref");
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor x = ref_array("controlnet_in_latents");
  Tensor t = Tensor::from_data({1}, std::vector<float>{500.0f});
  expect_error(
      [&] {
        cn.forward(x, t, pe, Tensor::zeros({1, 3, 32, 32}));
      },
      {"condition image", "[1, 3, 64, 64]", "[1, 3, 32, 32]"});
  expect_error([&] { cn.forward(x, t, pe, Tensor::zeros({1, 1, 64, 64})); }, {"condition image"});
}

TEST(ControlNet, ConfigErrors) {
  nlohmann::json j = ConfigReader::load(fixture("models/controlnet/config.json")).json();
  auto parse = [](nlohmann::json v) {
    return ControlNetConfig::from_reader(ConfigReader(v, "cn/config.json"));
  };
  nlohmann::json g = j;
  g["global_pool_conditions"] = true;
  expect_error([&] { parse(g); }, {"cn/config.json", "global_pool_conditions"});
  nlohmann::json m = j;
  m["mid_block_type"] = nullptr;
  expect_error([&] { parse(m); }, {"mid_block_type"});
  nlohmann::json o = j;
  o["controlnet_conditioning_channel_order"] = "rgba";
  expect_error([&] { parse(o); }, {"controlnet_conditioning_channel_order"});
  nlohmann::json c = j;
  c["_class_name"] = "UNet2DConditionModel";
  expect_error([&] { parse(c); }, {"_class_name"});
  nlohmann::json b = j;
  b["controlnet_conditioning_channel_order"] = "bgr";
  EXPECT_TRUE(parse(b).bgr);
}

// "bgr" models get the condition's channels flipped (torch.flip(cond, dims=[1])).
TEST(ControlNet, BgrChannelOrder) {
  ConfigReader r = ConfigReader::load(fixture("models/controlnet/config.json"));
  nlohmann::json j = r.json();
  j["controlnet_conditioning_channel_order"] = "bgr";
  ControlNetConfig cfg = ControlNetConfig::from_reader(ConfigReader(j, "bgr"));
  StateDict sd = load_state_dict(fixture("models/controlnet/diffusion_pytorch_model.safetensors"));
  nn::WeightLoader w(sd, "cn", ref_backend(), DType::F32);
  ControlNetModel bgr(cfg, w);
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor x = ref_array("controlnet_in_latents"), cond = ref_array("controlnet_cond_tensor");
  Tensor t = Tensor::from_data({1}, std::vector<float>{500.0f});
  Backend& be = ref_backend();
  Tensor flipped = be.concat({be.slice(cond, 1, 2, 3), be.slice(cond, 1, 1, 2), be.slice(cond, 1, 0, 1)}, 1);
  UNetResiduals a = bgr.forward(x, t, pe, flipped);
  EXPECT_LE(rel_error(a.mid, ref_array("controlnet_mid_res")), 1e-4);
}

// ------------------------------------------------------------------------------------- control image

// The fixture's 64x64 condition (no resize at 64x64 output) gives exactly the pipeline's control tensor.
TEST(ControlImage, FixtureConditionTensor) {
  Tensor t = control_image_tensor(image_from_hwc(ref_array("controlnet_cond_image_u8")), 64, 64);
  A2F_EXPECT_SHAPE(t, 1, 3, 64, 64);
  EXPECT_EQ(max_abs_diff(t, ref_array("controlnet_cond_tensor")), 0.0);
}

// Pillow 9.4 Image.resize(LANCZOS): up, down, mixed, one axis, 1-pixel sides.
TEST(ControlImage, ResizeMatchesPillow) {
  for (int i = 0; i < 7; ++i) {
    Tensor in = data_array(cat("control_resize_in_", i)), want = data_array(cat("control_resize_out_", i));
    Image8 out =
        pil_resize_lanczos(image_from_hwc(in), static_cast<int>(want.dim(1)), static_cast<int>(want.dim(0)));
    ASSERT_EQ(out.width, want.dim(1));
    ASSERT_EQ(out.height, want.dim(0));
    ASSERT_EQ(out.pixels.size(), static_cast<size_t>(want.numel()));
    int differ = 0;
    for (size_t k = 0; k < out.pixels.size(); ++k) differ += out.pixels[k] != want.data<uint8_t>()[k];
    EXPECT_EQ(differ, 0) << "case " << i << ": " << in.dim(1) << "x" << in.dim(0) << " -> " << want.dim(1)
                         << "x" << want.dim(0);
  }
}

TEST(ControlImage, RejectsBadImages) {
  Image8 gray{4, 4, 1, std::vector<uint8_t>(16)};
  expect_error([&] { control_image_tensor(gray, 8, 8); }, {"3 channels"});
  Image8 short_buf{4, 4, 3, std::vector<uint8_t>(10)};
  expect_error([&] { pil_resize_lanczos(short_buf, 8, 8); }, {"pixel buffer"});
  Image8 ok{4, 4, 3, std::vector<uint8_t>(48)};
  expect_error([&] { pil_resize_lanczos(ok, 0, 8); }, {"cannot resize"});
}

}  // namespace
}  // namespace a2f::test
