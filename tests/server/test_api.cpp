// The JSON API and the page routes against a real server on loopback (in-process, ephemeral port), with the
// fake engine of server_test_util.h standing in for the models.
#include "server/web_assets.h"
#include "server_test_util.h"

namespace a2f_server::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class Api : public ::testing::Test {
 protected:
  void start(ServerOptions o = test_options(), bool with_faces = true) {
    state = std::make_shared<FakeEngineState>();
    server = std::make_unique<Server>(o, fake_engine(state, with_faces));
    port = server->start();
    ASSERT_GT(port, 0);
    client = test_client(port, 10);
  }
  void TearDown() override {
    if (server) server->stop(0ms);
  }

  json post_json(const std::string& path, const json& body, int* status = nullptr) {
    auto r = client->Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r) << "no response to POST " << path;
    if (!r) return json();
    if (status) *status = r->status;
    return json::parse(r->body);
  }
  json get_json(const std::string& path, int* status = nullptr) {
    auto r = client->Get(path.c_str());
    EXPECT_TRUE(r) << "no response to GET " << path;
    if (!r) return json();
    if (status) *status = r->status;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << path;
    return json::parse(r->body);
  }
  json wait_done(const std::string& id, std::chrono::milliseconds limit = 10000ms) {
    return wait_job(*client, id, limit, 5ms);
  }
  static json embedding_json(size_t hot) { return json(unit_embedding(hot)); }

  std::shared_ptr<FakeEngineState> state;
  std::unique_ptr<Server> server;
  std::unique_ptr<httplib::Client> client;
  int port = 0;
};

TEST_F(Api, HealthAndConfig) {
  start();
  int status = 0;
  auto h = get_json("/health", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["face_analysis"], true);
  EXPECT_EQ(h["lcm"], false);
  EXPECT_EQ(h["queue"]["queued"], 0);
  auto c = get_json("/v1/config", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(c["defaults"]["width"], 64);
  EXPECT_EQ(c["defaults"]["steps"], 25);
  EXPECT_EQ(c["defaults"]["lcm_steps"], 3);
  EXPECT_EQ(c["limits"]["max_images"], 4);
  EXPECT_EQ(c["limits"]["max_steps"], 100);
}

TEST_F(Api, OpenApiDescribesEveryRoute) {
  start();
  int status = 0;
  auto spec = get_json("/openapi.json", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(spec["openapi"].get<std::string>().substr(0, 2), "3.");
  for (const char* path : {"/health", "/v1/config", "/v1/examples", "/v1/generate", "/v1/embed",
                           "/v1/jobs/{id}", "/v1/jobs/{id}/events", "/v1/jobs/{id}/images/{index}.png"}) {
    EXPECT_TRUE(spec["paths"].contains(path)) << path;
  }
  EXPECT_TRUE(spec["paths"]["/v1/jobs/{id}"].contains("delete"));
}

TEST_F(Api, ServesThePage) {
  start();
  auto r = client->Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("app.js"), std::string::npos);
  EXPECT_FALSE(r->get_header_value("Content-Security-Policy").empty());
  for (size_t i = 0; i < web_asset_count(); ++i) {
    const auto& a = web_assets()[i];
    std::string path = "/";
    path.append(a.name);
    auto f = client->Get(path.c_str());
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, 200) << a.name;
    EXPECT_EQ(f->body, a.data) << a.name;
  }
  int status = 0;
  auto nf = get_json("/no-such-page", &status);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(nf["error"]["code"], "not_found");
  get_json("/v1/nothing/here", &status);
  EXPECT_EQ(status, 404);
}

