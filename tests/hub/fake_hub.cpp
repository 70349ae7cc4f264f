#include "hub/fake_hub.h"

#include <httplib.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "hub/manifest.h"

namespace a2f::test {

struct FakeHub::FaultState {
  Fault f;
  std::atomic<int> drops_left{0};
  int fails_left = 0;
};

namespace {

std::string hex(const unsigned char* d, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(digits[d[i] >> 4]);
    s.push_back(digits[d[i] & 15]);
  }
  return s;
}

}  // namespace

std::string FakeHub::sha256(const std::string& s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return hex(d, sizeof(d));
}

std::string FakeHub::git_sha1(const std::string& s) {
  std::string blob = "blob " + std::to_string(s.size());
  blob.push_back('\0');
  blob += s;
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(blob.data()), blob.size(), d);
  return hex(d, sizeof(d));
}

FakeHub::FakeHub() : server_(std::make_unique<httplib::Server>()) {
  commit_ = "0123456789abcdef0123456789abcdef01234567";
  server_->set_keep_alive_timeout(1);
  server_->set_tcp_nodelay(true);  // headers and body are separate writes: avoid Nagle + delayed-ACK stalls
  routes();
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("FakeHub: cannot bind 127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  for (int i = 0; i < 2000 && !server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeHub::~FakeHub() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string FakeHub::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void FakeHub::set_commit(const std::string& c) {
  std::lock_guard<std::mutex> l(mu_);
  commit_ = c;
}

void FakeHub::add_file(const std::string& repo, const std::string& path, const std::string& content,
                       bool lfs) {
  std::lock_guard<std::mutex> l(mu_);
  files_[repo + "/" + path] = File{content, lfs};
  if (lfs) by_sha_[sha256(content)] = repo + "/" + path;
}

void FakeHub::make_private(const std::string& repo, const std::string& token) {
  std::lock_guard<std::mutex> l(mu_);
  private_[repo] = token;
}

void FakeHub::rename_repo(const std::string& old_repo, const std::string& new_repo) {
  std::lock_guard<std::mutex> l(mu_);
  renamed_[old_repo] = new_repo;
}

void FakeHub::add_static(const std::string& url_path, const std::string& content, bool ranges) {
  std::lock_guard<std::mutex> l(mu_);
  statics_[url_path] = Static{content, ranges};
}

void FakeHub::set_fault(const std::string& key, const Fault& f) {
  std::lock_guard<std::mutex> l(mu_);
  auto st = std::make_shared<FaultState>();
  st->f = f;
  st->drops_left = f.drop_times;
  st->fails_left = f.fail_times;
  faults_[key] = st;
}

std::vector<RecordedRequest> FakeHub::requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return log_;
}

size_t FakeHub::request_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return log_.size();
}

void FakeHub::clear_requests() {
  std::lock_guard<std::mutex> l(mu_);
  log_.clear();
}

