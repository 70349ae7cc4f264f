// The server with the real engine (make_pipeline_engine: arc2face::Pipeline + FaceAnalyzer) on the tiny
// fixture models and the mini antelopev2 fixtures. The numbers compared are the reference stack's: diffusers'
// pipe_dpm_gen42 images (tests/fixtures/ref) and insightface's faces and embeddings (tests/fixtures/face).
// Also `arc2face serve` as a process: start, serve, SIGTERM → clean exit.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "io/npy.h"
#include "server/pipeline_engine.h"
#include "server_test_util.h"

namespace a2f_server::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

PipelineEngineOptions fixture_engine_options() {
  PipelineEngineOptions o;
  o.pipeline.models_dir = fixture("models").string();
  o.pipeline.base_dir = fixture("models/sd15").string();
  o.pipeline.controlnet_dir = fixture("models/controlnet").string();
  arc2face::FaceAnalyzerOptions fo;
  fo.antelope_dir = fixture("face/antelopev2_mini").string();
  fo.threads = 1;
  o.face = fo;
  o.pipeline.threads = 1;  // tiny models: more threads only add synchronisation on a loaded machine
  return o;
}

class PipelineServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = new Engine(make_pipeline_engine(fixture_engine_options())); }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  void SetUp() override { start(*engine_); }
  void start(const Engine& engine) {
    if (server_) server_->stop(0ms);
    server_ = std::make_unique<Server>(test_options(), engine);
    port_ = server_->start();
    client_ = test_client(port_, 60);
  }
  void TearDown() override { server_->stop(0ms); }

  json wait_done(const std::string& id) { return wait_job(*client_, id, 60000ms, 10ms); }

  static Engine* engine_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};
Engine* PipelineServer::engine_ = nullptr;

// diffusers' StableDiffusionPipeline with the tiny models, id_embs[0], 25 DPM-Solver++ steps, guidance 3.0,
// torch.Generator('cpu').manual_seed(42) for both images: the server's PNGs are round(255 * image) of it.
TEST_F(PipelineServer, ImagesMatchTheReferencePipeline) {
  Engine without_similarity =
      *engine_;  // (ID similarity has its own test; it costs a face analysis per image)
  without_similarity.embed_image = nullptr;
  start(without_similarity);
  auto ids = arc2face::read_float_npy(fixture("ref/id_embs.npy").string());
  std::vector<float> id0(ids.begin(), ids.begin() + 512);
  json body = {{"id_embedding", id0}, {"num_images", 2},          {"steps", 25}, {"guidance", 3.0},
               {"seed", 42},          {"per_image_seeds", false}, {"width", 64}, {"height", 64}};
  auto r = client_->Post("/v1/generate", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  json done = wait_done(json::parse(r->body)["id"]);
  ASSERT_EQ(done["state"], "succeeded") << done.dump();
  std::vector<int64_t> shape;
  auto ref = arc2face::read_float_npy(fixture("ref/pipe_dpm_gen42_images.npy").string(), &shape);
  ASSERT_EQ(shape, (std::vector<int64_t>{2, 64, 64, 3}));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(done["images"][size_t(i)]["seed"], 42);  // one generator: both images come from seed 42
    auto png = client_->Get(done["images"][size_t(i)]["url"].get<std::string>().c_str());
    ASSERT_TRUE(png);
    int w = 0, h = 0;
    auto px = decode_png_rgb(png->body, &w, &h);
    ASSERT_EQ(w, 64);
    ASSERT_EQ(h, 64);
    int worst = 0;
    for (size_t k = 0; k < px.size(); ++k) {
      int want = int(std::lround(255.0 * ref[size_t(i) * px.size() + k]));
      worst = std::max(worst, std::abs(int(px[k]) - want));
    }
    EXPECT_LE(worst, 1) << "image " << i;  // the pipeline matches to 1e-3; rounding may move a value by 1
  }
  EXPECT_TRUE(done["images"][0]["id_similarity"].is_null());
}