TEST_F(Api, GenerateFromEmbeddingReturnsSeededImages) {
  start();
  int status = 0;
  auto j = post_json("/v1/generate",
                     json{{"id_embedding", embedding_json(0)}, {"steps", 3}, {"num_images", 2}, {"seed", 42}},
                     &status);
  ASSERT_EQ(status, 202) << j.dump();
  std::string id = j["id"];
  EXPECT_EQ(j["params"]["seed"], 42);
  EXPECT_EQ(j["params"]["randomize_seed"], false);
  EXPECT_EQ(j["urls"]["self"], "/v1/jobs/" + id);
  auto done = wait_done(id);
  ASSERT_EQ(done["state"], "succeeded") << done.dump();
  ASSERT_EQ(done["images"].size(), 2u);
  EXPECT_DOUBLE_EQ(done["progress"]["fraction"].get<double>(), 1.0);
  for (int i = 0; i < 2; ++i) {
    const auto& im = done["images"][size_t(i)];
    EXPECT_EQ(im["seed"], 42 + i);  // per-image seeds: each image reproducible alone
    EXPECT_EQ(im["width"], 64);
    auto r = client->Get(im["url"].get<std::string>().c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "image/png");
    int w = 0, h = 0;
    auto px = decode_png_rgb(r->body, &w, &h);
    ASSERT_EQ(w, 64);
    ASSERT_EQ(h, 64);
    bool same = true;
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x)
        for (int c = 0; c < 3; ++c)
          same = same && px[(size_t(y) * 64 + x) * 3 + c] == fake_pixel(42 + i, x, y, c);
    EXPECT_TRUE(same) << "image " << i << " pixels differ from what the engine produced";
  }
  // The fake finds a face (embedding e0) in even-seeded images only.
  EXPECT_DOUBLE_EQ(done["images"][0]["id_similarity"].get<double>(), 1.0);
  EXPECT_TRUE(done["images"][0]["note"].is_null());
  EXPECT_TRUE(done["images"][1]["id_similarity"].is_null());
  EXPECT_EQ(done["images"][1]["note"], "no face detected in this image");

  auto with_b64 = get_json("/v1/jobs/" + id + "?include=base64");
  auto png = base64_decode(with_b64["images"][0]["png_base64"].get<std::string>());
  ASSERT_TRUE(png);
  auto direct = client->Get(("/v1/jobs/" + id + "/images/0").c_str());
  EXPECT_EQ(*png, direct->body);
  get_json("/v1/jobs/" + id + "/images/7.png", &status);
  EXPECT_EQ(status, 404);
  get_json("/v1/jobs/" + id + "?include=everything", &status);
  EXPECT_EQ(status, 400);
}

TEST_F(Api, RandomSeedIsReported) {
  start();
  int status = 0;
  auto j = post_json("/v1/generate",
                     json{{"id_embedding", embedding_json(0)}, {"steps", 1}, {"num_images", 1}}, &status);
  ASSERT_EQ(status, 202);
  EXPECT_EQ(j["params"]["randomize_seed"], true);
  int64_t seed = j["params"]["seed"];
  EXPECT_GE(seed, 0);
  EXPECT_LE(seed, 2147483647);
  auto done = wait_done(j["id"]);
  EXPECT_EQ(done["images"][0]["seed"], seed);
}

TEST_F(Api, GenerateFromMultipartPhotos) {
  start();
  httplib::MultipartFormDataItems items = {
      {"photo", read_file(fixture("face/images/s01_640x480.jpg")), "s01.jpg", "image/jpeg"},
      {"photo", read_file(fixture("face/images/s03_300x400.png")), "s03.png", "image/png"},
      {"steps", "2", "", ""},
      {"guidance", "2.5", "", ""},
      {"num_images", "1", "", ""},
      {"seed", "7", "", ""},
      {"lcm", "false", "", ""}};
  auto r = client->Post("/v1/generate", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["params"]["steps"], 2);
  EXPECT_DOUBLE_EQ(j["params"]["guidance"].get<double>(), 2.5);
  ASSERT_EQ(j["inputs"].size(), 2u);
  // The fake face is the middle half of each photo.
  EXPECT_EQ(j["inputs"][0]["width"], 640);
  EXPECT_EQ(j["inputs"][0]["faces"][0]["box"], json({160.0, 120.0, 480.0, 360.0}));
  EXPECT_EQ(j["inputs"][0]["chosen"], 0);
  // Two orthogonal identities → their mean is at 45 degrees to each.
  EXPECT_NEAR(j["inputs"][0]["similarity_to_identity"].get<double>(), std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(j["inputs"][1]["similarity_to_identity"].get<double>(), std::sqrt(0.5), 1e-6);
  auto done = wait_done(j["id"]);
  EXPECT_EQ(done["state"], "succeeded");
  EXPECT_EQ(state->analyzed.load(), 2);
}

TEST_F(Api, GenerateFromMultipartEmbeddingAndParamsField) {
  start();
  httplib::MultipartFormDataItems items = {
      {"id_embedding", json(unit_embedding(5)).dump(), "", ""},
      {"params", R"({"steps": 2, "num_images": 1, "seed": 11, "per_image_seeds": false})", "", ""}};
  auto r = client->Post("/v1/generate", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["params"]["steps"], 2);
  EXPECT_EQ(j["params"]["seed"], 11);
  EXPECT_EQ(j["params"]["per_image_seeds"], false);
  EXPECT_EQ(wait_done(j["id"])["state"], "succeeded");
  // A field given both directly and inside params is ambiguous.
  items.push_back({"steps", "3", "", ""});
  r = client->Post("/v1/generate", items);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
}

TEST_F(Api, GenerateFromBase64Photos) {
  start();
  int status = 0;
  auto photo = read_file(fixture("face/images/s09_96x72.png"));
  auto j =
      post_json("/v1/generate",
                json{{"photos", {"data:image/png;base64," + base64_encode(photo)}}, {"steps", 1}}, &status);
  ASSERT_EQ(status, 202) << j.dump();
  EXPECT_EQ(j["inputs"][0]["width"], 96);
  EXPECT_EQ(wait_done(j["id"])["state"], "succeeded");
}

TEST_F(Api, NoFaceIsAPlainError) {
  start();
  httplib::MultipartFormDataItems items = {
      {"photo", read_file(fixture("face/images/s11_blank_320x240.png")), "blank.png", "image/png"}};
  auto r = client->Post("/v1/generate", items);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422);
  auto j = json::parse(r->body);
  EXPECT_EQ(j["error"]["code"], "no_face");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("no face found"), std::string::npos);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("more margin"), std::string::npos);
  auto e = client->Post("/v1/embed", items);
  EXPECT_EQ(e->status, 422);
}

