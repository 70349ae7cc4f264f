// Helpers of the server tests: a fake engine that honours cancellation (for tests that need no real
// generation), a server started in-process on 127.0.0.1 with an ephemeral port, fixture paths, RSS.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>
#include <png.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server/codecs.h"
#include "server/server.h"

namespace a2f_server::test {

// A client of the in-process test server on 127.0.0.1:port.
inline std::unique_ptr<httplib::Client> test_client(int port, int read_timeout_s) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_read_timeout(read_timeout_s, 0);
  return c;
}

// Polls GET /v1/jobs/<id> every `poll` until the job is neither queued nor running, and returns its JSON; a
// test failure (and the last answer) when `limit` passes first.
inline nlohmann::json wait_job(httplib::Client& c, const std::string& id, std::chrono::milliseconds limit,
                               std::chrono::milliseconds poll) {
  const auto end = std::chrono::steady_clock::now() + limit;
  nlohmann::json j;
  while (std::chrono::steady_clock::now() < end) {
    auto r = c.Get(("/v1/jobs/" + id).c_str());
    if (!r) {
      ADD_FAILURE() << "no response to GET /v1/jobs/" << id;
      return j;
    }
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    j = nlohmann::json::parse(r->body);
    const std::string s = j.value("state", "");
    if (s != "queued" && s != "running") return j;
    std::this_thread::sleep_for(poll);
  }
  ADD_FAILURE() << "job " << id << " did not finish: " << j.dump();
  return j;
}

// The RGB pixels of a PNG (empty when it does not decode); *w / *h receive its size.
inline std::vector<uint8_t> decode_png_rgb(const std::string& png, int* w, int* h) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, png.data(), png.size())) return {};
  img.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> px(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, px.data(), 0, nullptr)) return {};
  *w = int(img.width);
  *h = int(img.height);
  return px;
}

inline std::filesystem::path fixture(const std::string& rel) {
  return std::filesystem::path(A2F_FIXTURES_DIR) / rel;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f.good()) << p;
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Pixel value of the fake generator (so tests can check the PNG they get back).
inline uint8_t fake_pixel(int64_t seed, int x, int y, int c) {
  return uint8_t((x * 7 + y * 13 + c * 50 + seed) & 255);
}

struct FakeEngineState {
  std::atomic<int> calls{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> analyzed{0};
  std::chrono::milliseconds step_delay{0};
  std::mutex mu;
  arc2face::GenerateRequest last;  // the request of the latest generate call (under mu)
};

// Generation: reports encode, `steps` denoise steps (sleeping step_delay each), decode; throws Cancelled as
// soon as the progress callback says so. Images follow fake_pixel() with the seed of each image. Photo
// analysis (stands in for the face models): any sniffable image has one face in its centre with an embedding
// derived from its size, except images 320 pixels wide, which have none.
inline Engine fake_engine(std::shared_ptr<FakeEngineState> st, bool with_faces = true) {
  Engine e;
  e.generate = [st](const arc2face::GenerateRequest& r, const arc2face::ProgressFn& progress) {
    ++st->calls;
    {
      std::lock_guard lock(st->mu);
      st->last = r;
    }
    auto report = [&](const char* stage, int step, int total) {
      if (progress && !progress({stage, step, total})) {
        ++st->cancelled;
        throw arc2face::Cancelled();
      }
    };
    report("encode", 1, 1);
    for (int s = 1; s <= r.steps; ++s) {
      if (st->step_delay.count()) std::this_thread::sleep_for(st->step_delay);
      report("denoise", s, r.steps);
    }
    report("decode", 1, 1);
    std::vector<arc2face::GeneratedImage> out;
    for (int i = 0; i < r.num_images; ++i) {
      arc2face::GeneratedImage im;
      im.width = r.width;
      im.height = r.height;
      im.index = i;
      im.seed = r.per_image_seeds ? r.seed + i : r.seed;
      im.parameters = "fake steps=" + std::to_string(r.steps);
      im.rgb.resize(size_t(r.width) * r.height * 3);
      for (int y = 0; y < r.height; ++y)
        for (int x = 0; x < r.width; ++x)
          for (int c = 0; c < 3; ++c)
            im.rgb[(size_t(y) * r.width + x) * 3 + c] = fake_pixel(im.seed, x, y, c);
      out.push_back(std::move(im));
    }
    return out;
  };
  if (with_faces) {
    e.analyze_photo = [st](const std::string& bytes) {
      ++st->analyzed;
      auto info = sniff_image(bytes);
      if (!info) throw arc2face::Error("not an image");
      PhotoAnalysis a;
      a.width = int(info->width);
      a.height = int(info->height);
      if (a.width == 320) return a;
      a.faces.push_back({a.width * 0.25f, a.height * 0.25f, a.width * 0.75f, a.height * 0.75f, 0.9f});
      a.chosen = 0;
      a.embedding.assign(512, 0.0f);
      a.embedding[size_t(a.width) % 512] = 1.0f;
      return a;
    };
    e.embed_image = [](const arc2face::GeneratedImage& im) -> std::optional<std::vector<float>> {
      if (im.seed % 2) return std::nullopt;  // odd seeds: "no face in the result"
      std::vector<float> v(512, 0.0f);
      v[0] = 1.0f;
      return v;
    };
  }
  return e;
}

inline ServerOptions test_options() {
  ServerOptions o;
  o.port = 0;
  o.defaults.width = o.defaults.height = 64;
  o.read_timeout = std::chrono::milliseconds(1500);
  o.write_timeout = std::chrono::milliseconds(1500);
  o.event_keepalive = std::chrono::milliseconds(200);
  o.keep_alive_timeout_s = 1;
  return o;
}

// Resident set size of this process in bytes (/proc/self/statm).
inline size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * size_t(sysconf(_SC_PAGESIZE));
}

inline std::string multipart_body(const std::string& boundary,
                                  const std::vector<std::pair<std::string, std::string>>& fields,
                                  const std::vector<std::pair<std::string, std::string>>& files) {
  std::string b;
  for (const auto& [name, value] : fields) {
    b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value +
         "\r\n";
  }
  for (const auto& [name, content] : files) {
    b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name +
         "\"; filename=\"photo.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n" + content + "\r\n";
  }
  b += "--" + boundary + "--\r\n";
  return b;
}

inline std::vector<float> unit_embedding(size_t hot) {
  std::vector<float> v(512, 0.0f);
  v[hot] = 1.0f;
  return v;
}

}  // namespace a2f_server::test