// insightface 0.7.3 on s01_640x480.jpg with the mini antelopev2 models: 44 faces, the first chosen.
TEST_F(PipelineServer, PhotosAreAnalysedLikeTheReference) {
  json ref = json::parse(read_file(fixture("face/reference/s01_640x480/faces.json")));
  httplib::MultipartFormDataItems items = {
      {"photo", read_file(fixture("face/images/s01_640x480.jpg")), "s01.jpg", "image/jpeg"}};
  auto r = client_->Post("/v1/embed", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  const json& photo = j["photos"][0];
  EXPECT_EQ(photo["width"], 640);
  EXPECT_EQ(photo["height"], 480);
  ASSERT_EQ(photo["faces"].size(), ref["faces"].size());
  EXPECT_EQ(photo["chosen"], ref["chosen_index"]);
  double worst = 0;
  for (size_t f = 0; f < ref["faces"].size(); ++f) {
    for (size_t k = 0; k < 4; ++k) {
      worst = std::max(worst, std::fabs(photo["faces"][f]["box"][k].get<double>() -
                                        ref["faces"][f]["bbox"][k].get<double>()));
    }
  }
  EXPECT_LE(worst, 1e-3);
  auto normed = arc2face::read_float_npy(fixture("face/reference/s01_640x480/normed_embedding.npy").string());
  std::vector<float> got = j["embedding"].get<std::vector<float>>();
  EXPECT_GE(cosine(got, normed), 0.99999);

  // No face in the blank image: 422 with the plain message.
  httplib::MultipartFormDataItems blank = {
      {"photo", read_file(fixture("face/images/s11_blank_320x240.png")), "blank.png", "image/png"}};
  r = client_->Post("/v1/generate", blank);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422);
  EXPECT_NE(r->body.find("no face found"), std::string::npos);
  // Not an image at all (but sniffed as a JPEG): the decoder's error, 400.
  std::string broken = read_file(fixture("face/images/s01_640x480.jpg")).substr(0, 2000);
  r = client_->Post("/v1/embed", json{{"photos", {base64_encode(broken)}}}.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(r->body.find("/proc/self/fd"), std::string::npos) << r->body;
}

// Uploads are analysed on HTTP threads, results on the job worker: the engine runs the face models on one
// thread of its own, so concurrent requests give the same answer as one alone (and never crash).
TEST_F(PipelineServer, ConcurrentUploadsAreAnalysedConsistently) {
  std::string photo = read_file(fixture("face/images/s09_96x72.png"));
  std::vector<std::string> bodies(3);
  std::vector<int> statuses(3, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port_);
      c.set_read_timeout(60, 0);
      auto r = c.Post("/v1/embed", json{{"photos", {base64_encode(photo)}}}.dump(), "application/json");
      statuses[size_t(i)] = r ? r->status : -1;
      if (r) bodies[size_t(i)] = r->body;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(statuses[size_t(i)], 200) << bodies[size_t(i)];
    EXPECT_EQ(json::parse(bodies[size_t(i)])["embedding"], json::parse(bodies[0])["embedding"]);
  }
}

