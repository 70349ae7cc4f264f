// The whole generation against diffusers 0.29.2 StableDiffusionPipeline + Arc2Face's project_face_embs on the
// tiny fixture models (tests/fixtures/ref/refs.json describes how each array was produced).
#include <gtest/gtest.h>

#include <filesystem>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "common/test_util.h"
#include "io/npy.h"
#include "pipeline/generate.h"
#include "pipeline/prompt.h"

namespace fs = std::filesystem;

namespace a2f {
namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("a2f_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

class PipelineParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = GetParam() == "ref" ? make_ref_backend() : make_cpu_backend();
    models_ = DiffusionModels::load(
        ModelDirs::from_roots(test::fixture("models"), test::fixture("models/sd15")), *backend_, DType::F32);
  }
  Tensor ref(const std::string& name) { return npy_read(test::fixture("ref/" + name + ".npy")); }

  std::unique_ptr<Backend> backend_;
  DiffusionModels models_;
};

TEST_P(PipelineParity, PromptAndNegativeEmbeds) {
  Tensor ids = normalize_id_embeddings(ref("id_embs"));  // [3, 512] (already unit norm)
  IdPrompt p = project_face_embs(*models_.encoder, *models_.tokenizer, ids);
  EXPECT_LE(test::max_abs_diff(p.token_embeds, ref("id_token_embs")), 1e-6);
  EXPECT_LE(test::max_abs_diff(p.prompt_embeds, ref("prompt_embeds")), 1e-4);
  Tensor neg = encode_negative_prompt(*models_.encoder, *models_.tokenizer);
  EXPECT_LE(test::max_abs_diff(neg, ref("negative_prompt_embeds")), 1e-4);
  const std::vector<int64_t> want{49406, 1125, 539, 320, 1014, 2533, 49407};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(p.input_ids.data<int64_t>()[i], want[i]);
}

// pipe_dpm: DPM-Solver++ 25 steps, guidance 3.0, 2 images from explicit latents.
TEST_P(PipelineParity, DpmFromLatents) {
  fs::path dump = temp_dir("pipe_dpm_" + GetParam());
  GenerationParams p;
  p.id_embeddings = ref("id_embs").narrow(0, 0, 1);
  p.num_images = 2;
  p.steps = 25;
  p.guidance = 3.0f;
  p.scheduler = "dpm++2m";
  p.width = p.height = 64;
  p.latents = ref("pipe_latents");
  p.dump_dir = dump;
  GenerationResult r = generate_images(models_, p);
  Tensor ts = npy_read(dump / "timesteps.npy");
  EXPECT_EQ(ts.to_vector(), ref("pipe_dpm_step_timesteps").to(DType::F32).to_vector());
  Tensor steps = ref("pipe_dpm_step_latents");  // [25, 2, 4, 8, 8]
  for (int k = 0; k < 25; ++k) {
    Tensor mine = npy_read(dump / ("latents_" + std::to_string(k) + ".npy"));
    EXPECT_LE(test::max_abs_diff(mine, steps.narrow(0, k, 1).squeeze(0)), 1e-3) << "step " << k;
  }
  EXPECT_LE(test::max_abs_diff(r.images, ref("pipe_dpm_images")), 1e-3);
  fs::remove_all(dump);
}

// pipe_dpm_gen42: the initial noise from torch.Generator('cpu').manual_seed(42).
TEST_P(PipelineParity, DpmFromSeed) {
  fs::path dump = temp_dir("pipe_gen42_" + GetParam());
  GenerationParams p;
  p.id_embeddings = ref("id_embs").narrow(0, 0, 1);
  p.num_images = 2;
  p.width = p.height = 64;
  p.seed = 42;
  p.dump_dir = dump;
  GenerationResult r = generate_images(models_, p);
  EXPECT_EQ(test::max_abs_diff(npy_read(dump / "latents_init.npy"), ref("pipe_dpm_gen42_init_latents")), 0.0);
  EXPECT_LE(test::max_abs_diff(r.images, ref("pipe_dpm_gen42_images")), 1e-3);
  EXPECT_EQ(r.seeds, (std::vector<uint64_t>{42, 42}));
  fs::remove_all(dump);
}

TEST_P(PipelineParity, RejectsBadParameters) {
  GenerationParams p;
  p.id_embeddings = ref("id_embs").narrow(0, 0, 1);
  p.width = 60;
  p.height = 64;
  EXPECT_THROW(generate_images(models_, p), Error);
  p.width = 64;
  p.scheduler = "nope";
  EXPECT_THROW(generate_images(models_, p), Error);
  p.scheduler = "dpm++2m";
  p.id_embeddings = Tensor::zeros({1, 512});
  EXPECT_THROW(generate_images(models_, p), Error);
  p.id_embeddings = Tensor::full({1, 512}, NAN);
  EXPECT_THROW(generate_images(models_, p), Error);
  p.id_embeddings = ref("id_embs").narrow(0, 0, 1);
  p.latents = Tensor::zeros({1, 4, 8, 8});  // 1 image of latents for 1 image: fine; wrong size next
  p.num_images = 2;
  EXPECT_THROW(generate_images(models_, p), Error);
}

TEST_P(PipelineParity, CancelStopsTheLoop) {
  GenerationParams p;
  p.id_embeddings = ref("id_embs").narrow(0, 0, 1);
  p.width = p.height = 64;
  int seen = 0;
  p.on_stage = [&](const GenerationStage& s) {
    if (std::string(s.stage) == "denoise") ++seen;
    return seen < 3;
  };
  EXPECT_THROW(generate_images(models_, p), GenerationCancelled);
  EXPECT_EQ(seen, 3);
}

INSTANTIATE_TEST_SUITE_P(Backends, PipelineParity, ::testing::Values("ref", "cpu"));

TEST(Rgb8, RoundsHalfToEvenLikeNumpy) {
  // 0.5/255 * 255 = 0.5 -> 0 ; 1.5/255*255 -> 2 (float32 products checked by construction)
  Tensor x = Tensor::from_data({1, 1, 2, 3}, std::vector<float>{0.0f, 1.0f, 0.5f, 0.25f, 0.75f, 0.998f});
  auto out = images_to_rgb8(x);
  ASSERT_EQ(out.size(), 1u);
  const std::vector<uint8_t> want{0, 255, 128, 64, 191, 254};  // 127.5->128, 63.75->64, 191.25->191, 254.49->254
  EXPECT_EQ(out[0], want);
}

}  // namespace
}  // namespace a2f
