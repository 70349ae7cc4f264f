// Downloads from a local imitation of the Hugging Face hub: cache layout, CDN redirect, resume after a
// dropped connection, verification, 401/404, retries, offline mode.
#include <gtest/gtest.h>
#include <unistd.h>

#include "hub/download.h"
#include "hub/hf_cache.h"
#include "hub/hub_test_util.h"

namespace a2f::test {
namespace {

namespace fs = std::filesystem;
using hub::HttpClient;
using hub::RepoFile;

const char* kRepo = "owner/model";

std::string payload(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 131 + size_t(seed) * 7 + (i >> 8)) & 0xFF);
  return s;
}

struct HubFixture : ::testing::Test {
  FakeHub fake;  // declared first: destroyed after the client, whose connections it would wait for
  TempDir tmp;
  hub::HubConfig cfg = test_config(fake, tmp.path());
  std::string weights = payload(300000, 1);
  std::string config = "{\"a\": 1}\n";
  void SetUp() override {
    fake.add_file(kRepo, "unet/diffusion_pytorch_model.safetensors", weights, true);
    fake.add_file(kRepo, "unet/config.json", config, false);
  }
  fs::path repo_dir() const { return cfg.hub_cache / "models--owner--model"; }
  fs::path blob_of(const std::string& content, bool lfs) const {
    return repo_dir() / "blobs" / (lfs ? FakeHub::sha256(content) : FakeHub::git_sha1(content));
  }
  hub::FetchResult fetch(HttpClient& http, const std::string& path) {
    RepoFile f{kRepo, "main", path, ""};
    return hub::hf_download_to_cache(http, cfg, f, hub::get_file_metadata(http, cfg, f));
  }
};

TEST_F(HubFixture, CacheLayoutBlobsSnapshotsRefs) {
  HttpClient http;
  auto r = fetch(http, "unet/diffusion_pytorch_model.safetensors");
  auto c = fetch(http, "unet/config.json");
  EXPECT_EQ(r.outcome, hub::FetchOutcome::Downloaded);
  fs::path pointer =
      repo_dir() / "snapshots" / fake.commit() / "unet" / "diffusion_pytorch_model.safetensors";
  EXPECT_EQ(r.path, pointer);
  ASSERT_TRUE(fs::is_symlink(pointer));
  EXPECT_EQ(fs::read_symlink(pointer).string(), "../../../blobs/" + FakeHub::sha256(weights));
  EXPECT_EQ(read_file(pointer), weights);
  EXPECT_EQ(read_file(blob_of(weights, true)), weights);
  // The small file's blob is named by its git blob sha1 (its ETag).
  EXPECT_EQ(read_file(blob_of(config, false)), config);
  EXPECT_EQ(read_file(c.path), config);
  EXPECT_EQ(read_file(repo_dir() / "refs" / "main"), fake.commit());
  for (const auto& e : fs::recursive_directory_iterator(cfg.hub_cache))
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos) << e.path();  // NOLINT
  // HEAD on resolve, GET of the LFS bytes on the CDN path, GET of the small file on resolve.
  EXPECT_EQ(count_requests(fake, "HEAD", "/owner/model/resolve/main/"), 2u);
  EXPECT_EQ(count_requests(fake, "GET", "/cdn/"), 1u);
  EXPECT_EQ(count_requests(fake, "GET", "/owner/model/resolve/main/unet/config.json"), 1u);
}

