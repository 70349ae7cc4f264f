// `arc2face download` as a whole against the fake hub: every manifest file into the HF cache or a --dest
// folder, then found by discovery; second runs download nothing; offline mode makes no request at all.
#include <gtest/gtest.h>

#include "arc2face/hub.h"
#include "hub/discovery.h"
#include "hub/fetch_models.h"
#include "hub/hub_test_util.h"

namespace a2f::test {
namespace {

namespace fs = std::filesystem;
using hub::Component;

struct FetchFixture : ::testing::Test {
  FakeHub fake;
  TempDir tmp;
  hub::HubConfig cfg = test_config(fake, tmp.path());
  std::map<std::string, std::string> files;
  std::string detector = std::string(70000, 'd') + "scrfd";
  void SetUp() override {
    files = populate_model_repos(fake);
    fake.add_static("/files/antelopev2.zip",
                    make_zip({{"antelopev2/antelopev2/glintr100.onnx", std::string(90000, 'g')},
                              {"antelopev2/antelopev2/scrfd_10g_bnkps.onnx", detector}}));
    cfg.detector_sha256 = FakeHub::sha256(detector);
  }
  hub::SearchEnv env() const {
    hub::SearchEnv e;
    e.hub_cache = cfg.hub_cache;
    e.arc2face_cache = cfg.arc2face_cache;
    return e;
  }
};

TEST_F(FetchFixture, EverythingIntoTheHfCacheThenFound) {
  hub::HttpClient http;
  hub::FetchRequest req;
  req.components = {Component::Core, Component::Base, Component::Face, Component::ControlNet, Component::Lcm};
  std::vector<std::string> notes;
  int progress_calls = 0;
  auto sum = hub::fetch_models(&http, cfg, req,
                               {[&](const hub::TransferProgress&) { ++progress_calls; },
                                [&](const std::string& s) { notes.push_back(s); }});
  EXPECT_EQ(sum.files.size(), files.size() + 1);  // + the detector
  EXPECT_GT(progress_calls, 0);
  ASSERT_FALSE(notes.empty());
  EXPECT_NE(notes[0].find("to download"), std::string::npos) << notes[0];
  for (const auto& f : sum.files) EXPECT_EQ(f.outcome, hub::FetchOutcome::Downloaded) << f.label;
  auto d = hub::discover_models({}, env());
  for (const auto& st : d.roles) EXPECT_TRUE(st.found) << hub::role_spec(st.role).name;
  EXPECT_EQ(read_file(d.paths.unet_dir / "diffusion_pytorch_model.safetensors"),
            files["FoivosPar/Arc2Face/arc2face/diffusion_pytorch_model.safetensors"]);
  EXPECT_EQ(read_file(d.paths.tokenizer_dir / "vocab.json"),
            files["stable-diffusion-v1-5/stable-diffusion-v1-5/tokenizer/vocab.json"]);
  EXPECT_EQ(read_file(d.paths.detector_onnx), detector);
  EXPECT_EQ(d.paths.detector_onnx, cfg.arc2face_cache / "antelopev2" / "scrfd_10g_bnkps.onnx");

  // A second run asks the hub (HEAD) but transfers nothing.
  fake.clear_requests();
  sum = hub::fetch_models(&http, cfg, req);
  for (const auto& f : sum.files) EXPECT_EQ(f.outcome, hub::FetchOutcome::AlreadyPresent) << f.label;
  EXPECT_EQ(count_requests(fake, "GET", "/"), 0u);
  EXPECT_EQ(sum.bytes_received, 0u);
}

TEST_F(FetchFixture, OnlyTheRequestedComponents) {
  hub::HttpClient http;
  hub::FetchRequest req;
  req.components = {Component::Base};
  auto sum = hub::fetch_models(&http, cfg, req);
  EXPECT_EQ(sum.files.size(),
            7u);  // vae 2, tokenizer 4, scheduler 1: none of the 4 GB of unused SD1.5 weights
  for (const auto& q : fake.requests()) {
    EXPECT_TRUE(q.path.find("stable-diffusion-v1-5/resolve/main/") != std::string::npos ||
                q.path.rfind("/cdn/", 0) == 0)
        << q.path;
  }
}

TEST_F(FetchFixture, DestFolderLayout) {
  hub::HttpClient http;
  hub::FetchRequest req;
  req.dest = tmp / "models";
  auto sum = hub::fetch_models(&http, cfg, req);
  for (const char* rel :
       {"arc2face/config.json", "arc2face/diffusion_pytorch_model.safetensors", "encoder/config.json",
        "encoder/pytorch_model.bin", "antelopev2/arcface.onnx", "antelopev2/scrfd_10g_bnkps.onnx",
        "stable-diffusion-v1-5/vae/diffusion_pytorch_model.safetensors",
        "stable-diffusion-v1-5/tokenizer/merges.txt",
        "stable-diffusion-v1-5/scheduler/scheduler_config.json"})
    EXPECT_TRUE(fs::is_regular_file(*req.dest / rel)) << rel;
  EXPECT_FALSE(fs::exists(cfg.hub_cache));
  hub::SearchOptions o;
  o.models_dir = *req.dest;
  auto d = hub::discover_models(o, hub::SearchEnv{});
  EXPECT_TRUE(hub::missing_for(d, {true, false, false}).empty());
  EXPECT_EQ(d.status(hub::Role::Vae).source, "--models");
  // No partial files or archives left behind.
  for (const auto& e : fs::recursive_directory_iterator(*req.dest)) {
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos) << e.path();
    EXPECT_EQ(e.path().string().find(".zip"), std::string::npos) << e.path();
  }
}

TEST_F(FetchFixture, DryRunTransfersNothing) {
  hub::HttpClient http;
  hub::FetchRequest req;
  req.dry_run = true;
  std::vector<std::string> notes;
  auto sum = hub::fetch_models(&http, cfg, req, {{}, [&](const std::string& s) { notes.push_back(s); }});
  EXPECT_EQ(count_requests(fake, "GET", "/"), 0u);
  EXPECT_GT(sum.bytes_planned, 60000u * 4);
  EXPECT_FALSE(fs::exists(cfg.hub_cache / "models--FoivosPar--Arc2Face" / "blobs"));
  EXPECT_EQ(notes.size(), hub::plan_fetch(req, cfg.detector_sha256).size() + 1);
}

TEST_F(FetchFixture, DetectorFromTheHfMirrorIsCheckedAgainstTheKnownChecksum) {
  fake.add_file(hub::kAntelopeMirrorRepo, "scrfd_10g_bnkps.onnx", detector, true);
  hub::HttpClient http;
  hub::FetchRequest req;
  req.components = {Component::Face};
  req.detector_source = hub::DetectorSource::HfMirror;
  hub::fetch_models(&http, cfg, req);
  auto d = hub::discover_models({}, env());
  EXPECT_EQ(d.status(hub::Role::Detector).source, "HF cache (DIAMONIK7777/antelopev2)");
  // A mirror serving another file is refused before a byte is downloaded.
  TempDir other;
  hub::HubConfig cfg2 = test_config(fake, other.path());
  cfg2.detector_sha256 = std::string(64, 'e');
  fake.clear_requests();
  EXPECT_THROW(hub::fetch_models(&http, cfg2, req), Error);
  EXPECT_EQ(count_requests(fake, "GET", "/cdn/"), 0u);
}

TEST_F(FetchFixture, OfflineModeMakesNoRequest) {
  cfg.offline = true;
  hub::HttpClient http;
  hub::FetchRequest req;
  try {
    hub::fetch_models(&http, cfg, req);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("offline mode (HF_HUB_OFFLINE=1)"), std::string::npos) << m;
    EXPECT_NE(m.find("FoivosPar/Arc2Face arc2face/diffusion_pytorch_model.safetensors"), std::string::npos)
        << m;
  }
  EXPECT_EQ(fake.request_count(), 0u);
  // Online once, then offline: everything is reported present, still without a request.
  cfg.offline = false;
  hub::fetch_models(&http, cfg, req);
  cfg.offline = true;
  fake.clear_requests();
  auto sum = hub::fetch_models(nullptr, cfg, req);
  EXPECT_EQ(sum.files.size(), hub::plan_fetch(req, cfg.detector_sha256).size());
  EXPECT_EQ(fake.request_count(), 0u);
}