TEST_F(PipelineServer, GenerateFromAPhotoReportsSimilarity) {
  httplib::MultipartFormDataItems items = {
      {"photo", read_file(fixture("face/images/s03_300x400.png")), "s03.png", "image/png"},
      {"steps", "2", "", ""},
      {"num_images", "1", "", ""},
      {"seed", "5", "", ""}};
  auto r = client_->Post("/v1/generate", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  json done = wait_done(json::parse(r->body)["id"]);
  ASSERT_EQ(done["state"], "succeeded") << done.dump();
  const json& im = done["images"][0];
  // The generated face is analysed: either a similarity in [-1, 1] or a note why there is none.
  if (im["id_similarity"].is_null()) {
    EXPECT_EQ(im["note"], "no face detected in this image");
  } else {
    EXPECT_LE(std::fabs(im["id_similarity"].get<double>()), 1.0 + 1e-6);
  }
  EXPECT_EQ(done["inputs"][0]["width"], 300);
}

// A pose image through the API (JSON base64, and multipart) runs the fixture ControlNet: the images differ
// from the same request without it and equal, byte for byte, the library's Pipeline::generate with the same
// condition pixels, identity and parameters (the server passes the computation through unaltered).
TEST_F(PipelineServer, PoseImageEqualsTheLibrary) {
  Engine without_similarity = *engine_;
  without_similarity.embed_image = nullptr;
  start(without_similarity);
  a2f::Tensor cond = a2f::npy_read(fixture("ref/controlnet_cond_image_u8.npy"));  // [64, 64, 3] uint8
  ASSERT_EQ(cond.shape(), (std::vector<int64_t>{64, 64, 3}));
  arc2face::GeneratedImage pose;
  pose.width = pose.height = 64;
  pose.rgb.assign(cond.data<uint8_t>(), cond.data<uint8_t>() + cond.numel());
  auto png = arc2face::encode_png(pose);
  std::string pose_png(png.begin(), png.end());
  auto ids = arc2face::read_float_npy(fixture("ref/id_embs.npy").string());
  std::vector<float> id0(ids.begin(), ids.begin() + 512);
  json body = {{"id_embedding", id0}, {"num_images", 2}, {"steps", 3},   {"guidance", 3.0},
               {"seed", 7},           {"width", 64},     {"height", 64}, {"control_scale", 0.7}};
  auto run = [&](const json& b) {
    auto r = client_->Post("/v1/generate", b.dump(), "application/json");
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 202) << r->body;
    json done = wait_done(json::parse(r->body)["id"]);
    EXPECT_EQ(done["state"], "succeeded") << done.dump();
    std::vector<std::vector<uint8_t>> images;
    for (const auto& im : done["images"]) {
      int w = 0, h = 0;
      images.push_back(decode_png_rgb(client_->Get(im["url"].get<std::string>().c_str())->body, &w, &h));
      EXPECT_EQ(w, 64);
      EXPECT_EQ(h, 64);
    }
    return images;
  };
  json with_pose = body;
  with_pose["pose_image"] = base64_encode(pose_png);
  auto posed = run(with_pose);
  auto plain = run(body);
  ASSERT_EQ(posed.size(), 2u);
  ASSERT_EQ(plain.size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_NE(posed[size_t(i)], plain[size_t(i)]) << "image " << i;

  // The library with what the server hands it: the normalised identity, per-image seeds, the pose pixels.
  arc2face::PipelineOptions po = fixture_engine_options().pipeline;
  auto pipe = arc2face::Pipeline::create(po);
  arc2face::GenerateRequest r;
  r.id_embedding = mean_identity({id0});
  r.num_images = 2;
  r.steps = 3;
  r.guidance = 3.0f;
  r.seed = 7;
  r.per_image_seeds = true;
  r.width = r.height = 64;
  r.control_rgb = pose.rgb;
  r.control_width = r.control_height = 64;
  r.control_scale = 0.7f;
  auto lib = pipe->generate(r);
  ASSERT_EQ(lib.size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(posed[size_t(i)], lib[size_t(i)].rgb) << "image " << i;

  // Multipart, the pose image as a file field: the same images.
  httplib::MultipartFormDataItems items = {{"pose_image", pose_png, "pose.png", "image/png"},
                                           {"id_embedding", json(id0).dump(), "", ""},
                                           {"num_images", "2", "", ""},
                                           {"steps", "3", "", ""},
                                           {"seed", "7", "", ""},
                                           {"control_scale", "0.7", "", ""}};
  auto mr = client_->Post("/v1/generate", items);
  ASSERT_TRUE(mr);
  ASSERT_EQ(mr->status, 202) << mr->body;
  json done = wait_done(json::parse(mr->body)["id"]);
  ASSERT_EQ(done["state"], "succeeded") << done.dump();
  int w = 0, h = 0;
  EXPECT_EQ(decode_png_rgb(client_->Get(done["images"][1]["url"].get<std::string>().c_str())->body, &w, &h),
            lib[1].rgb);
}

TEST_F(PipelineServer, CancelStopsARealGeneration) {
  json body = {{"id_embedding", json(unit_embedding(0))}, {"steps", 100}, {"num_images", 1}};
  auto r = client_->Post("/v1/generate", body.dump(), "application/json");
  ASSERT_TRUE(r);
  std::string id = json::parse(r->body)["id"];
  for (int i = 0; i < 2000; ++i) {  // cancelled once running: it stops at its next progress report
    json j = json::parse(client_->Get(("/v1/jobs/" + id).c_str())->body);
    if (j["state"] == "running") break;
    std::this_thread::sleep_for(1ms);
  }
  client_->Delete(("/v1/jobs/" + id).c_str());
  json done = wait_done(id);
  EXPECT_EQ(done["state"], "cancelled");
  EXPECT_LT(done["progress"]["step"].get<int>(), 100);
}

// `arc2face serve` as a user runs it.
struct ServeProcess {
  pid_t pid = -1;
  int out = -1;  // stderr of the child
  std::string log;

  explicit ServeProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], 2);
      dup2(fds[1], 1);
      close(fds[0]);
      std::vector<char*> argv;
      std::string bin = std::string(A2F_BIN_DIR) + "/arc2face";
      argv.push_back(bin.data());
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    out = fds[0];
  }
  ~ServeProcess() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (out >= 0) close(out);
  }
  // Reads the child's output until `needle` appears (true) or the output ends / time passes (false).
  bool wait_for(const std::string& needle, std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (log.find(needle) == std::string::npos && std::chrono::steady_clock::now() < end) {
      fd_set set;
      FD_ZERO(&set);
      FD_SET(out, &set);
      timeval tv{0, 100000};
      if (select(out + 1, &set, nullptr, nullptr, &tv) <= 0) continue;
      ssize_t n = read(out, buf, sizeof buf);
      if (n <= 0) break;
      log.append(buf, size_t(n));
    }
    return log.find(needle) != std::string::npos;
  }
  int wait_exit() {
    int st = 0;
    waitpid(pid, &st, 0);
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
};

