// `arc2face doctor` pieces: safetensors dtypes from the header, the glintr100 check of Python setups,
// checksums against the HF cache's blob names, the verdict, and the JSON form.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hub/doctor.h"
#include "hub/hub_test_util.h"

namespace a2f::test {
namespace {

namespace fs = std::filesystem;

std::string safetensors(const std::string& header_json, size_t data_bytes) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((uint64_t(header_json.size()) >> (8 * i)) & 0xFF);
  return s + header_json + std::string(data_bytes, '\0');
}

TEST(Doctor, SafetensorsDtypesFromTheHeaderOnly) {
  TempDir tmp;
  write_file(
      tmp / "a.safetensors",
      safetensors(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
                  R"("c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                  16));
  EXPECT_EQ(hub::safetensors_dtype_summary((tmp / "a.safetensors").string()),
            "F16 (1 tensors), F32 (2 tensors)");
  write_file(tmp / "bad.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10));
  EXPECT_EQ(hub::safetensors_dtype_summary((tmp / "bad.safetensors").string()).rfind("INVALID: ", 0), 0u);
  write_file(tmp / "junk.safetensors", safetensors("{not json", 0));
  EXPECT_EQ(hub::safetensors_dtype_summary((tmp / "junk.safetensors").string()).rfind("INVALID: ", 0), 0u);
  EXPECT_EQ(hub::safetensors_dtype_summary((tmp / "missing.safetensors").string()).rfind("INVALID: ", 0), 0u);
}

TEST(Doctor, Glintr100NextToArcfaceIsAWarning) {
  TempDir tmp;
  for (const char* f : {"1k3d68.onnx", "2d106det.onnx", "arcface.onnx", "genderage.onnx", "glintr100.onnx",
                        "scrfd_10g_bnkps.onnx"})
    write_file(tmp / "antelopev2" / f, "x");
  auto c = hub::check_python_folder((tmp / "antelopev2").string());
  EXPECT_EQ(c.recognizer, "arcface.onnx");  // sorted first among the recognition models
  EXPECT_EQ(c.level, "warning");
  EXPECT_NE(c.message.find("delete glintr100.onnx"), std::string::npos) << c.message;
  fs::remove(tmp / "antelopev2" / "glintr100.onnx");
  c = hub::check_python_folder((tmp / "antelopev2").string());
  EXPECT_EQ(c.level, "ok");
}

TEST(Doctor, Glintr100WithoutArcfaceShadowsIt) {
  TempDir tmp;
  for (const char* f : {"glintr100.onnx", "scrfd_10g_bnkps.onnx"}) write_file(tmp / "antelopev2" / f, "x");
  auto c = hub::check_python_folder((tmp / "antelopev2").string());
  EXPECT_EQ(c.recognizer, "glintr100.onnx");
  EXPECT_EQ(c.level, "problem");
  EXPECT_NE(c.message.find("wrong identities"), std::string::npos) << c.message;
}

TEST(Doctor, NestedAntelopeFolderIsReported) {
  TempDir tmp;
  write_file(tmp / "antelopev2" / "antelopev2" / "scrfd_10g_bnkps.onnx", "x");
  auto c = hub::check_python_folder((tmp / "antelopev2").string());
  EXPECT_EQ(c.level, "problem");
  EXPECT_NE(c.message.find("nested"), std::string::npos) << c.message;
}

TEST(Doctor, ReportFindsVerifiesAndJudges) {
  TempDir tmp;
  hub::SearchEnv env;
  env.hub_cache = tmp / "hub";
  env.cwd_models = tmp / "models";
  hub::HubConfig cfg;
  cfg.hub_cache = env.hub_cache;
  cfg.detector_sha256 = FakeHub::sha256("detector");
  // A Python demo's models/ folder: arc2face/, encoder/, antelopev2/ (with glintr100 left in place).
  std::string unet = safetensors(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16);
  write_file(env.cwd_models / "arc2face/config.json", "{}");
  write_file(env.cwd_models / "arc2face/diffusion_pytorch_model.safetensors", unet);
  write_file(env.cwd_models / "encoder/config.json", "{}");
  write_file(env.cwd_models / "encoder/pytorch_model.bin", "pickle");
  write_file(env.cwd_models / "antelopev2/arcface.onnx", "arc");
  write_file(env.cwd_models / "antelopev2/glintr100.onnx", "glint");
  write_file(env.cwd_models / "antelopev2/scrfd_10g_bnkps.onnx", "detector");
  // hf_hub_download(local_dir=...) metadata recorded the hub's sha256 of the UNet weights.
  write_file(
      env.cwd_models / ".cache/huggingface/download/arc2face/diffusion_pytorch_model.safetensors.metadata",
      "0123\n" + FakeHub::sha256(unet) + "\n1.0\n");
  // SD1.5 in the HF cache, one blob deliberately damaged (its name is the sha256 the hub gave).
  fs::path snap = env.hub_cache / "models--stable-diffusion-v1-5--stable-diffusion-v1-5/snapshots/c0ffee";
  fs::path blobs = env.hub_cache / "models--stable-diffusion-v1-5--stable-diffusion-v1-5/blobs";
  for (const char* f : {"vae/config.json", "vae/diffusion_pytorch_model.safetensors", "tokenizer/merges.txt",
                        "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
                        "tokenizer/vocab.json", "scheduler/scheduler_config.json"}) {
    std::string content = std::string("file ") + f;
    std::string sha = FakeHub::sha256(content);
    if (std::string(f) == "vae/diffusion_pytorch_model.safetensors") content[0] = 'F';  // damaged
    write_file(blobs / sha, content);
    fs::create_directories((snap / f).parent_path());
    fs::create_symlink(
        fs::path(std::string(f).find('/') != std::string::npos ? "../../../blobs" : "../../blobs") / sha,
        snap / f);
  }
  hub::DoctorOptions o;
  o.checksums = true;
  auto r = hub::run_doctor(o, env, cfg);
  auto role = [&](hub::Role x) -> const hub::DoctorRole& {
    for (const auto& d : r.roles)
      if (d.role == x) return d;
    throw std::runtime_error("role");
  };
  ASSERT_TRUE(role(hub::Role::Unet).found);
  EXPECT_EQ(role(hub::Role::Unet).files[1].dtype, "F32 (1 tensors)");
  EXPECT_EQ(role(hub::Role::Unet).files[1].check, "ok");
  EXPECT_EQ(role(hub::Role::Detector).files[0].check, "ok");
  EXPECT_EQ(role(hub::Role::Vae).files[1].check, "MISMATCH");
  EXPECT_EQ(role(hub::Role::Vae).files[0].check, "ok");
  EXPECT_EQ(role(hub::Role::Encoder).files[1].check, "");  // no recorded checksum: hashed, not judged
  EXPECT_EQ(role(hub::Role::Encoder).files[1].sha256, FakeHub::sha256("pickle"));
  ASSERT_EQ(r.python_folders.size(), 1u);
  EXPECT_EQ(r.python_folders[0].level, "warning");
  auto job = [&](const std::string& key) -> const hub::JobVerdict& {
    for (const auto& j : r.jobs)
      if (j.key == key) return j;
    throw std::runtime_error("job");
  };
  EXPECT_TRUE(job("from_embedding").ready);
  EXPECT_TRUE(job("from_photo").ready);
  EXPECT_FALSE(job("lcm").ready);
  EXPECT_EQ(job("lcm").fetch_command, "arc2face download --lcm");
  EXPECT_GT(r.cpu.logical_cores, 0u);
  EXPECT_GT(r.memory.total, 0u);

  std::string text = hub::doctor_text(r);
  EXPECT_NE(text.find("MISMATCH"), std::string::npos);
  EXPECT_NE(text.find("glintr100.onnx"), std::string::npos);
  auto j = nlohmann::json::parse(hub::doctor_json(r));
  EXPECT_TRUE(j["can_run"]["from_photo"]["ready"].get<bool>());
  EXPECT_EQ(j["models"]["unet"]["source"], "./models");
  EXPECT_EQ(j["models"]["vae"]["files"][1]["check"], "MISMATCH");
  EXPECT_EQ(j["environment"]["HF_TOKEN"], "not set");
  cfg.token = "hf_do_not_print";
  EXPECT_EQ(hub::doctor_json(hub::run_doctor({}, env, cfg)).find("hf_do_not_print"), std::string::npos);
}

}  // namespace
}  // namespace a2f::test
