// Finding models already on disk: a fake Hugging Face cache (snapshots -> blobs symlinks, refs/main), folder
// layouts, precedence, and the environment variables.
#include <gtest/gtest.h>

#include "arc2face/hub.h"
#include "hub/discovery.h"
#include "hub/hub_test_util.h"

namespace a2f::test {
namespace {

namespace fs = std::filesystem;
using hub::Role;

const std::string kCommitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string kCommitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

// The cache folder name, written out independently of the library: models--OWNER--NAME.
std::string folder(const std::string& repo) {
  size_t slash = repo.find('/');
  return "models--" + repo.substr(0, slash) + "--" + repo.substr(slash + 1);
}

// Writes repo/path into a fake HF cache as huggingface_hub does: a blob named by a hash, a relative symlink.
void cache_put(const fs::path& cache, const std::string& repo, const std::string& commit,
               const std::string& path, const std::string& content) {
  fs::path repo_dir = cache / folder(repo);
  std::string etag = FakeHub::sha256(content);
  write_file(repo_dir / "blobs" / etag, content);
  fs::path pointer = repo_dir / "snapshots" / commit / path;
  fs::create_directories(pointer.parent_path());
  std::string up = "../../";
  for (char c : path)
    if (c == '/') up += "../";
  fs::remove(pointer);
  fs::create_symlink(up + "blobs/" + etag, pointer);
}

void cache_ref(const fs::path& cache, const std::string& repo, const std::string& commit) {
  write_file(cache / folder(repo) / "refs" / "main", commit);
}

// Every file of the roles of the given components, as a Python user's cache would hold them.
void cache_roles(const fs::path& cache, std::initializer_list<Role> roles, const std::string& commit,
                 const std::string& sd_repo = hub::kSd15Repo) {
  for (Role r : roles) {
    const auto& spec = hub::role_spec(r);
    for (const auto& f : hub::role_hub_files(spec)) {
      std::string repo = f.repo == hub::kSd15Repo ? sd_repo : f.repo;
      cache_put(cache, repo, commit, f.repo_path, "content of " + f.repo_path);
      cache_ref(cache, repo, commit);
    }
  }
}

// A folder in the --dest layout (= the Python demo's models/ + stable-diffusion-v1-5/).
void folder_roles(const fs::path& root, std::initializer_list<Role> roles) {
  for (Role r : roles) {
    const auto& spec = hub::role_spec(r);
    if (r == Role::Detector) {
      write_file(root / "antelopev2" / hub::kDetectorFile, "det");
      continue;
    }
    for (const auto& f : hub::role_hub_files(spec)) write_file(root / f.dest_path, "x");
  }
}

hub::SearchEnv env_for(const TempDir& tmp) {
  hub::SearchEnv e;
  e.hub_cache = tmp / "hf/hub";
  e.arc2face_cache = tmp / "a2f_cache";
  e.cwd_models = tmp / "cwd/models";
  e.insightface_root = tmp / "home/.insightface";
  return e;
}

const std::initializer_list<Role> kGenerate = {Role::Unet, Role::Encoder, Role::Vae, Role::Tokenizer,
                                               Role::Scheduler};

TEST(Discovery, FindsAPythonUsersHfCache) {
  TempDir tmp;
  auto env = env_for(tmp);
  cache_roles(env.hub_cache, kGenerate, kCommitA, hub::kSd15LegacyRepo);  // SD1.5 under its former name
  cache_roles(env.hub_cache, {Role::Arcface}, kCommitA);
  write_file(env.arc2face_cache / "antelopev2" / hub::kDetectorFile, "det");
  auto d = hub::discover_models({}, env);
  fs::path arc = env.hub_cache / "models--FoivosPar--Arc2Face/snapshots" / kCommitA;
  EXPECT_EQ(d.paths.unet_dir, arc / "arc2face");
  EXPECT_EQ(d.paths.encoder_dir, arc / "encoder");
  EXPECT_EQ(d.paths.arcface_onnx, arc / "arcface.onnx");
  EXPECT_EQ(d.paths.vae_dir,
            env.hub_cache / "models--runwayml--stable-diffusion-v1-5/snapshots" / kCommitA / "vae");
  EXPECT_EQ(d.paths.detector_onnx, env.arc2face_cache / "antelopev2" / hub::kDetectorFile);
  EXPECT_EQ(d.status(Role::Unet).source, "HF cache (FoivosPar/Arc2Face)");
  EXPECT_TRUE(hub::missing_for(d, {true, false, false}).empty());
  auto lcm_missing = hub::missing_for(d, {false, true, false});
  ASSERT_EQ(lcm_missing.size(), 1u);
  EXPECT_EQ(lcm_missing[0]->role, Role::LcmLora);
}

TEST(Discovery, RefsMainFirstThenOlderSnapshots) {
  TempDir tmp;
  auto env = env_for(tmp);
  cache_roles(env.hub_cache, {Role::Unet}, kCommitA);
  cache_put(env.hub_cache, hub::kArc2FaceRepo, kCommitB, "arc2face/config.json",
            "newer");  // B lacks the weights
  cache_ref(env.hub_cache, hub::kArc2FaceRepo, kCommitB);
  auto d = hub::discover_models({}, env);
  EXPECT_EQ(d.paths.unet_dir,
            env.hub_cache / "models--FoivosPar--Arc2Face/snapshots" / kCommitA / "arc2face");
  // Now B is complete: refs/main wins.
  cache_put(env.hub_cache, hub::kArc2FaceRepo, kCommitB, "arc2face/diffusion_pytorch_model.safetensors", "w");
  d = hub::discover_models({}, env);
  EXPECT_EQ(d.paths.unet_dir,
            env.hub_cache / "models--FoivosPar--Arc2Face/snapshots" / kCommitB / "arc2face");
}

TEST(Discovery, ADanglingSymlinkIsNotAFile) {
  TempDir tmp;
  auto env = env_for(tmp);
  cache_roles(env.hub_cache, {Role::Unet}, kCommitA);
  fs::path blobs = env.hub_cache / "models--FoivosPar--Arc2Face/blobs";
  fs::remove(blobs / FakeHub::sha256("content of arc2face/diffusion_pytorch_model.safetensors"));
  auto d = hub::discover_models({}, env);
  EXPECT_FALSE(d.status(Role::Unet).found);
  ASSERT_EQ(d.status(Role::Unet).partial.size(), 1u);
  EXPECT_NE(d.status(Role::Unet).partial[0].find("diffusion_pytorch_model.safetensors"), std::string::npos);
}

TEST(Discovery, PrecedenceFlagsCacheEnvCwd) {
  TempDir tmp;
  auto env = env_for(tmp);
  env.models_env = tmp / "env_models";
  folder_roles(env.cwd_models, kGenerate);
  auto d = hub::discover_models({}, env);
  EXPECT_EQ(d.status(Role::Unet).source, "./models");
  EXPECT_EQ(d.paths.vae_dir, env.cwd_models / "stable-diffusion-v1-5/vae");
  folder_roles(env.models_env, kGenerate);
  d = hub::discover_models({}, env);
  EXPECT_EQ(d.status(Role::Unet).source, "$ARC2FACE_MODELS");
  cache_roles(env.hub_cache, kGenerate, kCommitA);
  d = hub::discover_models({}, env);
  EXPECT_EQ(d.status(Role::Unet).source, "HF cache (FoivosPar/Arc2Face)");
  hub::SearchOptions flags;
  flags.models_dir = tmp / "flag_models";
  folder_roles(flags.models_dir, {Role::Unet, Role::Encoder});
  d = hub::discover_models(flags, env);
  EXPECT_EQ(d.status(Role::Unet).source, "--models");
  EXPECT_EQ(d.paths.unet_dir, flags.models_dir / "arc2face");
  EXPECT_EQ(d.status(Role::Vae).source,
            "HF cache (stable-diffusion-v1-5/stable-diffusion-v1-5)");  // falls back
}

TEST(Discovery, ARoleSpecificFlagIsFinal) {
  TempDir tmp;
  auto env = env_for(tmp);
  cache_roles(env.hub_cache, kGenerate, kCommitA);
  hub::SearchOptions flags;
  flags.base_dir = tmp / "my_sd15";
  write_file(flags.base_dir / "vae" / "config.json", "{}");  // weights missing
  auto d = hub::discover_models(flags, env);
  EXPECT_FALSE(d.status(Role::Vae).found) << "an explicit --base must not silently fall back to the cache";
  EXPECT_EQ(d.paths.tokenizer_dir, std::filesystem::path());
  auto missing = hub::missing_for(d, {});
  std::string msg = hub::missing_message(missing, {});
  EXPECT_NE(msg.find("--base: " + (flags.base_dir / "vae").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("diffusion_pytorch_model.safetensors"), std::string::npos) << msg;
}

TEST(Discovery, DetectorLayoutsNestedFolderInsightfaceAndBuffaloL) {
  TempDir tmp;
  auto env = env_for(tmp);
  write_file(env.insightface_root / "models/buffalo_l" / hub::kDetectorAltFile, "det");
  auto d = hub::discover_models({}, env);
  EXPECT_EQ(d.paths.detector_onnx, env.insightface_root / "models/buffalo_l/det_10g.onnx");
  EXPECT_EQ(d.status(Role::Detector).source, "insightface");
  // How GitHub's antelopev2.zip unpacks in the demo's models/: antelopev2/antelopev2/.
  write_file(env.cwd_models / "antelopev2/antelopev2" / hub::kDetectorFile, "det");
  d = hub::discover_models({}, env);
  EXPECT_EQ(d.paths.detector_onnx, env.cwd_models / "antelopev2/antelopev2" / hub::kDetectorFile);
  // The HF mirror of antelopev2, as PuLID users have it.
  cache_put(env.hub_cache, hub::kAntelopeMirrorRepo, kCommitA, hub::kDetectorFile, "det");
  d = hub::discover_models({}, env);
  EXPECT_EQ(d.status(Role::Detector).source, "HF cache (DIAMONIK7777/antelopev2)");
  // --antelope DIR holds both face models.
  hub::SearchOptions flags;
  flags.antelope_dir = tmp / "ante";
  write_file(flags.antelope_dir / hub::kDetectorFile, "det");
  write_file(flags.antelope_dir / hub::kArcfaceFile, "arc");
  d = hub::discover_models(flags, env);
  EXPECT_EQ(d.paths.detector_onnx, flags.antelope_dir / hub::kDetectorFile);
  EXPECT_EQ(d.paths.arcface_onnx, flags.antelope_dir / hub::kArcfaceFile);
}

TEST(Discovery, MissingMessageNamesFilesPlacesAndTheCommand) {
  TempDir tmp;
  auto env = env_for(tmp);
  cache_roles(env.hub_cache, kGenerate, kCommitA);
  auto d = hub::discover_models({}, env);
  hub::Job job{true, true, false};
  auto missing = hub::missing_for(d, job);
  ASSERT_EQ(missing.size(), 3u);  // detector, arcface, lcm_lora
  std::string msg = hub::missing_message(missing, job);
  EXPECT_NE(msg.find("generating from a photo with LCM-LoRA"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scrfd_10g_bnkps.onnx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("FoivosPar/Arc2Face arcface.onnx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("latent-consistency/lcm-lora-sdv1-5 pytorch_lora_weights.safetensors"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("arc2face download --lcm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--download"), std::string::npos) << msg;
  EXPECT_NE(msg.find("./models: " + (env.cwd_models / "antelopev2").string()), std::string::npos) << msg;
}

TEST(Discovery, EnvironmentVariables) {
  TempDir tmp;
  ScopedEnv e;
  e.set("HF_HOME", (tmp / "hfhome").string())
      .set("HF_HUB_CACHE", std::nullopt)
      .set("HUGGINGFACE_HUB_CACHE", std::nullopt)
      .set("HF_ENDPOINT", "http://mirror.example/")
      .set("HF_HUB_OFFLINE", "yes")
      .set("HF_TOKEN", std::nullopt)
      .set("HUGGING_FACE_HUB_TOKEN", std::nullopt)
      .set("HF_TOKEN_PATH", std::nullopt)
      .set("ARC2FACE_MODELS", (tmp / "m").string())
      .set("ARC2FACE_CACHE", std::nullopt)
      .set("XDG_CACHE_HOME", (tmp / "xdg").string());
  write_file(tmp / "hfhome" / "token", "hf_from_file\n");
  auto c = hub::hub_config_from_env();
  EXPECT_EQ(c.endpoint, "http://mirror.example");
  EXPECT_EQ(c.hub_cache, tmp / "hfhome" / "hub");
  EXPECT_TRUE(c.offline);
  EXPECT_EQ(c.token, "hf_from_file");
  EXPECT_EQ(c.arc2face_cache, tmp / "xdg" / "arc2face");
  EXPECT_EQ(hub::SearchEnv::from_env(c).models_env, tmp / "m");
  e.set("HF_TOKEN", "hf_env").set("HF_HUB_CACHE", (tmp / "cache").string()).set("HF_HUB_OFFLINE", "0");
  c = hub::hub_config_from_env();
  EXPECT_EQ(c.token, "hf_env");
  EXPECT_EQ(c.hub_cache, tmp / "cache");
  EXPECT_FALSE(c.offline);
  e.set("HF_HOME", std::nullopt).set("HF_HUB_CACHE", std::nullopt);
  EXPECT_EQ(hub::hub_config_from_env().hub_cache, tmp / "xdg" / "huggingface" / "hub");
  for (const char* v : {"1", "ON", "true", "Yes"}) EXPECT_TRUE(hub::env_flag_is_true(v)) << v;
  for (const char* v : {"0", "off", "", "no", "2"}) EXPECT_FALSE(hub::env_flag_is_true(v)) << v;
}

TEST(Discovery, PublicApiFindModelsReadsTheEnvironment) {
  TempDir tmp;
  ScopedEnv e;
  e.set("HF_HUB_CACHE", (tmp / "cache").string())
      .set("ARC2FACE_MODELS", std::nullopt)
      .set("HOME", tmp.path().string());
  cache_roles(tmp / "cache", kGenerate, kCommitA);
  arc2face::ModelJob job;
  arc2face::ModelDiscovery d = arc2face::find_models({}, job);
  EXPECT_TRUE(d.missing.empty()) << d.message;
  EXPECT_EQ(d.message, "");
  EXPECT_EQ(
      d.paths.scheduler_dir,
      (tmp / "cache/models--stable-diffusion-v1-5--stable-diffusion-v1-5/snapshots" / kCommitA / "scheduler")
          .string());
  job.controlnet = true;
  d = arc2face::find_models({}, job);
  ASSERT_EQ(d.missing.size(), 1u);
  EXPECT_EQ(d.missing[0].role, "controlnet");
  EXPECT_EQ(d.download_command, "arc2face download --controlnet");
  EXPECT_THROW(arc2face::require_models({}, job, false), arc2face::Error);
  job.controlnet = false;
  EXPECT_EQ(arc2face::require_models({}, job, false).unet_dir, d.paths.unet_dir);
}

}  // namespace
}  // namespace a2f::test
