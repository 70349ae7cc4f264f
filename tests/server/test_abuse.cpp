// Abuse: malformed JSON, wrong types, huge and truncated uploads, raw protocol garbage, 200 concurrent
// requests, slow clients. The server must answer each with the right status, keep serving, and its memory
// must return to its baseline afterwards.
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include "server_test_util.h"

namespace a2f_server::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A raw TCP connection to the server, for what httplib::Client would never send.
class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  bool send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += size_t(n);
    }
    return true;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // One response: headers, then Content-Length bytes of body (or until close / `limit`).
  std::string read_response(std::chrono::milliseconds limit) {
    timeval tv{0, 50000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    auto end = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      size_t head = out.find("\r\n\r\n");
      if (head != std::string::npos) {
        size_t cl = out.find("Content-Length: ");
        size_t want = cl != std::string::npos && cl < head ? size_t(std::atol(out.c_str() + cl + 16)) : 0;
        if (out.size() >= head + 4 + want) break;
      }
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) break;
      if (n > 0)
        out.append(buf, size_t(n));
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        break;
    }
    return out;
  }
  // True when the server closed the connection (EOF) within `limit`.
  bool closed_within(std::chrono::milliseconds limit) {
    timeval tv{0, 50000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto end = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.substr(9, 3).c_str());
}

class Abuse : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o = test_options();
    o.limits.max_body_bytes = 1u << 20;  // 1 MiB keeps the "huge" uploads quick
    o.limits.max_photo_pixels = 4'000'000;
    o.limits.max_photos = 3;
    o.queue.max_queued = 4;
    o.http_threads = 16;
    o.read_timeout = 700ms;
    state = std::make_shared<FakeEngineState>();
    server = std::make_unique<Server>(o, fake_engine(state));
    port = server->start();
    client = test_client(port, 10);
  }
  void TearDown() override { server->stop(0ms); }

  int post(const std::string& body, const std::string& type = "application/json",
           std::string* out = nullptr) {
    auto r = client->Post("/v1/generate", body, type.c_str());
    if (!r) return -int(r.error());
    if (out) *out = r->body;
    // Every error is JSON with a code and a message.
    if (r->status >= 400) {
      auto j = json::parse(r->body, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << r->body;
      if (!j.is_discarded()) {
        EXPECT_TRUE(j["error"]["message"].is_string()) << r->body;
        EXPECT_TRUE(j["error"]["code"].is_string()) << r->body;
      }
    }
    return r->status;
  }
  bool healthy() {
    auto r = client->Get("/health");
    return r && r->status == 200;
  }

  // One round of everything hostile, checked; returns the number of checks that failed.
  void hostile_round() {
    // Malformed JSON.
    for (const char* body : {"{", "[1,2", "{\"steps\": }", "{'steps': 3}", "{\"steps\": 3,}", "\xff\xfe{}",
                             "nul", "{\"a\":\"\xc3\x28\"}"}) {
      EXPECT_EQ(post(body), 400) << body;
    }
    EXPECT_EQ(post(std::string(200000, '[') + std::string(200000, ']')), 400);  // nesting bomb
    std::string many = "{\"id_embedding\": [";
    for (int i = 0; i < 100000; ++i) many += "1,";
    many += "1]}";
    EXPECT_EQ(post(many), 400);  // value-count bomb
    EXPECT_EQ(post("[]"), 400);
    EXPECT_EQ(post("null"), 400);
    EXPECT_EQ(post(""), 400);
    // Wrong types and values.
    json e = json(unit_embedding(0));
    for (const json& body :
         {json{{"id_embedding", e}, {"steps", "many"}}, json{{"id_embedding", e}, {"steps", 1e9}},
          json{{"id_embedding", e}, {"guidance", nullptr}, {"num_images", -1}},
          json{{"id_embedding", e}, {"seed", "42"}}, json{{"id_embedding", e}, {"width", 63}},
          json{{"id_embedding", e}, {"lcm", "yes"}}, json{{"id_embedding", "e"}},
          json{{"id_embedding", json::array({json::object()})}}, json{{"photos", 5}},
          json{{"photos", json::array({5})}}, json{{"id_embedding", e}, {"extra", 1}}}) {
      EXPECT_EQ(post(body.dump()), 400) << body.dump().substr(0, 120);
    }
    EXPECT_EQ(post("steps=3", "application/x-www-form-urlencoded"), 415);
    EXPECT_EQ(post("hello", "text/plain"), 415);
    // Too many photos; a photo whose header claims 30000x30000 pixels (never decoded).
    std::string photo = read_file(fixture("face/images/s09_96x72.png"));
    EXPECT_EQ(
        post(json{{"photos",
                   {base64_encode(photo), base64_encode(photo), base64_encode(photo), base64_encode(photo)}}}
                 .dump()),
        413);
    std::string bomb = photo;
    for (int i = 0; i < 2; ++i) {  // IHDR width and height, big endian
      uint32_t v = 30000;
      for (int b = 0; b < 4; ++b) bomb[size_t(16 + 4 * i + b)] = char((v >> (24 - 8 * b)) & 0xff);
    }
    int analyzed = state->analyzed.load();
    EXPECT_EQ(post(json{{"photos", {base64_encode(bomb)}}}.dump()), 413);
    EXPECT_EQ(state->analyzed.load(), analyzed);
    // Huge upload (over the 1 MiB limit).
    EXPECT_EQ(post(std::string(3u << 20, 'x')), 413);
    // Multipart: truncated, no boundary, empty photo.
    std::string mp = multipart_body("XyZ", {{"steps", "2"}}, {{"photo", photo}});
    EXPECT_EQ(post(mp.substr(0, mp.size() / 2), "multipart/form-data; boundary=XyZ"), 400);
    EXPECT_EQ(post(mp, "multipart/form-data"), 400);
    EXPECT_EQ(post(multipart_body("XyZ", {}, {{"photo", ""}}), "multipart/form-data; boundary=XyZ"), 400);
    EXPECT_EQ(post(multipart_body("XyZ", {{"steps", "2"}, {"steps", "3"}}, {{"photo", photo}}),
                   "multipart/form-data; boundary=XyZ"),
              400);
    EXPECT_TRUE(healthy());
  }

  std::shared_ptr<FakeEngineState> state;
  std::unique_ptr<Server> server;
  std::unique_ptr<httplib::Client> client;
  int port = 0;
};