TEST_F(Api, EmbedReturnsTheIdentityAndFaces) {
  start();
  httplib::MultipartFormDataItems items = {
      {"photo", read_file(fixture("face/images/s01_640x480.jpg")), "s01.jpg", "image/jpeg"}};
  auto r = client->Post("/v1/embed", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  ASSERT_EQ(j["embedding"].size(), 512u);
  EXPECT_EQ(j["embedding"][128], 1.0);  // the fake's embedding for a 640-wide photo
  EXPECT_EQ(j["photos"][0]["faces"].size(), 1u);
  int status = 0;
  post_json("/v1/embed", json{{"photos", json::array()}}, &status);
  EXPECT_EQ(status, 400);
  post_json(
      "/v1/embed",
      json{{"photos", {base64_encode(read_file(fixture("face/images/s01_640x480.jpg")))}}, {"steps", 3}},
      &status);
  EXPECT_EQ(status, 400);
}

TEST_F(Api, InputMistakes) {
  start();
  int status = 0;
  auto j = post_json("/v1/generate", json{{"steps", 3}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(j["error"]["code"], "missing_input");
  j = post_json("/v1/generate", json{{"id_embedding", embedding_json(0)}, {"photos", {"Zm9v"}}}, &status);
  EXPECT_EQ(status, 400);
  j = post_json("/v1/generate", json{{"id_embedding", embedding_json(0)}, {"lcm", true}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("this server was started without --lcm-lora"),
            std::string::npos);
  j = post_json("/v1/generate", json{{"id_embedding", json::array({1, 2, 3})}}, &status);
  EXPECT_EQ(status, 400);
  j = post_json("/v1/generate", json{{"photos", {"not base64!"}}}, &status);
  EXPECT_EQ(status, 400);
  j = post_json("/v1/generate", json{{"photos", {base64_encode("GIF89a not supported")}}}, &status);
  EXPECT_EQ(status, 415);
  EXPECT_EQ(state->calls.load(), 0);
}

TEST_F(Api, PhotosNeedFaceModels) {
  start(test_options(), /*with_faces=*/false);
  int status = 0;
  auto j =
      post_json("/v1/generate",
                json{{"photos", {base64_encode(read_file(fixture("face/images/s09_96x72.png")))}}}, &status);
  EXPECT_EQ(status, 501);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("--antelope"), std::string::npos);
  j = post_json("/v1/generate", json{{"id_embedding", embedding_json(1)}, {"steps", 1}, {"num_images", 1}},
                &status);
  ASSERT_EQ(status, 202);
  auto done = wait_done(j["id"]);
  EXPECT_TRUE(done["images"][0]["id_similarity"].is_null());
  EXPECT_NE(done["images"][0]["note"].get<std::string>().find("face analysis is not loaded"),
            std::string::npos);
}

// Reads a server-sent-event stream to its end; returns the events as (name, data) in order.
std::vector<std::pair<std::string, std::string>> read_events(int port, const std::string& path,
                                                             std::string* raw) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  std::string body;
  auto r = c.Get(path.c_str(), [&](const char* data, size_t n) {
    body.append(data, n);
    return true;
  });
  EXPECT_TRUE(r);
  if (r) {
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  }
  *raw = body;
  std::vector<std::pair<std::string, std::string>> events;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "event not terminated by a blank line: " << body.substr(pos);
      break;
    }
    std::string block = body.substr(pos, end - pos);
    pos = end + 2;
    std::string name = "message", data;
    size_t lp = 0;
    while (lp <= block.size()) {
      size_t le = block.find('\n', lp);
      if (le == std::string::npos) le = block.size();
      std::string line = block.substr(lp, le - lp);
      lp = le + 1;
      if (line.rfind("event: ", 0) == 0) name = line.substr(7);
      if (line.rfind("data: ", 0) == 0) data += line.substr(6);
    }
    if (!data.empty()) events.emplace_back(name, data);
  }
  return events;
}

