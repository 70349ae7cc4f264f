// Pose images (the ControlNet condition) in POST /v1/generate, with the fake engine of server_test_util.h:
// multipart file field and base64 JSON, control_scale, what reaches the engine, and every refusal (no
// ControlNet loaded, not an image, unreadable, too large, bad fields).
#include <cstring>

#include "server_test_util.h"

namespace a2f_server::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A small RGB image with distinct pixels, its PNG bytes as a string.
arc2face::GeneratedImage pose_pixels(int w, int h) {
  arc2face::GeneratedImage im;
  im.width = w;
  im.height = h;
  im.rgb.resize(size_t(w) * h * 3);
  for (size_t i = 0; i < im.rgb.size(); ++i) im.rgb[i] = uint8_t((i * 37 + i / 7) & 255);
  return im;
}
std::string png_of(const arc2face::GeneratedImage& im) {
  auto v = arc2face::encode_png(im);
  return std::string(v.begin(), v.end());
}

class Pose : public ::testing::Test {
 protected:
  void start(bool controlnet, ServerOptions o = test_options()) {
    state = std::make_shared<FakeEngineState>();
    Engine e = fake_engine(state);
    e.controlnet_available = controlnet;
    server = std::make_unique<Server>(o, e);
    port = server->start();
    ASSERT_GT(port, 0);
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_read_timeout(10, 0);
  }
  void TearDown() override {
    if (server) server->stop(0ms);
  }
  // POST /v1/generate as JSON; returns {status, body}.
  std::pair<int, json> post(const json& body) {
    auto r = client->Post("/v1/generate", body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body)};
  }
  std::pair<int, json> post_form(const httplib::MultipartFormDataItems& items,
                                 const char* path = "/v1/generate") {
    auto r = client->Post(path, items);
    EXPECT_TRUE(r);
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body)};
  }
  json wait_done(const std::string& id) {
    for (int i = 0; i < 2000; ++i) {
      json j = json::parse(client->Get(("/v1/jobs/" + id).c_str())->body);
      std::string s = j["state"];
      if (s != "queued" && s != "running") return j;
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return json();
  }
  static json embedding() { return json(unit_embedding(3)); }

  std::shared_ptr<FakeEngineState> state;
  std::unique_ptr<Server> server;
  std::unique_ptr<httplib::Client> client;
  int port = 0;
};

TEST_F(Pose, ConfigAndHealthReportTheControlNet) {
  start(true);
  json c = json::parse(client->Get("/v1/config")->body);
  EXPECT_EQ(c["controlnet_available"], true);
  EXPECT_EQ(c["defaults"]["control_scale"], 1.0);
  EXPECT_EQ(c["limits"]["min_control_scale"], 0.0);
  EXPECT_EQ(c["limits"]["max_control_scale"], 10.0);
  EXPECT_EQ(c["limits"]["max_pose_pixels"], 4096 * 4096);
  EXPECT_EQ(json::parse(client->Get("/health")->body)["controlnet"], true);
  server->stop(0ms);
  start(false);
  EXPECT_EQ(json::parse(client->Get("/v1/config")->body)["controlnet_available"], false);
  EXPECT_EQ(json::parse(client->Get("/health")->body)["controlnet"], false);
}

// Multipart: the pose image as a file field next to the photo, control_scale as a field. The engine gets the
// decoded pixels unchanged, their size and the scale; the job's params report them.
TEST_F(Pose, MultipartPoseImageReachesTheEngine) {
  start(true);
  arc2face::GeneratedImage pose = pose_pixels(40, 24);
  httplib::MultipartFormDataItems items = {
      {"photo", read_file(fixture("face/images/s03_300x400.png")), "s03.png", "image/png"},
      {"pose_image", png_of(pose), "pose.png", "image/png"},
      {"control_scale", "0.5", "", ""},
      {"steps", "2", "", ""},
      {"num_images", "1", "", ""}};
  auto [status, j] = post_form(items);
  ASSERT_EQ(status, 202) << j.dump();
  EXPECT_EQ(j["params"]["pose_image"], (json{{"width", 40}, {"height", 24}}));
  EXPECT_EQ(j["params"]["control_scale"], 0.5);
  json done = wait_done(j["id"]);
  ASSERT_EQ(done["state"], "succeeded") << done.dump();
  std::lock_guard lock(state->mu);
  EXPECT_EQ(state->last.control_width, 40);
  EXPECT_EQ(state->last.control_height, 24);
  EXPECT_EQ(state->last.control_scale, 0.5f);
  EXPECT_EQ(state->last.control_rgb, pose.rgb);
}

