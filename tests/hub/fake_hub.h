// A local imitation of the Hugging Face hub for tests (cpp-httplib on 127.0.0.1, an ephemeral port, its own
// thread): resolve URLs answering HEAD and GET with X-Repo-Commit / ETag / X-Linked-Etag / X-Linked-Size, a
// 302 to a /cdn/ path for LFS files, Range requests (206 + Content-Range), 401 for private repositories
// without the token, 404 with X-Error-Code, relative redirects of renamed repositories; plus plain static
// files (a zip "release" behind a redirect, with or without Range support). Faults can be injected per file:
// a connection dropped after N bytes, a corrupted byte, HTTP errors with Retry-After. Every request is
// recorded.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace a2f::test {

struct RecordedRequest {
  std::string method, path, range, authorization;
};

struct Fault {
  int64_t drop_at = -1;     // close the connection when a response body reaches this byte of the file
  int drop_times = 0;       // how many responses (whose range holds that byte) are cut
  bool corrupt = false;     // flip one byte in every response ...
  int64_t corrupt_at = -1;  // ... this one (-1: the middle one)
  int fail_status = 0;      // answer this status ...
  int fail_times = 0;       // ... this many times (GET of the bytes only)
  std::string retry_after;  // with this Retry-After header
};

class FakeHub {
 public:
  FakeHub();
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const;  // http://127.0.0.1:PORT
  const std::string& commit() const { return commit_; }
  void set_commit(const std::string& c);

  void add_file(const std::string& repo, const std::string& path, const std::string& content, bool lfs);
  void make_private(const std::string& repo, const std::string& token);
  void rename_repo(const std::string& old_repo, const std::string& new_repo);
  // A static file at url_path; served through a 302 from "/dl" + url_path when redirect is true.
  void add_static(const std::string& url_path, const std::string& content, bool ranges = true);
  void set_fault(const std::string& key, const Fault& f);  // key: "repo/path" or a static url_path

  static std::string sha256(const std::string& s);
  static std::string git_sha1(const std::string& s);

  std::vector<RecordedRequest> requests() const;
  size_t request_count() const;
  void clear_requests();

 private:
  struct File {
    std::string content;
    bool lfs = false;
  };
  struct Static {
    std::string content;
    bool ranges = true;
  };
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::string commit_;
  mutable std::mutex mu_;
  std::map<std::string, File> files_;           // "owner/name/path"
  std::map<std::string, std::string> by_sha_;   // sha256 -> "owner/name/path"
  std::map<std::string, std::string> private_;  // repo -> token
  std::map<std::string, std::string> renamed_;  // old -> new
  std::map<std::string, Static> statics_;
  struct FaultState;
  std::map<std::string, std::shared_ptr<FaultState>> faults_;
  std::vector<RecordedRequest> log_;
  void routes();
};

// Puts every hub file of the manifest (FoivosPar/Arc2Face, SD1.5, LCM-LoRA) on the fake hub with small
// contents (weights as LFS files) and returns "repo/path" -> content.
std::map<std::string, std::string> populate_model_repos(FakeHub& hub);
// A zip archive (deflate) laid out like insightface's antelopev2.zip: antelopev2/antelopev2/<name> members.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& members, bool deflate = true);

}  // namespace a2f::test