TEST_F(Api, EventStreamReportsProgressThenDone) {
  start();
  state->step_delay = 20ms;
  int status = 0;
  auto j = post_json("/v1/generate",
                     json{{"id_embedding", embedding_json(0)}, {"steps", 6}, {"num_images", 1}}, &status);
  ASSERT_EQ(status, 202);
  std::string raw;
  auto events = read_events(port, "/v1/jobs/" + j["id"].get<std::string>() + "/events", &raw);
  EXPECT_EQ(raw.rfind("retry: ", 0), 0u) << raw.substr(0, 40);
  ASSERT_GE(events.size(), 3u) << raw;
  double last_fraction = -1;
  for (size_t i = 0; i < events.size(); ++i) {
    auto ev = json::parse(events[i].second);  // every data line is one JSON job
    EXPECT_EQ(ev["id"], j["id"]);
    double f = ev["progress"]["fraction"];
    EXPECT_GE(f, last_fraction);
    last_fraction = f;
    EXPECT_EQ(events[i].first, i + 1 == events.size() ? "done" : "progress");
  }
  auto last = json::parse(events.back().second);
  EXPECT_EQ(last["state"], "succeeded");
  EXPECT_EQ(last["images"].size(), 1u);
  bool saw_denoise = false;
  for (auto& [name, data] : events)
    saw_denoise = saw_denoise || json::parse(data)["progress"]["stage"] == "denoise";
  EXPECT_TRUE(saw_denoise);
  // A finished job's stream is one done event.
  auto again = read_events(port, "/v1/jobs/" + j["id"].get<std::string>() + "/events", &raw);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].first, "done");
  get_json("/v1/jobs/0123/events", &status);
  EXPECT_EQ(status, 404);
}

TEST_F(Api, DeleteCancelsARunningJobAndForgetsAFinishedOne) {
  start();
  state->step_delay = 10ms;
  int status = 0;
  auto j = post_json("/v1/generate", json{{"id_embedding", embedding_json(0)}, {"steps", 100}}, &status);
  ASSERT_EQ(status, 202);
  std::string id = j["id"];
  while (get_json("/v1/jobs/" + id)["state"] != "running") std::this_thread::sleep_for(2ms);
  auto r = client->Delete(("/v1/jobs/" + id).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["state"], "cancelling");
  auto done = wait_done(id);
  EXPECT_EQ(done["state"], "cancelled");
  EXPECT_LT(done["progress"]["step"].get<int>(), 100);
  EXPECT_EQ(state->cancelled.load(), 1);
  r = client->Delete(("/v1/jobs/" + id).c_str());
  EXPECT_EQ(json::parse(r->body)["state"], "deleted");
  get_json("/v1/jobs/" + id, &status);
  EXPECT_EQ(status, 404);
  r = client->Delete("/v1/jobs/ffff");
  EXPECT_EQ(r->status, 404);
}