void FakeHub::routes() {
  using httplib::Request;
  using httplib::Response;
  server_->set_pre_routing_handler([this](const Request& req, Response&) {
    std::lock_guard<std::mutex> l(mu_);
    log_.push_back(
        {req.method, req.path, req.get_header_value("Range"), req.get_header_value("Authorization")});
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Serves the bytes of `key` with its faults; Range handling is httplib's (206 + Content-Range).
  auto serve = [this](const Request& req, Response& res, const std::string& key, const std::string& content,
                      bool ranges) {
    std::shared_ptr<FaultState> st;
    bool is_get = req.method == "GET";
    bool fail_now = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = faults_.find(key);
      if (it != faults_.end()) {
        st = it->second;
        if (is_get && st->fails_left > 0) {
          --st->fails_left;
          fail_now = true;
        }
      }
    }
    if (fail_now) {
      res.status = st->f.fail_status;
      if (!st->f.retry_after.empty()) res.set_header("Retry-After", st->f.retry_after);
      res.set_content("injected error", "text/plain");
      return;
    }
    std::string body = content;
    if (st && st->f.corrupt && !body.empty()) {
      size_t at = st->f.corrupt_at >= 0 ? size_t(st->f.corrupt_at) : body.size() / 2;
      if (at < body.size()) body[at] ^= 0x20;
    }
    int64_t drop = (st && is_get) ? st->f.drop_at : -1;
    if (!ranges) {
      res.status = 200;
      res.set_chunked_content_provider("application/octet-stream", [body](size_t, httplib::DataSink& sink) {
        sink.write(body.data(), body.size());
        sink.done();
        return true;
      });
      return;
    }
    res.set_header("Accept-Ranges", "bytes");
    res.set_content_provider(
        body.size(), "application/octet-stream",
        [body, drop, st](size_t offset, size_t length, httplib::DataSink& sink) {
          size_t end = offset + length;
          if (drop >= 0 && offset <= size_t(drop) && size_t(drop) < end && st->drops_left.fetch_sub(1) > 0) {
            if (size_t(drop) > offset) sink.write(body.data() + offset, size_t(drop) - offset);
            return false;  // the connection is closed mid-body
          }
          sink.write(body.data() + offset, length);
          return true;
        });
  };

  server_->Get(R"(/([^/]+)/([^/]+)/resolve/([^/]+)/(.+))", [this, serve](const Request& req, Response& res) {
    std::string repo = std::string(req.matches[1]) + "/" + std::string(req.matches[2]);
    std::string rev = req.matches[3], path = req.matches[4];
    std::unique_lock<std::mutex> l(mu_);
    if (renamed_.count(repo)) {
      res.status = 307;
      res.set_header("Location", "/" + renamed_[repo] + "/resolve/" + rev + "/" + path);
      return;
    }
    auto priv = private_.find(repo);
    if (priv != private_.end() && req.get_header_value("Authorization") != "Bearer " + priv->second) {
      res.status = 401;
      res.set_header("X-Error-Code", "RepoNotFound");
      res.set_header("X-Error-Message", "Invalid username or password.");
      return;
    }
    bool repo_known = false;
    for (const auto& [k, v] : files_) repo_known = repo_known || k.rfind(repo + "/", 0) == 0;
    if (!repo_known) {
      res.status = 404;
      res.set_header("X-Error-Code", "RepoNotFound");
      return;
    }
    res.set_header("X-Repo-Commit", commit_);
    auto it = files_.find(repo + "/" + path);
    if (it == files_.end()) {
      res.status = 404;
      res.set_header("X-Error-Code", "EntryNotFound");
      res.set_header("X-Error-Message", "Entry not found");
      return;
    }
    File file = it->second;
    l.unlock();
    if (file.lfs) {
      std::string sha = sha256(file.content);
      res.set_header("ETag",
                     "\"" + git_sha1("version https://git-lfs.github.com/spec/v1\noid sha256:" + sha) + "\"");
      res.set_header("X-Linked-Etag", "\"" + sha + "\"");
      res.set_header("X-Linked-Size", std::to_string(file.content.size()));
      res.status = 302;
      res.set_header("Location", endpoint() + "/cdn/" + sha + "?signed=1");
      return;
    }
    res.set_header("ETag", "\"" + git_sha1(file.content) + "\"");
    serve(req, res, repo + "/" + path, file.content, true);
  });

  server_->Get(R"(/cdn/([0-9a-f]{64}))", [this, serve](const Request& req, Response& res) {
    std::string key, content;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = by_sha_.find(req.matches[1]);
      if (it == by_sha_.end()) {
        res.status = 404;
        return;
      }
      key = it->second;
      content = files_[key].content;
    }
    serve(req, res, key, content, true);
  });

  // GitHub-release-like: /dl/files/X redirects to /files/X, which serves the bytes.
  server_->Get(R"(/dl(/files/.+))", [this](const Request& req, Response& res) {
    res.status = 302;
    res.set_header("Location", endpoint() + std::string(req.matches[1]));
  });
  server_->Get(R"(/files/.+)", [this, serve](const Request& req, Response& res) {
    Static st;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = statics_.find(req.path);
      if (it == statics_.end()) {
        res.status = 404;
        return;
      }
      st = it->second;
    }
    serve(req, res, req.path, st.content, st.ranges);
  });
}

}  // namespace a2f::test

