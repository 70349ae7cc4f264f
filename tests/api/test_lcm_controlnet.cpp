// LCM-LoRA and ControlNet generations against diffusers 0.29.2 on the tiny fixture models
// (tests/fixtures/ref/refs.json describes each reference: pipe_lcm = LoRA fused, LCMScheduler from the DPM
// config, 4 steps, guidance 1.0, latents pipe_latents, generator seed 1234 for the noise LCM injects;
// pipe_lcm_unfused = the same with the LoRA left unfused (PEFT side path); pipe_dpm_lora_disabled = LoRA
// loaded then disabled; pipe_controlnet = StableDiffusionControlNetPipeline, DPM-Solver++ 25 steps,
// guidance 3.0, control image controlnet_cond_image_u8, conditioning scale 1.0).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "arc2face/arc2face.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "common/test_util.h"
#include "io/npy.h"
#include "pipeline/generate.h"

namespace fs = std::filesystem;

namespace a2f {
namespace {

Tensor fixture_array(const std::string& name) {
  return npy_read(test::fixture("ref/" + name + ".npy"));
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("a2f_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

Image8 cond_image() {
  Tensor t = fixture_array("controlnet_cond_image_u8");  // [64, 64, 3]
  return Image8{64, 64, 3, std::vector<uint8_t>(t.data<uint8_t>(), t.data<uint8_t>() + t.numel())};
}

class LcmControlNetParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = GetParam() == "ref" ? make_ref_backend() : make_cpu_backend();
    ModelDirs dirs = ModelDirs::from_roots(test::fixture("models"), test::fixture("models/sd15"));
    dirs.controlnet = test::fixture("models/controlnet");
    dirs.lcm_lora = test::fixture("models/lcm-lora/pytorch_lora_weights.safetensors");
    models_ = DiffusionModels::load(dirs, *backend_, DType::F32);
  }

  GenerationParams lcm_params(const fs::path& dump) const {
    GenerationParams p;
    p.id_embeddings = fixture_array("id_embs").narrow(0, 0, 1);
    p.num_images = 2;
    p.steps = 4;
    p.guidance = 1.0f;
    p.scheduler = "lcm";
    p.lcm_lora = true;
    p.seed = 1234;
    p.width = p.height = 64;
    p.latents = fixture_array("pipe_latents");
    p.dump_dir = dump;
    return p;
  }

  GenerationParams dpm_params(const fs::path& dump) const {
    GenerationParams p;
    p.id_embeddings = fixture_array("id_embs").narrow(0, 0, 1);
    p.num_images = 2;
    p.width = p.height = 64;
    p.latents = fixture_array("pipe_latents");
    p.dump_dir = dump;
    return p;
  }

  // Step latents and images against the reference `name` (pipe_<name>_*).
  void expect_trace(const fs::path& dump, const GenerationResult& r, const std::string& name, int steps) {
    EXPECT_EQ(npy_read(dump / "timesteps.npy").to_vector(),
              fixture_array(name + "_step_timesteps").to(DType::F32).to_vector());
    Tensor want = fixture_array(name + "_step_latents");
    for (int k = 0; k < steps; ++k) {
      Tensor mine = npy_read(dump / ("latents_" + std::to_string(k) + ".npy"));
      EXPECT_LE(test::max_abs_diff(mine, want.narrow(0, k, 1).squeeze(0)), 1e-3) << name << " step " << k;
    }
    EXPECT_LE(test::max_abs_diff(r.images, fixture_array(name + "_images")), 1e-3) << name;
  }

  std::unique_ptr<Backend> backend_;
  DiffusionModels models_;
};

INSTANTIATE_TEST_SUITE_P(Backends, LcmControlNetParity, ::testing::Values("ref", "cpu"));

// LCM-LoRA merged (diffusers: fuse_lora()), LCMScheduler 4 steps, no CFG batch, noise from seed 1234.
TEST_P(LcmControlNetParity, LcmLoraFused) {
  fs::path dump = temp_dir("lcm_" + GetParam());
  GenerationResult r = generate_images(models_, lcm_params(dump));
  expect_trace(dump, r, "pipe_lcm", 4);
  // Guidance 1.0: one UNet batch of 2 (no unconditional half).
  EXPECT_EQ(npy_read(dump / "noise_pred_0.npy").dim(0), 2);
  EXPECT_FALSE(models_.lcm_lora->enabled());  // for this generation only
  fs::remove_all(dump);
}

// The same LoRA run unmerged (PEFT's side path, as diffusers runs it without fuse_lora()), against the
// unfused reference; and the merged run against the unfused reference (fused vs unfused differ by rounding
// only).
TEST_P(LcmControlNetParity, LcmLoraUnfused) {
  fs::path dump = temp_dir("lcm_unfused_" + GetParam());
  GenerationResult merged = generate_images(models_, lcm_params(dump));
  expect_trace(dump, merged, "pipe_lcm_unfused", 4);
  models_.lcm_lora.reset();
  models_.lcm_lora = std::make_unique<LoraAdapter>(
      *models_.unet, lora_load(test::fixture("models/lcm-lora/pytorch_lora_weights.safetensors")), 1.0f,
      LoraMode::Unmerged);
  GenerationResult unmerged = generate_images(models_, lcm_params(dump));
  expect_trace(dump, unmerged, "pipe_lcm_unfused", 4);
  fs::remove_all(dump);
}

// LoRA loaded, used, then not requested: the base model exactly (pipe_dpm_lora_disabled == pipe_dpm).
TEST_P(LcmControlNetParity, LoraDisabledIsTheBaseModel) {
  fs::path dump = temp_dir("lora_off_" + GetParam());
  GenerationResult before;
  if (GetParam() == "cpu") before = generate_images(models_, dpm_params({}));  // (keeps the ref run short)
  generate_images(models_, lcm_params({}));
  GenerationResult after = generate_images(models_, dpm_params(dump));
  expect_trace(dump, after, "pipe_dpm_lora_disabled", 25);
  if (before.images.defined()) {
    EXPECT_EQ(test::max_abs_diff(after.images, before.images), 0.0);
  }
  fs::remove_all(dump);
}

// StableDiffusionControlNetPipeline: ControlNet on the CFG batch with the condition duplicated, residuals
// into the UNet's skips and mid block.
TEST_P(LcmControlNetParity, ControlNetPipeline) {
  fs::path dump = temp_dir("controlnet_" + GetParam());
  GenerationParams p = dpm_params(dump);
  p.guidance = 3.0f;
  p.control_image = cond_image();
  GenerationResult r = generate_images(models_, p);
  Tensor control = npy_read(dump / "control_image.npy");
  A2F_EXPECT_SHAPE(control, 4, 3, 64, 64);  // 2 images x CFG
  EXPECT_EQ(test::max_abs_diff(control.narrow(0, 3, 1), fixture_array("controlnet_cond_tensor")), 0.0);
  expect_trace(dump, r, "pipe_controlnet", 25);
  fs::remove_all(dump);
}

TEST_P(LcmControlNetParity, RejectsMissingModels) {
  DiffusionModels bare = DiffusionModels::load(
      ModelDirs::from_roots(test::fixture("models"), test::fixture("models/sd15")), *backend_, DType::F32);
  GenerationParams p = lcm_params({});
  EXPECT_THROW(generate_images(bare, p), Error);
  GenerationParams c = dpm_params({});
  c.control_image = cond_image();
  EXPECT_THROW(generate_images(bare, c), Error);
  c.control_scale = NAN;
  EXPECT_THROW(generate_images(models_, c), Error);
}

TEST(LcmControlNetLoad, MissingFilesAreNamed) {
  auto be = make_ref_backend();
  ModelDirs dirs = ModelDirs::from_roots(test::fixture("models"), test::fixture("models/sd15"));
  dirs.lcm_lora = "/nonexistent/lcm.safetensors";
  try {
    DiffusionModels::load(dirs, *be, DType::F32);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/lcm.safetensors"), std::string::npos) << e.what();
  }
  dirs.lcm_lora.clear();
  dirs.controlnet = "/nonexistent/controlnet";
  EXPECT_THROW(DiffusionModels::load(dirs, *be, DType::F32), Error);
}

// ------------------------------------------------------------------------------------------- public API

arc2face::PipelineOptions api_options() {
  arc2face::PipelineOptions o;
  o.models_dir = test::fixture("models").string();
  o.base_dir = test::fixture("models/sd15").string();
  o.lcm_lora = test::fixture("models/lcm-lora/pytorch_lora_weights.safetensors").string();
  o.controlnet_dir = test::fixture("models/controlnet").string();
  return o;
}

arc2face::GenerateRequest api_request() {
  arc2face::GenerateRequest r;
  r.id_embedding = fixture_array("id_embs").narrow(0, 0, 1).to_vector();
  r.num_images = 2;
  r.width = r.height = 64;
  r.latents = fixture_array("pipe_latents").to_vector();
  return r;
}

// Each image's 8-bit pixels within one level of round(255 * reference).
void expect_images(const std::vector<arc2face::GeneratedImage>& imgs, const std::string& name) {
  Tensor want = fixture_array(name + "_images");  // [2, 64, 64, 3]
  ASSERT_EQ(imgs.size(), 2u);
  for (size_t i = 0; i < imgs.size(); ++i) {
    auto w = want.narrow(0, static_cast<int64_t>(i), 1).to_vector();
    ASSERT_EQ(imgs[i].rgb.size(), w.size());
    int worst = 0;
    for (size_t k = 0; k < w.size(); ++k)
      worst = std::max(worst, std::abs(int(imgs[i].rgb[k]) - int(std::nearbyint(w[k] * 255.0f))));
    EXPECT_LE(worst, 1) << name << " image " << i;
  }
}

// The server's per-job toggle: LCM on, off, ControlNet, LCM again, through one Pipeline.
TEST(LcmControlNetApi, TogglePerRequest) {
  auto pipe = arc2face::Pipeline::create(api_options());
  arc2face::GenerateRequest lcm = api_request();
  lcm.lcm = true;
  lcm.scheduler = "lcm";
  lcm.steps = 4;
  lcm.guidance = 1.0f;
  lcm.seed = 1234;
  auto a = pipe->generate(lcm);
  expect_images(a, "pipe_lcm");
  EXPECT_NE(a[0].parameters.find("LCM-LoRA: on"), std::string::npos) << a[0].parameters;
  EXPECT_NE(a[0].parameters.find("Sampler: lcm"), std::string::npos) << a[0].parameters;

  expect_images(pipe->generate(api_request()), "pipe_dpm");

  arc2face::GenerateRequest cn = api_request();
  Tensor u8 = fixture_array("controlnet_cond_image_u8");
  cn.control_rgb.assign(u8.data<uint8_t>(), u8.data<uint8_t>() + u8.numel());
  cn.control_width = cn.control_height = 64;
  auto c = pipe->generate(cn);
  expect_images(c, "pipe_controlnet");
  EXPECT_NE(c[0].parameters.find("Control scale: 1"), std::string::npos) << c[0].parameters;

  lcm.scheduler = arc2face::GenerateRequest{}.scheduler;  // the default is accepted with lcm too
  expect_images(pipe->generate(lcm), "pipe_lcm");
}

TEST(LcmControlNetApi, RequestErrors) {
  arc2face::PipelineOptions bare = api_options();
  bare.lcm_lora.clear();
  bare.controlnet_dir.clear();
  auto pipe = arc2face::Pipeline::create(bare);
  arc2face::GenerateRequest r = api_request();
  r.lcm = true;
  EXPECT_THROW(pipe->generate(r), arc2face::Error);  // no LoRA loaded
  r = api_request();
  r.control_rgb.assign(64 * 64 * 3, 128);
  r.control_width = r.control_height = 64;
  EXPECT_THROW(pipe->generate(r), arc2face::Error);  // no ControlNet loaded

  auto full = arc2face::Pipeline::create(api_options());
  r.control_width = 63;  // buffer size mismatch
  EXPECT_THROW(full->generate(r), arc2face::Error);
  r = api_request();
  r.lcm = true;
  r.scheduler = "euler";
  EXPECT_THROW(full->generate(r), arc2face::Error);
}

TEST(LcmControlNetApi, DecodesImages) {
  const fs::path png = temp_dir("rgb") / "x.png";
  arc2face::GeneratedImage img;
  img.width = 3;
  img.height = 2;
  img.rgb = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  arc2face::write_png(png.string(), img);
  arc2face::RgbImage back = arc2face::read_image_rgb(png.string());
  EXPECT_EQ(back.width, 3);
  EXPECT_EQ(back.height, 2);
  EXPECT_EQ(back.rgb, img.rgb);
  std::vector<uint8_t> bytes = arc2face::encode_png(img);
  EXPECT_EQ(arc2face::decode_image_rgb(bytes.data(), bytes.size()).rgb, img.rgb);
  EXPECT_THROW(arc2face::decode_image_rgb(bytes.data(), 10), arc2face::Error);
  fs::remove_all(png.parent_path());
}

}  // namespace
}  // namespace a2f