TEST_F(Api, FullQueueAnswers429) {
  auto o = test_options();
  o.queue.max_queued = 1;
  start(o);
  state->step_delay = 20ms;
  int status = 0;
  json body = {{"id_embedding", embedding_json(0)}, {"steps", 100}};
  auto a = post_json("/v1/generate", body, &status);
  ASSERT_EQ(status, 202);
  while (get_json("/v1/jobs/" + a["id"].get<std::string>())["state"] != "running")
    std::this_thread::sleep_for(2ms);
  auto b = post_json("/v1/generate", body, &status);
  ASSERT_EQ(status, 202);
  EXPECT_EQ(b["queue_position"], 1);
  auto r = client->Post("/v1/generate", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->get_header_value("Retry-After"), "10");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "queue_full");
  EXPECT_EQ(get_json("/health")["queue"]["queued"], 1);
}

TEST_F(Api, GracefulStopFinishesTheRunningJobAndRefusesNewOnes) {
  start();
  state->step_delay = 10ms;
  int status = 0;
  json body = {{"id_embedding", embedding_json(0)}, {"steps", 30}, {"num_images", 1}};
  auto a = post_json("/v1/generate", body, &status);
  auto b = post_json("/v1/generate", body, &status);
  std::string ida = a["id"], idb = b["id"];
  while (get_json("/v1/jobs/" + ida)["state"] != "running") std::this_thread::sleep_for(2ms);
  std::string raw;
  std::vector<std::pair<std::string, std::string>> events;
  std::thread watcher([&] { events = read_events(port, "/v1/jobs/" + ida + "/events", &raw); });
  std::this_thread::sleep_for(30ms);
  std::thread stopper([&] { server->stop(5000ms); });
  // While the running job finishes, the API still answers but takes no new jobs.
  bool saw_503 = false;
  for (int i = 0; i < 200 && !saw_503; ++i) {
    auto r = client->Post("/v1/generate", body.dump(), "application/json");
    if (r && r->status == 503) saw_503 = true;
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_TRUE(saw_503);
  stopper.join();
  watcher.join();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "done");
  EXPECT_EQ(json::parse(events.back().second)["state"], "succeeded");
  EXPECT_EQ(server->jobs().snapshot(idb)->state, JobState::cancelled);
  EXPECT_FALSE(client->Get("/health"));  // the listener is closed
}

TEST_F(Api, StopCancelsAJobThatOutlastsTheGrace) {
  start();
  state->step_delay = 10ms;
  int status = 0;
  auto a = post_json("/v1/generate", json{{"id_embedding", embedding_json(0)}, {"steps", 100}}, &status);
  std::string id = a["id"];
  while (get_json("/v1/jobs/" + id)["state"] != "running") std::this_thread::sleep_for(2ms);
  auto t0 = std::chrono::steady_clock::now();
  server->stop(50ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3000ms);
  EXPECT_EQ(server->jobs().snapshot(id)->state, JobState::cancelled);
}

TEST_F(Api, ExamplesFolder) {
  auto dir = std::filesystem::temp_directory_path() / ("a2f_examples_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(fixture("face/images/s01_640x480.jpg"), dir / "b_person.jpg",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(fixture("face/images/s03_300x400.png"), dir / "a_person.png",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "notes.txt") << "not an image";
  auto o = test_options();
  o.examples_dir = dir.string();
  start(o);
  auto j = get_json("/v1/examples");
  ASSERT_EQ(j["examples"].size(), 2u);
  EXPECT_EQ(j["examples"][0]["name"], "a_person.png");
  EXPECT_EQ(j["examples"][1]["url"], "/examples/b_person.jpg");
  auto r = client->Get("/examples/b_person.jpg");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(r->body, read_file(fixture("face/images/s01_640x480.jpg")));
  EXPECT_EQ(client->Get("/examples/notes.txt")->status, 404);
  EXPECT_EQ(client->Get("/examples/..%2F..%2Fetc%2Fpasswd")->status, 404);
  std::filesystem::remove_all(dir);
}

TEST_F(Api, BindFailureIsAClearError) {
  start();
  auto o = test_options();
  o.port = port;  // already taken by the first server
  Server second(o, fake_engine(std::make_shared<FakeEngineState>()));
  try {
    second.start();
    FAIL() << "binding a taken port should fail";
  } catch (const arc2face::Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos);
  }
}

}  // namespace
}  // namespace a2f_server::test