TEST_F(Abuse, HostileRequestsGetTheRightStatus) {
  hostile_round();
  EXPECT_EQ(state->calls.load(), 0);
}

TEST_F(Abuse, RawProtocolGarbage) {
  struct Case {
    std::string request;
    int status;
  } cases[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET / HTTP/9.9\r\n\r\n", 400},
      {"PUT /v1/generate HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 405},
      {"POST /v1/generate HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411},
      {"POST /v1/generate HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}", 411},
      {"GET /" + std::string(10000, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"GET /health HTTP/1.1\r\nRange: bytes=zz\r\n\r\n", 416},
  };
  for (const auto& c : cases) {
    RawConn conn(port);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(conn.send(c.request));
    std::string resp = conn.read_response(3000ms);
    EXPECT_EQ(status_of(resp), c.status) << c.request.substr(0, 60) << "\n→ " << resp.substr(0, 200);
  }
  // A body declared far larger than the limit is refused with 413.
  {
    RawConn conn(port);
    conn.send(
        "POST /v1/generate HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: "
        "1000000000\r\n\r\n{");
    conn.shutdown_write();
    std::string resp = conn.read_response(3000ms);
    EXPECT_TRUE(resp.empty() || status_of(resp) == 413) << resp.substr(0, 200);
  }
  EXPECT_TRUE(healthy());
}

TEST_F(Abuse, SlowClientsAreCutOffWithoutBlockingOthers) {
  // Eight clients that stall in the request line, the headers and the body (fewer than the 16 HTTP threads).
  std::vector<std::unique_ptr<RawConn>> stalled;
  for (int i = 0; i < 8; ++i) {
    auto c = std::make_unique<RawConn>(port);
    ASSERT_TRUE(c->ok());
    if (i % 3 == 0) c->send("GET /hea");
    if (i % 3 == 1) c->send("GET /health HTTP/1.1\r\nHost: x\r\n");
    if (i % 3 == 2)
      c->send(
          "POST /v1/generate HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"st");
    stalled.push_back(std::move(c));
  }
  // Others are served meanwhile.
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(healthy());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);
  // Each stalled connection is closed after the read timeout (700 ms); a stalled body gets 400 first.
  for (size_t i = 0; i < stalled.size(); ++i) {
    if (i % 3 == 2) {
      std::string resp = stalled[i]->read_response(3000ms);
      EXPECT_EQ(status_of(resp), 400) << resp.substr(0, 100);
    } else {
      EXPECT_TRUE(stalled[i]->closed_within(3000ms)) << "connection " << i << " was not cut off";
    }
  }
  // A client that trickles one byte every 300 ms (within the per-read timeout) still gets its answer.
  RawConn trickle(port);
  std::string req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  for (size_t i = 0; i < 6; ++i) {
    trickle.send(req.substr(i, 1));
    std::this_thread::sleep_for(300ms);
  }
  trickle.send(req.substr(6));
  EXPECT_EQ(status_of(trickle.read_response(3000ms)), 200);
  EXPECT_TRUE(healthy());
}

TEST_F(Abuse, TwoHundredConcurrentRequests) {
  state->step_delay = 2ms;
  std::string photo = read_file(fixture("face/images/s09_96x72.png"));
  json good = {{"id_embedding", json(unit_embedding(3))}, {"steps", 5}, {"num_images", 1}};
  std::vector<int> statuses(200, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 200; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port);
      c.set_connection_timeout(20, 0);
      c.set_read_timeout(20, 0);
      auto request = [&]() -> httplib::Result {
        switch (i % 5) {
          case 0:
            return c.Get("/health");
          case 1:
            return c.Post("/v1/generate", good.dump(), "application/json");
          case 2:
            return c.Post("/v1/generate", "{\"steps\":", "application/json");
          case 3:
            return c.Post("/v1/embed", json{{"photos", {base64_encode(photo)}}}.dump(), "application/json");
          default:
            return c.Get("/v1/jobs/doesnotexist");
        }
      };
      auto r = request();
      statuses[size_t(i)] = r ? r->status : -int(r.error());
    });
  }
  for (auto& t : threads) t.join();
  int accepted = 0, full = 0;
  for (int i = 0; i < 200; ++i) {
    int s = statuses[size_t(i)];
    switch (i % 5) {
      case 0:
        EXPECT_EQ(s, 200) << i;
        break;
      case 1:
        EXPECT_TRUE(s == 202 || s == 429) << i << ": " << s;
        accepted += s == 202;
        full += s == 429;
        break;
      case 2:
        EXPECT_EQ(s, 400) << i;
        break;
      case 3:
        EXPECT_EQ(s, 200) << i;
        break;
      case 4:
        EXPECT_EQ(s, 404) << i;
        break;
    }
  }
  EXPECT_GE(accepted, 1);
  EXPECT_GE(full, 1);  // 40 generations against a queue of 4
  EXPECT_TRUE(healthy());
}

