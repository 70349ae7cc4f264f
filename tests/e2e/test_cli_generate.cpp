// `arc2face generate` as a user runs it, on the tiny fixture models.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/cli_util.h"
#include "common/test_util.h"
#include "io/image.h"
#include "io/npy.h"

namespace fs = std::filesystem;
using a2f::test::fixture;
using a2f::test::q;
using a2f::test::run_cli;

namespace {

class CliGenerate : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("a2f_cli_gen_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    a2f::npy_write(dir_ / "emb.npy", a2f::npy_read(fixture("ref/id_embs.npy")).narrow(0, 0, 1).contiguous());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string models() const {
    return "--models " + q(fixture("models")) + " --base " + q(fixture("models/sd15")) + " ";
  }
  fs::path dir_;
};

TEST_F(CliGenerate, WritesPngsWithParametersAndDumps) {
  auto r = run_cli("generate -q --id-embedding " + q(dir_ / "emb.npy") + " " + models() +
                   "-n 2 --steps 3 --seed 7 --width 64 --height 64 --out " + q(dir_ / "out") + " --dump " +
                   q(dir_ / "dump"));
  ASSERT_EQ(r.status, 0) << r.out;
  for (int i = 0; i < 2; ++i) {
    fs::path png = dir_ / "out" / ("arc2face_7_" + std::to_string(i) + ".png");
    ASSERT_TRUE(fs::exists(png)) << r.out;
    a2f::Image8 img = a2f::image_read(png);
    EXPECT_EQ(img.width, 64);
    auto text = a2f::png_read_text(png);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text[0].first, "parameters");
    EXPECT_NE(text[0].second.find("Seed: 7"), std::string::npos);
  }
  for (const char* name : {"input_ids", "id_embedding", "prompt_embeds", "negative_prompt_embeds", "timesteps",
                           "latents_init", "noise_pred_0", "latents_0", "noise_pred_2", "latents_2", "image"}) {
    EXPECT_TRUE(fs::exists(dir_ / "dump" / (std::string(name) + ".npy"))) << name;
  }
  EXPECT_EQ(a2f::npy_read(dir_ / "dump" / "image.npy").shape(), (a2f::Shape{2, 64, 64, 3}));
  EXPECT_NE(r.out.find("--seed 7"), std::string::npos);
}

TEST_F(CliGenerate, FromPhotosEndToEnd) {
  const std::string face = "--antelope " + q(fixture("face/antelopev2_mini")) + " ";
  auto r = run_cli("generate -q --image " + q(fixture("face/images/s01_640x480.jpg")) + " --image " +
                   q(fixture("face/images/s03_300x400.png")) + " " + face + models() +
                   "--steps 2 --seed 3 --width 64 --height 64 --out " + q(dir_ / "photo"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(fs::exists(dir_ / "photo" / "arc2face_3_0.png")) << r.out;
  // A photo without a face: the official demo's advice, exit status 1.
  r = run_cli("generate -q --image " + q(fixture("face/images/s11_blank_320x240.png")) + " " + face + models() +
              "--steps 2 --width 64 --height 64 --out " + q(dir_ / "blank"));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("no face"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "blank" / "arc2face_0_0.png"));
  // Both or neither identity source.
  r = run_cli("generate -q " + models() + "--steps 2 --width 64 --height 64");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("--id-embedding"), std::string::npos) << r.out;
}

TEST_F(CliGenerate, ClearErrorsNeverCrashes) {
  a2f::npy_write(dir_ / "bad_shape.npy", a2f::Tensor::zeros({3, 512}));
  a2f::npy_write(dir_ / "nan.npy", a2f::Tensor::full({512}, NAN));
  struct Case {
    std::string args, expect;
  };
  const Case cases[] = {
      {"--id-embedding " + q(dir_ / "bad_shape.npy") + " " + models(), "shape [512] or [1, 512]"},
      {"--id-embedding " + q(dir_ / "nan.npy") + " " + models(), "not finite"},
      {"--id-embedding " + q(dir_ / "emb.npy") + " " + models() + "--scheduler warp", "warp"},
      {"--id-embedding " + q(dir_ / "emb.npy") + " " + models() + "--width 60 --height 64", "multiples of 8"},
      {"--id-embedding " + q(dir_ / "emb.npy") + " --models " + q(dir_ / "nowhere") + " --base " +
           q(dir_ / "nowhere"),
       "FoivosPar/Arc2Face arc2face/"},
      {"--id-embedding " + q(dir_ / "emb.npy") + " " + models() + "--device quantum", "unknown device"},
  };
  for (const Case& c : cases) {
    auto r = run_cli("generate -q --steps 2 " + c.args + (c.args.find("--width") == std::string::npos ? " --width 64 --height 64" : ""));
    EXPECT_EQ(r.status, 1) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find("error:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << "\n" << r.out;
  }
}

}  // namespace