TEST(ServeCli, StartsServesAndStopsOnSigterm) {
  ServeProcess p({"serve", "--port", "0", "--models", fixture("models").string(), "--base",
                  fixture("models/sd15").string(), "--antelope", fixture("face/antelopev2_mini").string(),
                  "--width", "64", "--height", "64", "--threads", "1", "--quiet"});
  ASSERT_GT(p.pid, 0);
  ASSERT_TRUE(p.wait_for("/ (Ctrl-C stops)", 60s)) << p.log;
  auto at = p.log.find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << p.log;
  int port = std::atoi(p.log.c_str() + at + 17);
  httplib::Client c("127.0.0.1", port);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  json health = json::parse(h->body);
  EXPECT_EQ(health["face_analysis"], true);
  EXPECT_EQ(health["lcm"], false);
  EXPECT_EQ(health["controlnet"], true);  // found next to the models (MODELS/controlnet)
  EXPECT_EQ(health["engine"]["controlnet_dir"], fixture("models/controlnet").string());
  auto cfg = json::parse(c.Get("/v1/config")->body);
  EXPECT_EQ(cfg["defaults"]["width"], 64);
  kill(p.pid, SIGTERM);
  EXPECT_TRUE(p.wait_for("arc2face serve: stopped", 20s)) << p.log;
  EXPECT_EQ(p.wait_exit(), 0) << p.log;
}

TEST(ServeCli, NoControlNet) {
  ServeProcess p({"serve", "--port", "0", "--models", fixture("models").string(), "--base",
                  fixture("models/sd15").string(), "--antelope", fixture("face/antelopev2_mini").string(),
                  "--no-controlnet", "--threads", "1", "--quiet"});
  ASSERT_TRUE(p.wait_for("/ (Ctrl-C stops)", 60s)) << p.log;
  EXPECT_NE(p.log.find("--no-controlnet: pose images are refused"), std::string::npos) << p.log;
  int port = std::atoi(p.log.c_str() + p.log.find("http://127.0.0.1:") + 17);
  httplib::Client c("127.0.0.1", port);
  EXPECT_EQ(json::parse(c.Get("/health")->body)["controlnet"], false);
  kill(p.pid, SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.log;
}

TEST(ServeCli, ClearErrors) {
  {
    ServeProcess p(
        {"serve", "--port", "0", "--models", "/nonexistent/models", "--base", "/nonexistent/base"});
    p.wait_for("\n", 30s);
    p.wait_for("never", 2s);
    EXPECT_EQ(p.wait_exit(), 1) << p.log;
    EXPECT_NE(p.log.find("error:"), std::string::npos) << p.log;
  }
  {
    ServeProcess p({"serve", "--port", "0", "--models", fixture("models").string(), "--base",
                    fixture("models/sd15").string(), "--width", "65"});
    p.wait_for("never", 5s);
    EXPECT_NE(p.wait_exit(), 0) << p.log;
    EXPECT_NE(p.log.find("multiples of 8"), std::string::npos) << p.log;
  }
  {
    ServeProcess p({"serve", "--port", "0", "--models", fixture("models").string(), "--base",
                    fixture("models/sd15").string(), "--controlnet", "/nonexistent/controlnet"});
    p.wait_for("never", 5s);
    EXPECT_NE(p.wait_exit(), 0) << p.log;
    EXPECT_NE(p.log.find("--controlnet"), std::string::npos) << p.log;
  }
}

}  // namespace
}  // namespace a2f_server::test