TEST_F(Abuse, MemoryReturnsToBaseline) {
  // 64 concurrent clients posting bodies just under and over the 1 MiB limit (nesting bombs → 400, → 413).
  auto burst = [&] {
    std::vector<std::thread> threads;
    for (int i = 0; i < 64; ++i) {
      threads.emplace_back([&, i] {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(20, 0);
        auto r = i % 2 ? c.Post("/v1/generate", std::string(900000, '{'), "application/json")
                       : c.Post("/v1/generate", std::string(2u << 20, 'x'), "application/json");
        EXPECT_TRUE(r && r->status == (i % 2 ? 400 : 413)) << i;
      });
    }
    for (auto& t : threads) t.join();
  };
  // As `arc2face serve` does: a fixed mmap threshold, so large request bodies go back to the system when
  // freed (glibc otherwise raises the threshold after the first large free and keeps later bodies in its
  // arenas).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  // Warm up with the same workload, so that what grows once (HTTP threads, allocator arenas of new threads,
  // the thread-stack cache) is in the baseline.
  hostile_round();
  burst();
  malloc_trim(0);
  size_t baseline = rss_bytes();
  for (int round = 0; round < 3; ++round) {
    hostile_round();
    burst();
  }
  EXPECT_TRUE(healthy());
  malloc_trim(0);
  size_t after = rss_bytes();
  // Each round moves ~100 requests and ~100 MiB of bodies through the server: a leak of 40 KiB per request
  // would exceed the slack.
  const size_t slack = 4u << 20;
  EXPECT_LE(after, baseline + slack) << "RSS grew from " << (baseline >> 20) << " MiB to " << (after >> 20)
                                     << " MiB";
  std::printf(
      "RSS after warm-up %.1f MiB, after 3 more rounds (hostile requests + 64 concurrent ~1 MiB bodies) "
      "%.1f MiB\n",
      double(baseline) / (1 << 20), double(after) / (1 << 20));
}

}  // namespace
}  // namespace a2f_server::test