// JSON: base64 (or a data URL) with an id_embedding; control_scale defaults to 1.0. Without a pose image the
// request carries no condition and params say so.
TEST_F(Pose, JsonPoseImageAndDefaults) {
  start(true);
  arc2face::GeneratedImage pose = pose_pixels(16, 16);
  auto [status, j] = post(json{{"id_embedding", embedding()},
                               {"steps", 1},
                               {"pose_image", "data:image/png;base64," + base64_encode(png_of(pose))}});
  ASSERT_EQ(status, 202) << j.dump();
  EXPECT_EQ(j["params"]["control_scale"], 1.0);
  ASSERT_EQ(wait_done(j["id"])["state"], "succeeded");
  {
    std::lock_guard lock(state->mu);
    EXPECT_EQ(state->last.control_rgb, pose.rgb);
    EXPECT_EQ(state->last.control_scale, 1.0f);
  }
  std::tie(status, j) = post(json{{"id_embedding", embedding()}, {"steps", 1}, {"pose_image", nullptr}});
  ASSERT_EQ(status, 202) << j.dump();
  EXPECT_TRUE(j["params"]["pose_image"].is_null());
  EXPECT_TRUE(j["params"]["control_scale"].is_null());
  ASSERT_EQ(wait_done(j["id"])["state"], "succeeded");
  {
    std::lock_guard lock(state->mu);
    EXPECT_TRUE(state->last.control_rgb.empty());
    EXPECT_EQ(state->last.control_width, 0);
  }
  // Base64 in the params field of a form works like JSON.
  std::tie(status, j) = post_form(
      {{"params",
        json{{"id_embedding", embedding()}, {"steps", 1}, {"pose_image", base64_encode(png_of(pose))}}.dump(),
        "", ""}});
  ASSERT_EQ(status, 202) << j.dump();
  EXPECT_EQ(j["params"]["pose_image"], (json{{"width", 16}, {"height", 16}}));
}

TEST_F(Pose, WithoutControlNetAPoseImageIsRefused) {
  start(false);
  auto [status, j] =
      post(json{{"id_embedding", embedding()}, {"pose_image", base64_encode(png_of(pose_pixels(8, 8)))}});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(j["error"]["code"], "controlnet_unavailable");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("--controlnet DIR"), std::string::npos) << j.dump();
  std::tie(status, j) =
      post_form({{"photo", read_file(fixture("face/images/s03_300x400.png")), "a.png", "image/png"},
                 {"pose_image", png_of(pose_pixels(8, 8)), "p.png", "image/png"}});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(j["error"]["code"], "controlnet_unavailable");
  EXPECT_EQ(state->analyzed.load(), 0);  // refused before any face analysis
  EXPECT_EQ(state->calls.load(), 0);
}

TEST_F(Pose, BadPoseImages) {
  ServerOptions o = test_options();
  o.limits.max_pose_pixels = 32 * 32;
  start(true, o);
  auto expect_error = [&](const json& pose, int want_status, const std::string& code,
                          const std::string& text) {
    auto [status, j] = post(json{{"id_embedding", embedding()}, {"pose_image", pose}});
    EXPECT_EQ(status, want_status) << j.dump();
    EXPECT_EQ(j["error"]["code"], code) << j.dump();
    EXPECT_NE(j["error"]["message"].get<std::string>().find(text), std::string::npos) << j.dump();
  };
  expect_error(base64_encode("this is not an image at all"), 415, "unsupported_image",
               "the pose image is not a PNG, JPEG or WebP image");
  expect_error("***", 400, "invalid_pose_image", "pose_image is not valid base64");
  expect_error(42, 400, "invalid_parameter", "pose_image must be a base64 string");
  expect_error("", 400, "invalid_pose_image", "the pose image is empty");
  // A PNG header that promises 16x16 pixels followed by garbage: sniffed fine, not decodable.
  std::string broken = png_of(pose_pixels(16, 16));
  for (size_t i = 40; i < broken.size(); ++i) broken[i] = char(i * 13);
  expect_error(base64_encode(broken), 400, "invalid_pose_image",
               "the pose image could not be read: cannot decode PNG image from memory");
  expect_error(base64_encode(png_of(pose_pixels(40, 30))), 413, "pose_image_too_large",
               "the pose image is 40x30");
  EXPECT_EQ(state->calls.load(), 0);

  // control_scale is range-checked (0 to 10) and must be a number.
  auto [status, j] = post(json{{"id_embedding", embedding()}, {"control_scale", 10.5}});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(j["error"]["code"], "invalid_parameter");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("control_scale must be from 0 to 10"),
            std::string::npos)
      << j.dump();
  std::tie(status, j) = post(json{{"id_embedding", embedding()}, {"control_scale", "strong"}});
  EXPECT_EQ(status, 400);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("control_scale must be a number"),
            std::string::npos);

  // Two pose images, and a pose image sent to /v1/embed.
  std::string small = png_of(pose_pixels(8, 8));
  std::tie(status, j) = post_form({{"pose_image", small, "a.png", "image/png"},
                                   {"pose_image", small, "b.png", "image/png"},
                                   {"id_embedding", embedding().dump(), "", ""}});
  EXPECT_EQ(status, 400);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("pose_image is repeated"), std::string::npos)
      << j.dump();
  std::tie(status, j) =
      post_form({{"photo", read_file(fixture("face/images/s03_300x400.png")), "a.png", "image/png"},
                 {"pose_image", small, "p.png", "image/png"}},
                "/v1/embed");
  EXPECT_EQ(status, 400);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("/v1/embed takes only photos"), std::string::npos);
  EXPECT_EQ(state->calls.load(), 0);
}

}  // namespace
}  // namespace a2f_server::test