TEST_F(FetchFixture, PublicApiHonoursTheEnvironment) {
  ScopedEnv e;
  e.set("HF_ENDPOINT", fake.endpoint())
      .set("HF_HOME", (tmp / "home_hf").string())
      .set("HF_HUB_CACHE", std::nullopt)
      .set("HF_HUB_OFFLINE", "1")
      .set("HF_TOKEN", "hf_env_token")
      .set("ARC2FACE_CACHE", (tmp / "a2f").string())
      .set("ARC2FACE_MODELS", std::nullopt)
      .set("HOME", tmp.path().string());
  arc2face::ModelDownloadOptions o;
  o.face = false;
  EXPECT_THROW(arc2face::download_models(o), arc2face::Error);
  EXPECT_EQ(fake.request_count(), 0u) << "HF_HUB_OFFLINE=1 must never touch the network";
  e.set("HF_HUB_OFFLINE", std::nullopt);
  auto r = arc2face::download_models(o);
  EXPECT_EQ(r.root, (tmp / "home_hf" / "hub").string());
  EXPECT_EQ(r.downloaded, r.files);
  bool token_seen = false;
  for (const auto& q : fake.requests()) token_seen = token_seen || q.authorization == "Bearer hf_env_token";
  EXPECT_TRUE(token_seen);
  // require_models(download=true) fetches only what the job lacks (here: the LCM-LoRA).
  fake.clear_requests();
  arc2face::ModelJob job;
  job.lcm = true;
  arc2face::ModelPaths p = arc2face::require_models({}, job, true);
  EXPECT_NE(p.lcm_lora_file.find("models--latent-consistency--lcm-lora-sdv1-5"), std::string::npos);
  for (const auto& q : fake.requests())
    EXPECT_TRUE(q.path.find("lcm-lora") != std::string::npos || q.path.rfind("/cdn/", 0) == 0 ||
                q.method == "HEAD")
        << q.method << " " << q.path;
}

}  // namespace
}  // namespace a2f::test
