// The `arc2face download` and `arc2face doctor` commands, run as a user runs them, against a local imitation
// of the Hugging Face hub (HF_ENDPOINT). Errors must be one clear line and a non-zero exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "hub/hub_test_util.h"

namespace a2f::test {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int status = -1;
  std::string out;  // stdout and stderr together
};

// Runs the CLI with a clean hub environment plus `env` ("NAME=value ..."), from `cwd`.
CliRun arc2face(const std::string& env, const std::string& args, const fs::path& cwd) {
  std::string cmd = "cd '" + cwd.string() +
                    "' && env -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN -u HF_HUB_CACHE -u HF_HUB_OFFLINE "
                    "-u ARC2FACE_MODELS " +
                    env + " '" + std::string(A2F_BIN_DIR) + "/arc2face' " + args + " 2>&1";
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

struct CliFixture : ::testing::Test {
  FakeHub fake;
  TempDir tmp;
  std::map<std::string, std::string> files;
  void SetUp() override { files = populate_model_repos(fake); }
  std::string env() const {
    return "HF_ENDPOINT=" + fake.endpoint() + " HF_HOME=" + (tmp / "hf").string() +
           " HOME=" + tmp.path().string() + " ARC2FACE_CACHE=" + (tmp / "a2f").string();
  }
};

TEST_F(CliFixture, DownloadIntoAFolderThenDoctorFindsIt) {
  CliRun r =
      arc2face(env(), "download --only core,base --no-progress --dest '" + (tmp / "models").string() + "'",
               tmp.path());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("11 files in " + (tmp / "models").string() + " (11 downloaded"), std::string::npos)
      << r.out;
  EXPECT_EQ(read_file(tmp / "models/arc2face/diffusion_pytorch_model.safetensors"),
            files["FoivosPar/Arc2Face/arc2face/diffusion_pytorch_model.safetensors"]);
  EXPECT_EQ(read_file(tmp / "models/stable-diffusion-v1-5/scheduler/scheduler_config.json"),
            files["stable-diffusion-v1-5/stable-diffusion-v1-5/scheduler/scheduler_config.json"]);

  r = arc2face(env(), "doctor --json --checksums --models '" + (tmp / "models").string() + "'", tmp.path());
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["models"]["unet"]["found"].get<bool>());
  EXPECT_EQ(j["models"]["unet"]["files"][1]["dtype"], "F32 (1 tensors)");
  EXPECT_EQ(j["models"]["unet"]["files"][1]["check"], "ok");  // against the sha256 the hub gave
  EXPECT_TRUE(j["can_run"]["from_embedding"]["ready"].get<bool>());
  EXPECT_FALSE(j["can_run"]["from_photo"]["ready"].get<bool>());
  EXPECT_EQ(j["can_run"]["from_photo"]["fetch_command"], "arc2face download");

  // ./models is found without a flag (the Python demo's layout).
  r = arc2face(env(), "doctor", tmp.path());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[./models]"), std::string::npos) << r.out;
}

TEST_F(CliFixture, DownloadIntoTheHfCache) {
  CliRun r = arc2face(env(), "download --only core --no-progress", tmp.path());
  ASSERT_EQ(r.status, 0) << r.out;
  fs::path snap = tmp / "hf/hub/models--FoivosPar--Arc2Face/snapshots" / fake.commit();
  EXPECT_TRUE(fs::is_symlink(snap / "encoder/pytorch_model.bin"));
  EXPECT_EQ(read_file(snap / "encoder/pytorch_model.bin"),
            files["FoivosPar/Arc2Face/encoder/pytorch_model.bin"]);
  // Again: nothing to download.
  r = arc2face(env(), "download --only core --no-progress", tmp.path());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("(0 downloaded, 0 B received)"), std::string::npos) << r.out;
}

TEST_F(CliFixture, OfflineModeFailsClearlyWithoutARequest) {
  CliRun r = arc2face(env() + " HF_HUB_OFFLINE=1", "download --only core", tmp.path());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(r.out.rfind("error: offline mode (HF_HUB_OFFLINE=1): 4 of 4 files are not in ", 0), 0u) << r.out;
  EXPECT_EQ(fake.request_count(), 0u);
}

TEST_F(CliFixture, HubErrorsAreOneClearLine) {
  fake.make_private("FoivosPar/Arc2Face", "hf_secret");
  CliRun r = arc2face(env(), "download --only core", tmp.path());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(r.out.rfind("error: HTTP 401 Unauthorized for FoivosPar/Arc2Face arc2face/config.json", 0), 0u)
      << r.out;
  EXPECT_NE(r.out.find("set HF_TOKEN"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  r = arc2face(env() + " HF_TOKEN=hf_secret", "download --only core --no-progress", tmp.path());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("hf_secret"), std::string::npos) << "the token must never be printed";

  r = arc2face(env(), "download --only lcm,nonsense", tmp.path());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("unknown component 'nonsense'"), std::string::npos) << r.out;
  r = arc2face(env(), "download --detector-from elsewhere", tmp.path());
  EXPECT_NE(r.status, 0);
}

}  // namespace
}  // namespace a2f::test