namespace a2f::test {
namespace {

std::string pseudo_random_bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = char(x >> 24);
  }
  return s;
}

// A valid safetensors file holding one F32 tensor "w" of n values.
std::string tiny_safetensors(size_t n, uint32_t seed) {
  std::string header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n) +
                       "],\"data_offsets\":[0," + std::to_string(4 * n) + "]}}";
  std::string s(8, '\0');
  uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((len >> (8 * i)) & 0xFF);
  return s + header + pseudo_random_bytes(4 * n, seed);
}

void put16(std::string& s, uint16_t v) {
  s.push_back(char(v & 0xFF));
  s.push_back(char(v >> 8));
}
void put32(std::string& s, uint32_t v) {
  put16(s, uint16_t(v & 0xFFFF));
  put16(s, uint16_t(v >> 16));
}

}  // namespace

std::map<std::string, std::string> populate_model_repos(FakeHub& hub) {
  std::map<std::string, std::string> out;
  uint32_t seed = 1;
  for (const auto& spec : hub::model_roles()) {
    for (const auto& f : hub::role_hub_files(spec)) {
      std::string content;
      bool lfs = false;
      const std::string& p = f.repo_path;
      if (p.size() > 12 && p.compare(p.size() - 12, 12, ".safetensors") == 0) {
        content = tiny_safetensors(spec.role == hub::Role::Unet ? 60000 : 2000, seed++);
        lfs = true;
      } else if (p.size() > 4 &&
                 (p.compare(p.size() - 4, 4, ".bin") == 0 || p.compare(p.size() - 5, 5, ".onnx") == 0)) {
        content = pseudo_random_bytes(30000, seed++);
        lfs = true;
      } else {
        content = "{\"name\": \"" + f.repo + "/" + p + "\"}\n";
      }
      hub.add_file(f.repo, p, content, lfs);
      out[f.repo + "/" + p] = content;
    }
  }
  return out;
}

std::string make_zip(const std::vector<std::pair<std::string, std::string>>& members, bool use_deflate) {
  std::string zip, cd;
  for (const auto& [name, content] : members) {
    std::string data = content;
    if (use_deflate) {
      z_stream zs{};
      deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
      data.resize(deflateBound(&zs, uLong(content.size())));
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(content.data()));
      zs.avail_in = uInt(content.size());
      zs.next_out = reinterpret_cast<Bytef*>(data.data());
      zs.avail_out = uInt(data.size());
      ::deflate(&zs, Z_FINISH);
      data.resize(zs.total_out);
      deflateEnd(&zs);
    }
    uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(content.data()), uInt(content.size())));
    uint32_t offset = uint32_t(zip.size());
    uint16_t method = use_deflate ? 8 : 0;
    put32(zip, 0x04034b50);
    put16(zip, 20);
    put16(zip, 0);
    put16(zip, method);
    put32(zip, 0);  // time, date
    put32(zip, crc);
    put32(zip, uint32_t(data.size()));
    put32(zip, uint32_t(content.size()));
    put16(zip, uint16_t(name.size()));
    put16(zip, 4);  // an extra field, as real archives often have one
    zip += name;
    put16(zip, 0xCAFE);
    put16(zip, 0);
    zip += data;
    put32(cd, 0x02014b50);
    put16(cd, 20);
    put16(cd, 20);
    put16(cd, 0);
    put16(cd, method);
    put32(cd, 0);
    put32(cd, crc);
    put32(cd, uint32_t(data.size()));
    put32(cd, uint32_t(content.size()));
    put16(cd, uint16_t(name.size()));
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put32(cd, 0);
    put32(cd, offset);
    cd += name;
  }
  uint32_t cd_offset = uint32_t(zip.size());
  zip += cd;
  put32(zip, 0x06054b50);
  put16(zip, 0);
  put16(zip, 0);
  put16(zip, uint16_t(members.size()));
  put16(zip, uint16_t(members.size()));
  put32(zip, uint32_t(cd.size()));
  put32(zip, cd_offset);
  std::string comment = "test archive";
  put16(zip, uint16_t(comment.size()));
  zip += comment;
  return zip;
}

}  // namespace a2f::test