TEST_F(HubFixture, SecondRunDownloadsNothing) {
  HttpClient http;
  fetch(http, "unet/diffusion_pytorch_model.safetensors");
  fake.clear_requests();
  auto r = fetch(http, "unet/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(r.outcome, hub::FetchOutcome::AlreadyPresent);
  EXPECT_EQ(count_requests(fake, "GET", "/"), 0u);
  // A new commit that keeps the file: the new snapshot links the existing blob.
  fake.set_commit("fedcba9876543210fedcba9876543210fedcba98");
  r = fetch(http, "unet/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(r.outcome, hub::FetchOutcome::LinkedExistingBlob);
  EXPECT_EQ(read_file(r.path), weights);
  EXPECT_EQ(read_file(repo_dir() / "refs" / "main"), "fedcba9876543210fedcba9876543210fedcba98");
  EXPECT_EQ(count_requests(fake, "GET", "/"), 0u);
}

TEST_F(HubFixture, TokenGoesToTheHubButNotToTheCdn) {
  cfg.token = "hf_secret_token";
  HttpClient http;
  fetch(http, "unet/diffusion_pytorch_model.safetensors");
  bool head_had_token = false;
  for (const auto& r : fake.requests()) {
    if (r.method == "HEAD") head_had_token = r.authorization == "Bearer hf_secret_token";
    if (r.path.rfind("/cdn/", 0) == 0) {
      EXPECT_EQ(r.authorization, "") << "token leaked to the CDN";
    }
  }
  EXPECT_TRUE(head_had_token);
}

TEST_F(HubFixture, ResumesAfterTheConnectionDropsMidFile) {
  Fault f;
  f.drop_at = 123457;
  f.drop_times = 1;
  fake.set_fault(std::string(kRepo) + "/unet/diffusion_pytorch_model.safetensors", f);
  HttpClient http;
  auto r = fetch(http, "unet/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(read_file(r.path), weights);
  std::vector<std::string> ranges;
  for (const auto& q : fake.requests())
    if (q.method == "GET" && q.path.rfind("/cdn/", 0) == 0) ranges.push_back(q.range);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=123457-");
}

TEST_F(HubFixture, ResumesAnIncompleteFileFromAnEarlierRun) {
  fs::path inc = blob_of(weights, true);
  inc += ".incomplete";
  write_file(inc, weights.substr(0, 200000));
  HttpClient http;
  auto r = fetch(http, "unet/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(r.bytes_received, weights.size() - 200000);
  EXPECT_EQ(read_file(r.path), weights);
  EXPECT_FALSE(fs::exists(inc));
  auto reqs = fake.requests();
  ASSERT_EQ(count_requests(fake, "GET", "/cdn/"), 1u);
  for (const auto& q : reqs)
    if (q.method == "GET") {
      EXPECT_EQ(q.range, "bytes=200000-");
    }
}

TEST_F(HubFixture, AStalePartialFileIsRestartedFromZero) {
  fs::path inc = blob_of(weights, true);
  inc += ".incomplete";
  write_file(inc, std::string(1000, 'x'));  // not a prefix of the file
  HttpClient http;
  auto r = fetch(http, "unet/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(read_file(r.path), weights);
  std::vector<std::string> ranges;
  for (const auto& q : fake.requests())
    if (q.method == "GET") ranges.push_back(q.range);
  EXPECT_EQ(ranges, (std::vector<std::string>{"bytes=1000-", ""}));
}

TEST_F(HubFixture, ACorruptedByteFailsAndLeavesNothingInPlace) {
  Fault f;
  f.corrupt = true;
  fake.set_fault(std::string(kRepo) + "/unet/diffusion_pytorch_model.safetensors", f);
  HttpClient http;
  try {
    fetch(http, "unet/diffusion_pytorch_model.safetensors");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("checksum mismatch"), std::string::npos) << m;
    EXPECT_NE(m.find(FakeHub::sha256(weights)), std::string::npos) << m;
  }
  EXPECT_FALSE(fs::exists(blob_of(weights, true)));
  fs::path inc = blob_of(weights, true);
  inc += ".incomplete";
  EXPECT_FALSE(fs::exists(inc));
  EXPECT_FALSE(
      fs::exists(repo_dir() / "snapshots" / fake.commit() / "unet" / "diffusion_pytorch_model.safetensors"));
}

TEST_F(HubFixture, ACorruptedSmallFileFailsItsGitBlobHash) {
  Fault f;
  f.corrupt = true;
  fake.set_fault(std::string(kRepo) + "/unet/config.json", f);
  HttpClient http;
  EXPECT_THROW(fetch(http, "unet/config.json"), Error);
  EXPECT_FALSE(fs::exists(blob_of(config, false)));
}

TEST_F(HubFixture, Unauthorized401SaysSetHfToken) {
  fake.make_private(kRepo, "hf_right");
  HttpClient http;
  try {
    fetch(http, "unet/config.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("401"), std::string::npos) << m;
    EXPECT_NE(m.find("HF_TOKEN"), std::string::npos) << m;
  }
  EXPECT_EQ(fake.request_count(), 1u) << "401 must not be retried";
  cfg.token = "hf_wrong_secret";
  try {
    fetch(http, "unet/config.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("refused"), std::string::npos) << m;
    EXPECT_EQ(m.find("hf_wrong_secret"), std::string::npos) << "the token must never be printed";
  }
  cfg.token = "hf_right";
  EXPECT_EQ(read_file(fetch(http, "unet/diffusion_pytorch_model.safetensors").path), weights);
}

TEST_F(HubFixture, NotFound404NamesTheFileAndIsNotRetried) {
  HttpClient http;
  try {
    fetch(http, "unet/missing.bin");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("404"), std::string::npos) << m;
    EXPECT_NE(m.find("unet/missing.bin"), std::string::npos) << m;
    EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
  }
  EXPECT_EQ(fake.request_count(), 1u);
  try {
    RepoFile f{"nobody/nothing", "main", "x.json", ""};
    hub::get_file_metadata(http, cfg, f);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("repository does not exist"), std::string::npos) << e.what();
  }
}

TEST_F(HubFixture, ServerErrorsAndRateLimitsAreRetried) {
  Fault f;
  f.fail_status = 503;
  f.fail_times = 2;
  f.retry_after = "0";
  fake.set_fault(std::string(kRepo) + "/unet/diffusion_pytorch_model.safetensors", f);
  f.fail_status = 429;
  fake.set_fault(std::string(kRepo) + "/unet/config.json", f);
  HttpClient http;
  EXPECT_EQ(read_file(fetch(http, "unet/diffusion_pytorch_model.safetensors").path), weights);
  EXPECT_EQ(read_file(fetch(http, "unet/config.json").path), config);
  EXPECT_EQ(count_requests(fake, "GET", "/cdn/"), 3u);
  EXPECT_EQ(count_requests(fake, "GET", "/owner/model/resolve/main/unet/config.json"), 3u);
}

TEST_F(HubFixture, PersistentServerErrorsGiveUpWithAClearMessage) {
  Fault f;
  f.fail_status = 500;
  f.fail_times = 1000;
  fake.set_fault(std::string(kRepo) + "/unet/diffusion_pytorch_model.safetensors", f);
  HttpClient http;
  try {
    fetch(http, "unet/diffusion_pytorch_model.safetensors");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("HTTP 500"), std::string::npos) << m;
    EXPECT_NE(m.find("gave up after 4 attempts"), std::string::npos) << m;
  }
  EXPECT_EQ(count_requests(fake, "GET", "/cdn/"), 4u);
  EXPECT_FALSE(fs::exists(blob_of(weights, true)));
}

TEST_F(HubFixture, RenamedRepositoryRelativeRedirectIsFollowed) {
  fake.rename_repo("old/name", kRepo);
  HttpClient http;
  RepoFile f{"old/name", "main", "unet/config.json", ""};
  auto m = hub::get_file_metadata(http, cfg, f);
  EXPECT_EQ(m.url, fake.endpoint() + "/owner/model/resolve/main/unet/config.json");
  EXPECT_EQ(m.etag, FakeHub::git_sha1(config));
  EXPECT_EQ(read_file(hub::hf_download_to_cache(http, cfg, f, m).path), config);
}

TEST_F(HubFixture, MetadataHeaders) {
  HttpClient http;
  auto m = hub::get_file_metadata(http, cfg, {kRepo, "main", "unet/diffusion_pytorch_model.safetensors", ""});
  EXPECT_EQ(m.commit, fake.commit());
  EXPECT_EQ(m.etag, FakeHub::sha256(weights));  // X-Linked-Etag, unquoted
  ASSERT_TRUE(m.size.has_value());
  EXPECT_EQ(*m.size, weights.size());  // X-Linked-Size
  EXPECT_EQ(m.location, fake.endpoint() + "/cdn/" + FakeHub::sha256(weights) + "?signed=1");
}

TEST_F(HubFixture, AKnownChecksumOverridesTheHub) {
  HttpClient http;
  RepoFile f{kRepo, "main", "unet/diffusion_pytorch_model.safetensors", std::string(64, 'a')};
  try {
    hub::get_file_metadata(http, cfg, f);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expects " + std::string(64, 'a')), std::string::npos) << e.what();
  }
  EXPECT_EQ(count_requests(fake, "GET", "/"), 0u);
}

TEST_F(HubFixture, LocalDirLayoutWritesHuggingfaceHubMetadata) {
  HttpClient http;
  fs::path dir = tmp / "models";
  RepoFile f{kRepo, "main", "unet/diffusion_pytorch_model.safetensors", ""};
  auto m = hub::get_file_metadata(http, cfg, f);
  auto r = hub::hf_download_to_dir(http, cfg, f, m, dir, "arc2face/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(r.path, dir / "arc2face" / "diffusion_pytorch_model.safetensors");
  EXPECT_EQ(read_file(r.path), weights);
  std::string meta =
      read_file(dir / ".cache/huggingface/download/arc2face/diffusion_pytorch_model.safetensors.metadata");
  EXPECT_EQ(meta.substr(0, meta.find('\n', 41) + 1), fake.commit() + "\n" + FakeHub::sha256(weights) + "\n");
  fake.clear_requests();
  EXPECT_EQ(
      hub::hf_download_to_dir(http, cfg, f, m, dir, "arc2face/diffusion_pytorch_model.safetensors").outcome,
      hub::FetchOutcome::AlreadyPresent);
  // Without metadata (copied by hand), the content hash proves the file current.
  fs::remove(dir / ".cache/huggingface/download/arc2face/diffusion_pytorch_model.safetensors.metadata");
  EXPECT_EQ(
      hub::hf_download_to_dir(http, cfg, f, m, dir, "arc2face/diffusion_pytorch_model.safetensors").outcome,
      hub::FetchOutcome::AlreadyPresent);
  EXPECT_EQ(count_requests(fake, "GET", "/"), 0u);
  // A different local file is replaced.
  write_file(r.path, "old");
  fs::remove(dir / ".cache/huggingface/download/arc2face/diffusion_pytorch_model.safetensors.metadata");
  EXPECT_EQ(
      hub::hf_download_to_dir(http, cfg, f, m, dir, "arc2face/diffusion_pytorch_model.safetensors").outcome,
      hub::FetchOutcome::Downloaded);
  EXPECT_EQ(read_file(r.path), weights);
}

TEST_F(HubFixture, ARangeIgnoringServerRestartsTheFile) {
  std::string data = payload(50000, 3);
  fake.add_static("/files/plain.bin", data, /*ranges=*/false);
  write_file(tmp / "plain.bin.incomplete", data.substr(0, 20000));
  hub::DownloadTarget t;
  t.url = fake.endpoint() + "/files/plain.bin";
  t.incomplete = tmp / "plain.bin.incomplete";
  t.final_path = tmp / "plain.bin";
  t.size = data.size();
  t.hash = {hub::ExpectedHash::Kind::Sha256, FakeHub::sha256(data)};
  t.name = t.what = "plain.bin";
  HttpClient http;
  hub::download_file(http, t, cfg.retry);
  EXPECT_EQ(read_file(tmp / "plain.bin"), data);
}

TEST_F(HubFixture, OfflineClientRefusesEveryRequest) {
  hub::HttpClientOptions o;
  o.offline = true;
  HttpClient http(o);
  EXPECT_THROW(http.head(fake.endpoint() + "/x", {}), Error);
  cfg.offline = true;
  HttpClient online;
  EXPECT_THROW(hub::get_file_metadata(online, cfg, {kRepo, "main", "unet/config.json", ""}), Error);
  EXPECT_EQ(fake.request_count(), 0u);
}

TEST(HubUrls, ResolveUrlRedirectsAndEtags) {
  hub::HubConfig c;
  c.endpoint = "https://hf.example";
  EXPECT_EQ(hub::resolve_url(c, {"a/b", "refs/pr/1", "vae/my file.json", ""}),
            "https://hf.example/a/b/resolve/refs%2Fpr%2F1/vae/my%20file.json");
  EXPECT_EQ(hub::repo_folder_name("stable-diffusion-v1-5/stable-diffusion-v1-5"),
            "models--stable-diffusion-v1-5--stable-diffusion-v1-5");
  EXPECT_EQ(hub::normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(hub::normalize_etag("\"abc\""), "abc");
  EXPECT_EQ(hub::resolve_location("https://h.co/a/b/c?x=1", "/new/path"), "https://h.co/new/path");
  EXPECT_EQ(hub::resolve_location("https://h.co/a/b/c", "d"), "https://h.co/a/b/d");
  EXPECT_EQ(hub::resolve_location("https://h.co/a", "https://cdn.co/z"), "https://cdn.co/z");
  EXPECT_EQ(hub::resolve_location("https://h.co/a", "//cdn.co/z"), "https://cdn.co/z");
  EXPECT_DOUBLE_EQ(hub::backoff_delay_s({6, 1.0, 30.0}, 1, -1), 1.0);
  EXPECT_DOUBLE_EQ(hub::backoff_delay_s({6, 1.0, 30.0}, 4, -1), 8.0);
  EXPECT_DOUBLE_EQ(hub::backoff_delay_s({6, 1.0, 30.0}, 9, -1), 30.0);
  EXPECT_DOUBLE_EQ(hub::backoff_delay_s({6, 1.0, 30.0}, 1, 7), 7.0);
}

}  // namespace
}  // namespace a2f::test
